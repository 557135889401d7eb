//! `wash host` processes for control-plane tests, and HTTP to them.

use std::time::Duration;

use super::servers::{Registry, free_port};
use super::{Running, fixture, run, wash};

const STARTUP: Duration = Duration::from_secs(60);

/// A `wash host` process.
pub struct HostProc {
    pub id: String,
    pub ip: String,
    pub http: u16,
    pub process: Running,
    pub _cache: tempfile::TempDir,
}

/// Starts `wash host` as `id` on `nats`, trusting `registry` over plain
/// HTTP, heartbeating every 500 ms; `extra` arguments are appended.
pub fn start_host(id: &str, nats: &str, registry: &str, extra: &[&str]) -> HostProc {
    start_host_on(id, "127.0.0.1", free_port(), nats, registry, extra)
}

/// As [`start_host`], serving HTTP on `ip:http` (any 127.0.0.0/8 address
/// is loopback, so hosts can share one port as they would in a cluster).
pub fn start_host_on(
    id: &str,
    ip: &str,
    http: u16,
    nats: &str,
    registry: &str,
    extra: &[&str],
) -> HostProc {
    let cache = tempfile::tempdir().unwrap();
    let mut command = wash();
    command
        .args(["host", "--host-id", id, "--scheduler-nats-url", nats])
        .args(["--http-addr", &format!("{ip}:{http}")])
        .args(["--allow-insecure-registries", registry])
        .args(["--heartbeat-interval", "500ms"])
        .arg("--oci-cache-dir")
        .arg(cache.path())
        .args(extra);
    HostProc {
        id: id.to_string(),
        ip: ip.to_string(),
        http,
        process: Running::spawn(command),
        _cache: cache,
    }
}

impl HostProc {
    pub async fn ready(&self) {
        self.process.wait_for("serving HTTP", STARTUP).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}:{}{path}", self.ip, self.http)
    }
}

/// GET with a Host header; (status, body), or (0, error) when no response.
pub async fn get_host(url: &str, host: &str) -> (u16, String) {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::get(url)
        .header(http::header::HOST, host)
        .body(http_body_util::Empty::new())
        .unwrap();
    match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            match http_body_util::BodyExt::collect(response.into_body()).await {
                Ok(body) => (
                    status,
                    String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                ),
                Err(e) => (0, format!("body: {e}")),
            }
        }
        Err(e) => (0, format!("{e:?}")),
    }
}

/// Pushes the hello component to `registry` as `hello:1`; its reference.
pub async fn push_hello(registry: &Registry) -> String {
    let image = format!("{}/hello:1", registry.address());
    let file = fixture("http_hello_world");
    let pushed = run(
        &["oci", "push", &image, file.to_str().unwrap(), "--insecure"],
        None,
    )
    .await;
    assert!(pushed.success, "{}", pushed.stderr);
    assert!(
        pushed
            .stdout
            .starts_with(&format!("Pushed {image} (sha256:")),
        "{}",
        pushed.stdout
    );
    image
}
