//! `WorkloadDeployment`: replica sets rolled from one template, scaled
//! through `/scale`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::workload::{KubernetesOptions, ObjectRef};
use super::workload_replica_set::{ReplicaCounts, WorkloadTemplate};

/// How a new template replaces the old.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeployPolicy {
    /// The new replica set is Ready before the old one goes.
    #[default]
    RollingUpdate,
    /// The old replica set goes first.
    Recreate,
}

/// An Artifact the template names as `artifact://<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentArtifact {
    /// The name used in `artifact://<name>`.
    pub name: String,
    /// The Artifact object.
    pub artifact_from: ObjectRef,
}

/// Runs `replicas` Workloads of a template and rolls them when it changes.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "WorkloadDeployment",
    namespaced,
    status = "WorkloadDeploymentStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.currentReplicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"REPLICAS","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentSpec {
    /// How many Workloads (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// What each is made from.
    pub template: WorkloadTemplate,
    /// How a changed template rolls out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_policy: Option<DeployPolicy>,
    /// Artifacts the template names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<WorkloadDeploymentArtifact>,
    /// Kubernetes integration, copied into the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesOptions>,
}

/// What the operator observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentStatus {
    /// `Artifact`, `Sync`, `Deploy`, `Scale`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The replica set of the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replica_set: Option<ObjectRef>,
    /// The one it replaces, while a roll is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_replica_set: Option<ObjectRef>,
    /// Replica counts over its replica sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaCounts>,
    /// Replicas existing now (for `/scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    /// The label selector of its Workloads (for `/scale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}
