//! Hosts from heartbeats: every `runtime.operator.heartbeat.<id>` a host
//! publishes upserts its `Host` object in the operator's namespace (server-
//! side apply, one field manager) and records what it reported, with
//! `lastSeen`, in the status.

use futures::StreamExt;
use kube::Api;
use kube::api::{Patch, PatchParams};
use runtime_proto::v2::HostHeartbeat;

use crate::crd::Host;
use crate::heartbeat::{HeartbeatError, host_from_heartbeat};
use crate::host_pods::Retired;

/// The field manager of what the operator writes.
pub const FIELD_MANAGER: &str = "runtime-operator";

/// Why one heartbeat left no trace.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The message is not a heartbeat.
    #[error("unreadable heartbeat on {subject}")]
    Decode {
        /// Where it came from.
        subject: String,
        /// What the decoder said.
        #[source]
        source: serde_json::Error,
    },
    /// The heartbeat cannot become a Host.
    #[error(transparent)]
    Heartbeat(#[from] HeartbeatError),
    /// The API server refused the write.
    #[error("cannot write Host `{name}`")]
    Write {
        /// The Host.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
}

/// Writes the Host one heartbeat describes, seen at `now` (RFC 3339).
pub async fn record(
    hosts: &Api<Host>,
    heartbeat: &HostHeartbeat,
    now: &str,
) -> Result<Host, UpdateError> {
    let host = host_from_heartbeat(heartbeat, now)?;
    let name = host.metadata.name.clone().unwrap_or_default();
    let write = |source| UpdateError::Write {
        name: name.clone(),
        source,
    };
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    // Identity and labels through apply; what it reported through /status.
    let mut identity = host.clone();
    identity.fields.status = None;
    hosts
        .patch(&name, &apply, &Patch::Apply(&identity))
        .await
        .map_err(write)?;
    let status = serde_json::json!({ "status": host.fields.status });
    hosts
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(write)
}

/// Applies every heartbeat on `subscriber` until it ends, except those of
/// `retired` hosts. A heartbeat that
/// cannot be recorded is logged and skipped; the next one is tried.
pub async fn run(
    hosts: Api<Host>,
    mut subscriber: async_nats::Subscriber,
    now: impl Fn() -> String,
    retired: Retired,
) {
    while let Some(message) = subscriber.next().await {
        let result = match serde_json::from_slice::<HostHeartbeat>(&message.payload) {
            // A host whose pod is being deleted does not come back.
            Ok(heartbeat) if retired.contains(&heartbeat.id) => Ok(()),
            Ok(heartbeat) => record(&hosts, &heartbeat, &now()).await.map(drop),
            Err(source) => Err(UpdateError::Decode {
                subject: message.subject.to_string(),
                source,
            }),
        };
        if let Err(error) = result {
            tracing::warn!(error = %crate::error_chain(&error), "heartbeat skipped");
        }
    }
}
