//! Test fixture (WASI P2): answers with how many requests this instance has
//! served, so a test can tell a reused instance from a fresh one.
//!
//! `GET /` counts; `/trap` panics; `/spin` loops forever; `/sleep/<ms>`
//! waits, then counts.

use std::sync::atomic::{AtomicU64, Ordering};

use wstd::http::{Body, Request, Response};
use wstd::time::Duration;

static SERVED: AtomicU64 = AtomicU64::new(0);

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().to_string();
    if path == "/trap" {
        panic!("asked to trap");
    }
    if path == "/spin" {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if let Some(ms) = path.strip_prefix("/sleep/").and_then(|ms| ms.parse().ok()) {
        wstd::task::sleep(Duration::from_millis(ms)).await;
    }
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(Response::new(format!("{served}\n").into()))
}
