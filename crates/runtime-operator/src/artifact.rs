//! The Artifact controller: Sync, Published, Ready, as the reference. An
//! Artifact's `artifactUrl` is its image once observed; a finalizer holds
//! its deletion while a WorkloadDeployment of its namespace still names it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::{Controller, watcher};
use kube::{Api, ResourceExt};

use crate::crd::{Artifact, ArtifactStatus, ConditionStatus, WorkloadDeployment};
use crate::host_status::set_condition;
use crate::metrics::Metrics;

/// The controller's name in metrics.
pub const CONTROLLER: &str = "artifact";
/// Held while a deployment names the Artifact.
pub const FINALIZER: &str = "runtime.wasmcloud.dev/artifact-finalizer";

/// What a reconcile needs.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// Deployments still name it.
    #[error("Artifact `{artifact}` is still used by WorkloadDeployment(s) {deployments}")]
    InUse {
        /// The Artifact.
        artifact: String,
        /// Who uses it.
        deployments: String,
    },
    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<ReconcileError>>),
}

/// Names of the deployments in `namespace` that name Artifact `name`.
pub async fn users(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<String>, kube::Error> {
    let deployments: Api<WorkloadDeployment> = Api::namespaced(client.clone(), namespace);
    Ok(deployments
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|d| {
            d.metadata.deletion_timestamp.is_none()
                && d.spec
                    .artifacts
                    .iter()
                    .any(|a| a.artifact_from.name == name)
        })
        .map(|d| d.name_any())
        .collect())
}

async fn apply(artifact: Arc<Artifact>, ctx: &Context) -> Result<Action, ReconcileError> {
    let now = Timestamp::now().to_string();
    let mut status = artifact.status.clone().unwrap_or_default();
    let original = status.clone();
    if status.observed_generation != artifact.metadata.generation {
        status.observed_generation = artifact.metadata.generation;
        status.artifact_url = Some(artifact.spec.image.clone());
    }
    set_condition(
        &mut status.conditions,
        "Sync",
        ConditionStatus::True,
        "Available",
        "",
        &now,
    );
    let published = status
        .artifact_url
        .as_deref()
        .is_some_and(|u| !u.is_empty());
    let (state, reason) = if published {
        (ConditionStatus::True, "Available")
    } else {
        (ConditionStatus::False, "NoImage")
    };
    set_condition(&mut status.conditions, "Published", state, reason, "", &now);
    set_condition(&mut status.conditions, "Ready", state, reason, "", &now);
    if status != original {
        write_status(&artifact, &status, ctx).await?;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn write_status(
    artifact: &Artifact,
    status: &ArtifactStatus,
    ctx: &Context,
) -> Result<(), kube::Error> {
    let api: Api<Artifact> = Api::namespaced(
        ctx.client.clone(),
        &artifact.namespace().unwrap_or_default(),
    );
    api.patch_status(
        &artifact.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({ "status": status })),
    )
    .await
    .map(drop)
}

async fn cleanup(artifact: Arc<Artifact>, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = artifact.namespace().unwrap_or_default();
    let users = users(&ctx.client, &namespace, &artifact.name_any()).await?;
    if users.is_empty() {
        return Ok(Action::await_change());
    }
    Err(ReconcileError::InUse {
        artifact: artifact.name_any(),
        deployments: users.join(", "),
    })
}

async fn reconcile(artifact: Arc<Artifact>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = artifact.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", artifact.name_any());
    ctx.metrics.reconcile_started(CONTROLLER, &key);
    let api: Api<Artifact> = Api::namespaced(ctx.client.clone(), &namespace);
    let action = finalizer(&api, FINALIZER, artifact, |event| async {
        match event {
            finalizer::Event::Apply(a) => apply(a, &ctx).await,
            finalizer::Event::Cleanup(a) => cleanup(a, &ctx).await,
        }
    })
    .await
    .map_err(|e| ReconcileError::Finalizer(Box::new(e)))?;
    ctx.metrics.requeued(CONTROLLER, &key);
    Ok(action)
}

fn error_policy(artifact: Arc<Artifact>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(artifact = %artifact.name_any(), error = %crate::error_chain(error), "reconcile failed; retrying");
    let kind = match error {
        ReconcileError::Kube(_) => "api",
        ReconcileError::InUse { .. } => "in-use",
        ReconcileError::Finalizer(inner) => match &**inner {
            finalizer::Error::CleanupFailed(ReconcileError::InUse { .. }) => "in-use",
            _ => "finalizer",
        },
    };
    ctx.metrics.reconcile_failed(CONTROLLER, kind);
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller over `artifacts` until the process ends.
pub async fn run(artifacts: Api<Artifact>, ctx: Arc<Context>) {
    Controller::new(artifacts, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "artifact controller");
            }
        })
        .await;
}
