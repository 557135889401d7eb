//! Test fixture (WASI P2): behaves like a StarlingMonkey (componentize-js)
//! guest, which can answer only one request per instance. The first request
//! gets `200 served`; any later request on the same instance is logged to
//! stderr and returned from without a response, as StarlingMonkey's
//! `FetchEvent#respondWith can't be called twice` does.

use std::sync::atomic::{AtomicBool, Ordering};

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

static SERVED: AtomicBool = AtomicBool::new(false);

struct OneShot;

impl wasip2::exports::http::incoming_handler::Guest for OneShot {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        if SERVED.swap(true, Ordering::Relaxed) {
            eprintln!("one-shot: this instance already served its request; no response");
            return;
        }
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a body");
        ResponseOutparam::set(response_out, Ok(response));
        let out = body.write().expect("a stream");
        out.blocking_write_and_flush(b"served\n")
            .expect("body written");
        drop(out);
        OutgoingBody::finish(body, None).expect("body finished");
    }
}

wasip2::http::proxy::export!(OneShot);
