//! The Workload controller: Config -> HostSelection -> Placement -> Sync ->
//! Ready, as the reference, with two differences that matter to users:
//! the host is the least loaded one that matches (see
//! [`scheduling`](crate::scheduling)), and a workload whose host is gone
//! (its Host `Ready=False`, which only a settled NATS connection can
//! conclude) is placed again elsewhere at once instead of never.

pub mod start;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use runtime_proto::v2::WorkloadState;

use crate::control::{ControlError, HostControl, state_name};
use crate::crd::{Condition, ConditionStatus, Host, Workload, WorkloadStatus};
use crate::host_status::set_condition;
use crate::metrics::Metrics;
use crate::replica_set::AVOID_HOSTS_ANNOTATION;
use crate::scheduling::{Hints, choose_host_with, is_ready};

use self::start::{ConfigError, Resolver};

/// Held while the workload may still run on a host.
pub const FINALIZER: &str = "runtime.wasmcloud.dev/workload-finalizer";
/// The controller's name in metrics and Events.
pub const CONTROLLER: &str = "workload";

/// How soon to look again while something is pending.
const RETRY: Duration = Duration::from_secs(2);
/// How soon to look again when waiting on the user (a missing ConfigMap,
/// no matching host).
const WAIT: Duration = Duration::from_secs(5);
/// How often a Ready workload is checked on its host.
const RESYNC: Duration = Duration::from_secs(30);
/// How long a deleted workload behind a Service keeps serving after it left
/// the Service's EndpointSlice, so that clients (kube-proxy, gateways) stop
/// sending to it first: the same idea as a pod's preStop delay.
pub const DEREGISTRATION_DELAY: Duration = Duration::from_secs(3);

/// What a reconcile needs.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Requests to hosts.
    pub control: HostControl,
    /// The Hosts (operator namespace).
    pub hosts: Store<Host>,
    /// Whether hosts serve every environment.
    pub allow_shared_hosts: bool,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Events.
    pub recorder: Recorder,
    /// Where this operator placed which workloads (by UID).
    pub placements: Placements,
}

/// The operator's own record of which workloads it placed on which host,
/// ahead of the hosts' heartbeats. Choosing a host and recording the choice
/// happen under one lock, so concurrent reconciles spread out.
#[derive(Debug, Default)]
pub struct Placements(Mutex<HashMap<String, String>>);

impl Placements {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Workloads per host.
    fn counts(map: &HashMap<String, String>) -> std::collections::BTreeMap<String, i64> {
        let mut counts = std::collections::BTreeMap::new();
        for host in map.values() {
            *counts.entry(host.clone()).or_insert(0) += 1;
        }
        counts
    }

    fn record(&self, uid: &str, host: &str) {
        self.lock().insert(uid.into(), host.into());
    }

    fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<ReconcileError>>),
    /// A referenced object could not be read.
    #[error(transparent)]
    Config(ConfigError),
    /// The workload could not be stopped on a host that may still run it.
    #[error("cannot stop the workload on its host")]
    Stop(#[source] ControlError),
}

impl ReconcileError {
    /// The kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kube(_) => "api",
            Self::Finalizer(_) => "finalizer",
            Self::Config(_) => "config",
            Self::Stop(_) => "stop",
        }
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// Conditions being set in one pass, with an Event for each change.
struct Conditions {
    list: Vec<Condition>,
    events: Vec<Event>,
    now: String,
}

impl Conditions {
    fn set(&mut self, type_: &str, status: ConditionStatus, reason: &str, message: &str) {
        if set_condition(&mut self.list, type_, status, reason, message, &self.now) {
            let type_ = match status {
                ConditionStatus::False => EventType::Warning,
                _ => EventType::Normal,
            };
            self.events.push(Event {
                type_,
                reason: reason.into(),
                note: (!message.is_empty()).then(|| message.to_string()),
                action: "Reconcile".into(),
                secondary: None,
            });
        }
    }

    fn is_true(&self, type_: &str) -> bool {
        self.list
            .iter()
            .any(|c| c.type_ == type_ && c.status == ConditionStatus::True)
    }
}

fn find_host(hosts: &Store<Host>, host_id: &str) -> Option<Arc<Host>> {
    hosts
        .state()
        .into_iter()
        .find(|h| h.fields.host_id == host_id)
}

/// The operator concluded the host is gone: its Host's Ready is False, or
/// the Host itself is gone (removed after being gone for long, or by hand;
/// the store is complete before any reconcile runs).
fn host_gone(hosts: &Store<Host>, host_id: &str) -> bool {
    find_host(hosts, host_id).is_none_or(|host| {
        host.fields.status.as_ref().is_some_and(|status| {
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::False)
        })
    })
}

/// One pass over a live workload: moves `status` as far as it can go and
/// says when to look again.
async fn advance(
    workload: &Workload,
    status: &mut WorkloadStatus,
    conditions: &mut Conditions,
    ctx: &Context,
) -> Result<Duration, ReconcileError> {
    let namespace = workload.namespace().unwrap_or_default();
    let uid = workload.uid().unwrap_or_default();

    // A host the operator knows to be gone: place again, elsewhere.
    if let Some(host_id) = status.host_id.clone()
        && workload.spec.host_id.is_none()
        && host_gone(&ctx.hosts, &host_id)
    {
        status.host_id = None;
        status.environment = None;
        status.workload_id = None;
        ctx.placements.forget(&uid);
        conditions.set(
            "Placement",
            ConditionStatus::False,
            "HostLost",
            &format!("host `{host_id}` is gone; placing the workload on another host"),
        );
        conditions.set("Sync", ConditionStatus::Unknown, "HostLost", "");
    }

    // Config: what the start request needs, while there is one to send.
    let request = if status.workload_id.is_none() {
        match Resolver::new(ctx.client.clone(), &namespace)
            .workload(workload)
            .await
        {
            Ok(request) => {
                conditions.set("Config", ConditionStatus::True, "Available", "");
                Some(request)
            }
            Err(e @ ConfigError::Api { .. }) => return Err(ReconcileError::Config(e)),
            Err(e) => {
                conditions.set(
                    "Config",
                    ConditionStatus::False,
                    "ConfigUnavailable",
                    &e.to_string(),
                );
                return Ok(WAIT);
            }
        }
    } else {
        None
    };

    // HostSelection.
    let host_id = match (&status.host_id, &workload.spec.host_id) {
        (Some(placed), _) => {
            // After a restart the record fills in as workloads reconcile.
            ctx.placements.record(&uid, placed);
            placed.clone()
        }
        (None, Some(pinned)) => {
            status.host_id = Some(pinned.clone());
            status.environment =
                find_host(&ctx.hosts, pinned).and_then(|h| h.fields.environment.clone());
            pinned.clone()
        }
        (None, None) => {
            let hosts: Vec<Host> = ctx.hosts.state().iter().map(|h| (**h).clone()).collect();
            let avoid: Vec<&str> = workload
                .annotations()
                .get(AVOID_HOSTS_ANNOTATION)
                .map(|hosts| hosts.split(',').map(str::trim).collect())
                .unwrap_or_default();
            let mut placements = ctx.placements.lock();
            let hints = Hints {
                avoid,
                placed: Placements::counts(&placements),
            };
            match choose_host_with(
                &workload.spec,
                &namespace,
                &hosts,
                ctx.allow_shared_hosts,
                &hints,
            ) {
                Ok(host) => {
                    placements.insert(uid.clone(), host.fields.host_id.clone());
                    status.host_id = Some(host.fields.host_id.clone());
                    status.environment = host.fields.environment.clone();
                    host.fields.host_id.clone()
                }
                Err(e) => {
                    conditions.set(
                        "HostSelection",
                        ConditionStatus::False,
                        e.reason(),
                        &e.to_string(),
                    );
                    return Ok(WAIT);
                }
            }
        }
    };
    conditions.set(
        "HostSelection",
        ConditionStatus::True,
        "Available",
        &format!("host `{host_id}`"),
    );

    // Placement: the object's UID is the workload id, so a replayed start
    // is answered with the state of the first.
    if let Some(request) = request {
        match ctx.control.start(&host_id, &uid, request).await {
            Ok(reply) if reply.workload_state == WorkloadState::Error as i32 => {
                // Stop it, so the next start is a fresh one.
                let _ = ctx.control.stop(&host_id, &uid).await;
                conditions.set(
                    "Placement",
                    ConditionStatus::False,
                    "StartFailed",
                    &format!("host `{host_id}` could not start it: {}", reply.message),
                );
                return Ok(WAIT);
            }
            Ok(_) => {
                status.workload_id = Some(uid.clone());
                conditions.set(
                    "Placement",
                    ConditionStatus::True,
                    "Available",
                    &format!("started on host `{host_id}`"),
                );
            }
            Err(e) => {
                conditions.set(
                    "Placement",
                    ConditionStatus::False,
                    "StartFailed",
                    &e.to_string(),
                );
                return Ok(RETRY);
            }
        }
    }
    let Some(workload_id) = status.workload_id.clone() else {
        return Ok(RETRY);
    };

    // Sync: is it running there?
    let synced = match ctx.control.status(&host_id, &workload_id).await {
        Ok(reply) => match WorkloadState::try_from(reply.workload_state) {
            Ok(WorkloadState::Running | WorkloadState::Completed) => {
                conditions.set("Sync", ConditionStatus::True, "Available", "");
                true
            }
            Ok(WorkloadState::NotFound) => {
                // The host forgot it (restarted with the same id): start again.
                status.workload_id = None;
                conditions.set(
                    "Sync",
                    ConditionStatus::False,
                    "NotFound",
                    &format!("host `{host_id}` does not run it; starting it again"),
                );
                false
            }
            _ => {
                conditions.set(
                    "Sync",
                    ConditionStatus::False,
                    "NotOperational",
                    &format!(
                        "workload is not operational: {}{}",
                        state_name(reply.workload_state),
                        if reply.message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", reply.message)
                        }
                    ),
                );
                false
            }
        },
        Err(e @ (ControlError::NoResponders { .. } | ControlError::TimedOut { .. })) => {
            conditions.set(
                "Sync",
                ConditionStatus::Unknown,
                "HostUnreachable",
                &e.to_string(),
            );
            false
        }
        Err(e) => {
            conditions.set(
                "Sync",
                ConditionStatus::Unknown,
                "StatusFailed",
                &e.to_string(),
            );
            false
        }
    };
    Ok(if synced { RESYNC } else { RETRY })
}

/// Ready: placed, started and running there. Set after every pass,
/// whichever step it stopped at, so it never outlives its reasons.
fn set_ready(status: &WorkloadStatus, conditions: &mut Conditions) {
    let ready = status.host_id.is_some()
        && status.workload_id.is_some()
        && conditions.is_true("Placement")
        && conditions.is_true("Sync");
    if ready {
        conditions.set("Ready", ConditionStatus::True, "Available", "");
    } else {
        conditions.set(
            "Ready",
            ConditionStatus::False,
            "NotReady",
            "waiting for Placement and Sync",
        );
    }
}

/// Writes what changed and publishes the Events.
async fn apply(workload: Arc<Workload>, ctx: &Context) -> Result<Action, ReconcileError> {
    let original = workload.status.clone().unwrap_or_default();
    let mut status = original.clone();
    let mut conditions = Conditions {
        list: original.conditions.clone(),
        events: Vec::new(),
        now: now(),
    };
    let outcome = advance(&workload, &mut status, &mut conditions, ctx).await;
    set_ready(&status, &mut conditions);
    status.conditions = conditions.list;
    if status != original {
        let api: Api<Workload> = Api::namespaced(
            ctx.client.clone(),
            &workload.namespace().unwrap_or_default(),
        );
        // Null clears a field a merge patch would otherwise keep.
        let patch = serde_json::json!({ "status": {
            "conditions": status.conditions,
            "hostId": status.host_id,
            "environment": status.environment,
            "workloadId": status.workload_id,
        }});
        api.patch_status(
            &workload.name_any(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    }
    let reference = workload.object_ref(&());
    for event in &conditions.events {
        if let Err(e) = ctx.recorder.publish(event, &reference).await {
            tracing::warn!(error = %e, reason = %event.reason, "cannot record an Event");
        }
    }
    Ok(Action::requeue(outcome?))
}

/// Stops the workload on its host before the object goes. A host that is
/// gone has nothing to stop; other failures are logged, never block the
/// deletion (as the reference).
async fn cleanup(workload: Arc<Workload>, ctx: &Context) -> Result<Action, ReconcileError> {
    let status = workload.status.clone().unwrap_or_default();
    let behind_service = workload
        .spec
        .kubernetes
        .as_ref()
        .is_some_and(|k| k.service.is_some());
    if behind_service && status.workload_id.is_some() {
        let deleted_for = workload
            .metadata
            .deletion_timestamp
            .as_ref()
            .and_then(|t| Timestamp::now().duration_since(t.0).try_into().ok())
            .unwrap_or(Duration::ZERO);
        if let Some(left) = DEREGISTRATION_DELAY.checked_sub(deleted_for) {
            tokio::time::sleep(left).await;
        }
    }
    ctx.placements.forget(&workload.uid().unwrap_or_default());
    // Stop it wherever it may run: a start that timed out may still have
    // happened, so the UID is stopped even without a workload id.
    if let Some(host) = &status.host_id {
        let uid = workload.uid().unwrap_or_default();
        match ctx.control.stop(host, &uid).await {
            Ok(_) | Err(ControlError::NoResponders { .. }) => {}
            Err(_) if host_gone(&ctx.hosts, host) => {}
            // The host may still run it: keep the finalizer and retry.
            Err(e) => return Err(ReconcileError::Stop(e)),
        }
    }
    Ok(Action::await_change())
}

async fn reconcile(workload: Arc<Workload>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let key = format!(
        "{}/{}",
        workload.namespace().unwrap_or_default(),
        workload.name_any()
    );
    ctx.metrics.reconcile_started(CONTROLLER, &key);
    let api: Api<Workload> = Api::namespaced(
        ctx.client.clone(),
        &workload.namespace().unwrap_or_default(),
    );
    let action = finalizer(&api, FINALIZER, workload, |event| async {
        match event {
            finalizer::Event::Apply(w) => apply(w, &ctx).await,
            finalizer::Event::Cleanup(w) => cleanup(w, &ctx).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))?;
    if action == Action::await_change() {
        ctx.metrics.forgotten(CONTROLLER, &key);
    } else {
        ctx.metrics.requeued(CONTROLLER, &key);
    }
    Ok(action)
}

fn error_policy(workload: Arc<Workload>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(
        workload = %workload.name_any(),
        namespace = %workload.namespace().unwrap_or_default(),
        error = %crate::error_chain(error),
        "reconcile failed; retrying"
    );
    ctx.metrics.reconcile_failed(CONTROLLER, error.kind());
    Action::requeue(WAIT)
}

/// What about a Host matters to placement: its id, readiness, labels and
/// environment. Heartbeats change its status every few seconds; only a
/// change of these wakes workloads.
fn placement_view(
    host: &Host,
) -> (
    bool,
    Option<std::collections::BTreeMap<String, String>>,
    Option<String>,
) {
    (
        is_ready(host),
        host.metadata.labels.clone(),
        host.fields.environment.clone(),
    )
}

/// Runs the controller over `workloads` until the process ends. `hosts`
/// is the Host collection whose changes wake the workloads they concern:
/// the ones on a host whose readiness changed, and every unplaced one.
pub async fn run(workloads: Api<Workload>, hosts: Api<Host>, ctx: Arc<Context>) {
    let controller = Controller::new(workloads, watcher::Config::default());
    let store = controller.store();
    let seen: Mutex<HashMap<String, _>> = Mutex::default();
    controller
        .watches(hosts, watcher::Config::default(), move |host: Host| {
            let view = placement_view(&host);
            let changed = {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.insert(host.fields.host_id.clone(), view.clone()) != Some(view)
            };
            let wake: Vec<ObjectRef<Workload>> = if changed {
                store
                    .state()
                    .iter()
                    .filter(|w| {
                        let placed = w.status.as_ref().and_then(|s| s.host_id.as_deref());
                        placed.is_none() || placed == Some(host.fields.host_id.as_str())
                    })
                    .map(|w| ObjectRef::from_obj(&**w))
                    .collect()
            } else {
                Vec::new()
            };
            wake
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "workload controller");
            }
        })
        .await;
}
