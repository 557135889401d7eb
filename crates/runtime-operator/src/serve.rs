//! The probe and metrics listeners: `/healthz` and `/readyz` for the
//! kubelet, `/metrics` for Prometheus. Off the reconcile path; each answer
//! is computed from state already at hand.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::bus::Bus;
use crate::metrics::Metrics;

/// What the probes report.
pub struct Health {
    bus: Bus,
    started: AtomicBool,
}

impl Health {
    /// Not ready until [`Health::set_started`].
    pub fn new(bus: Bus) -> Self {
        Self {
            bus,
            started: AtomicBool::new(false),
        }
    }

    /// The operator has its API client and caches (or waits, as a standby,
    /// for the lease).
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// `/healthz`: the process serves. `/readyz`: started and connected to
    /// NATS.
    fn answer(&self, path: &str) -> (StatusCode, String) {
        match path {
            "/healthz" | "/livez" => (StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                let started = self.started.load(Ordering::Acquire);
                let nats = self.bus.connected();
                if started && nats {
                    (StatusCode::OK, "ok\n".into())
                } else {
                    let why = if nats {
                        "starting"
                    } else {
                        "not connected to NATS"
                    };
                    (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"))
                }
            }
            _ => (StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

type Route = Arc<dyn Fn(&str) -> (StatusCode, String) + Send + Sync>;

/// Serves `/healthz` and `/readyz` on `listener` until the process ends.
pub async fn probes(listener: TcpListener, health: Arc<Health>) {
    serve(listener, Arc::new(move |path| health.answer(path))).await;
}

/// Serves `/metrics` on `listener` until the process ends.
pub async fn metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    serve(
        listener,
        Arc::new(move |path| match path {
            "/metrics" => (StatusCode::OK, metrics.encode()),
            _ => (StatusCode::NOT_FOUND, "not found\n".into()),
        }),
    )
    .await;
}

async fn serve(listener: TcpListener, route: Route) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a probe connection");
                continue;
            }
        };
        let route = route.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let (status, body) = route(request.uri().path());
                let content_type = if request.uri().path() == "/metrics" {
                    "text/plain; version=0.0.4; charset=utf-8"
                } else {
                    "text/plain; charset=utf-8"
                };
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static(content_type),
                );
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "probe connection");
            }
        });
    }
}
