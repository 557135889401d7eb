//! The smallest useful wasi:http component: answers every request with a greeting.

use wstd::http::{Body, Request, Response, StatusCode};

const TEXT: &str = "text/plain; charset=utf-8";

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let (status, body) = match request.uri().path() {
        "/" => (StatusCode::OK, "Hello from wash!\n".to_string()),
        path => (StatusCode::NOT_FOUND, format!("no route for {path}\n")),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", TEXT)
        .body(body.into())?)
}
