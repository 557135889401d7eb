//! Counts requests: each request atomically increments the key named by its
//! path (`hits` for `/`) in the bucket named by `BUCKET` (default `default`)
//! and answers the new count.

wit_bindgen::generate!({ path: "wit", world: "counter", generate_all });

use wasi::keyvalue::{atomics, store};
use wstd::http::{Body, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let bucket_name = std::env::var("BUCKET").unwrap_or_else(|_| "default".into());
    let key = match request.uri().path().trim_start_matches('/') {
        "" => "hits".to_string(),
        path => path.to_string(),
    };
    let counted = store::open(&bucket_name).and_then(|bucket| atomics::increment(&bucket, &key, 1));
    match counted {
        Ok(count) => Ok(Response::new(format!("{count}\n").into())),
        Err(error) => Ok(Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(format!("error: {error:?}\n").into())?),
    }
}
