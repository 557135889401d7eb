//! Hostile fixture: unbounded recursion until the wasm stack overflows.

use wstd::http::{Body, Request, Response};

#[inline(never)]
#[allow(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(depth: u64, pad: [u64; 16]) -> u64 {
    let pad = std::hint::black_box(pad);
    recurse(depth + 1, pad) + pad[(depth % 16) as usize]
}

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let total = recurse(0, [1; 16]);
    Ok(Response::new(format!("{total}\n").into()))
}
