//! The WorkloadDeployment controller: Artifact -> Sync -> Deploy -> Scale ->
//! Ready, as the reference. The template, with `artifact://<name>` images
//! resolved and `spec.kubernetes` copied in, is hashed; its replica set is
//! `<deployment>-<hash>`. `RollingUpdate` keeps the previous set until the
//! new one is Ready; `Recreate` removes the old sets first. The status
//! carries `currentReplicas` and `selector`, which `/scale` reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::crd::{
    Artifact, Condition, ConditionStatus, DeployPolicy, ObjectRef as NameRef, ReplicaCounts,
    Workload, WorkloadDeployment, WorkloadReplicaSet, WorkloadReplicaSetSpec, WorkloadTemplate,
};
use crate::host_status::set_condition;
use crate::metrics::Metrics;
use crate::replica_set::template_hash;

/// The controller's name in metrics.
pub const CONTROLLER: &str = "workload-deployment";
/// The label on a deployment's replica sets and Workloads.
pub const DEPLOYMENT_LABEL: &str = "runtime.wasmcloud.dev/workload-deployment";
/// Images naming an Artifact start with this.
pub const ARTIFACT_SCHEME: &str = "artifact://";

/// What a reconcile needs.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReconcileError(#[from] kube::Error);

/// Why the template cannot be resolved yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    /// A named Artifact does not exist.
    #[error("Artifact `{0}` not found")]
    Missing(String),
    /// It exists but has no image yet.
    #[error("Artifact `{0}` is not published yet")]
    Unpublished(String),
    /// An image names an artifact `spec.artifacts` does not list.
    #[error("image `{0}` names an artifact that spec.artifacts does not list")]
    Unlisted(String),
}

/// The template as its replica set gets it: `artifact://<name>` images
/// replaced by the Artifacts' URLs (`urls`, by the name used in the
/// template), `spec.kubernetes` copied in, and the deployment's label added.
pub fn resolve_template(
    deployment: &WorkloadDeployment,
    urls: &BTreeMap<String, String>,
) -> Result<WorkloadTemplate, ArtifactError> {
    let mut template = deployment.spec.template.clone();
    let resolve = |image: &mut String| -> Result<(), ArtifactError> {
        if let Some(name) = image.strip_prefix(ARTIFACT_SCHEME) {
            *image = urls
                .get(name)
                .ok_or_else(|| ArtifactError::Unlisted(image.clone()))?
                .clone();
        }
        Ok(())
    };
    for component in &mut template.spec.components {
        resolve(&mut component.image)?;
    }
    if let Some(service) = &mut template.spec.service {
        resolve(&mut service.image)?;
    }
    if deployment.spec.kubernetes.is_some() {
        template.spec.kubernetes = deployment.spec.kubernetes.clone();
    }
    template
        .labels
        .insert(DEPLOYMENT_LABEL.into(), deployment.name_any());
    Ok(template)
}

/// The URLs of the deployment's Artifacts, by the name the template uses.
async fn artifact_urls(
    deployment: &WorkloadDeployment,
    artifacts: &Api<Artifact>,
) -> Result<Result<BTreeMap<String, String>, ArtifactError>, kube::Error> {
    let mut urls = BTreeMap::new();
    for entry in &deployment.spec.artifacts {
        let name = &entry.artifact_from.name;
        let Some(artifact) = artifacts.get_opt(name).await? else {
            return Ok(Err(ArtifactError::Missing(name.clone())));
        };
        match artifact.status.and_then(|s| s.artifact_url) {
            Some(url) if !url.is_empty() => {
                urls.insert(entry.name.clone(), url);
            }
            _ => return Ok(Err(ArtifactError::Unpublished(name.clone()))),
        }
    }
    Ok(Ok(urls))
}

fn set_ready(set: &WorkloadReplicaSet) -> bool {
    set.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    })
}

fn counts(set: &WorkloadReplicaSet) -> ReplicaCounts {
    set.status
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or_default()
}

struct Pass {
    conditions: Vec<Condition>,
    now: String,
}

impl Pass {
    fn set(&mut self, type_: &str, status: ConditionStatus, reason: &str, message: &str) {
        set_condition(
            &mut self.conditions,
            type_,
            status,
            reason,
            message,
            &self.now,
        );
    }
}

async fn reconcile(
    deployment: Arc<WorkloadDeployment>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = deployment.namespace().unwrap_or_default();
    let name = deployment.name_any();
    let key = format!("{namespace}/{name}");
    ctx.metrics.reconcile_started(CONTROLLER, &key);
    if deployment.metadata.deletion_timestamp.is_some() {
        ctx.metrics.forgotten(CONTROLLER, &key);
        return Ok(Action::await_change());
    }
    let Some(owner) = deployment.controller_owner_ref(&()) else {
        return Ok(Action::await_change());
    };
    let sets: Api<WorkloadReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let artifacts: Api<Artifact> = Api::namespaced(ctx.client.clone(), &namespace);
    let original = deployment.status.clone().unwrap_or_default();
    let mut status = original.clone();
    let mut pass = Pass {
        conditions: original.conditions.clone(),
        now: Timestamp::now().to_string(),
    };
    let desired = deployment.spec.replicas.unwrap_or(1).max(0);
    status.selector = Some(format!("{DEPLOYMENT_LABEL}={name}"));

    let outcome: Duration = 'pass: {
        // Artifact.
        let resolved = artifact_urls(&deployment, &artifacts)
            .await?
            .and_then(|urls| resolve_template(&deployment, &urls));
        let template = match resolved {
            Ok(template) => {
                pass.set("Artifact", ConditionStatus::True, "Available", "");
                template
            }
            Err(e) => {
                pass.set(
                    "Artifact",
                    ConditionStatus::False,
                    "Unresolved",
                    &e.to_string(),
                );
                break 'pass Duration::from_secs(5);
            }
        };
        let hash = template_hash(&template);
        let set_name = format!("{name}-{hash}");
        let mut owned: Vec<WorkloadReplicaSet> = sets
            .list(&ListParams::default().labels(&format!("{DEPLOYMENT_LABEL}={name}")))
            .await?
            .items
            .into_iter()
            .filter(|s| {
                s.owner_references()
                    .iter()
                    .any(|o| o.uid == owner.uid && o.controller == Some(true))
                    && s.metadata.deletion_timestamp.is_none()
            })
            .collect();

        // Sync: does a set of this template exist?
        let current = owned.iter().find(|s| s.name_any() == set_name).cloned();
        if current.is_some() {
            pass.set("Sync", ConditionStatus::True, "Available", "");
        } else {
            pass.set(
                "Sync",
                ConditionStatus::False,
                "TemplateChanged",
                &format!("replica set `{set_name}` is to be created"),
            );
        }

        // Deploy.
        let policy = deployment.spec.deploy_policy.unwrap_or_default();
        let current = match current {
            Some(current) => current,
            None => {
                if policy == DeployPolicy::Recreate {
                    // The old version stops completely before the new one
                    // starts: its sets go, and the new set waits until none
                    // of their Workloads is left.
                    for old in owned.drain(..) {
                        sets.delete(&old.name_any(), &DeleteParams::default())
                            .await?;
                    }
                    let workloads: Api<Workload> = Api::namespaced(ctx.client.clone(), &namespace);
                    let left = workloads
                        .list(&ListParams::default().labels(&format!("{DEPLOYMENT_LABEL}={name}")))
                        .await?
                        .items
                        .len();
                    if left > 0 {
                        pass.set(
                            "Deploy",
                            ConditionStatus::Unknown,
                            "Recreating",
                            &format!("waiting for {left} old replicas to stop"),
                        );
                        break 'pass Duration::from_secs(2);
                    }
                }
                let mut labels = deployment.labels().clone();
                labels.insert(DEPLOYMENT_LABEL.into(), name.clone());
                let set = WorkloadReplicaSet {
                    metadata: ObjectMeta {
                        name: Some(set_name.clone()),
                        namespace: Some(namespace.clone()),
                        labels: Some(labels),
                        annotations: Some(deployment.annotations().clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    spec: WorkloadReplicaSetSpec {
                        replicas: Some(desired),
                        template,
                    },
                    status: None,
                };
                let created = match sets.create(&PostParams::default(), &set).await {
                    Ok(created) => created,
                    Err(kube::Error::Api(e)) if e.code == 409 => sets.get(&set_name).await?,
                    Err(e) => return Err(e.into()),
                };
                status.current_replica_set = Some(NameRef {
                    name: set_name.clone(),
                });
                pass.set("Sync", ConditionStatus::True, "Available", "");
                created
            }
        };
        status.current_replica_set = Some(NameRef {
            name: set_name.clone(),
        });
        pass.set("Deploy", ConditionStatus::True, "Available", "");

        // Scale: the current set follows `replicas`; sets other than the
        // current and (while rolling) the previous one go.
        if current.spec.replicas != Some(desired) {
            sets.patch(
                &set_name,
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({ "spec": { "replicas": desired } })),
            )
            .await?;
        }
        // Until the current set is Ready, the older ones keep serving
        // (RollingUpdate; Recreate removed them already); then they go.
        let others: Vec<&WorkloadReplicaSet> =
            owned.iter().filter(|s| s.name_any() != set_name).collect();
        let current_counts = counts(&current);
        let scaled = set_ready(&current)
            && current_counts.ready == desired
            && current_counts.expected == desired;
        let mut totals = ReplicaCounts {
            expected: desired,
            ..current_counts
        };
        if scaled {
            for other in &others {
                sets.delete(&other.name_any(), &DeleteParams::default())
                    .await?;
            }
            status.previous_replica_set = None;
            pass.set("Scale", ConditionStatus::True, "Available", "");
        } else {
            for other in &others {
                let c = counts(other);
                totals.current += c.current;
                totals.ready += c.ready;
                totals.unavailable += c.unavailable;
            }
            status.previous_replica_set = others
                .iter()
                .max_by_key(|s| s.metadata.creation_timestamp.clone())
                .map(|s| NameRef { name: s.name_any() });
            pass.set(
                "Scale",
                ConditionStatus::Unknown,
                "Progressing",
                &format!(
                    "{} of {desired} replicas of `{set_name}` Ready",
                    current_counts.ready
                ),
            );
        }
        status.replicas = Some(totals);
        status.current_replicas = Some(totals.current);
        Duration::from_secs(if scaled { 60 } else { 5 })
    };

    let all = ["Artifact", "Sync", "Deploy", "Scale"].iter().all(|t| {
        pass.conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == ConditionStatus::True)
    });
    let (state, reason) = if all {
        (ConditionStatus::True, "Available")
    } else {
        (ConditionStatus::False, "NotReady")
    };
    pass.set("Ready", state, reason, "");
    status.conditions = pass.conditions;
    if status != original {
        let deployments: Api<WorkloadDeployment> = Api::namespaced(ctx.client.clone(), &namespace);
        // Null clears the previous set once it is gone.
        let patch = serde_json::json!({ "status": {
            "conditions": status.conditions,
            "currentReplicaSet": status.current_replica_set,
            "previousReplicaSet": status.previous_replica_set,
            "replicas": status.replicas,
            "currentReplicas": status.current_replicas,
            "selector": status.selector,
        }});
        deployments
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    ctx.metrics.requeued(CONTROLLER, &key);
    Ok(Action::requeue(outcome))
}

fn error_policy(
    deployment: Arc<WorkloadDeployment>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    if crate::is_not_found(&error.0) {
        // Deleted while it was being reconciled: nothing left to do.
        return Action::await_change();
    }
    tracing::warn!(deployment = %deployment.name_any(), error = %crate::error_chain(error), "reconcile failed; retrying");
    ctx.metrics.reconcile_failed(CONTROLLER, "api");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller over `deployments` (woken by their replica sets and
/// by the Artifacts they name) until the process ends.
pub async fn run(
    deployments: Api<WorkloadDeployment>,
    sets: Api<WorkloadReplicaSet>,
    artifacts: Api<Artifact>,
    ctx: Arc<Context>,
) {
    let controller = Controller::new(deployments, watcher::Config::default());
    let store = controller.store();
    controller
        .owns(sets, watcher::Config::default())
        .watches(
            artifacts,
            watcher::Config::default(),
            move |artifact: Artifact| {
                let name = artifact.name_any();
                let namespace = artifact.namespace();
                store
                    .state()
                    .iter()
                    .filter(|d| {
                        d.namespace() == namespace
                            && d.spec
                                .artifacts
                                .iter()
                                .any(|a| a.artifact_from.name == name)
                    })
                    .map(|d| ObjectRef::from_obj(&**d))
                    .collect::<Vec<_>>()
            },
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "deployment controller");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        KubernetesOptions, ServiceRef, WorkloadComponent, WorkloadDeploymentArtifact,
        WorkloadDeploymentSpec,
    };

    fn deployment(image: &str) -> WorkloadDeployment {
        let mut template = WorkloadTemplate::default();
        template.spec.components.push(WorkloadComponent {
            name: "hello".into(),
            image: image.into(),
            ..Default::default()
        });
        WorkloadDeployment::new(
            "web",
            WorkloadDeploymentSpec {
                template,
                artifacts: vec![WorkloadDeploymentArtifact {
                    name: "hello".into(),
                    artifact_from: NameRef {
                        name: "hello-artifact".into(),
                    },
                }],
                kubernetes: Some(KubernetesOptions {
                    service: Some(ServiceRef { name: "web".into() }),
                }),
                ..Default::default()
            },
        )
    }

    #[test]
    fn artifact_images_resolve_and_kubernetes_is_copied() {
        let urls = BTreeMap::from([("hello".to_string(), "reg/hello:2".to_string())]);
        let template = resolve_template(&deployment("artifact://hello"), &urls).unwrap();
        assert_eq!(template.spec.components[0].image, "reg/hello:2");
        assert_eq!(
            template.spec.kubernetes.unwrap().service.unwrap().name,
            "web"
        );
        assert_eq!(template.labels[DEPLOYMENT_LABEL], "web");
        let unlisted = resolve_template(&deployment("artifact://other"), &urls).unwrap_err();
        assert_eq!(unlisted, ArtifactError::Unlisted("artifact://other".into()));
        // Plain images are left alone.
        let plain = resolve_template(&deployment("reg/plain:1"), &BTreeMap::new()).unwrap();
        assert_eq!(plain.spec.components[0].image, "reg/plain:1");
    }
}
