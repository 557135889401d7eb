//! Traces across a component: a server span per inbound request (its W3C
//! `traceparent` continued), a child span for the guest's run, and a
//! client span per outbound request with `traceparent` injected, so a
//! trace crosses the component. Guest log lines carry the ids.
//!
//! The runtime only makes `tracing` spans; the embedder installs the
//! OpenTelemetry layer and exporter and then calls [`enable`]. Until then
//! the request path pays one relaxed atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns spans on: call it once the OpenTelemetry layer is installed in
/// the `tracing` subscriber.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are made.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

struct ReadHeaders<'a>(&'a http::HeaderMap);

impl Extractor for ReadHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct WriteHeaders<'a>(&'a mut http::HeaderMap);

impl Injector for WriteHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The spans of one inbound request: the server span, and the guest's run
/// inside it.
#[derive(Debug, Clone)]
pub(crate) struct RequestSpans {
    pub(crate) server: Span,
    pub(crate) guest: Span,
}

impl RequestSpans {
    /// Spans for a request to `workload`/`component`, continuing the trace
    /// its headers carry; `None` while telemetry is off.
    pub(crate) fn start<B>(
        request: &http::Request<B>,
        workload: &str,
        component: &str,
    ) -> Option<Self> {
        if !enabled() {
            return None;
        }
        let method = request.method().as_str();
        let server = tracing::info_span!(
            target: "wash::http",
            "http.server.request",
            otel.name = %format!("{method} {}", request.uri().path()),
            otel.kind = "server",
            http.request.method = %method,
            url.path = %request.uri().path(),
            url.scheme = request.uri().scheme_str().unwrap_or("http"),
            network.protocol.version = ?request.version(),
            workload.id = %workload,
            component = %component,
            http.response.status_code = tracing::field::Empty,
        );
        let parent = TraceContextPropagator::new().extract(&ReadHeaders(request.headers()));
        if parent.span().span_context().is_valid() {
            // A broken parent would only lose the link, never the request.
            let _ = server.set_parent(parent);
        }
        let guest = tracing::info_span!(
            target: "wash::http",
            parent: &server,
            "guest",
            otel.name = %format!("run {component}"),
            otel.kind = "internal",
            workload.id = %workload,
            component = %component,
        );
        Some(Self { server, guest })
    }

    /// Records the response status on the server span.
    pub(crate) fn finish(&self, status: u16) {
        self.server.record("http.response.status_code", status);
    }
}

/// Trace and span ids of the request an instance serves, for its log
/// lines; shared by the store and the guest's output streams.
#[derive(Debug, Default)]
pub(crate) struct TraceSlot(Mutex<Option<Ids>>);

/// Hex trace and span ids.
#[derive(Debug, Clone)]
pub(crate) struct Ids {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
}

impl TraceSlot {
    /// The request now being served is in `span` (or in none).
    pub(crate) fn set(&self, span: Option<&Span>) {
        let ids = span.and_then(|span| {
            let context = span.context();
            let span_context = context.span().span_context().clone();
            span_context.is_valid().then(|| Ids {
                trace_id: span_context.trace_id().to_string(),
                span_id: span_context.span_id().to_string(),
            })
        });
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = ids;
    }

    /// The ids, if a traced request is being served.
    pub(crate) fn get(&self) -> Option<Ids> {
        if !enabled() {
            return None;
        }
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A client span for a guest's outbound request, its context injected
/// into the request's headers as `traceparent`.
pub(crate) fn client_span<B>(parent: &Span, request: &mut http::Request<B>) -> Span {
    let method = request.method().as_str().to_string();
    let host = request.uri().host().unwrap_or_default().to_string();
    let span = tracing::info_span!(
        target: "wash::http",
        parent: parent,
        "http.client.request",
        otel.name = %method,
        otel.kind = "client",
        http.request.method = %method,
        server.address = %host,
        url.full = %request.uri(),
        http.response.status_code = tracing::field::Empty,
    );
    let context = span.context();
    TraceContextPropagator::new()
        .inject_context(&context, &mut WriteHeaders(request.headers_mut()));
    span
}
