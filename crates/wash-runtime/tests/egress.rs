//! Outbound HTTP of guests (P2 and P3) against real upstreams on loopback:
//! TLS with certificates made in the test, policy, a custom handler,
//! HTTP/2, connection reuse and timeouts.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::upstream::{Behaviour, TestPki, black_hole, http_upstream};
use common::{client, fixture, get, http_workload, logs};
use wash_runtime::egress::{
    AddressPolicy, AllowedHosts, DefaultOutgoingHandler, OutgoingFuture, OutgoingHandler,
    OutgoingRequestContext,
};
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};
use wash_runtime::tls::TrustRoots;
use wasmtime_wasi_http::{RequestOptions, WasiBody};

/// The two client fixtures: P2 (wstd) and P3 (wasip3).
const CLIENTS: [&str; 2] = ["http_client", "http_client_p3"];

async fn host_with(outgoing: Arc<dyn OutgoingHandler>) -> Host {
    logs::capture();
    HostBuilder::new()
        .with_engine(common::engine())
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new()))
                .outgoing_handler(outgoing),
        )
        .start()
        .await
        .unwrap()
}

fn trusting(pki: &TestPki) -> Arc<DefaultOutgoingHandler> {
    Arc::new(
        DefaultOutgoingHandler::builder()
            .trust(TrustRoots::webpki().with_ca_file(&pki.ca_file))
            .build()
            .unwrap(),
    )
}

/// Starts `fixture` as workload `id` fetching `url`, allowed to reach
/// `allowed`, with extra environment; returns what a request to it answers.
async fn fetch_via(
    host: &Host,
    id: &str,
    fixture_name: &str,
    url: &str,
    allowed: &[String],
    loopback: &[u16],
    env: &[(&str, String)],
) -> (u16, String) {
    let mut workload = http_workload(
        id,
        fixture(fixture_name),
        &[("host", &format!("{id}.test"))],
    );
    let resources = &mut workload.components[0].local_resources;
    resources.environment.insert("URL".into(), url.into());
    for (k, v) in env {
        resources.environment.insert(k.to_string(), v.clone());
    }
    resources.allowed_hosts = allowed.to_vec();
    resources.allowed_host_loopback_ports = loopback.iter().map(u16::to_string).collect();
    host.workload_start(id, workload).await.unwrap();
    get(
        &client(),
        host.http_addr().unwrap(),
        &format!("{id}.test"),
        "/",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_test_ca_as_extra_root_works_for_p2_and_p3() {
    let pki = TestPki::new();
    let (upstream, seen) =
        http_upstream(Some(pki.acceptor(&[b"http/1.1"])), Behaviour::Hello).await;
    let host = host_with(trusting(&pki)).await;
    let url = format!("https://localhost:{}/", upstream.port());
    let allowed = vec![format!("localhost:{}", upstream.port())];
    for client_fixture in CLIENTS {
        let id = client_fixture.replace('_', "-");
        let (status, body) = fetch_via(
            &host,
            &id,
            client_fixture,
            &url,
            &allowed,
            &[upstream.port()],
            &[],
        )
        .await;
        assert_eq!(status, 200, "{client_fixture}: {body}");
        assert_eq!(
            body, "upstream 200\nhello from upstream HTTP/1.1",
            "{client_fixture}"
        );
    }
    assert_eq!(seen.requests.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_reaches_the_guest_as_a_certificate_error() {
    let pki = TestPki::new();
    let (upstream, _) = http_upstream(Some(pki.acceptor(&[b"http/1.1"])), Behaviour::Hello).await;
    // Default roots only: the test CA is unknown.
    let host = host_with(Arc::new(DefaultOutgoingHandler::builder().build().unwrap())).await;
    let url = format!("https://localhost:{}/", upstream.port());
    let allowed = vec![format!("localhost:{}", upstream.port())];
    for client_fixture in CLIENTS {
        let id = format!("{}-untrusted", client_fixture.replace('_', "-"));
        let (status, body) = fetch_via(
            &host,
            &id,
            client_fixture,
            &url,
            &allowed,
            &[upstream.port()],
            &[],
        )
        .await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body, "error: TlsCertificateError\n", "{client_fixture}");
    }
    let lines = logs::lines_with(&["outbound HTTP failed", "UnknownIssuer"]);
    assert!(!lines.is_empty(), "the host logs the certificate problem");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_outside_allowed_hosts_are_denied_without_connecting() {
    let (upstream, seen) = http_upstream(None, Behaviour::Hello).await;
    let host = host_with(Arc::new(DefaultOutgoingHandler::builder().build().unwrap())).await;
    let url = format!("http://127.0.0.1:{}/", upstream.port());
    for client_fixture in CLIENTS {
        let id = format!("{}-denied", client_fixture.replace('_', "-"));
        // Nothing allowed; then only another port of the same host.
        for allowed in [vec![], vec![format!("127.0.0.1:{}", upstream.port() + 1)]] {
            let (status, body) =
                fetch_via(&host, &id, client_fixture, &url, &allowed, &[], &[]).await;
            assert_eq!((status, body.as_str()), (502, "error: HttpRequestDenied\n"));
            host.workload_stop(&id).await;
        }
        let lines = logs::lines_with(&[&format!("workload={id}"), "outbound HTTP denied"]);
        assert_eq!(lines.len(), 2, "one line per denied request: {lines:#?}");
    }
    assert_eq!(seen.connections(), 0, "the upstream never saw a connection");
}

/// Adds a header and sends everything to one upstream, whatever the guest
/// asked for.
struct Reroute {
    to: SocketAddr,
    inner: DefaultOutgoingHandler,
}

impl OutgoingHandler for Reroute {
    fn handle(
        &self,
        context: &OutgoingRequestContext,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> OutgoingFuture {
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        *request.uri_mut() = format!("http://{}{path}", self.to).parse().unwrap();
        let headers = request.headers_mut();
        headers.insert("x-rerouted-for", context.component.parse().unwrap());
        headers.remove(http::header::HOST);
        // The handler picked the destination, so it says it may be reached.
        let mut context = context.clone();
        context.addresses = Arc::new(AddressPolicy::new(
            AllowedHosts::new(&[self.to.to_string()]),
            Vec::new(),
            false,
        ));
        self.inner.handle(&context, request, options)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_outgoing_handler_is_called_for_p2_and_p3() {
    let (upstream, seen) = http_upstream(None, Behaviour::Hello).await;
    let handler = Reroute {
        to: upstream,
        inner: DefaultOutgoingHandler::builder().build().unwrap(),
    };
    let host = host_with(Arc::new(handler)).await;
    let allowed = vec!["elsewhere.invalid".to_string()];
    for client_fixture in CLIENTS {
        let id = client_fixture.replace('_', "-");
        let (status, body) = fetch_via(
            &host,
            &id,
            client_fixture,
            "http://elsewhere.invalid/x",
            &allowed,
            &[],
            &[],
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, "upstream 200\nhello from upstream HTTP/1.1")
        );
        // The upstream saw the handler's header and the guest's own.
        assert_eq!(
            seen.last_header("x-rerouted-for").as_deref(),
            Some(id.as_str())
        );
        let sent_by = client_fixture.replace('_', "-");
        assert_eq!(
            seen.last_header("x-sent-by").as_deref(),
            Some(sent_by.as_str())
        );
    }
}

/// An allowed host name that resolves to loopback (or any private address:
/// DNS rebinding, cloud metadata) does not open it: the request is denied
/// without reaching the upstream, unless the port is one of the
/// component's loopback ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_name_resolving_to_loopback_is_denied() {
    let (upstream, seen) = http_upstream(None, Behaviour::Hello).await;
    let host = host_with(Arc::new(DefaultOutgoingHandler::builder().build().unwrap())).await;
    let url = format!("http://localhost:{}/", upstream.port());
    let allowed = vec![format!("localhost:{}", upstream.port())];
    for client_fixture in CLIENTS {
        let id = format!("{}-rebound", client_fixture.replace('_', "-"));
        let (status, body) = fetch_via(&host, &id, client_fixture, &url, &allowed, &[], &[]).await;
        assert_eq!((status, body.as_str()), (502, "error: HttpRequestDenied\n"));
        let lines = logs::lines_with(&[
            &format!("workload={id}"),
            "resolves only to addresses the component may not reach",
        ]);
        assert_eq!(lines.len(), 1, "{lines:#?}");
    }
    assert_eq!(seen.connections(), 0, "no connection was made");

    // With its port among the loopback ports, the same name works.
    let (status, body) = fetch_via(
        &host,
        "loopback-ok",
        "http_client",
        &url,
        &allowed,
        &[upstream.port()],
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_by_alpn() {
    let pki = TestPki::new();
    let (upstream, seen) =
        http_upstream(Some(pki.acceptor(&[b"h2", b"http/1.1"])), Behaviour::Hello).await;
    let host = host_with(trusting(&pki)).await;
    let url = format!("https://localhost:{}/", upstream.port());
    let allowed = vec![format!("localhost:{}", upstream.port())];
    let (status, body) = fetch_via(
        &host,
        "h2",
        "http_client",
        &url,
        &allowed,
        &[upstream.port()],
        &[],
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "upstream 200\nhello from upstream HTTP/2.0")
    );
    assert_eq!(
        seen.requests.lock().unwrap()[0].version,
        http::Version::HTTP_2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_requests_reuse_one_connection() {
    let (upstream, seen) = http_upstream(None, Behaviour::Hello).await;
    let host = host_with(Arc::new(DefaultOutgoingHandler::builder().build().unwrap())).await;
    let url = format!("http://127.0.0.1:{}/", upstream.port());
    let allowed = vec![format!("127.0.0.1:{}", upstream.port())];
    let (status, body) = fetch_via(&host, "reuse", "http_client", &url, &allowed, &[], &[]).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..9 {
        let (status, body) = get(&client(), host.http_addr().unwrap(), "reuse.test", "/").await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(seen.requests.lock().unwrap().len(), 10);
    assert_eq!(seen.connections(), 1, "ten requests, one pooled connection");

    // Stopping the workload releases its pool: a new one connects afresh.
    host.workload_stop("reuse").await;
    let (status, body) = fetch_via(&host, "reuse", "http_client", &url, &allowed, &[], &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen.connections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_map_to_wasi_http_error_codes() {
    let host = host_with(Arc::new(DefaultOutgoingHandler::builder().build().unwrap())).await;
    let short = |name: &'static str| (name, "300".to_string());

    // Connect: a listener whose accept queue is full never completes it.
    let (hole, _listener, _held) = black_hole();
    let url = format!("http://127.0.0.1:{}/", hole.port());
    let allowed = vec![format!("127.0.0.1:{}", hole.port())];
    let env = [short("CONNECT_TIMEOUT_MS")];
    let (status, body) =
        fetch_via(&host, "t-connect", "http_client", &url, &allowed, &[], &env).await;
    assert_eq!((status, body.as_str()), (502, "error: ConnectionTimeout\n"));

    // First byte: the upstream takes 3 s to answer.
    let (slow, _) = http_upstream(None, Behaviour::SlowHeaders(Duration::from_secs(3))).await;
    let url = format!("http://127.0.0.1:{}/", slow.port());
    let allowed = vec![format!("127.0.0.1:{}", slow.port())];
    let env = [short("FIRST_BYTE_TIMEOUT_MS")];
    let (status, body) =
        fetch_via(&host, "t-first", "http_client", &url, &allowed, &[], &env).await;
    assert_eq!(
        (status, body.as_str()),
        (502, "error: ConnectionReadTimeout\n")
    );

    // Between bytes: one chunk, then a 3 s pause.
    let (stall, _) = http_upstream(None, Behaviour::StallBody(Duration::from_secs(3))).await;
    let url = format!("http://127.0.0.1:{}/", stall.port());
    let allowed = vec![format!("127.0.0.1:{}", stall.port())];
    let env = [short("BETWEEN_BYTES_TIMEOUT_MS")];
    let (status, body) =
        fetch_via(&host, "t-between", "http_client", &url, &allowed, &[], &env).await;
    assert_eq!(status, 502, "{body}");
    // The guest hits it while reading the body, after the headers came.
    assert!(
        body == "error: ConnectionReadTimeout\n" || body.ends_with("connection read timeout\n"),
        "{body}"
    );
}
