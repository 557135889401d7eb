//! `WorkloadReplicaSet`: a number of Workloads made from one template.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::workload::WorkloadSpec;

/// The Workloads a replica set (or deployment) makes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTemplate {
    /// Annotations of each Workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels of each Workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The spec of each Workload.
    pub spec: WorkloadSpec,
}

/// How many replicas are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaCounts {
    /// Asked for.
    #[serde(default)]
    pub expected: i32,
    /// Existing.
    #[serde(default)]
    pub current: i32,
    /// Ready.
    #[serde(default)]
    pub ready: i32,
    /// Not ready.
    #[serde(default)]
    pub unavailable: i32,
}

/// Keeps `replicas` Workloads of one template.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "WorkloadReplicaSet",
    namespaced,
    status = "WorkloadReplicaSetStatus",
    printcolumn = r#"{"name":"REPLICAS","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReplicaSetSpec {
    /// How many Workloads (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// What each is made from.
    pub template: WorkloadTemplate,
}

/// What the operator observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReplicaSetStatus {
    /// `ScaleUp`, `ScaleDown`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Replica counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaCounts>,
}
