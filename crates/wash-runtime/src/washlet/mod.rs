//! The washlet: a host's agent on the control plane.
//!
//! It answers requests on `runtime.host.<hostId>.>` (`heartbeat`,
//! `workload.start`, `workload.status`, `workload.stop`) and publishes a
//! heartbeat on `runtime.operator.heartbeat.<hostId>` on a timer. Payloads
//! are the protobuf-JSON messages of [`proto`], generated from `proto/` in
//! the `runtime-proto` crate (shared with the operator). Every request runs in its
//! own task: a slow image pull delays neither heartbeats nor other
//! requests. A malformed, oversized or unknown request gets an error reply.

mod convert;

pub use runtime_proto::v2 as proto;

pub use self::convert::{
    InvalidWorkload, interface_to_proto, state_from_proto, state_to_proto, status_to_proto,
    workload_from_proto, workload_to_proto,
};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tokio::task::JoinHandle;

use self::proto::{
    HostHeartbeat, WorkloadStartRequest, WorkloadStartResponse, WorkloadState, WorkloadStatus,
    WorkloadStatusRequest,
};
use crate::host::{Host, HostApi};

/// Default time between heartbeats.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// Requests larger than this are refused (the workload spec, not the
/// component: components come from registries).
pub const DEFAULT_MAX_REQUEST: usize = 512 * 1024;
/// Control requests handled at once; beyond this, a request gets a "busy"
/// error reply at once instead of more memory and CPU.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// Who the host is on the control plane.
#[derive(Debug, Clone)]
pub struct WashletConfig {
    /// Unique id; a NATS subject token.
    pub host_id: String,
    /// Name for people.
    pub friendly_name: String,
    /// How the host is reached, as reported in heartbeats: the machine's
    /// host name, or (in a cluster) the pod IP the operator routes
    /// Service traffic to.
    pub hostname: String,
    /// The environment (usually a Kubernetes namespace) whose workloads the
    /// host serves; empty for any.
    pub environment: String,
    /// Host group (also the `hostgroup` label).
    pub host_group: String,
    /// Labels reported in heartbeats.
    pub labels: BTreeMap<String, String>,
    /// Time between heartbeats.
    pub heartbeat_interval: Duration,
    /// Largest accepted request, in bytes.
    pub max_request: usize,
    /// Requests handled at once (see [`DEFAULT_MAX_IN_FLIGHT`]).
    pub max_in_flight: usize,
}

/// Errors starting the washlet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WashletError {
    /// The host id cannot be a NATS subject token.
    #[error("host id `{0}` must be non-empty and free of `.`, `*`, `>` and whitespace")]
    InvalidHostId(String),
    /// Subscribing failed.
    #[error("cannot subscribe to `{subject}`")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What NATS said.
        #[source]
        source: crate::plugin::BoxError,
    },
}

/// The running washlet.
pub struct Washlet {
    inner: Arc<Inner>,
    commands: JoinHandle<()>,
    heartbeats: JoinHandle<()>,
}

struct Inner {
    host: Host,
    nats: async_nats::Client,
    config: WashletConfig,
    started_at: SystemTime,
    system: Mutex<sysinfo::System>,
}

/// The operations of `runtime.host.<hostId>.<operation>`.
pub const OPERATIONS: [&str; 4] = [
    "heartbeat",
    "workload.start",
    "workload.status",
    "workload.stop",
];

impl Washlet {
    /// Subscribes and starts heartbeating.
    pub async fn start(
        host: Host,
        nats: async_nats::Client,
        config: WashletConfig,
    ) -> Result<Self, WashletError> {
        let id = &config.host_id;
        if id.is_empty() || id.contains(['.', '*', '>']) || id.chars().any(char::is_whitespace) {
            return Err(WashletError::InvalidHostId(id.clone()));
        }
        let subject = format!("runtime.host.{id}.>");
        let subscriber =
            nats.subscribe(subject.clone())
                .await
                .map_err(|e| WashletError::Subscribe {
                    subject: subject.clone(),
                    source: e.into(),
                })?;
        // Answer the first request sent after `start` returns, not miss it.
        crate::plugin::nats::confirm(&nats)
            .await
            .map_err(|e| WashletError::Subscribe {
                subject: subject.clone(),
                source: e.into(),
            })?;
        let inner = Arc::new(Inner {
            host,
            nats,
            config,
            started_at: SystemTime::now(),
            system: Mutex::new(sysinfo::System::new()),
        });
        let commands = tokio::spawn(serve(inner.clone(), subscriber));
        let heartbeats = tokio::spawn(heartbeat_loop(inner.clone()));
        tracing::info!(host_id = %inner.config.host_id, "washlet listening on {subject}");
        Ok(Self {
            inner,
            commands,
            heartbeats,
        })
    }

    /// The current heartbeat.
    pub fn heartbeat(&self) -> HostHeartbeat {
        self.inner.heartbeat()
    }

    /// Stops answering requests and heartbeating. Call before the host's
    /// own shutdown; then [`Washlet::final_heartbeat`].
    pub fn stop(&self) {
        self.commands.abort();
        self.heartbeats.abort();
    }

    /// Publishes one last heartbeat (after the workloads stopped) and
    /// flushes it to the server.
    pub async fn final_heartbeat(&self) {
        self.inner.publish_heartbeat().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.inner.nats.flush()).await;
    }
}

async fn serve(inner: Arc<Inner>, mut subscriber: async_nats::Subscriber) {
    let prefix = format!("runtime.host.{}.", inner.config.host_id);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(
        inner.config.max_in_flight.max(1),
    ));
    let mut unanswerable: u64 = 0;
    while let Some(message) = subscriber.next().await {
        // Nobody waits for the answer to a message without a reply
        // subject: drop it before it costs anything.
        let Some(reply_to) = message.reply.clone() else {
            unanswerable += 1;
            if unanswerable.is_power_of_two() {
                tracing::warn!(
                    subject = %message.subject,
                    total = unanswerable,
                    "control messages without a reply subject are ignored"
                );
            }
            continue;
        };
        let operation = message
            .subject
            .strip_prefix(&prefix)
            .unwrap_or_default()
            .to_string();
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            // Busy: say so now, cheaply, rather than queue without bound.
            let busy = failure(
                "",
                format!(
                    "host is busy: {} control requests are in progress; retry shortly",
                    inner.config.max_in_flight
                ),
            );
            if let Err(e) = inner.nats.publish(reply_to, busy).await {
                tracing::debug!(%operation, "cannot send busy reply: {e}");
            }
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let reply = inner.handle(&operation, &message.payload).await;
            if let Err(e) = inner.nats.publish(reply_to, reply).await {
                tracing::warn!(%operation, "cannot send reply: {e}");
            }
            drop(permit);
        });
    }
}

async fn heartbeat_loop(inner: Arc<Inner>) {
    let mut ticker = tokio::time::interval(inner.config.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        inner.publish_heartbeat().await;
    }
}

fn json<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs cannot fail; an empty reply would
    // still be answered rather than leave the caller waiting.
    serde_json::to_vec(value).unwrap_or_default().into()
}

// `WorkloadStartResponse`, `WorkloadStatusResponse` and
// `WorkloadStopResponse` have one shape: a status.
fn failure(workload_id: &str, message: impl Into<String>) -> Bytes {
    json(&WorkloadStartResponse {
        workload_status: Some(WorkloadStatus {
            workload_id: workload_id.to_string(),
            workload_state: WorkloadState::Error.into(),
            message: message.into(),
        }),
    })
}

fn status(status: crate::types::WorkloadStatus) -> Bytes {
    json(&WorkloadStartResponse {
        workload_status: Some(status_to_proto(status)),
    })
}

/// Why the control plane may not start or stop `workload_id`: the
/// `plugin:` ids are the host's component plugins, which it runs for as
/// long as it runs.
fn host_managed(workload_id: &str) -> Option<String> {
    workload_id.strip_prefix("plugin:").map(|plugin| {
        format!(
            "`{workload_id}` is the host's component plugin `{plugin}`; it is started and \
             stopped with the host, not through the control plane"
        )
    })
}

impl Inner {
    async fn handle(&self, operation: &str, payload: &[u8]) -> Bytes {
        if payload.len() > self.config.max_request {
            tracing::warn!(%operation, size = payload.len(), "oversized control message refused");
            return failure(
                "",
                format!(
                    "request of {} bytes exceeds the {}-byte limit",
                    payload.len(),
                    self.config.max_request
                ),
            );
        }
        match operation {
            "heartbeat" => json(&self.heartbeat()),
            "workload.start" => {
                let request: WorkloadStartRequest = match serde_json::from_slice(payload) {
                    Ok(request) => request,
                    Err(e) => return failure("", format!("malformed workload.start request: {e}")),
                };
                let id = request.workload_id;
                if id.is_empty() {
                    return failure("", "workload.start request without a workloadId");
                }
                if let Some(refused) = host_managed(&id) {
                    return failure(&id, refused);
                }
                let Some(workload) = request.workload else {
                    return failure(&id, "workload.start request without a workload");
                };
                let workload = match workload_from_proto(workload) {
                    Ok(workload) => workload,
                    Err(e) => return failure(&id, e.to_string()),
                };
                tracing::info!(workload_id = %id, name = %workload.name, "starting workload");
                match self.host.workload_start(&id, workload).await {
                    Ok(started) => status(started),
                    Err(e) => {
                        tracing::warn!(workload_id = %id, "workload failed to start: {e}");
                        failure(&id, e.to_string())
                    }
                }
            }
            "workload.status" | "workload.stop" => {
                // `WorkloadStatusRequest` and `WorkloadStopRequest` have one
                // shape: an id.
                let request: WorkloadStatusRequest = match serde_json::from_slice(payload) {
                    Ok(request) => request,
                    Err(e) => return failure("", format!("malformed {operation} request: {e}")),
                };
                if request.workload_id.is_empty() {
                    return failure("", format!("{operation} request without a workloadId"));
                }
                if operation == "workload.status" {
                    status(self.host.workload_status(&request.workload_id).await)
                } else if let Some(refused) = host_managed(&request.workload_id) {
                    failure(&request.workload_id, refused)
                } else {
                    status(self.host.workload_stop(&request.workload_id).await)
                }
            }
            unknown => {
                tracing::warn!(operation = %unknown, "unknown control operation");
                json(&serde_json::json!({
                    "error": format!(
                        "unknown operation `{unknown}` (known: {})",
                        OPERATIONS.join(", ")
                    )
                }))
            }
        }
    }

    fn heartbeat(&self) -> HostHeartbeat {
        let (cpu, total, free) = {
            let mut system = self.system.lock().unwrap_or_else(|e| e.into_inner());
            system.refresh_memory();
            system.refresh_cpu_usage();
            (
                system.global_cpu_usage(),
                system.total_memory(),
                system.available_memory(),
            )
        };
        let stats = self.host.stats();
        let mut labels = self.config.labels.clone();
        labels.insert("hostgroup".into(), self.config.host_group.clone());
        HostHeartbeat {
            id: self.config.host_id.clone(),
            hostname: self.config.hostname.clone(),
            friendly_name: self.config.friendly_name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            labels,
            started_at: Some(self.started_at.into()),
            os_arch: std::env::consts::ARCH.into(),
            os_name: std::env::consts::OS.into(),
            os_kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            system_cpu_usage: cpu,
            system_memory_total: total,
            system_memory_free: free,
            component_count: stats.components as u64,
            workload_count: stats.workloads as u64,
            imports: self
                .host
                .provided_interfaces()
                .iter()
                .map(interface_to_proto)
                .collect(),
            exports: self
                .host
                .called_interfaces()
                .iter()
                .map(interface_to_proto)
                .collect(),
            http_port: self
                .host
                .http_addr()
                .map(|a| u32::from(a.port()))
                .unwrap_or(0),
            environment: self.config.environment.clone(),
        }
    }

    async fn publish_heartbeat(&self) {
        let subject = format!("runtime.operator.heartbeat.{}", self.config.host_id);
        if let Err(e) = self.nats.publish(subject, json(&self.heartbeat())).await {
            tracing::debug!("heartbeat not sent: {e}");
        }
    }
}
