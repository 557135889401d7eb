//! HTTP ingress: a hyper server (HTTP/1.1 and HTTP/2) in front of the
//! workloads, routing each request through a [`Router`].

mod coalesce;
pub mod router;
mod service;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use router::{DevRouter, DynamicRouter, RouteError, Router};
pub(crate) use service::Ingress;
pub(crate) use tls::server_config as tls_server_config;
pub use tls::{TlsIngressError, TlsSettings};

use crate::egress::OutgoingHandler;

/// Default cap on open client connections.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// A client has this long to send its request headers (slowloris guard).
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests one HTTP/2 connection may have in flight at once.
const DEFAULT_MAX_STREAMS: u32 = 100;

/// Configures the host's HTTP server.
///
/// ```no_run
/// use std::sync::Arc;
/// use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
///
/// let http = HttpServerBuilder::new("127.0.0.1:8080".parse().unwrap())
///     .router(Arc::new(DynamicRouter::new()));
/// ```
pub struct HttpServerBuilder {
    pub(crate) addr: SocketAddr,
    pub(crate) router: Arc<dyn Router>,
    pub(crate) outgoing: Option<Arc<dyn OutgoingHandler>>,
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_streams: u32,
    pub(crate) tls: Option<TlsSettings>,
}

/// The TLS setup a server starts with (built before binding, so a bad
/// certificate is a start-up error).
pub(crate) type ServerTls = (Arc<rustls::ServerConfig>, Arc<tls::Resolver>);

impl HttpServerBuilder {
    /// A server on `addr` (port 0 picks a free port) with a [`DynamicRouter`].
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            router: Arc::new(DynamicRouter::new()),
            outgoing: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_streams: DEFAULT_MAX_STREAMS,
            tls: None,
        }
    }

    /// Serves HTTPS (ALPN `h2` and `http/1.1`) instead of plain HTTP; see
    /// [`TlsSettings`] for client certificates and per-host certificates.
    /// Certificate files are re-read when they change.
    pub fn tls(mut self, settings: TlsSettings) -> Self {
        self.tls = Some(settings);
        self
    }

    /// Decides which workload serves each request.
    pub fn router(mut self, router: Arc<dyn Router>) -> Self {
        self.router = router;
        self
    }

    /// Sends every outbound HTTP request of every guest (that passed its
    /// component's `allowed_hosts`), replacing the default
    /// [`DefaultOutgoingHandler`](crate::egress::DefaultOutgoingHandler).
    pub fn outgoing_handler(mut self, handler: Arc<dyn OutgoingHandler>) -> Self {
        self.outgoing = Some(handler);
        self
    }

    /// Open connections beyond this wait to be accepted.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long a client may take to send its request headers.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Requests one HTTP/2 connection may have in flight at once.
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_streams = max.max(1);
        self
    }
}

/// A running HTTP server.
pub(crate) struct HttpServer {
    pub(crate) local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds and starts accepting.
    pub(crate) async fn start(
        builder: &HttpServerBuilder,
        ingress: Ingress,
        tls: Option<ServerTls>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(builder.addr).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown, stop) = watch::channel(false);
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(builder.header_read_timeout)
            .keep_alive(true)
            // Responses are small: one flattened write beats a writev of
            // headers and body chunks.
            .writev(false);
        http.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(builder.max_streams);
        let context = Arc::new(ServeContext {
            ingress,
            local_authority: HeaderValue::from_str(&local_addr.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
        });
        let limit = Arc::new(Semaphore::new(builder.max_connections));
        let acceptor = match (tls, &builder.tls) {
            (Some((config, resolver)), Some(settings)) => {
                tokio::spawn(tls::reload_on_change(
                    settings.clone(),
                    resolver,
                    stop.clone(),
                ));
                Some(Handshake {
                    acceptor: tokio_rustls::TlsAcceptor::from(config),
                    timeout: builder.header_read_timeout,
                })
            }
            _ => None,
        };
        let secure = acceptor.is_some();
        let task = tokio::spawn(accept_loop(listener, http, context, limit, acceptor, stop));
        tracing::info!(address = %local_addr, tls = secure, "HTTP server listening");
        Ok(Self {
            local_addr,
            shutdown,
            task,
        })
    }

    /// Stops accepting, then waits up to `drain` for open requests to finish.
    pub(crate) async fn shutdown(self, drain: Duration) {
        let _ = self.shutdown.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(drain, self.task).await.is_err() {
            tracing::warn!("HTTP drain took longer than {drain:?}; closing remaining connections");
            abort.abort();
        }
    }
}

struct ServeContext {
    ingress: Ingress,
    local_authority: HeaderValue,
}

/// The TLS handshake of each connection, bounded in time like the
/// request headers that follow it.
struct Handshake {
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: Duration,
}

async fn accept_loop(
    listener: TcpListener,
    http: auto::Builder<TokioExecutor>,
    context: Arc<ServeContext>,
    limit: Arc<Semaphore>,
    tls: Option<Handshake>,
    mut stop: watch::Receiver<bool>,
) {
    let tls = tls.map(Arc::new);
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small response chunks must not wait on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        let service = service_fn(move |request| {
            let context = context.clone();
            async move {
                Ok::<_, Infallible>(
                    context
                        .ingress
                        .handle(request, &context.local_authority)
                        .await,
                )
            }
        });
        let Some(tls) = tls.clone() else {
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, "connection ended with error: {e}");
                }
                drop(permit);
            });
            continue;
        };
        // The handshake runs on the connection's own task: a slow client
        // never holds up accepting others.
        let (http, watcher) = (http.clone(), graceful.watcher());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(tls.timeout, tls.acceptor.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let connection = http.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, "connection ended with error: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
