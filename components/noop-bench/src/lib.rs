//! Times calls into whatever provides `example:noop/api` (a native plugin
//! or a component plugin): `GET /noop/<n>` makes `n` calls of `noop`, a
//! function with no parameters and no results, and answers the mean
//! nanoseconds per call and that of the fastest batch of 1,000 calls
//! ([`bench_timing::time`]).

wit_bindgen::generate!({ path: "wit", world: "bench", generate_all });

use example::noop::api::noop;
use wstd::http::{Body, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path();
    let Some(n) = path
        .strip_prefix("/noop/")
        .and_then(|n| n.parse::<u32>().ok())
    else {
        return Ok(Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(format!("unknown path `{path}`; ask for /noop/<calls>\n").into())?);
    };
    let Ok((mean, fastest)) = bench_timing::time(n, || {
        noop();
        Ok::<(), std::convert::Infallible>(())
    });
    Ok(Response::new(format!("{mean} {fastest}\n").into()))
}
