//! The WorkloadReplicaSet controller: keeps `replicas` Workloads of its
//! template (ScaleUp, ScaleDown, Ready, as the reference). Workloads carry a
//! controller ownerReference, the set's label and the template's hash;
//! Workloads of an older template go once the current ones are all there,
//! and a replica stuck not Ready past the grace period is replaced, its
//! replacement steered away from the host it was stuck on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::crd::{
    ConditionStatus, ReplicaCounts, Workload, WorkloadReplicaSet, WorkloadReplicaSetStatus,
    WorkloadTemplate,
};
use crate::host_status::set_condition;
use crate::metrics::Metrics;

/// The controller's name in metrics.
pub const CONTROLLER: &str = "workload-replicaset";
/// The label naming a Workload's replica set.
pub const SET_LABEL: &str = "runtime.wasmcloud.dev/workload-replica-set";
/// The annotation holding the hash of the template a Workload was made from
/// (the reference's name for it).
pub const HASH_ANNOTATION: &str = "runtime.wasmcloud.dev/workload-replica-set-generation";
/// Hosts a replacement should avoid (comma separated host ids); the
/// scheduler prefers any other matching host.
pub const AVOID_HOSTS_ANNOTATION: &str = "runtime.wasmcloud.dev/avoid-hosts";
/// How long a replica may stay not Ready before it is replaced, as the
/// reference.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Letters that never spell words or look alike, as Kubernetes' names use.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn encode(mut value: u64, length: usize) -> String {
    let base = ALPHABET.len() as u64;
    (0..length)
        .map(|_| {
            let letter = ALPHABET[(value % base) as usize];
            value /= base;
            char::from(letter)
        })
        .collect()
}

/// The template's hash: FNV-1a (32 bit) over the JSON of its spec, in the
/// name-safe alphabet.
pub fn template_hash(template: &WorkloadTemplate) -> String {
    // Serializing a CRD type cannot fail.
    let json = serde_json::to_vec(&template.spec).unwrap_or_default();
    let hash = json.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    });
    encode(u64::from(hash), 7)
}

/// What a reconcile needs.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// How long a replica may stay not Ready.
    pub grace: Duration,
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReconcileError(#[from] kube::Error);

fn ready_since(workload: &Workload) -> (bool, Option<Timestamp>) {
    let ready = workload.status.as_ref().and_then(|s| {
        s.conditions.iter().find(|c| c.type_ == "Ready").map(|c| {
            (
                c.status == ConditionStatus::True,
                c.last_transition_time.clone(),
            )
        })
    });
    match ready {
        Some((ready, since)) => (ready, since.and_then(|t| t.parse().ok())),
        None => (false, None),
    }
}

fn older_than(since: Option<Timestamp>, grace: Duration) -> bool {
    since.is_some_and(|t| {
        Timestamp::now()
            .duration_since(t)
            .try_into()
            .is_ok_and(|age: Duration| age > grace)
    })
}

/// A replica stuck not Ready (or never Ready) for longer than `grace`.
/// One whose host cannot be asked (`Sync` Unknown: a NATS outage, a host
/// being moved away from) is not stuck: replacing it would only add a copy.
fn stuck(workload: &Workload, grace: Duration) -> bool {
    let unknown = workload.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Sync" && c.status == ConditionStatus::Unknown)
    });
    if unknown {
        return false;
    }
    let (ready, since) = ready_since(workload);
    let created = workload.metadata.creation_timestamp.as_ref().map(|t| t.0);
    !ready && older_than(since.or(created), grace) && older_than(created, grace)
}

fn new_replica(set: &WorkloadReplicaSet, hash: &str, avoid: Option<String>) -> Workload {
    let name = set.name_any();
    let suffix = encode(u64::from_le_bytes(uuid_bytes()), 5);
    let mut labels = set.spec.template.labels.clone();
    labels.insert(SET_LABEL.into(), name.clone());
    let mut annotations = BTreeMap::from([(HASH_ANNOTATION.to_string(), hash.to_string())]);
    if let Some(avoid) = avoid {
        annotations.insert(AVOID_HOSTS_ANNOTATION.into(), avoid);
    }
    Workload {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{suffix}")),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: set.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: set.spec.template.spec.clone(),
        status: None,
    }
}

fn uuid_bytes() -> [u8; 8] {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut out = [0; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

fn owned_by(workload: &Workload, owner: &OwnerReference) -> bool {
    workload
        .owner_references()
        .iter()
        .any(|o| o.uid == owner.uid && o.controller == Some(true))
}

async fn reconcile(
    set: Arc<WorkloadReplicaSet>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = set.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", set.name_any());
    ctx.metrics.reconcile_started(CONTROLLER, &key);
    if set.metadata.deletion_timestamp.is_some() {
        // Its Workloads go with it (ownerReferences).
        ctx.metrics.forgotten(CONTROLLER, &key);
        return Ok(Action::await_change());
    }
    let Some(owner) = set.controller_owner_ref(&()) else {
        return Ok(Action::await_change());
    };
    let workloads: Api<Workload> = Api::namespaced(ctx.client.clone(), &namespace);
    let hash = template_hash(&set.spec.template);
    let selector = format!("{SET_LABEL}={}", set.name_any());
    let owned: Vec<Workload> = workloads
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter(|w| owned_by(w, &owner) && w.metadata.deletion_timestamp.is_none())
        .collect();
    let (mut current, old): (Vec<Workload>, Vec<Workload>) = owned
        .into_iter()
        .partition(|w| w.annotations().get(HASH_ANNOTATION) == Some(&hash));
    let desired = usize::try_from(set.spec.replicas.unwrap_or(1)).unwrap_or(0);
    let now = Timestamp::now().to_string();
    let mut conditions = set
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();

    // Replace replicas stuck past the grace period, away from their host;
    // a quarter of the set at most per pass, so a bad template does not
    // churn every replica at once.
    let budget = desired.div_ceil(4).max(1);
    let mut replacements = Vec::new();
    current.retain(|w| {
        if replacements.len() < budget && stuck(w, ctx.grace) {
            let host = w.status.as_ref().and_then(|s| s.host_id.clone());
            replacements.push((w.name_any(), host));
            false
        } else {
            true
        }
    });
    for (name, _) in &replacements {
        workloads.delete(name, &DeleteParams::default()).await?;
        tracing::info!(replica = %name, set = %key, "replacing a replica stuck not Ready");
    }

    // ScaleUp.
    let mut avoid = replacements.into_iter().filter_map(|(_, host)| host);
    let missing = desired.saturating_sub(current.len());
    for _ in 0..missing {
        let replica = new_replica(&set, &hash, avoid.next());
        current.push(workloads.create(&PostParams::default(), &replica).await?);
    }
    set_condition(
        &mut conditions,
        "ScaleUp",
        ConditionStatus::True,
        "Available",
        &if missing > 0 {
            format!("created {missing}")
        } else {
            String::new()
        },
        &now,
    );

    // ScaleDown: the not-Ready first, then the newest.
    let extra = current.len().saturating_sub(desired);
    if extra > 0 {
        current.sort_by_key(|w| {
            (
                ready_since(w).0,
                std::cmp::Reverse(w.metadata.creation_timestamp.clone()),
            )
        });
        for gone in current.drain(..extra) {
            workloads
                .delete(&gone.name_any(), &DeleteParams::default())
                .await?;
        }
    }
    set_condition(
        &mut conditions,
        "ScaleDown",
        ConditionStatus::True,
        "Available",
        "",
        &now,
    );

    // The older template's replicas go once the current ones are Ready.
    let ready = current.iter().filter(|w| ready_since(w).0).count();
    if ready == desired {
        for stale in &old {
            workloads
                .delete(&stale.name_any(), &DeleteParams::default())
                .await?;
        }
    }

    let all_ready = ready == desired && current.len() == desired;
    set_condition(
        &mut conditions,
        "Ready",
        if all_ready {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        },
        if all_ready { "Available" } else { "NotReady" },
        &if all_ready {
            String::new()
        } else {
            format!("{ready} of {desired} replicas Ready")
        },
        &now,
    );
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let status = WorkloadReplicaSetStatus {
        conditions,
        replicas: Some(ReplicaCounts {
            expected: count(desired),
            current: count(current.len()),
            ready: count(ready),
            unavailable: count(current.len() - ready.min(current.len())),
        }),
    };
    if set.status.as_ref() != Some(&status) {
        let sets: Api<WorkloadReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
        sets.patch_status(
            &set.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "status": status })),
        )
        .await?;
    }
    ctx.metrics.requeued(CONTROLLER, &key);
    Ok(Action::requeue(if all_ready {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(5)
    }))
}

fn error_policy(set: Arc<WorkloadReplicaSet>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(set = %set.name_any(), error = %crate::error_chain(error), "reconcile failed; retrying");
    ctx.metrics.reconcile_failed(CONTROLLER, "api");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller over `sets` (and the Workloads they own, in
/// `workloads`) until the process ends.
pub async fn run(sets: Api<WorkloadReplicaSet>, workloads: Api<Workload>, ctx: Arc<Context>) {
    Controller::new(sets, watcher::Config::default())
        .owns(workloads, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "replica set controller");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::WorkloadSpec;

    #[test]
    fn the_hash_follows_the_spec_only() {
        let mut template = WorkloadTemplate::default();
        let first = template_hash(&template);
        assert_eq!(first.len(), 7);
        assert!(first.bytes().all(|b| ALPHABET.contains(&b)));
        template.labels.insert("a".into(), "b".into());
        assert_eq!(template_hash(&template), first, "labels do not roll");
        template.spec = WorkloadSpec {
            host_id: Some("h1".into()),
            ..Default::default()
        };
        assert_ne!(template_hash(&template), first);
    }
}
