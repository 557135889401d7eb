//! Calls `example:greeter/api`, which a component plugin provides:
//! `GET /<name>` answers the plugin's greeting; `GET /count/<n>` makes a
//! counter in the plugin starting at `n`, bumps it twice and answers both
//! values.

wit_bindgen::generate!({ path: "wit", world: "client", generate_all });

use example::greeter::api::{Counter, greet};
use wstd::http::{Body, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().trim_start_matches('/').to_string();
    let body = match path.strip_prefix("count/") {
        Some(start) => {
            let counter = Counter::new(start.parse().unwrap_or(0));
            format!("{} {}\n", counter.bump(), counter.bump())
        }
        None => format!("{}\n", greet(&path)),
    };
    Ok(Response::new(body.into()))
}
