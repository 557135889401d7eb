//! Test fixture (WASI P2): file operations on the guest's preopened
//! directories, so tests can check what a volume lets a guest do.
//!
//! `GET /read?<path>` answers the file's contents; `PUT /write?<path>`
//! writes the body to it; `GET /list?<path>` lists a directory, one name a
//! line. Failures answer 500 with the error.

use wstd::http::{Body, BodyExt, Method, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().query().unwrap_or_default().to_string();
    let route = request.uri().path().to_string();
    let method = request.method().clone();
    let body = request
        .into_body()
        .into_boxed_body()
        .collect()
        .await?
        .to_bytes();
    let outcome = match (method, route.as_str()) {
        (Method::GET, "/read") => std::fs::read(&path),
        (Method::PUT, "/write") => std::fs::write(&path, &body).map(|()| b"written\n".to_vec()),
        (Method::GET, "/list") => std::fs::read_dir(&path).and_then(|entries| {
            let mut names = Vec::new();
            for entry in entries {
                names.push(entry?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names.join("\n").into_bytes())
        }),
        _ => {
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body("no such route\n".into())?);
        }
    };
    let (status, body) = match outcome {
        Ok(bytes) => (StatusCode::OK, bytes),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}\n").into_bytes(),
        ),
    };
    Ok(Response::builder().status(status).body(body.into())?)
}
