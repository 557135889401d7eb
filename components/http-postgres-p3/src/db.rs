//! The database connection: settings from `wasi:config` and
//! `wasmcloud:secrets`, the host name resolved through `wasi:sockets`, TLS
//! through `wasi:tls` when the URL asks for it, and one connection kept per
//! instance so that warm instances reuse it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, SimpleQueryMessage, Statement};
use wasip3::sockets::ip_name_lookup::resolve_addresses;
use wasip3::sockets::types::IpAddress;

use crate::bindings::wasi::config::store as config;
use crate::bindings::wasmcloud::secrets::{reveal, store as secrets};
use crate::stream;

/// The `wasi:config` key holding the connection URL.
pub const URL_KEY: &str = "database_url";
/// The `wasmcloud:secrets` name of the password (optional: without it the
/// URL's password, if any, is used).
pub const PASSWORD_SECRET: &str = "database_password";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS todos (id BIGSERIAL PRIMARY KEY, \
                      title TEXT NOT NULL, done BOOLEAN NOT NULL DEFAULT false)";

/// An open connection and the server process serving it.
pub struct Db {
    pub client: Client,
    /// `pg_backend_pid()`: which server session this is (reported in the
    /// `x-postgres-backend-pid` header, so reuse is visible).
    pub backend_pid: String,
    /// Statements prepared on this connection, so a warm instance parses
    /// each one once rather than per request.
    statements: RefCell<HashMap<&'static str, Statement>>,
}

impl Db {
    /// `sql`, prepared on this connection the first time it is asked for.
    pub async fn prepared(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let known = self.statements.borrow().get(sql).cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.borrow_mut().insert(sql, statement.clone());
        Ok(statement)
    }
}

thread_local! {
    /// The connection this instance keeps between requests. A fresh
    /// instance per request starts with none; a warm one finds the previous
    /// request's.
    static CACHED: RefCell<Option<Rc<Db>>> = const { RefCell::new(None) };
}

/// The instance's connection, opening one if it has none (or its last one
/// closed); `true` when it was reused.
pub async fn connection() -> Result<(Rc<Db>, bool), String> {
    let cached = CACHED.with_borrow(|c| c.clone());
    if let Some(db) = cached.filter(|db| !db.client.is_closed()) {
        return Ok((db, true));
    }
    let db = Rc::new(open().await?);
    CACHED.with_borrow_mut(|c| *c = Some(db.clone()));
    Ok((db, false))
}

/// `e` with its causes: tokio-postgres says "db error" and keeps the
/// server's message in the source.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// Drops the kept connection (it turned out to be dead).
pub fn forget() {
    CACHED.with_borrow_mut(|c| *c = None);
}

/// Reads the settings and connects.
async fn open() -> Result<Db, String> {
    let mut settings = settings()?;
    let host = match settings.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        _ => return Err(format!("`{URL_KEY}` names no TCP host")),
    };
    let port = settings.get_ports().first().copied().unwrap_or(5432);
    if let Some(password) = password()? {
        settings.password(password);
    }
    let socket = dial(&host, port).await?;
    let (client, backend_pid) = match settings.get_ssl_mode() {
        SslMode::Require => tls_handshake(&settings, socket, host).await?,
        _ => {
            let (client, connection) = settings
                .connect_raw(socket, tokio_postgres::NoTls)
                .await
                .map_err(|e| describe(&e))?;
            wasip3::spawn_local(async move {
                let _ = connection.await;
            });
            prepare(client).await?
        }
    };
    Ok(Db {
        client,
        backend_pid,
        statements: RefCell::default(),
    })
}

#[cfg(feature = "tls")]
async fn tls_handshake(
    settings: &Config,
    socket: stream::Duplex,
    host: String,
) -> Result<(Client, String), String> {
    let tls = crate::tls::WasiTls { server_name: host };
    let (client, connection) = settings
        .connect_raw(socket, tls)
        .await
        .map_err(|e| describe(&e))?;
    wasip3::spawn_local(async move {
        let _ = connection.await;
    });
    prepare(client).await
}

#[cfg(not(feature = "tls"))]
async fn tls_handshake(
    _: &Config,
    _: stream::Duplex,
    _: String,
) -> Result<(Client, String), String> {
    Err("sslmode=require needs TLS: build this component with `--features tls`".into())
}

/// Makes sure the table exists and learns the session's server pid, in one
/// round trip.
async fn prepare(client: Client) -> Result<(Client, String), String> {
    let replies = client
        .simple_query(&format!("{SCHEMA}; SELECT pg_backend_pid()::text"))
        .await
        .map_err(|e| describe(&e))?;
    let pid = replies
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default();
    Ok((client, pid))
}

/// The connection settings: `database_url` from `wasi:config`.
fn settings() -> Result<Config, String> {
    let url = match config::get(URL_KEY) {
        Ok(Some(url)) => url,
        Ok(None) => return Err(format!("no `{URL_KEY}` in the component's configuration")),
        Err(e) => return Err(format!("configuration: {e:?}")),
    };
    // The parse error would repeat the URL, password and all.
    url.parse()
        .map_err(|_| format!("`{URL_KEY}` is not a valid postgres:// URL or key=value string"))
}

/// The password from `wasmcloud:secrets`, if the workload has one.
fn password() -> Result<Option<String>, String> {
    match secrets::get(PASSWORD_SECRET) {
        Ok(secret) => match reveal::reveal(&secret) {
            secrets::SecretValue::String(password) => Ok(Some(password)),
            secrets::SecretValue::Bytes(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| format!("secret `{PASSWORD_SECRET}` is not UTF-8")),
        },
        Err(secrets::SecretsError::NotFound) => Ok(None),
        Err(e) => Err(format!("secret `{PASSWORD_SECRET}`: {e:?}")),
    }
}

/// Connects to `host:port`, resolving a name through `wasi:sockets` and
/// trying its addresses in the order the resolver prefers.
async fn dial(host: &str, port: u16) -> Result<stream::Duplex, String> {
    let addresses = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, d] = v4.octets();
            vec![IpAddress::Ipv4((a, b, c, d))]
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            vec![IpAddress::Ipv6((
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
            ))]
        }
        Err(_) => resolve_addresses(host.to_string())
            .await
            .map_err(|e| format!("cannot resolve `{host}`: {e:?}"))?,
    };
    let mut failures = Vec::new();
    for address in addresses {
        match stream::connect(address, port).await {
            Ok(socket) => return Ok(socket),
            Err(e) => failures.push(e),
        }
    }
    Err(failures.join("; "))
}
