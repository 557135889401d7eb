//! Blobs over HTTP: `PUT /<container>/<name>` stores the body (creating the
//! container), `GET /<container>/<name>` returns it (`?sync` reads it in one
//! call instead of streaming), `DELETE` removes it, `GET /<container>`
//! lists the names, one per line; `POST /<container>/<name>?copy=<c>/<n>`
//! (or `?move=`) copies (or moves) it; `DELETE /<container>` deletes the
//! container.

wit_bindgen::generate!({
    path: "wit",
    world: "blob-store",
    with: {
        "wasi:io/error@0.2.0": wasip2::io::error,
        "wasi:io/poll@0.2.0": wasip2::io::poll,
        "wasi:io/streams@0.2.0": wasip2::io::streams,
    },
    generate_all,
});

use wasi::blobstore::blobstore;
use wasi::blobstore::container::Container;
use wasi::blobstore::types::{IncomingValue, OutgoingValue};
use wasip2::io::streams::StreamError;
use wstd::http::{Body, BodyExt, Method, Request, Response, StatusCode};

fn reply(status: StatusCode, body: impl Into<Body>) -> Result<Response<Body>, wstd::http::Error> {
    Ok(Response::builder().status(status).body(body.into())?)
}

fn container(name: &str, create: bool) -> Result<Container, String> {
    if blobstore::container_exists(&name.to_string())? {
        blobstore::get_container(&name.to_string())
    } else if create {
        blobstore::create_container(&name.to_string())
    } else {
        Err(format!("container `{name}` does not exist"))
    }
}

fn write(container: &Container, name: &str, data: &[u8]) -> Result<(), String> {
    let value = OutgoingValue::new_outgoing_value();
    container.write_data(&name.to_string(), &value)?;
    let stream = value
        .outgoing_value_write_body()
        .map_err(|()| "cannot open the value's body".to_string())?;
    for chunk in data.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| format!("write: {e:?}"))?;
    }
    drop(stream);
    OutgoingValue::finish(value)
}

fn read(container: &Container, name: &str, sync: bool) -> Result<Vec<u8>, String> {
    let value = container.get_data(&name.to_string(), 0, u64::MAX)?;
    if sync {
        return IncomingValue::incoming_value_consume_sync(value);
    }
    let stream = IncomingValue::incoming_value_consume_async(value)?;
    let mut data = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(data),
            Err(e) => return Err(format!("read: {e:?}")),
        }
    }
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let query = request.uri().query().unwrap_or_default().to_string();
    let sync = query == "sync";
    let path = request.uri().path().trim_start_matches('/').to_string();
    let method = request.method().clone();
    let (container_name, object) = match path.split_once('/') {
        Some((c, o)) => (c.to_string(), Some(o.to_string())),
        None => (path, None),
    };
    let result = match (method, object) {
        (Method::PUT, Some(object)) => {
            let body = request
                .into_body()
                .into_boxed_body()
                .collect()
                .await?
                .to_bytes();
            container(&container_name, true)
                .and_then(|c| write(&c, &object, &body))
                .map(|()| b"stored\n".to_vec())
        }
        (Method::GET, Some(object)) => {
            container(&container_name, false).and_then(|c| read(&c, &object, sync))
        }
        (Method::POST, Some(object)) => {
            let (op, target) = query.split_once('=').unwrap_or(("", ""));
            let (to_container, to_object) = target.split_once('/').unwrap_or((target, ""));
            let src = blobstore::ObjectId {
                container: container_name.clone(),
                object,
            };
            let dest = blobstore::ObjectId {
                container: to_container.to_string(),
                object: to_object.to_string(),
            };
            match op {
                "copy" => blobstore::copy_object(&src, &dest).map(|()| b"copied\n".to_vec()),
                "move" => blobstore::move_object(&src, &dest).map(|()| b"moved\n".to_vec()),
                _ => return reply(StatusCode::BAD_REQUEST, "use ?copy=c/n or ?move=c/n\n"),
            }
        }
        (Method::DELETE, Some(object)) => container(&container_name, false)
            .and_then(|c| c.delete_object(&object))
            .map(|()| b"deleted\n".to_vec()),
        (Method::GET, None) => container(&container_name, false).and_then(|c| {
            let names = c.list_objects()?;
            let (names, _end) = names.read_stream_object_names(10_000)?;
            Ok(names
                .iter()
                .map(|n| format!("{n}\n"))
                .collect::<String>()
                .into_bytes())
        }),
        // The whole container, by name: even an empty one (`DELETE /`).
        (Method::DELETE, None) => {
            blobstore::delete_container(&container_name).map(|()| b"deleted\n".to_vec())
        }
        _ => return reply(StatusCode::METHOD_NOT_ALLOWED, "use PUT, GET or DELETE\n"),
    };
    match result {
        Ok(body) => reply(StatusCode::OK, body),
        Err(error) if error.contains("not found") || error.contains("does not exist") => {
            reply(StatusCode::NOT_FOUND, format!("{error}\n"))
        }
        Err(error) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error: {error}\n"),
        ),
    }
}
