//! Shared test harness: fixture components, hosts on loopback, an HTTP client.
#![allow(dead_code, reason = "each test binary uses a different subset")]

#[allow(unused_imports, reason = "not every test binary starts servers")]
pub use test_support::servers;
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub use test_support::{fixture, fixtures_dir, http_workload, interface};
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wash_runtime::engine::{Engine, EngineBuilder};
use wash_runtime::host::http::{HttpServerBuilder, Router};
use wash_runtime::host::{Host, HostBuilder};

/// A small engine: tests run many hosts at once, so keep each pool modest.
pub fn engine() -> Engine {
    EngineBuilder::new()
        .with_max_instances(64)
        .build()
        .expect("engine")
}

/// A host serving HTTP on a free loopback port.
pub async fn host(router: Arc<dyn Router>, timeout: Duration) -> Host {
    HostBuilder::new()
        .with_engine(engine())
        .with_request_timeout(timeout)
        .with_http(HttpServerBuilder::new("127.0.0.1:0".parse().unwrap()).router(router))
        .start()
        .await
        .expect("host starts")
}

/// A host serving HTTP with the given plugins and a [`DynamicRouter`].
pub async fn plugin_host(plugins: Vec<wash_runtime::plugin::Plugin>) -> Host {
    let mut builder = HostBuilder::new()
        .with_engine(engine())
        .with_request_timeout(Duration::from_secs(20))
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(wash_runtime::host::http::DynamicRouter::new())),
        );
    for plugin in plugins {
        builder = builder.with_plugin(plugin).expect("unique plugin ids");
    }
    builder.start().await.expect("host starts")
}

/// Sends `method` with `body` to `path` on the workload routed at `host`.
pub async fn send(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    body: impl Into<Bytes>,
) -> (u16, String) {
    let client: Client<HttpConnector, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(http::header::HOST, host)
        .body(http_body_util::Full::new(body.into()))
        .unwrap();
    let response = client.request(request).await.expect("request sent");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// An HTTP/1.1 client with keep-alive.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// GET `path` from `addr` with the given `Host` header; status and body.
pub async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> (u16, String) {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .header(http::header::HOST, host)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.expect("request sent");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Captured log output, for asserting what the host logged.
pub mod logs {
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    static BUFFER: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();

    struct Sink;

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(buffer) = BUFFER.get() {
                buffer.lock().unwrap().extend_from_slice(buf);
            }
            std::io::stderr().write_all(buf)?;
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Installs the capturing subscriber at `info` (once per test binary).
    pub fn capture() {
        capture_at("info");
    }

    /// Installs the capturing subscriber with `filter` (the first call in a
    /// test binary wins).
    pub fn capture_at(filter: &str) {
        BUFFER.get_or_init(|| Box::leak(Box::new(Mutex::new(Vec::new()))));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| Sink)
            .try_init();
    }

    /// Everything captured so far.
    pub fn all() -> String {
        let buffer = BUFFER.get().expect("logs::capture() first").lock().unwrap();
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Every captured line containing all of `needles`.
    pub fn lines_with(needles: &[&str]) -> Vec<String> {
        let buffer = BUFFER.get().expect("logs::capture() first").lock().unwrap();
        String::from_utf8_lossy(&buffer)
            .lines()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .map(str::to_string)
            .collect()
    }
}

/// Holds every workload that names `example:gate` in its bind until the
/// test lets it through (one permit per workload).
pub struct Gate(pub Arc<tokio::sync::Semaphore>);

impl wash_runtime::plugin::HostPlugin for Gate {
    type WorkloadState = ();

    fn id(&self) -> &str {
        "gate"
    }

    fn world(&self) -> Vec<wash_runtime::plugin::ProvidedInterface> {
        vec![wash_runtime::plugin::ProvidedInterface::new(
            "example",
            "gate",
            "0.1.0",
            &["gate"],
        )]
    }

    fn on_workload_bind<'a>(
        &'a self,
        _workload: &'a wash_runtime::plugin::WorkloadBind<'a>,
    ) -> wash_runtime::plugin::PluginFuture<'a, ()> {
        Box::pin(async move {
            let _pass = self.0.acquire().await;
            Ok(())
        })
    }

    fn on_workload_item_bind(
        &self,
        _: &(),
        _item: &mut wash_runtime::plugin::ItemBind<'_>,
    ) -> Result<(), wash_runtime::plugin::PluginError> {
        Ok(())
    }
}
