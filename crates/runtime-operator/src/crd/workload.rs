//! `Workload`: components placed on one host.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;

/// A reference to an object by name (in the same namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectRef {
    /// Its name.
    pub name: String,
}

/// Configuration from literal values, ConfigMaps and Secrets, merged in that
/// order of precedence: `config` over `secretFrom` over `configFrom`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigLayer {
    /// ConfigMaps whose data is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_from: Vec<ObjectRef>,
    /// Secrets whose data is read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_from: Vec<ObjectRef>,
    /// Literal values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// A directory mounted into a component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// The workload volume.
    pub name: String,
    /// Where the component sees it.
    pub mount_path: String,
    /// Whether writes are refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// What a component may use and reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalResources {
    /// Volumes mounted into it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<ConfigLayer>,
    /// `wasi:config` values of this component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Hosts outbound HTTP may reach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Names `wasi:sockets` may resolve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ip_name_lookups: Vec<String>,
    /// Loopback ports the component may reach on its host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_host_loopback_ports: Vec<String>,
}

/// One component of a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadComponent {
    /// Its name within the workload.
    pub name: String,
    /// Its OCI image (or `artifact://<name>` in a deployment's template).
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret to pull it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<ObjectRef>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Warm instances kept ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<i32>,
    /// Requests one instance serves before it is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_invocations: Option<i32>,
    /// Requests one instance serves at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_concurrency: Option<i32>,
    /// Limits and permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_resources: Option<LocalResources>,
}

/// An interface the host provides to the workload, with its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostInterface {
    /// WIT namespace, e.g. `wasi`.
    pub namespace: String,
    /// WIT package, e.g. `keyvalue`.
    pub package: String,
    /// Interfaces of the package, e.g. `store`.
    #[schemars(length(min = 1))]
    pub interfaces: Vec<String>,
    /// Package version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A named instance of the interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub name: Option<String>,
    /// Its configuration.
    #[serde(flatten)]
    pub config: ConfigLayer,
}

/// A long-running component beside the workload's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadService {
    /// Its OCI image.
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret to pull it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<ObjectRef>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Restarts before it is given up on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<i32>,
    /// Limits and permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_resources: Option<LocalResources>,
}

/// A host directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostPathSource {
    /// The directory on the host.
    pub path: String,
}

/// Scratch space, removed with the workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EphemeralSource {}

/// A volume of the workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadVolume {
    /// Its name, for mounts.
    pub name: String,
    /// Scratch space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EphemeralSource>,
    /// A host directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathSource>,
}

/// The Service whose traffic reaches the workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceRef {
    /// Its name.
    pub name: String,
}

/// Kubernetes integration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KubernetesOptions {
    /// Route this Service's traffic to the workload's hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
}

/// Components to run together on one host.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "Workload",
    namespaced,
    shortname = "ww",
    status = "WorkloadStatus",
    printcolumn = r#"{"name":"HOSTID","type":"string","jsonPath":".status.hostId"}"#,
    printcolumn = r#"{"name":"ENVIRONMENT","type":"string","jsonPath":".status.environment"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Labels a host must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host_selector: BTreeMap<String, String>,
    /// A host to place it on, bypassing selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// The environment of the hosts it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Its components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<WorkloadComponent>,
    /// Interfaces the host provides, with configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_interfaces: Vec<HostInterface>,
    /// A long-running component beside them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<WorkloadService>,
    /// Volumes its components mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<WorkloadVolume>,
    /// Kubernetes integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesOptions>,
}

/// Where the workload runs and how it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// `Config`, `HostSelection`, `Placement`, `Sync`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The host it was placed on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// That host's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Its id on the host (the object's UID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_id: Option<String>,
}
