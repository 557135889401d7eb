//! OpenTelemetry end to end: `wash dev` exports OTLP (HTTP/protobuf and
//! gRPC) to a receiver in the test built on the `opentelemetry-proto`
//! types. A request that arrives with a `traceparent` continues that
//! trace through the server span, the guest's run and the guest's
//! outbound request, whose upstream sees the `traceparent` too; the
//! guest's log lines carry the ids.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Running, fixture, url_in, wash};
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the receiver got.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    metrics: Vec<String>,
}

impl Received {
    fn traces(&mut self, export: ExportTraceServiceRequest) {
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                self.spans.extend(scope.spans);
            }
        }
    }

    fn has_metric(&self, name: &str) -> bool {
        self.metrics.iter().any(|m| m == name)
    }

    fn metrics(&mut self, export: ExportMetricsServiceRequest) {
        for resource in export.resource_metrics {
            for scope in resource.scope_metrics {
                self.metrics
                    .extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
    }
}

/// An OTLP/HTTP (protobuf) receiver on a free port.
async fn receiver() -> (u16, Arc<Mutex<Received>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Received::default()));
    let sink = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sink = sink.clone();
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let sink = sink.clone();
                    async move {
                        let path = request.uri().path().to_string();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let reply = match path.as_str() {
                            "/v1/traces" => {
                                let export = ExportTraceServiceRequest::decode(body).unwrap();
                                sink.lock().unwrap().traces(export);
                                ExportTraceServiceResponse::default().encode_to_vec()
                            }
                            "/v1/metrics" => {
                                let export = ExportMetricsServiceRequest::decode(body).unwrap();
                                sink.lock().unwrap().metrics(export);
                                ExportMetricsServiceResponse::default().encode_to_vec()
                            }
                            _ => Vec::new(),
                        };
                        let mut response = http::Response::new(Full::new(Bytes::from(reply)));
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (port, received)
}

/// An upstream that answers `ok` and keeps each request's `traceparent`.
async fn upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let parent = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("traceparent:")
                            .map(|v| v.trim().to_string())
                    })
                    .unwrap_or_default();
                sink.lock().unwrap().push(parent);
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (port, seen)
}

/// The same receiver over OTLP/gRPC (the generated tonic services, served
/// by hyper over h2c).
async fn grpc_receiver() -> (u16, Arc<Mutex<Received>>) {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
        MetricsService, MetricsServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };

    struct Sink(Arc<Mutex<Received>>);

    #[tonic::async_trait]
    impl TraceService for Sink {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.0.lock().unwrap().traces(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    #[tonic::async_trait]
    impl MetricsService for Sink {
        async fn export(
            &self,
            request: tonic::Request<ExportMetricsServiceRequest>,
        ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
            self.0.lock().unwrap().metrics(request.into_inner());
            Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Received::default()));
    let traces = TraceServiceServer::new(Sink(received.clone()));
    let metrics = MetricsServiceServer::new(Sink(received.clone()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (traces, metrics) = (traces.clone(), metrics.clone());
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let (mut traces, mut metrics) = (traces.clone(), metrics.clone());
                    async move {
                        use tower_service::Service as _;
                        if request.uri().path().contains("MetricsService") {
                            metrics.call(request).await
                        } else {
                            traces.call(request).await
                        }
                    }
                });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (port, received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// GET `url` with a `traceparent`; the status.
async fn get_traced(url: &str, traceparent: &str) -> u16 {
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::get(url)
        .header("traceparent", traceparent)
        .body(http_body_util::Empty::new())
        .unwrap();
    let response = client.request(request).await.expect("request");
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_crosses_the_component_and_its_logs() {
    let (port, received) = receiver().await;
    let (up, seen) = upstream().await;
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .args(["--env", &format!("URL=http://localhost:{up}/")])
        .args(["--allow-host", &format!("localhost:{up}")])
        .args(["--allow-loopback-port", &up.to_string()])
        .args(["--otel-endpoint", &format!("http://127.0.0.1:{port}")])
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
        .arg(fixture("http_chatty"));
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", Duration::from_secs(120)).await);
    let traceparent = format!("00-{TRACE}-{PARENT}-01");

    assert_eq!(
        get_traced(&format!("{url}fetch?1"), &traceparent).await,
        200
    );
    until("the three spans", || {
        let received = received.lock().unwrap();
        received
            .spans
            .iter()
            .filter(|s| hex(&s.trace_id) == TRACE)
            .count()
            >= 3
    })
    .await;
    let spans: Vec<Span> = received
        .lock()
        .unwrap()
        .spans
        .iter()
        .filter(|s| hex(&s.trace_id) == TRACE)
        .cloned()
        .collect();
    let find = |kind: i32| {
        spans
            .iter()
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("no span of kind {kind} in {spans:#?}"))
    };
    // SpanKind: 1 internal, 2 server, 3 client.
    let (server, guest, client) = (find(2), find(1), find(3));
    assert_eq!(
        hex(&server.parent_span_id),
        PARENT,
        "continues the caller's trace"
    );
    assert_eq!(guest.parent_span_id, server.span_id);
    assert_eq!(client.parent_span_id, guest.span_id);
    assert_eq!(server.name, "GET /fetch");
    let attribute = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default()
    };
    assert!(attribute(server, "http.response.status_code").contains("200"));
    assert!(attribute(server, "component").contains("http_chatty"));
    // The upstream saw the client span as the parent.
    let expected = format!("00-{TRACE}-{}-01", hex(&client.span_id));
    until("the upstream's request", || {
        !seen.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(seen.lock().unwrap()[0], expected);

    // The guest's stderr, under the trace.
    assert_eq!(
        get_traced(&format!("{url}print?1"), &traceparent).await,
        200
    );
    let line = dev
        .wait_for_stderr("trace_id", Duration::from_secs(10))
        .await;
    assert!(line.contains(TRACE), "{line}");

    // Metrics reach the receiver too.
    until("the duration metric", || {
        received
            .lock()
            .unwrap()
            .has_metric("http.server.request.duration")
    })
    .await;
    assert!(dev.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_reaches_a_grpc_collector() {
    let (port, received) = grpc_receiver().await;
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "300")
        .arg(fixture("http_hello_world"));
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", Duration::from_secs(120)).await);
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    assert_eq!(get_traced(&url, &traceparent).await, 200);
    until("the server span over gRPC", || {
        received
            .lock()
            .unwrap()
            .spans
            .iter()
            .any(|s| hex(&s.trace_id) == TRACE && s.kind == 2 && hex(&s.parent_span_id) == PARENT)
    })
    .await;
    until("the duration metric over gRPC", || {
        received
            .lock()
            .unwrap()
            .has_metric("http.server.request.duration")
    })
    .await;
    assert!(dev.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_logging_lines_carry_the_trace() {
    let (port, _received) = receiver().await;
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .args(["--otel-endpoint", &format!("http://127.0.0.1:{port}")])
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .arg(fixture("plugin_probe"));
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", Duration::from_secs(120)).await);
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(format!("{url}log/info"))
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .body(Full::new(Bytes::from("logged under the trace")))
        .unwrap();
    let response = client.request(request).await.expect("request");
    assert_eq!(response.status().as_u16(), 200);
    let line = dev
        .wait_for_stderr("logged under the trace", Duration::from_secs(10))
        .await;
    assert!(line.contains(&format!("trace_id={TRACE}")), "{line}");
    assert!(line.contains("span_id="), "{line}");
    assert!(dev.terminate().await);
}
