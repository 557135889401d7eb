//! One incoming request: route it, hand it to the workload's component, and
//! turn guest failures into the right status with one log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError, TrapOrPanicError};

use super::router::{Router, strip_port};
use crate::engine::describe_error;
use crate::engine::limits::{DeadlineExceeded, MemoryLimitExceeded};
use crate::host::Registry;

/// Per-server request entry point.
pub(crate) struct Ingress {
    pub(crate) router: Arc<dyn Router>,
    pub(crate) registry: Arc<Registry>,
}

impl Ingress {
    pub(crate) async fn handle(
        &self,
        mut request: Request<Incoming>,
        local_authority: &HeaderValue,
    ) -> Response<WasiBody> {
        let host = request_host(&request).to_string();
        let Some(workload_id) = self.router.route(&host, request.uri().path()) else {
            return plain(
                StatusCode::NOT_FOUND,
                format!("no workload is routed for host `{host}`\n"),
            );
        };
        let Some(workload) = self.registry.running(&workload_id) else {
            return plain(
                StatusCode::NOT_FOUND,
                format!("workload `{workload_id}` is not running\n"),
            );
        };
        let Some(component) = workload.http_component() else {
            return plain(
                StatusCode::NOT_FOUND,
                format!("workload `{workload_id}` serves no HTTP\n"),
            );
        };
        // wasi:http needs an authority; HTTP/1.0 clients may send none.
        if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, local_authority.clone());
        }
        let request = request.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
        let started = Instant::now();
        let http = component.http.as_ref();
        let Some(http) = http else {
            return plain(StatusCode::NOT_FOUND, "no HTTP handler\n".into());
        };
        match http.handler.handle((), request).await {
            Ok(response) => response,
            Err(error) => {
                let instances = http.handler.state();
                let labels = instances.labels();
                let failure = classify(&error, started.elapsed(), instances.request_timeout());
                if let Some(line) = &failure.log {
                    tracing::warn!(
                        workload = %labels.workload_id,
                        component = %labels.component,
                        status = failure.status.as_u16(),
                        "request failed: {line}"
                    );
                }
                plain(failure.status, failure.body)
            }
        }
    }
}

/// The host a request was sent to, without port: the URI authority (HTTP/2
/// and absolute-form requests) or else the `Host` header.
fn request_host<B>(request: &Request<B>) -> &str {
    let authority = match request.uri().authority() {
        Some(authority) => authority.as_str(),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default(),
    };
    strip_port(authority)
}

/// How a failed request is answered and logged.
struct Failure {
    status: StatusCode,
    body: String,
    /// The log line, unless the failure was already logged elsewhere.
    log: Option<String>,
}

fn classify(error: &wasmtime::Error, elapsed: Duration, timeout: Duration) -> Failure {
    let deadline = || Failure {
        status: StatusCode::GATEWAY_TIMEOUT,
        body: format!("request deadline of {} exceeded\n", human(timeout)),
        log: Some(format!("request deadline of {} exceeded", human(timeout))),
    };
    if error.is::<ExpirationError>() || error.chain().any(|e| e.is::<DeadlineExceeded>()) {
        return deadline();
    }
    if error.is::<TrapOrPanicError>() {
        // The instance died under this request; its instance logged why.
        if elapsed >= timeout {
            return Failure { log: None, ..deadline() };
        }
        return Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: "the component failed while handling the request\n".into(),
            log: None,
        };
    }
    if let Some(instantiation) = error.downcast_ref::<InstantiationError<()>>() {
        let detail = describe_error(&instantiation.error);
        let exhausted = instantiation
            .error
            .chain()
            .any(|e| e.is::<wasmtime::PoolConcurrencyLimitError>());
        return Failure {
            status: if exhausted {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            },
            body: if exhausted {
                "the host is at its instance limit; try again\n".into()
            } else {
                "the component could not be instantiated\n".into()
            },
            log: Some(format!("cannot instantiate: {detail}")),
        };
    }
    let detail = describe_error(error);
    let body = if error.chain().any(|e| e.is::<MemoryLimitExceeded>()) {
        "the component exceeded its memory limit\n".to_string()
    } else if error.chain().any(|e| e.is::<wasmtime::Trap>()) {
        "the component trapped\n".to_string()
    } else {
        "the component failed to produce a response\n".to_string()
    };
    Failure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body,
        log: Some(detail),
    }
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A short plain-text response.
pub(crate) fn plain(status: StatusCode, body: String) -> Response<WasiBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
