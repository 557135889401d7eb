//! One incoming request: route it, hand it to the workload's component, and
//! turn guest failures into the right status with one log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError, TrapOrPanicError};

use tracing::Instrument as _;

use super::coalesce::coalesce;
use super::router::{Router, strip_port};
use crate::engine::failure::{FailureKind, GuestFailure};
use crate::host::lifecycle::RunningWorkload;
use crate::host::registry::Registry;
use crate::host::resolve::HttpComponent;
use crate::instance::pool::{
    ComponentInstances, InstanceEnd, InstanceWatch, Placement, RequestData, instance_watch,
};
use crate::telemetry::RequestSpans;

/// How long a failed request waits to learn how its instance ended. The
/// instance reports its end as soon as its store is dropped, which follows
/// the failure at once, so this is a bound for a worker that is slow to get
/// there (a busy machine), not a pause: no failure waits for it in the
/// normal course.
const INSTANCE_END_WAIT: Duration = Duration::from_secs(1);

/// How soon a client told that a workload is starting should try again.
const RETRY_AFTER_SECONDS: &str = "1";

/// Per-server request entry point.
pub(crate) struct Ingress {
    pub(crate) router: Arc<dyn Router>,
    pub(crate) registry: Arc<Registry>,
    /// How long a request for a workload that is still starting waits for
    /// it (then: 503 with `Retry-After`).
    pub(crate) start_wait: Duration,
}

impl Ingress {
    pub(crate) async fn handle(
        &self,
        mut request: Request<Incoming>,
        local_authority: &HeaderValue,
    ) -> Response<WasiBody> {
        if let Some(refused) = ambiguous(&request) {
            return refused;
        }
        // Routing borrows the request; only a miss allocates.
        let running = {
            let host = request_host(&request);
            self.router
                .route(host, request.uri().path())
                .and_then(|id| self.registry.running(&id))
        };
        let workload = match running {
            Some(workload) => workload,
            None => {
                let host = request_host(&request).to_string();
                match self.wait_for_start(&host, request.uri().path()).await {
                    Ok(workload) => workload,
                    Err(response) => return response,
                }
            }
        };
        let Some(http) = workload.http() else {
            return plain(
                StatusCode::NOT_FOUND,
                "the workload routed here serves no HTTP\n".into(),
            );
        };
        // wasi:http needs an authority; HTTP/1.0 clients may send none.
        if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, local_authority.clone());
        }
        let _serving = Held::new(&self.registry.in_flight);
        serve(http, request).await
    }

    /// A request nothing serves yet: if a workload that would serve it is
    /// starting, wait for it (up to `start_wait`); never answer "nothing is
    /// here" while something is on its way.
    async fn wait_for_start(
        &self,
        host: &str,
        path: &str,
    ) -> Result<Arc<RunningWorkload>, Response<WasiBody>> {
        let deadline = tokio::time::Instant::now() + self.start_wait;
        let _held = Held::new(&self.registry.held);
        loop {
            let changed = self.registry.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(workload) = self
                .router
                .route(host, path)
                .and_then(|id| self.registry.running(&id))
            {
                return Ok(workload);
            }
            let starting = match self
                .registry
                .starting(|spec| self.router.would_route(spec, host, path))
            {
                Some(name) => format!("workload `{name}`"),
                None if self.router.expects_workload(host, path) => "the workload".into(),
                None => {
                    return Err(plain(
                        StatusCode::NOT_FOUND,
                        format!("no workload is routed for host `{host}`\n"),
                    ));
                }
            };
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let mut response = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("{starting} is starting; try again in a moment\n"),
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
                return Err(response);
            }
        }
    }
}

/// Counts a request (in [`Registry::held`] or `in_flight`) while it lives.
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs a request on the component and counts it (status class, time to
/// the response head).
async fn serve(http: &HttpComponent, request: Request<Incoming>) -> Response<WasiBody> {
    let started = Instant::now();
    let labels = http.handler.state().labels();
    let response = match RequestSpans::start(&request, &labels.workload_id, &labels.component) {
        None => serve_on(http, request, None).await,
        Some(spans) => {
            let response = serve_on(http, request, Some(spans.guest.clone()))
                .instrument(spans.server.clone())
                .await;
            spans.finish(response.status().as_u16());
            response
        }
    };
    labels
        .metrics
        .request(response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

/// Runs a request on the component, and turns a failure into a response.
async fn serve_on(
    http: &HttpComponent,
    request: Request<Incoming>,
    trace: Option<tracing::Span>,
) -> Response<WasiBody> {
    let instances = http.handler.state();
    let (handler, placement, retry) = match &http.fresh {
        None => (&http.handler, None, None),
        Some(fresh) if instances.health().is_off() => (fresh, None, None),
        Some(_) => {
            // Until a reused instance has answered once, keep the head of
            // a bodiless request: should its reused instance fail it, a
            // fresh instance gets it again.
            let retry = (!instances.health().is_proven() && request.body().is_end_stream())
                .then(|| request_head(&request));
            (&http.handler, Some(Arc::new(Placement::default())), retry)
        }
    };
    let request = request.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
    let started = Instant::now();
    let (data, watch) = instance_watch(placement.clone(), trace.clone());
    let error = match handler.handle(data, request).await {
        Ok(response) => {
            if placement.as_ref().is_some_and(|p| p.reused()) {
                instances.health().prove();
                instances.labels().metrics.instance_reused();
            }
            return coalesce(response).await;
        }
        Err(error) => error,
    };
    // Never hand out an instance that failed a request again; an idle one
    // ends now, which also tells `classify` how it ended.
    if let Some(placement) = &placement {
        placement.retire();
    }
    let failure = classify(error, watch, started.elapsed(), instances.request_timeout()).await;
    // Only a reused instance that failed on its own terms (no response, the
    // instance otherwise fine) says something about reuse; one that died of
    // a trap or a limit, maybe another request's, says nothing.
    if let Some(placement) = &placement
        && placement.reused()
        && failure.kind == FailureKind::Other
        && let (Some(head), Some(fresh)) = (retry, &http.fresh)
    {
        return retry_fresh(fresh, head, failure, trace).await;
    }
    failed(instances, failure)
}

/// Serves a request that failed on a reused instance on a fresh one. If
/// that works, the component cannot take reuse: it is switched off.
async fn retry_fresh(
    fresh: &wasmtime_wasi_http::handler::ProxyHandler<ComponentInstances>,
    head: http::request::Parts,
    first: Failure,
    trace: Option<tracing::Span>,
) -> Response<WasiBody> {
    let instances = fresh.state();
    let body = Empty::new().map_err(|never| match never {}).boxed_unsync();
    let started = Instant::now();
    let (data, watch) = instance_watch(None, trace);
    match fresh.handle(data, Request::from_parts(head, body)).await {
        Ok(response) => {
            if instances.health().switch_off() {
                let labels = instances.labels();
                tracing::warn!(
                    workload = %labels.workload_id,
                    component = %labels.component,
                    "a reused instance failed a request ({}) that a fresh instance then served: \
                     this component cannot serve more than one request per instance, so instance \
                     reuse is now off for it (a fresh instance per request, which is always \
                     correct). To silence this, set its poolSize to 0 (wash dev: drop --pool-size)",
                    first.log
                );
            }
            coalesce(response).await
        }
        Err(error) => {
            let failure =
                classify(error, watch, started.elapsed(), instances.request_timeout()).await;
            failed(instances, failure)
        }
    }
}

/// Logs a failed request once and answers it.
fn failed(instances: &ComponentInstances, failure: Failure) -> Response<WasiBody> {
    let labels = instances.labels();
    tracing::warn!(
        workload = %labels.workload_id,
        component = %labels.component,
        status = failure.status.as_u16(),
        "request failed: {}",
        failure.log
    );
    plain(failure.status, failure.body)
}

/// A copy of a request's head, to send it again.
fn request_head<B>(request: &Request<B>) -> http::request::Parts {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    head.into_parts().0
}

/// A request whose target or framing can be read two ways: refused (400)
/// rather than routed or framed by whichever reading comes first. The
/// connection is closed after the answer, since what follows on it cannot
/// be trusted either.
fn ambiguous<B>(request: &Request<B>) -> Option<Response<WasiBody>> {
    let headers = request.headers();
    let reason = if headers.get_all(header::HOST).iter().nth(1).is_some() {
        "more than one Host header"
    } else if let (Some(authority), Some(host)) =
        (request.uri().authority(), headers.get(header::HOST))
        && !host
            .to_str()
            .is_ok_and(|host| host.eq_ignore_ascii_case(authority.as_str()))
    {
        "the Host header differs from the request target's authority"
    } else if headers.contains_key(header::CONTENT_LENGTH)
        && headers.contains_key(header::TRANSFER_ENCODING)
    {
        "both Content-Length and Transfer-Encoding"
    } else {
        return None;
    };
    let mut response = plain(
        StatusCode::BAD_REQUEST,
        format!("ambiguous request: {reason}\n"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Some(response)
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
    kind: FailureKind,
    status: StatusCode,
    body: String,
    log: String,
}

async fn classify(
    error: wasmtime::Error,
    watch: InstanceWatch,
    elapsed: Duration,
    timeout: Duration,
) -> Failure {
    if error.is::<ExpirationError>() {
        return answer(&GuestFailure::deadline(), timeout);
    }
    if let Some(instantiation) = error.downcast_ref::<InstantiationError<RequestData>>() {
        let exhausted = instantiation.error.chain().any(|e| {
            e.is::<wasmtime::PoolConcurrencyLimitError>() || e.is::<crate::instance::HostBusy>()
        });
        let detail = GuestFailure::of(&instantiation.error).detail;
        return Failure {
            kind: FailureKind::Other,
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
            log: format!("cannot instantiate: {detail}"),
        };
    }
    // The call's own error may only say that no response came (a P2 guest
    // that trapped looks like one that returned without responding); the
    // instance knows whether it trapped or hit a limit, and reports it as
    // it ends. Every instance that failed a request ends right away: a
    // fresh one after its only request, a warm one because it was retired.
    let failure = match GuestFailure::recognize(&error) {
        Some(failure) => failure,
        None => match tokio::time::timeout(INSTANCE_END_WAIT, watch).await {
            Ok(Ok(InstanceEnd::Failed(failure))) => failure,
            _ if error.is::<TrapOrPanicError>() && elapsed >= timeout => GuestFailure::deadline(),
            _ => GuestFailure::of(&error),
        },
    };
    answer(&failure, timeout)
}

fn answer(failure: &GuestFailure, timeout: Duration) -> Failure {
    let (status, body) = match failure.kind {
        FailureKind::Deadline => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("request deadline of {} exceeded\n", human(timeout)),
        ),
        FailureKind::MemoryLimit => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the component exceeded its memory limit\n".into(),
        ),
        FailureKind::Trap => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the component trapped\n".into(),
        ),
        FailureKind::Other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the component failed to produce a response\n".into(),
        ),
    };
    let log = match failure.kind {
        FailureKind::Deadline => format!("request deadline of {} exceeded", human(timeout)),
        _ => failure.detail.to_string(),
    };
    Failure {
        kind: failure.kind,
        status,
        body,
        log,
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
