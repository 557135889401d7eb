//! The smallest useful wasi:http component: answers every request with a greeting.

use wstd::http::{Body, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    match request.uri().path() {
        "/" => Ok(Response::new("Hello from wash!\n".into())),
        path => Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(format!("no route for {path}\n").into())?),
    }
}
