//! The operator's NATS connection, and how long it has been healthy.
//!
//! Host loss is concluded from NATS saying "no responders"; that answer is
//! only trusted once the operator's own connection has been up for a while
//! (see [`liveness::readiness`](crate::liveness::readiness)), so the
//! connection's up-time is tracked from its events.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::{ConnectOptions, Event};

/// How to reach NATS.
#[derive(Debug, Clone, Default)]
pub struct NatsSettings {
    /// Server URL(s), comma separated.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate to verify the server with.
    pub ca: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Its key.
    pub client_key: Option<PathBuf>,
    /// Start TLS before the NATS handshake.
    pub tls_first: bool,
}

/// Why the connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The credentials file is unusable.
    #[error("cannot read NATS credentials `{path}`")]
    Credentials {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// No connection.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// Where.
        url: String,
        /// What the client said.
        #[source]
        source: async_nats::ConnectError,
    },
}

/// The connection and its health.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    up_since: Arc<Mutex<Option<Instant>>>,
}

impl Bus {
    /// Connects; reconnects forever after that (one attempt a second, as
    /// the reference).
    pub async fn connect(settings: &NatsSettings) -> Result<Self, BusError> {
        let up_since: Arc<Mutex<Option<Instant>>> = Arc::default();
        let mut options = match &settings.creds {
            Some(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| BusError::Credentials {
                    path: path.clone(),
                    source,
                })?,
            None => ConnectOptions::new(),
        };
        if let Some(ca) = &settings.ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&settings.client_cert, &settings.client_key) {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        if settings.tls_first {
            options = options.tls_first();
        }
        let events = up_since.clone();
        let options = options
            .name("runtime-operator")
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempt| {
                if attempt <= 1 {
                    Duration::ZERO
                } else {
                    Duration::from_secs(1)
                }
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    let mut up = events.lock().unwrap_or_else(|e| e.into_inner());
                    match event {
                        Event::Connected => {
                            tracing::info!("connected to NATS");
                            *up = Some(Instant::now());
                        }
                        Event::Disconnected => {
                            tracing::warn!("disconnected from NATS");
                            *up = None;
                        }
                        Event::Closed => *up = None,
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            });
        let client = options
            .connect(settings.url.as_str())
            .await
            .map_err(|source| BusError::Connect {
                url: settings.url.clone(),
                source,
            })?;
        {
            let mut up = up_since.lock().unwrap_or_else(|e| e.into_inner());
            up.get_or_insert_with(Instant::now);
        }
        Ok(Self { client, up_since })
    }

    /// The client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// How long the connection has been up; None while it is down.
    pub fn healthy_for(&self) -> Option<Duration> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return None;
        }
        let up = self.up_since.lock().unwrap_or_else(|e| e.into_inner());
        up.map(|since| since.elapsed())
    }

    /// Whether the connection is up now.
    pub fn connected(&self) -> bool {
        self.healthy_for().is_some()
    }
}
