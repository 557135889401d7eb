//! Test fixture: one HTTP route per plugin operation, so tests can drive
//! every interface of the host through a real component.
//!
//! `GET /config/<key>`, `GET /config`; `POST /log/<level>` (body = message);
//! `GET /secret/<name>` (answers the revealed value's length, never the
//! value); `GET|PUT|DELETE /kv/<bucket>/<key>`, `GET /kv/<bucket>` (keys),
//! `POST /kv/<bucket>/<key>/incr/<n>`, `POST /kv/<bucket>/batch` (body
//! `k=v` lines: set-many, then get-many of those keys, then delete-many).

wit_bindgen::generate!({ path: "wit", world: "probe", generate_all });

use wasi::config::store as config;
use wasi::keyvalue::{atomics, batch, store};
use wasi::logging::logging::{self, Level};
use wasmcloud::secrets::{reveal, store as secrets};
use wstd::http::{Body, BodyExt, Method, Request, Response, StatusCode};

fn reply(status: StatusCode, body: String) -> Result<Response<Body>, wstd::http::Error> {
    Ok(Response::builder().status(status).body(body.into())?)
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let method = request.method().clone();
    let path: Vec<String> = request
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let body = request
        .into_body()
        .into_boxed_body()
        .collect()
        .await?
        .to_bytes()
        .to_vec();
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let (status, text) = match (method, parts.as_slice()) {
        (Method::GET, ["config", key]) => match config::get(key) {
            Ok(Some(value)) => (StatusCode::OK, value),
            Ok(None) => (StatusCode::NOT_FOUND, "unset".into()),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")),
        },
        (Method::GET, ["config"]) => match config::get_all() {
            Ok(all) => (
                StatusCode::OK,
                all.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
            ),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")),
        },
        (Method::POST, ["log", level]) => {
            let level = match *level {
                "trace" => Level::Trace,
                "debug" => Level::Debug,
                "warn" => Level::Warn,
                "error" => Level::Error,
                "critical" => Level::Critical,
                _ => Level::Info,
            };
            logging::log(level, "probe", &String::from_utf8_lossy(&body));
            (StatusCode::OK, "logged".into())
        }
        (Method::GET, ["secret", name]) => match secrets::get(name) {
            Ok(secret) => {
                let length = match reveal::reveal(&secret) {
                    secrets::SecretValue::String(s) => s.len(),
                    secrets::SecretValue::Bytes(b) => b.len(),
                };
                (StatusCode::OK, format!("{length}"))
            }
            Err(e) => (StatusCode::NOT_FOUND, format!("{e:?}")),
        },
        (method, ["kv", bucket, rest @ ..]) => kv(method, bucket, rest, body),
        _ => (StatusCode::NOT_FOUND, "no such route".into()),
    };
    reply(status, text)
}

fn kv(method: Method, bucket: &str, rest: &[&str], body: Vec<u8>) -> (StatusCode, String) {
    let bucket = match store::open(bucket) {
        Ok(bucket) => bucket,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("open: {e:?}")),
    };
    let outcome: Result<String, store::Error> = match (method, rest) {
        (Method::GET, [key]) => bucket.get(key).map(|v| match v {
            Some(v) => String::from_utf8_lossy(&v).into_owned(),
            None => "<none>".into(),
        }),
        (Method::PUT, [key]) => bucket.set(key, &body).map(|()| "set".into()),
        (Method::DELETE, [key]) => bucket.delete(key).map(|()| "deleted".into()),
        (Method::HEAD | Method::POST, [key, "exists"]) => bucket.exists(key).map(|e| e.to_string()),
        (Method::GET, []) => {
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                match bucket.list_keys(cursor) {
                    Ok(page) => {
                        keys.extend(page.keys);
                        match page.cursor {
                            Some(next) => cursor = Some(next),
                            None => break Ok(keys.join(",")),
                        }
                    }
                    Err(e) => break Err(e),
                }
            }
        }
        (Method::POST, [key, "incr", by]) => {
            atomics::increment(&bucket, key, by.parse().unwrap_or(1)).map(|n| n.to_string())
        }
        (Method::POST, ["batch"]) => {
            let pairs: Vec<(String, Vec<u8>)> = String::from_utf8_lossy(&body)
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect();
            let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
            batch::set_many(&bucket, &pairs)
                .and_then(|()| batch::get_many(&bucket, &keys))
                .and_then(|got| {
                    batch::delete_many(&bucket, &keys)?;
                    Ok(got
                        .into_iter()
                        .map(|e| match e {
                            Some((k, v)) => format!("{k}={}", String::from_utf8_lossy(&v)),
                            None => "<none>".into(),
                        })
                        .collect::<Vec<_>>()
                        .join(","))
                })
        }
        _ => return (StatusCode::NOT_FOUND, "no such kv route".into()),
    };
    match outcome {
        Ok(text) => (StatusCode::OK, text),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:?}")),
    }
}
