//! Hostile fixture: unbounded recursion that exhausts the wasm call stack
//! (scalar arguments only, so frames live on the engine's stack rather than
//! in linear memory).

use wstd::http::{Body, Request, Response};

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == u64::MAX {
        return depth;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(1))
}

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let total = recurse(0);
    Ok(Response::new(format!("{total}\n").into()))
}
