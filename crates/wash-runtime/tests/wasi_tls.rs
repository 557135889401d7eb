//! `wasi:tls` for components (feature `wasi-tls`): a P3 guest opens a TCP
//! socket, runs a TLS handshake through the host's provider, sends a line and
//! reports the echo. Servers and certificates are made here, on loopback.
#![cfg(feature = "wasi-tls")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::upstream::{TestPki, echo_server};
use common::{client, fixture, get, http_workload, logs};
use wash_runtime::engine::EngineBuilder;
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};
use wash_runtime::tls::TrustRoots;
use wash_runtime::tls::wasi::{RustlsTlsProvider, TlsProvider};

async fn host_with(provider: Option<Arc<dyn TlsProvider>>) -> Host {
    logs::capture();
    let mut engine = EngineBuilder::new().with_max_instances(32);
    if let Some(provider) = provider {
        engine = engine.with_tls_provider(provider);
    }
    HostBuilder::new()
        .with_engine(engine.build().unwrap())
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new())),
        )
        .start()
        .await
        .unwrap()
}

fn trusting(pki: &TestPki) -> Arc<dyn TlsProvider> {
    Arc::new(
        RustlsTlsProvider::builder()
            .trust(TrustRoots::empty().with_ca_file(&pki.ca_file))
            .build()
            .unwrap(),
    )
}

/// Runs the tls-client fixture against `server`; the guest's answer.
async fn tls_echo(
    host: &Host,
    id: &str,
    server: SocketAddr,
    server_name: &str,
    loopback_ports: &[u16],
) -> String {
    let mut workload = http_workload(
        id,
        fixture("tls_client"),
        &[("host", &format!("{id}.test"))],
    );
    let resources = &mut workload.components[0].local_resources;
    resources
        .environment
        .insert("TLS_ADDR".into(), server.to_string());
    resources
        .environment
        .insert("TLS_SERVER_NAME".into(), server_name.into());
    resources.allowed_host_loopback_ports = loopback_ports.iter().map(u16::to_string).collect();
    host.workload_start(id, workload).await.unwrap();
    let (status, body) = get(
        &client(),
        host.http_addr().unwrap(),
        &format!("{id}.test"),
        "/",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_echo_with_a_custom_ca_provider() {
    let pki = TestPki::new();
    let (server, seen) = echo_server(Some(pki.acceptor(&[]))).await;
    let host = host_with(Some(trusting(&pki))).await;
    let body = tls_echo(&host, "ok", server, "localhost", &[server.port()]).await;
    assert_eq!(body, "echo: hello over wasi:tls\n");
    assert_eq!(seen.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_host_name_is_rejected() {
    let pki = TestPki::new();
    let (server, _) = echo_server(Some(pki.acceptor(&[]))).await;
    let host = host_with(Some(trusting(&pki))).await;
    let body = tls_echo(&host, "name", server, "wrong.example", &[server.port()]).await;
    assert!(body.starts_with("error: handshake: "), "{body}");
    assert!(
        body.contains("not valid for name \"wrong.example\""),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_ca_is_rejected_by_the_default_provider() {
    let pki = TestPki::new();
    let (server, _) = echo_server(Some(pki.acceptor(&[]))).await;
    // No custom provider: rustls on aws-lc-rs with webpki roots.
    let host = host_with(None).await;
    let body = tls_echo(&host, "ca", server, "localhost", &[server.port()]).await;
    assert!(body.contains("UnknownIssuer"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_pins_are_enforced() {
    let pki = TestPki::new();
    let (server, _) = echo_server(Some(pki.acceptor(&[]))).await;
    let pinned = |digest: [u8; 32]| -> Arc<dyn TlsProvider> {
        Arc::new(
            RustlsTlsProvider::builder()
                .trust(TrustRoots::empty().with_ca_file(&pki.ca_file))
                .pin_sha256(digest)
                .build()
                .unwrap(),
        )
    };
    let host = host_with(Some(pinned([7u8; 32]))).await;
    let body = tls_echo(&host, "pin-miss", server, "localhost", &[server.port()]).await;
    assert!(body.starts_with("error: handshake: "), "{body}");
    assert!(body.contains("ApplicationVerificationFailure"), "{body}");

    let host = host_with(Some(pinned(pki.server_cert_sha256()))).await;
    let body = tls_echo(&host, "pin-hit", server, "localhost", &[server.port()]).await;
    assert_eq!(body, "echo: hello over wasi:tls\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_server_gives_a_clean_error_not_a_hang() {
    let pki = TestPki::new();
    // An echo server without TLS: it sends our ClientHello straight back.
    let (server, _) = echo_server(None).await;
    let host = host_with(Some(trusting(&pki))).await;
    let started = Instant::now();
    let body = tls_echo(&host, "plain", server, "localhost", &[server.port()]).await;
    assert!(body.starts_with("error: handshake: "), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_egress_to_a_port_not_allowed_is_refused() {
    let pki = TestPki::new();
    let (server, seen) = echo_server(Some(pki.acceptor(&[]))).await;
    let host = host_with(Some(trusting(&pki))).await;
    // Loopback allowed only on another port.
    let body = tls_echo(
        &host,
        "denied",
        server,
        "localhost",
        &[server.port().wrapping_add(1)],
    )
    .await;
    assert!(body.starts_with("error: connect: "), "{body}");
    assert!(body.contains("AccessDenied"), "{body}");
    assert_eq!(seen.connections(), 0, "the server never saw a connection");
    let lines = logs::lines_with(&["workload=denied", "socket use denied"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
}
