//! {{name}}: proxies each request to the URL in its `UPSTREAM` environment
//! variable. Outbound HTTP is denied unless the host is listed in
//! `workload.allowedHosts` of .wash/config.yaml.

use wstd::http::{Body, BodyExt, Client, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(_request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let upstream = std::env::var("UPSTREAM").unwrap_or_else(|_| "https://example.com/".into());
    let outgoing = Request::get(&upstream).body(Body::empty())?;
    match Client::new().send(outgoing).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().into_boxed_body().collect().await?.to_bytes();
            Ok(Response::builder().status(status).body(body.into())?)
        }
        Err(e) => Ok(Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(format!("cannot reach {upstream}: {e}\n").into())?),
    }
}
