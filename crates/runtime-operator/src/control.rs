//! Requests to hosts over `runtime.host.<id>.workload.*`, in proto3 JSON,
//! each timed into the metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::RequestErrorKind;
use runtime_proto::v2::{
    Workload, WorkloadStartRequest, WorkloadStartResponse, WorkloadState, WorkloadStatus,
    WorkloadStatusRequest, WorkloadStatusResponse, WorkloadStopRequest, WorkloadStopResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;

/// How long a start may take (pulling and compiling included), as the
/// reference.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a status request may take.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request to a host gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nobody listens on the host's subject.
    #[error("host `{host}` is not on the control plane (no responders to {operation})")]
    NoResponders {
        /// The host id.
        host: String,
        /// What was asked.
        operation: &'static str,
    },
    /// No answer in time.
    #[error("host `{host}` did not answer {operation} within {timeout:?}")]
    TimedOut {
        /// The host id.
        host: String,
        /// What was asked.
        operation: &'static str,
        /// How long it had.
        timeout: Duration,
    },
    /// The request could not be sent.
    #[error("cannot send {operation} to host `{host}`")]
    Request {
        /// The host id.
        host: String,
        /// What was asked.
        operation: &'static str,
        /// What the client said.
        #[source]
        source: async_nats::RequestError,
    },
    /// The answer is not what the protocol says.
    #[error("unreadable answer to {operation} from host `{host}`")]
    Decode {
        /// The host id.
        host: String,
        /// What was asked.
        operation: &'static str,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
}

/// Talks to hosts.
#[derive(Clone)]
pub struct HostControl {
    client: async_nats::Client,
    metrics: Arc<Metrics>,
}

impl HostControl {
    /// Over `client`, timing into `metrics`.
    pub fn new(client: async_nats::Client, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics }
    }

    /// Starts `workload` as `workload_id` on `host`. A start the host has
    /// already seen (same id) answers with its current state.
    pub async fn start(
        &self,
        host: &str,
        workload_id: &str,
        workload: Workload,
    ) -> Result<WorkloadStatus, ControlError> {
        let request = WorkloadStartRequest {
            workload: Some(workload),
            workload_id: workload_id.into(),
        };
        let reply: WorkloadStartResponse = self
            .request(host, "workload.start", &request, START_TIMEOUT)
            .await?;
        Ok(reply.workload_status.unwrap_or_default())
    }

    /// The workload's state on `host`.
    pub async fn status(
        &self,
        host: &str,
        workload_id: &str,
    ) -> Result<WorkloadStatus, ControlError> {
        let request = WorkloadStatusRequest {
            workload_id: workload_id.into(),
        };
        let reply: WorkloadStatusResponse = self
            .request(host, "workload.status", &request, STATUS_TIMEOUT)
            .await?;
        Ok(reply.workload_status.unwrap_or_default())
    }

    /// Stops the workload on `host`.
    pub async fn stop(
        &self,
        host: &str,
        workload_id: &str,
    ) -> Result<WorkloadStatus, ControlError> {
        let request = WorkloadStopRequest {
            workload_id: workload_id.into(),
        };
        let reply: WorkloadStopResponse = self
            .request(host, "workload.stop", &request, STOP_TIMEOUT)
            .await?;
        Ok(reply.workload_status.unwrap_or_default())
    }

    async fn request<Q: Serialize, A: DeserializeOwned>(
        &self,
        host: &str,
        operation: &'static str,
        request: &Q,
        timeout: Duration,
    ) -> Result<A, ControlError> {
        // Serializing generated message types cannot fail.
        let payload = serde_json::to_vec(request).unwrap_or_default();
        let subject = runtime_proto::subjects::host(host, operation);
        let began = Instant::now();
        let answer =
            tokio::time::timeout(timeout, self.client.request(subject, payload.into())).await;
        self.metrics.nats_round_trip(operation, began.elapsed());
        let message = match answer {
            Err(_) => {
                return Err(ControlError::TimedOut {
                    host: host.into(),
                    operation,
                    timeout,
                });
            }
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {
                return Err(ControlError::NoResponders {
                    host: host.into(),
                    operation,
                });
            }
            Ok(Err(e)) if e.kind() == RequestErrorKind::TimedOut => {
                return Err(ControlError::TimedOut {
                    host: host.into(),
                    operation,
                    timeout,
                });
            }
            Ok(Err(source)) => {
                return Err(ControlError::Request {
                    host: host.into(),
                    operation,
                    source,
                });
            }
            Ok(Ok(message)) => message,
        };
        serde_json::from_slice(&message.payload).map_err(|source| ControlError::Decode {
            host: host.into(),
            operation,
            source,
        })
    }
}

/// The state's protocol name without its prefix, for messages
/// (`RUNNING`, `NOT_FOUND`).
pub fn state_name(state: i32) -> &'static str {
    let name = WorkloadState::try_from(state)
        .unwrap_or(WorkloadState::Unspecified)
        .as_str_name();
    name.strip_prefix("WORKLOAD_STATE_").unwrap_or(name)
}
