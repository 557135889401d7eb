//! The default outbound HTTP client: hyper on rustls (aws-lc-rs), HTTP/1.1
//! and HTTP/2 chosen by ALPN, a keep-alive pool per workload, and the
//! connect / first-byte / between-bytes timeouts of `wasi:http`.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tower_service::Service;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::{AddressPolicy, OutgoingFuture, OutgoingHandler, OutgoingRequestContext};
use crate::tls::{TlsError, TrustRoots};

type BoxError = Box<dyn StdError + Send + Sync>;
type HttpsClient = Client<HttpsConnector<TimeoutConnector>, WasiBody>;
/// A workload id and a component name.
type ComponentKey = (Arc<str>, Arc<str>);

tokio::task_local! {
    /// The connect timeout of the request being sent on this task.
    static CONNECT_TIMEOUT: Duration;
    /// The addresses the request being sent on this task may connect to.
    static ADDRESSES: Arc<AddressPolicy>;
}

/// Tunables of [`DefaultOutgoingHandler`]; guests may shorten the timeouts
/// per request through `wasi:http` request options.
#[derive(Debug, Clone)]
pub struct OutgoingSettings {
    /// Idle keep-alive connections kept per upstream host, per workload.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time from sending the request to the response headers.
    pub first_byte_timeout: Duration,
    /// Longest pause between two frames of the response body.
    pub between_bytes_timeout: Duration,
}

impl Default for OutgoingSettings {
    fn default() -> Self {
        Self {
            max_idle_per_host: 32,
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            between_bytes_timeout: Duration::from_secs(60),
        }
    }
}

/// The outbound HTTP client every host uses unless an embedder installs
/// its own [`OutgoingHandler`].
///
/// ```
/// use wash_runtime::egress::DefaultOutgoingHandler;
/// use wash_runtime::tls::TrustRoots;
///
/// let handler = DefaultOutgoingHandler::builder()
///     .trust(TrustRoots::webpki().with_native(false))
///     .build()
///     .unwrap();
/// ```
#[derive(Clone)]
pub struct DefaultOutgoingHandler {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<TimeoutConnector>,
    settings: OutgoingSettings,
    /// One pool per component of each workload: a connection is never
    /// handed to a guest whose policy did not check its address.
    clients: Mutex<HashMap<ComponentKey, HttpsClient>>,
}

/// Builds a [`DefaultOutgoingHandler`].
#[derive(Debug, Clone, Default)]
pub struct DefaultOutgoingHandlerBuilder {
    trust: TrustRoots,
    settings: OutgoingSettings,
}

impl DefaultOutgoingHandlerBuilder {
    /// Which certificates upstream servers may present.
    pub fn trust(mut self, trust: TrustRoots) -> Self {
        self.trust = trust;
        self
    }

    /// Pool size and timeouts.
    pub fn settings(mut self, settings: OutgoingSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Reads the trust roots and builds the client.
    pub fn build(self) -> Result<DefaultOutgoingHandler, TlsError> {
        // ALPN (h2, http/1.1) is set by the connector from the enabled versions.
        let tls = self.trust.client_config(&[])?;
        let mut http = HttpConnector::new();
        // TLS names are checked against the URI; `https` must be allowed.
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(TimeoutConnector {
                inner: http,
                default: self.settings.connect_timeout,
            });
        Ok(DefaultOutgoingHandler {
            inner: Arc::new(Inner {
                connector,
                settings: self.settings,
                clients: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl DefaultOutgoingHandler {
    /// A builder starting from webpki roots and default settings.
    pub fn builder() -> DefaultOutgoingHandlerBuilder {
        DefaultOutgoingHandlerBuilder::default()
    }

    fn client_for(&self, context: &OutgoingRequestContext) -> HttpsClient {
        let mut clients = self.inner.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry((context.workload_id.clone(), context.component.clone()))
            .or_insert_with(|| {
                Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(self.inner.settings.max_idle_per_host)
                    .pool_idle_timeout(self.inner.settings.idle_timeout)
                    .build(self.inner.connector.clone())
            })
            .clone()
    }
}

impl OutgoingHandler for DefaultOutgoingHandler {
    fn handle(
        &self,
        context: &OutgoingRequestContext,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> OutgoingFuture {
        let client = self.client_for(context);
        let settings = &self.inner.settings;
        let option = |pick: fn(&RequestOptions) -> Option<Duration>, default| {
            options.as_ref().and_then(pick).unwrap_or(default)
        };
        let connect = option(|o| o.connect_timeout, settings.connect_timeout);
        let first_byte = option(|o| o.first_byte_timeout, settings.first_byte_timeout);
        let between = option(|o| o.between_bytes_timeout, settings.between_bytes_timeout);
        let context = context.clone();
        Box::pin(async move {
            let uri = request.uri().clone();
            let sent = ADDRESSES.scope(
                context.addresses.clone(),
                CONNECT_TIMEOUT.scope(connect, async {
                    tokio::time::timeout(first_byte, client.request(request)).await
                }),
            );
            let response = match sent.await {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => {
                    let code = classify(&error);
                    tracing::warn!(
                        workload = %context.workload_id,
                        component = %context.component,
                        %uri,
                        "outbound HTTP failed: {}",
                        chain(&error)
                    );
                    return Err(code);
                }
                Err(_) => return Err(HttpError::ConnectionReadTimeout),
            };
            Ok(response.map(|body| TimedBody::new(body, between).boxed_unsync()))
        })
    }

    fn workload_stopped(&self, workload_id: &str) {
        let mut clients = self.inner.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.retain(|(workload, _), _| &**workload != workload_id);
    }
}

/// Maps a client error to the `wasi:http` error code the guest sees.
fn classify(error: &hyper_util::client::legacy::Error) -> HttpError {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<ConnectTimedOut>() {
            return HttpError::ConnectionTimeout;
        }
        if e.is::<AddressDenied>() {
            return HttpError::HttpRequestDenied;
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return tls_code(tls);
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return HttpError::ConnectionRefused,
                io::ErrorKind::TimedOut => return HttpError::ConnectionTimeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return HttpError::ConnectionTerminated,
                _ => {}
            }
        }
        if e.to_string().starts_with("dns error") {
            return HttpError::DnsError {
                rcode: Some(chain(e)),
                info_code: None,
            };
        }
        current = next_cause(e);
    }
    if error.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::HttpProtocolError
    }
}

fn tls_code(error: &rustls::Error) -> HttpError {
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
            HttpError::TlsCertificateError
        }
        rustls::Error::AlertReceived(alert) => HttpError::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => HttpError::TlsProtocolError,
    }
}

/// The next error down a chain. An `io::Error` wrapping another error
/// reports that error's *source* as its own, skipping the wrapped error
/// itself (where rustls puts its errors), so step into it directly.
fn next_cause<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match error
        .downcast_ref::<io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner),
        None => error.source(),
    }
}

/// An error and its causes on one line.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = next_cause(error);
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = next_cause(e);
    }
    text
}

/// The connect step took longer than allowed.
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
struct ConnectTimedOut;

/// Every address the host name resolves to is outside what the component
/// may reach.
#[derive(Debug, thiserror::Error)]
#[error("`{host}` resolves only to addresses the component may not reach ({addresses})")]
struct AddressDenied {
    host: String,
    addresses: String,
}

/// Resolves the host name itself, keeps the addresses the current
/// request's [`AddressPolicy`] permits, and connects to one of exactly
/// those (a second lookup by the connector could answer differently: DNS
/// rebinding). The TCP connect is bounded by the request's connect timeout.
#[derive(Clone)]
struct TimeoutConnector {
    inner: HttpConnector,
    default: Duration,
}

impl Service<Uri> for TimeoutConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let timeout = CONNECT_TIMEOUT.try_with(|t| *t).unwrap_or(self.default);
        // A connect started outside a request (the pool filling up in the
        // background) has no policy to go by: it is refused.
        let policy = ADDRESSES.try_with(Arc::clone).ok();
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let connecting = async {
                let addresses = permitted(&uri, policy.as_deref()).await?;
                let mut last = None;
                for address in addresses {
                    let literal = Uri::try_from(format!("http://{address}/"))?;
                    match inner.call(literal).await {
                        Ok(stream) => return Ok(stream),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.map_or_else(
                    || BoxError::from("no address to connect to"),
                    BoxError::from,
                ))
            };
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

/// The addresses of `uri`'s host that `policy` permits, in resolver order.
async fn permitted(
    uri: &Uri,
    policy: Option<&AddressPolicy>,
) -> Result<Vec<std::net::SocketAddr>, BoxError> {
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let resolved: Vec<std::net::SocketAddr> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![(ip, port).into()],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("dns error: {e}"))?
            .collect(),
    };
    let kept: Vec<_> = resolved
        .iter()
        .copied()
        .filter(|address| policy.is_some_and(|p| p.permits(*address)))
        .collect();
    if kept.is_empty() {
        return Err(Box::new(AddressDenied {
            host: host.to_string(),
            addresses: resolved
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }));
    }
    Ok(kept)
}

pin_project_lite::pin_project! {
    /// A response body that fails with `connection-read-timeout` when the
    /// upstream pauses longer than allowed between frames.
    struct TimedBody {
        #[pin]
        inner: Incoming,
        #[pin]
        idle: tokio::time::Sleep,
        limit: Duration,
    }
}

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            idle: tokio::time::sleep(limit),
            limit,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + *this.limit;
                this.idle.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(HttpError::from)))
            }
            Poll::Pending => match this.idle.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
