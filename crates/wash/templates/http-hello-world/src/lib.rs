//! {{name}}: a wasi:http component. `wash dev` builds and serves it.

use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let greeting = format!("Hello from {{name}}! You asked for {}\n", request.uri().path());
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(greeting.into())?)
}
