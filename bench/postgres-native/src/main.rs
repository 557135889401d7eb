//! `GET /todos/<id>` answered natively: hyper in front, tokio-postgres
//! behind, a few connections kept open and the statement prepared once per
//! connection. The ceiling the component's numbers are measured against.
//!
//! Usage: postgres-native <listen address> <database url> [connections=4]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use tokio_postgres::{Client, NoTls, Statement};

struct Pool {
    connections: Vec<(Client, Statement)>,
    next: AtomicUsize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(url)) = (args.next(), args.next()) else {
        return Err("usage: postgres-native <listen address> <database url> [connections]".into());
    };
    let size: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(4);
    let mut connections = Vec::with_capacity(size);
    for _ in 0..size {
        let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
        tokio::spawn(connection);
        let statement = client
            .prepare("SELECT id, title, done FROM todos WHERE id = $1")
            .await?;
        connections.push((client, statement));
    }
    let pool = Arc::new(Pool {
        connections,
        next: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let pool = pool.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let pool = pool.clone();
                async move { Ok::<_, Infallible>(serve(&pool, request).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn serve(pool: &Pool, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    let Some(Ok(id)) = request
        .uri()
        .path()
        .strip_prefix("/todos/")
        .map(str::parse::<i64>)
    else {
        return reply(StatusCode::NOT_FOUND, "try /todos/<id>".into());
    };
    let n = pool.next.fetch_add(1, Ordering::Relaxed) % pool.connections.len();
    let (client, statement) = &pool.connections[n];
    match client.query_opt(statement, &[&id]).await {
        Ok(Some(row)) => {
            let (id, title, done): (i64, String, bool) = (row.get(0), row.get(1), row.get(2));
            let body = serde_json::json!({ "id": id, "title": title, "done": done });
            reply(StatusCode::OK, body.to_string())
        }
        Ok(None) => reply(StatusCode::NOT_FOUND, format!("no todo {id}")),
        Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
