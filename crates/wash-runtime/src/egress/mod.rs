//! Egress: every outbound HTTP request of every guest passes through here.
//!
//! The policy check (`allowed_hosts`, deny by default) runs before the
//! request reaches the [`OutgoingHandler`], so a denied request never opens
//! a connection, whichever handler the embedder installed. Raw sockets
//! (`wasi:sockets`) are checked per address by [`sockets`].

mod client;
pub(crate) mod sockets;

pub use client::{DefaultOutgoingHandler, DefaultOutgoingHandlerBuilder, OutgoingSettings};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::host::metrics::EgressOutcome;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Outbound HTTP requests one workload may have in flight at once.
pub(crate) const MAX_OUTBOUND_REQUESTS: usize = 256;

/// The response future an [`OutgoingHandler`] returns.
pub type OutgoingFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// Who sent an outbound request, and where it may go.
#[derive(Debug, Clone)]
pub struct OutgoingRequestContext {
    /// Id of the workload the guest belongs to.
    pub workload_id: Arc<str>,
    /// Name of the component that sent the request.
    pub component: Arc<str>,
    /// Which addresses the component's host names may resolve to and still
    /// be connected to. A handler that resolves names itself checks every
    /// address against it before connecting.
    pub addresses: Arc<AddressPolicy>,
}

/// Which resolved addresses a component's outbound traffic may reach.
///
/// A host name in `allowed_hosts` is a name on the public internet: if it
/// resolves to loopback, or to a private, link-local or other special
/// range (DNS rebinding, a cloud metadata address), it does not open that
/// address. Loopback is reachable only on `allowed_host_loopback_ports`;
/// other special ranges only when the host allows private networks. A rule
/// that names an address literally (`10.0.0.5:5432`) reaches it.
///
/// ```
/// use wash_runtime::egress::{AddressPolicy, AllowedHosts};
///
/// let policy = AddressPolicy::new(AllowedHosts::new(&["api.example.com"]), vec![8080], false);
/// assert!(policy.permits("93.184.215.14:443".parse().unwrap()));
/// assert!(!policy.permits("169.254.169.254:80".parse().unwrap()));
/// assert!(!policy.permits("127.0.0.1:443".parse().unwrap()));
/// assert!(policy.permits("127.0.0.1:8080".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) loopback_ports: Vec<u16>,
    pub(crate) allow_private: bool,
}

impl AddressPolicy {
    /// The policy of a component: its `allowed_hosts`, its
    /// `allowed_host_loopback_ports`, and whether the host allows private
    /// networks.
    pub fn new(allowed: AllowedHosts, loopback_ports: Vec<u16>, allow_private: bool) -> Self {
        Self {
            allowed: Arc::new(allowed),
            loopback_ports,
            allow_private,
        }
    }

    /// Whether a connection to `addr` may be made, given that the host name
    /// it was resolved from (if any) passed `allowed_hosts`.
    pub fn permits(&self, addr: std::net::SocketAddr) -> bool {
        let (ip, port) = (canonical(addr.ip()), addr.port());
        let named = self.allowed.allows(&ip.to_string(), port);
        if ip.is_loopback() {
            return named || self.loopback_ports.contains(&port);
        }
        if sockets::is_special(ip) {
            return named || self.allow_private;
        }
        true
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub(crate) fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// Sends the outbound HTTP requests of guests (P2 and P3 alike).
///
/// Install one with `HttpServerBuilder::outgoing_handler`; the host calls it
/// for every request that passed the component's `allowed_hosts` policy.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use wash_runtime::egress::{
///     DefaultOutgoingHandler, OutgoingFuture, OutgoingHandler, OutgoingRequestContext,
/// };
/// use wash_runtime::host::http::HttpServerBuilder;
/// use wasmtime_wasi_http::{RequestOptions, WasiBody};
///
/// /// Counts and logs every outbound request, then sends it as usual.
/// struct Audited {
///     inner: DefaultOutgoingHandler,
///     sent: AtomicU64,
/// }
///
/// impl OutgoingHandler for Audited {
///     fn handle(
///         &self,
///         context: &OutgoingRequestContext,
///         request: http::Request<WasiBody>,
///         options: Option<RequestOptions>,
///     ) -> OutgoingFuture {
///         self.sent.fetch_add(1, Ordering::Relaxed);
///         tracing::info!(workload = %context.workload_id, uri = %request.uri(), "outbound");
///         self.inner.handle(context, request, options)
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let audited = Audited {
///     inner: DefaultOutgoingHandler::builder().build()?,
///     sent: AtomicU64::new(0),
/// };
/// let http = HttpServerBuilder::new("127.0.0.1:0".parse()?).outgoing_handler(Arc::new(audited));
/// # drop(http);
/// # Ok(()) }
/// ```
pub trait OutgoingHandler: Send + Sync + 'static {
    /// Sends `request` and resolves to the upstream response. `options`
    /// carries the guest's timeouts, if it set any.
    fn handle(
        &self,
        context: &OutgoingRequestContext,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> OutgoingFuture;

    /// Called when a workload stops, to release what was kept for it
    /// (pooled connections, for example).
    fn workload_stopped(&self, _workload_id: &str) {}
}

/// Which hosts a component may reach: `host`, `*.suffix`, `host:port`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    rules: Vec<HostRule>,
}

#[derive(Debug, Clone)]
enum HostRule {
    Exact(String),
    Suffix(String),
    HostPort(String, u16),
}

impl AllowedHosts {
    /// Parses the `allowed_hosts` list of a component. Empty denies all.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        let rules = patterns
            .iter()
            .map(|p| p.as_ref().trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .map(|p| {
                if let Some(suffix) = p.strip_prefix("*.") {
                    return HostRule::Suffix(format!(".{suffix}"));
                }
                // A bare IPv6 address has colons but no port.
                if p.parse::<std::net::IpAddr>().is_ok() {
                    return HostRule::Exact(p);
                }
                match p
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                {
                    Some((host, port)) => HostRule::HostPort(unbracket(host).to_string(), port),
                    None => HostRule::Exact(unbracket(&p).to_string()),
                }
            })
            .collect();
        Self { rules }
    }

    /// Whether nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `host` (any case, IPv6 with or without brackets) on `port`
    /// is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = unbracket(host.trim_end_matches('.')).to_ascii_lowercase();
        self.rules.iter().any(|rule| match rule {
            HostRule::Exact(h) => *h == host,
            HostRule::Suffix(s) => host.ends_with(s.as_str()),
            HostRule::HostPort(h, p) => *h == host && *p == port,
        })
    }

    /// The host names (not addresses, not wildcards) rules allow on `port`,
    /// for checks that only see an address and must resolve names.
    pub(crate) fn names_for_port(&self, port: u16) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(move |rule| {
            let name = match rule {
                HostRule::Exact(h) => h,
                HostRule::HostPort(h, p) if *p == port => h,
                _ => return None,
            };
            name.parse::<std::net::IpAddr>()
                .is_err()
                .then_some(name.as_str())
        })
    }
}

fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Most of a denied request's body that is read (and discarded).
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads a denied request's body to its end (bounded) before the denial is
/// reported. Guests typically write the body and await the response
/// concurrently; dropping the body first would make their write fail with a
/// closed stream and hide the real reason, `HTTP-request-denied`.
async fn drain(mut body: WasiBody) {
    use http_body_util::BodyExt;
    let mut read = 0;
    let reading = async {
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reading).await;
}

/// A request body that, if dropped before its end (an upstream may answer
/// without reading it all), is read to its end in the background, so the
/// guest's writes still complete and it sees the upstream's answer rather
/// than a closed stream.
struct DrainOnDrop(Option<WasiBody>);

impl http_body::Body for DrainOnDrop {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, HttpError>>> {
        let Some(body) = self.0.as_mut() else {
            return std::task::Poll::Ready(None);
        };
        let frame = Pin::new(body).poll_frame(cx);
        if matches!(frame, std::task::Poll::Ready(None)) {
            self.0 = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.as_ref().map(|b| b.size_hint()).unwrap_or_default()
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        if let Some(body) = self.0.take()
            && !http_body::Body::is_end_stream(&body)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(drain(body));
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted while it lives.
    struct Holding {
        #[pin]
        body: WasiBody,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, HttpError>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The egress hooks stored in each guest's store.
#[derive(Clone)]
pub(crate) struct GuestEgress {
    pub(crate) handler: Arc<dyn OutgoingHandler>,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) context: Arc<OutgoingRequestContext>,
    /// The workload's outbound requests in flight (see
    /// `MAX_OUTBOUND_REQUESTS`): a guest opening thousands of connections
    /// gets `connection-limit-reached` for the excess.
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    pub(crate) metrics: Arc<crate::host::metrics::ComponentMetrics>,
    /// The guest span of the request being served, when traced.
    pub(crate) trace: Option<tracing::Span>,
}

impl WasiHttpHooks for GuestEgress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        if !self.allowed.allows(host, port) {
            tracing::warn!(
                workload = %self.context.workload_id,
                component = %self.context.component,
                %host,
                port,
                "outbound HTTP denied: host not in the component's allowed_hosts"
            );
            self.metrics.egress(EgressOutcome::Denied);
            return Box::new(async move {
                drain(request.into_body()).await;
                Err(HttpError::HttpRequestDenied)
            });
        }
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                workload = %self.context.workload_id,
                component = %self.context.component,
                %host,
                "outbound HTTP refused: the workload has {} requests in flight",
                MAX_OUTBOUND_REQUESTS
            );
            self.metrics.egress(EgressOutcome::Limited);
            return Box::new(async move {
                drain(request.into_body()).await;
                Err(HttpError::ConnectionLimitReached)
            });
        };
        let mut request =
            request.map(|body| http_body_util::BodyExt::boxed_unsync(DrainOnDrop(Some(body))));
        let span = match &self.trace {
            Some(parent) if crate::telemetry::enabled() => {
                Some(crate::telemetry::client_span(parent, &mut request))
            }
            _ => None,
        };
        let response = self.handler.handle(&self.context, request, options);
        let metrics = self.metrics.clone();
        Box::new(async move {
            let response = match &span {
                Some(span) => {
                    use tracing::Instrument as _;
                    let response = response.instrument(span.clone()).await;
                    if let Ok(response) = &response {
                        span.record("http.response.status_code", response.status().as_u16());
                    }
                    response
                }
                None => response.await,
            };
            metrics.egress(if response.is_ok() {
                EgressOutcome::Ok
            } else {
                EgressOutcome::Error
            });
            // The request counts until its response body is dropped.
            let response = response?.map(|body| {
                http_body_util::BodyExt::boxed_unsync(Holding {
                    body,
                    _permit: permit,
                })
            });
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedHosts;

    #[test]
    fn empty_list_denies_everything() {
        assert!(!AllowedHosts::new::<&str>(&[]).allows("example.com", 443));
    }

    #[test]
    fn exact_suffix_and_port_rules() {
        let allowed = AllowedHosts::new(&["api.example.com", "*.svc.local", "db.local:8443"]);
        assert!(allowed.allows("api.example.com", 443));
        assert!(allowed.allows("API.Example.com.", 80));
        assert!(!allowed.allows("evil-api.example.com", 443));
        assert!(allowed.allows("a.b.svc.local", 443));
        assert!(
            !allowed.allows("svc.local", 443),
            "*.x matches subdomains only"
        );
        assert!(allowed.allows("db.local", 8443));
        assert!(!allowed.allows("db.local", 443));
    }

    #[test]
    fn ip_literals_with_and_without_ports() {
        let allowed = AllowedHosts::new(&["10.0.0.5", "::1", "[fd00::1]:8080", "127.0.0.1:9000"]);
        assert!(allowed.allows("10.0.0.5", 1));
        assert!(allowed.allows("[::1]", 443));
        assert!(allowed.allows("::1", 80));
        assert!(allowed.allows("fd00::1", 8080));
        assert!(!allowed.allows("fd00::1", 8081));
        assert!(allowed.allows("127.0.0.1", 9000));
        assert!(!allowed.allows("127.0.0.1", 9001));
        assert_eq!(
            allowed.names_for_port(9000).count(),
            0,
            "addresses are not names"
        );
    }
}
