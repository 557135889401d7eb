//! Hostile fixture: panics (a wasm trap) while handling a request.

use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    if std::hint::black_box(request.uri().path().len()) > 0 {
        panic!("trap fixture: deliberate panic");
    }
    Ok(Response::new("unreachable\n".into()))
}
