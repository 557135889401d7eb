//! Test fixture: `GET /<ms>` sleeps that many milliseconds (without busy
//! waiting), then answers `slept <ms>`: requests that stay in flight.

use wstd::http::{Body, Request, Response};
use wstd::time::Duration;

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let ms: u64 = request
        .uri()
        .path()
        .trim_matches('/')
        .parse()
        .unwrap_or(100);
    wstd::task::sleep(Duration::from_millis(ms)).await;
    Ok(Response::new(format!("slept {ms}\n").into()))
}
