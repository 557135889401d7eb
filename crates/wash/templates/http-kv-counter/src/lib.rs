//! {{name}}: counts visits per path in wasi:keyvalue. `wash dev` keeps the
//! counts in memory; set `dev.wasi_keyvalue_path` (or a Redis or NATS URL)
//! in .wash/config.yaml to keep them.

wit_bindgen::generate!({ path: "wit", world: "component", generate_all });

use wasi::keyvalue::{atomics, store};
use wstd::http::{Body, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().to_string();
    let visits = store::open("default").and_then(|bucket| atomics::increment(&bucket, &path, 1));
    let response = match visits {
        Ok(n) => Response::new(format!("{path} has been visited {n} time(s)\n").into()),
        Err(e) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(format!("key-value store error: {e:?}\n").into())?,
    };
    Ok(response)
}
