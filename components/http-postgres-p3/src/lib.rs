//! http-postgres-p3 (work in progress, issue 17): a JSON API over one
//! Postgres table, spoken with tokio-postgres over a WASI P3 TCP socket.
//!
//! `POST /todos {"title": ...}`, `GET /todos`, `GET /todos/<id>`,
//! `DELETE /todos/<id>`. `DATABASE_URL` (for now from the environment):
//! `postgres://user@127.0.0.1:5432/db`.

mod stream;

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

fn reply(status: u16, body: String) -> Result<Response, ErrorCode> {
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| ErrorCode::InternalError(Some(e.to_string())))?;
    wasip3::http_compat::http_into_wasi_response(response)
}

fn error(status: u16, message: &str) -> Result<Response, ErrorCode> {
    reply(status, serde_json::json!({ "error": message }).to_string())
}

/// Connects to the database named by `DATABASE_URL`.
async fn client() -> Result<Client, String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_string())?;
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("DATABASE_URL: {e}"))?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => return Err("DATABASE_URL names no TCP host".into()),
    };
    let address: std::net::Ipv4Addr = host
        .parse()
        .map_err(|_| format!("host `{host}` must be an IPv4 address for now"))?;
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let [a, b, c, d] = address.octets();
    let socket = stream::connect((a, b, c, d), port).await?;
    let (client, connection) = config
        .connect_raw(socket, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    wasip3::spawn_local(async move {
        let _ = connection.await;
    });
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS todos (id BIGSERIAL PRIMARY KEY, title TEXT NOT NULL, \
             done BOOLEAN NOT NULL DEFAULT false)",
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(client)
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
        let client = match client().await {
            Ok(client) => client,
            Err(e) => return error(503, &format!("database unavailable: {e}")),
        };
        let path = parts.uri.path().trim_end_matches('/');
        let id = path.strip_prefix("/todos/").map(|id| id.parse::<i64>());
        match (parts.method.as_str(), path, id) {
            ("POST", "/todos", _) => {
                let Ok(new) = serde_json::from_slice::<NewTodo>(&body) else {
                    return error(400, "expected {\"title\": \"...\"}");
                };
                let statement = "INSERT INTO todos (title) VALUES ($1) RETURNING id, title, done";
                match client.query_one(statement, &[&new.title]).await {
                    Ok(row) => reply(201, json(&todo(&row))),
                    Err(e) => error(503, &e.to_string()),
                }
            }
            ("GET", "/todos", _) => {
                match client
                    .query("SELECT id, title, done FROM todos ORDER BY id", &[])
                    .await
                {
                    Ok(rows) => reply(200, json(&rows.iter().map(todo).collect::<Vec<_>>())),
                    Err(e) => error(503, &e.to_string()),
                }
            }
            ("GET", _, Some(Ok(id))) => {
                match client
                    .query_opt("SELECT id, title, done FROM todos WHERE id = $1", &[&id])
                    .await
                {
                    Ok(Some(row)) => reply(200, json(&todo(&row))),
                    Ok(None) => error(404, &format!("no todo {id}")),
                    Err(e) => error(503, &e.to_string()),
                }
            }
            ("DELETE", _, Some(Ok(id))) => {
                match client
                    .execute("DELETE FROM todos WHERE id = $1", &[&id])
                    .await
                {
                    Ok(0) => error(404, &format!("no todo {id}")),
                    Ok(_) => reply(204, String::new()),
                    Err(e) => error(503, &e.to_string()),
                }
            }
            (_, _, Some(Err(_))) => error(400, "the id must be a number"),
            _ => error(404, "try /todos"),
        }
    }
}

fn todo(row: &tokio_postgres::Row) -> Todo {
    Todo {
        id: row.get(0),
        title: row.get(1),
        done: row.get(2),
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
