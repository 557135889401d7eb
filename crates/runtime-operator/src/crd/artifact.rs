//! `Artifact`: a component image that deployments name as
//! `artifact://<name>`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::workload::ObjectRef;

/// An OCI image of a component, published for deployments to use.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "Artifact",
    namespaced,
    status = "ArtifactStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSpec {
    /// The image reference.
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret to pull it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<ObjectRef>,
}

/// What the operator observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStatus {
    /// `Sync`, `Published`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The image deployments resolve `artifact://<name>` to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_url: Option<String>,
}
