//! http-postgres-p3: a JSON API over one Postgres table, spoken with
//! tokio-postgres (prepared statements) over a WASI P3 TCP socket, with TLS
//! through `wasi:tls` when the URL says `sslmode=require`.
//!
//! `POST /todos {"title": ...}`, `GET /todos`, `GET /todos/<id>`,
//! `DELETE /todos/<id>`. Settings: `database_url` in `wasi:config`
//! (`postgres://user@db.example.com:5432/app?sslmode=require`), the
//! password in the `database_password` secret.

mod db;
mod stream;
#[cfg(feature = "tls")]
mod tls;

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "todos", generate_all });
}

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use wasip3::http::types::{ErrorCode, Request, Response};

wasip3::http::service::export!(Todos);

#[derive(Serialize)]
struct Todo {
    id: i64,
    title: String,
    done: bool,
}

#[derive(Deserialize)]
struct NewTodo {
    title: String,
}

/// A response: status and JSON body.
type Reply = (u16, String);

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn error(status: u16, message: &str) -> Reply {
    (status, json(&serde_json::json!({ "error": message })))
}

fn todo(row: &tokio_postgres::Row) -> Todo {
    Todo {
        id: row.get(0),
        title: row.get(1),
        done: row.get(2),
    }
}

/// Serves one request on `db`; `Err` only for database failures.
async fn route(
    db: &db::Db,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Reply, tokio_postgres::Error> {
    let path = path.trim_end_matches('/');
    let id = path.strip_prefix("/todos/").map(|id| id.parse::<i64>());
    Ok(match (method, path, id) {
        ("POST", "/todos", _) => {
            let Ok(new) = serde_json::from_slice::<NewTodo>(body) else {
                return Ok(error(400, "expected {\"title\": \"...\"}"));
            };
            let insert = db
                .prepared("INSERT INTO todos (title) VALUES ($1) RETURNING id, title, done")
                .await?;
            let row = db.client.query_one(&insert, &[&new.title]).await?;
            (201, json(&todo(&row)))
        }
        ("GET", "/todos", _) => {
            let list = db
                .prepared("SELECT id, title, done FROM todos ORDER BY id")
                .await?;
            let rows = db.client.query(&list, &[]).await?;
            (200, json(&rows.iter().map(todo).collect::<Vec<_>>()))
        }
        ("GET", _, Some(Ok(id))) => {
            let read = db
                .prepared("SELECT id, title, done FROM todos WHERE id = $1")
                .await?;
            match db.client.query_opt(&read, &[&id]).await? {
                Some(row) => (200, json(&todo(&row))),
                None => error(404, &format!("no todo {id}")),
            }
        }
        ("DELETE", _, Some(Ok(id))) => {
            let delete = db.prepared("DELETE FROM todos WHERE id = $1").await?;
            match db.client.execute(&delete, &[&id]).await? {
                0 => error(404, &format!("no todo {id}")),
                _ => (204, String::new()),
            }
        }
        (_, _, Some(Err(_))) => error(400, "the id must be a number"),
        _ => error(404, "try /todos"),
    })
}

/// Whether `e`, on a kept connection, means the connection itself died
/// (the server restarted, or closed it idle) rather than the statement
/// failing: then one retry on a new connection is safe.
fn connection_lost(e: &tokio_postgres::Error, client: &Client) -> bool {
    e.is_closed()
        || client.is_closed()
        || e.as_db_error().is_some_and(|db| {
            // 57: operator intervention (shutdown); 08: connection exception.
            let code = db.code().code();
            code.starts_with("57") || code.starts_with("08")
        })
}

struct Todos;

impl wasip3::exports::http::handler::Guest for Todos {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let request = wasip3::http_compat::http_from_wasi_request(request)?;
        let (parts, body) = request.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let (method, path) = (parts.method.as_str(), parts.uri.path());
        let mut attempt = db::connection().await;
        let (status, body, pid) = loop {
            let (db, reused) = match attempt {
                Ok(found) => found,
                Err(e) => {
                    let (status, body) = error(503, &format!("database unavailable: {e}"));
                    break (status, body, None);
                }
            };
            match route(&db, method, path, &body).await {
                Ok((status, body)) => break (status, body, Some(db.backend_pid.clone())),
                Err(e) if reused && connection_lost(&e, &db.client) => {
                    db::forget();
                    attempt = db::connection().await;
                }
                Err(e) => {
                    if db.client.is_closed() {
                        db::forget();
                    }
                    let (status, body) =
                        error(503, &format!("database error: {}", db::describe(&e)));
                    break (status, body, None);
                }
            }
        };
        let mut response = http::Response::builder()
            .status(status)
            .header("content-type", "application/json");
        if let Some(pid) = pid {
            response = response.header("x-postgres-backend-pid", pid);
        }
        let response = response
            .body(body)
            .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?;
        wasip3::http_compat::http_into_wasi_response(response)
    }
}
