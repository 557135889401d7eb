//! The WASI P3 twin of `http-client`: fetches the URL in its `URL`
//! environment variable through `wasi:http/client` and answers with the
//! upstream's status and body, or with the error code.

use http_body_util::BodyExt;
use wasip3::http::types::{ErrorCode, Request, Response};
use wasip3::http_compat::{
    http_from_wasi_response, http_into_wasi_request, http_into_wasi_response,
};

wasip3::http::service::export!(HttpClientP3);

struct HttpClientP3;

impl wasip3::exports::http::handler::Guest for HttpClientP3 {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let (status, body) = match fetch().await {
            Ok((status, body)) => (200, format!("upstream {status}\n{body}")),
            Err(error) => (502, format!("error: {error}\n")),
        };
        let response = http::Response::builder()
            .status(status)
            .body(body)
            .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?;
        http_into_wasi_response(response)
    }
}

async fn fetch() -> Result<(u16, String), String> {
    let url = std::env::var("URL").map_err(|_| "no URL configured".to_string())?;
    let request = http::Request::get(url)
        .header("x-sent-by", "http-client-p3")
        .body(String::new())
        .map_err(|e| e.to_string())?;
    let request = http_into_wasi_request(request).map_err(|e| format!("{e:?}"))?;
    let response = wasip3::http::client::send(request).await.map_err(|e| {
        format!("{e:?}")
            .trim_start_matches("ErrorCode::")
            .to_string()
    })?;
    let response = http_from_wasi_response(response).map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
