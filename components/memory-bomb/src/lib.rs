//! Hostile fixture: allocates (and touches) memory until something stops it.

use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // 16 MiB at a time, written so the pages are really committed.
        hoard.push(vec![0xAB; 16 << 20]);
        std::hint::black_box(&hoard);
    }
}
