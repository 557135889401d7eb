//! An HTTP client component (WASI P2): on every request it fetches the URL
//! in its configuration (the `URL` environment variable) and answers with
//! the upstream's status and body, or with the `wasi:http` error code.
//!
//! Optional settings: `CONNECT_TIMEOUT_MS`, `FIRST_BYTE_TIMEOUT_MS`,
//! `BETWEEN_BYTES_TIMEOUT_MS`.

use std::time::Duration;

use wstd::http::{Body, BodyExt, Client, ErrorCode, Request, Response, StatusCode};

fn millis(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

fn reply(status: StatusCode, body: String) -> Result<Response<Body>, wstd::http::Error> {
    Ok(Response::builder().status(status).body(body.into())?)
}

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let Ok(url) = std::env::var("URL") else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no URL configured\n".into(),
        );
    };
    let mut client = Client::new();
    if let Some(d) = millis("CONNECT_TIMEOUT_MS") {
        client.set_connect_timeout(d);
    }
    if let Some(d) = millis("FIRST_BYTE_TIMEOUT_MS") {
        client.set_first_byte_timeout(d);
    }
    if let Some(d) = millis("BETWEEN_BYTES_TIMEOUT_MS") {
        client.set_between_bytes_timeout(d);
    }
    let upstream = Request::get(url.as_str())
        .header("x-sent-by", "http-client")
        .body(Body::empty())?;
    let response = match client.send(upstream).await {
        Ok(response) => response,
        Err(error) => {
            return reply(
                StatusCode::BAD_GATEWAY,
                format!("error: {}\n", code(&error)),
            );
        }
    };
    let status = response.status();
    match response.into_body().into_boxed_body().collect().await {
        Ok(body) => {
            let text = String::from_utf8_lossy(&body.to_bytes()).into_owned();
            reply(
                StatusCode::OK,
                format!("upstream {}\n{text}", status.as_u16()),
            )
        }
        Err(error) => reply(
            StatusCode::BAD_GATEWAY,
            format!("error: {}\n", code(&error)),
        ),
    }
}

/// The `wasi:http` error code when there is one, e.g. `HttpRequestDenied`.
fn code(error: &wstd::http::Error) -> String {
    match error.chain().find_map(|e| e.downcast_ref::<ErrorCode>()) {
        // The bindings print `ErrorCode::X`; keep just the variant.
        Some(code) => format!("{code:?}")
            .trim_start_matches("ErrorCode::")
            .to_string(),
        None => format!("{error:#}"),
    }
}
