//! {{name}}: publishes each request's body on a wasmcloud:messaging subject
//! (`POST /orders.created` publishes on `orders.created`). `wash dev`
//! delivers to an in-memory broker; set `dev.data_nats_url` in
//! .wash/config.yaml to publish on NATS instead.

wit_bindgen::generate!({ path: "wit", world: "component", generate_all });

use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;
use wstd::http::{Body, BodyExt, Request, Response, StatusCode};

fn reply(status: StatusCode, text: String) -> Result<Response<Body>, wstd::http::Error> {
    Ok(Response::builder().status(status).body(text.into())?)
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let subject = request.uri().path().trim_matches('/').replace('/', ".");
    if subject.is_empty() {
        return reply(
            StatusCode::BAD_REQUEST,
            "POST /<subject> publishes the request body on <subject>\n".into(),
        );
    }
    let body = match request.into_body().into_boxed_body().collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            );
        }
    };
    let size = body.len();
    let message = BrokerMessage {
        subject: subject.clone(),
        body,
        reply_to: None,
    };
    match consumer::publish(&message) {
        Ok(()) => reply(
            StatusCode::OK,
            format!("published {size} bytes on {subject}\n"),
        ),
        Err(e) => reply(
            StatusCode::BAD_GATEWAY,
            format!("cannot publish on {subject}: {e}\n"),
        ),
    }
}
