//! Hostile test fixture (WASI P2).
//!
//! `GET /print?<n>` writes `n` lines to stderr; `GET /fetch?<n>` sends `n`
//! outbound requests to `$URL` at once and answers how they ended, one
//! `<outcome> <count>` line per outcome (`ok`, or the error).

use std::collections::BTreeMap;

use wstd::http::{Body, Client, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let n: usize = request
        .uri()
        .query()
        .and_then(|q| q.parse().ok())
        .unwrap_or(1);
    let answer = match request.uri().path() {
        "/print" => {
            for i in 0..n {
                eprintln!("chatty line {i}");
            }
            format!("printed {n}\n")
        }
        "/fetch" => {
            let url = std::env::var("URL").unwrap_or_default();
            let client = Client::new();
            let sends = (0..n).map(|_| {
                let request = Request::get(url.as_str()).body(Body::empty());
                let client = &client;
                async move {
                    match request {
                        Ok(request) => match client.send(request).await {
                            Ok(_) => "ok".to_string(),
                            Err(e) => format!("{e:?}"),
                        },
                        Err(e) => format!("{e:?}"),
                    }
                }
            });
            let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
            for outcome in futures::future::join_all(sends).await {
                *outcomes.entry(outcome).or_default() += 1;
            }
            outcomes
                .iter()
                .map(|(outcome, count)| format!("{outcome} {count}\n"))
                .collect()
        }
        other => format!("no route {other}\n"),
    };
    Ok(Response::new(answer.into()))
}
