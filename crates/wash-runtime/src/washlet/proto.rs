//! The messages of `proto/wasmcloud/runtime/v2`, in their protobuf-JSON
//! form: lowerCamelCase names (snake_case accepted on input), default values
//! left out, 64-bit integers as strings, enums by their full names and
//! timestamps in RFC 3339.
#![allow(
    missing_docs,
    reason = "fields mirror proto/wasmcloud/runtime/v2/*.proto, which documents them"
)]

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::types;

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// `uint64` travels as a JSON string; numbers are accepted too.
mod u64_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Number(u64),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(n),
            Either::Text(s) => s.parse().map_err(D::Error::custom),
        }
    }
}

/// `google.protobuf.Timestamp` as RFC 3339.
mod timestamp {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(
        value: &Option<SystemTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(time) => {
                serializer.serialize_str(&humantime::format_rfc3339_millis(*time).to_string())
            }
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(D::Error::custom))
            .transpose()
    }
}

/// Defines a protobuf enum: full names on the wire, numbers accepted.
macro_rules! proto_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $number:literal => $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub enum $name {
            #[default]
            $($(#[$vdoc])* $variant,)*
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(match self { $(Self::$variant => $wire,)* })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Either {
                    Name(String),
                    Number(i64),
                }
                match Either::deserialize(deserializer)? {
                    $(Either::Name(n) if n == $wire => Ok(Self::$variant),)*
                    $(Either::Number($number) => Ok(Self::$variant),)*
                    Either::Name(other) => Err(serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " `{}`"), other
                    ))),
                    Either::Number(other) => Err(serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($name), " {}"), other
                    ))),
                }
            }
        }
    };
}

proto_enum! {
    /// When a host pulls a component's image.
    ImagePullPolicy {
        /// Not set (treated as `IfNotPresent`).
        Unspecified = 0 => "IMAGE_PULL_POLICY_UNSPECIFIED",
        /// On every start.
        Always = 1 => "IMAGE_PULL_POLICY_ALWAYS",
        /// When the image is not cached.
        IfNotPresent = 2 => "IMAGE_PULL_POLICY_IF_NOT_PRESENT",
        /// Never: only the cache.
        Never = 3 => "IMAGE_PULL_POLICY_NEVER",
    }
}

proto_enum! {
    /// Lifecycle state of a workload.
    WorkloadState {
        /// Not set.
        Unspecified = 0 => "WORKLOAD_STATE_UNSPECIFIED",
        /// Starting.
        Starting = 1 => "WORKLOAD_STATE_STARTING",
        /// Running.
        Running = 2 => "WORKLOAD_STATE_RUNNING",
        /// Completed.
        Completed = 3 => "WORKLOAD_STATE_COMPLETED",
        /// Stopping.
        Stopping = 4 => "WORKLOAD_STATE_STOPPING",
        /// Failed.
        Error = 5 => "WORKLOAD_STATE_ERROR",
        /// Not on this host.
        NotFound = 6 => "WORKLOAD_STATE_NOT_FOUND",
    }
}

/// `WitInterface`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WitInterface {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub package: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `Workload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Workload {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "wit_world")]
    pub wit_world: Option<WitWorld>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

/// `WitWorld`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WitWorld {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    #[serde(skip_serializing_if = "Vec::is_empty", alias = "host_interfaces")]
    pub host_interfaces: Vec<WitInterface>,
}

/// `Component`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Component {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none", alias = "local_resources")]
    pub local_resources: Option<LocalResources>,
    #[serde(skip_serializing_if = "is_default", alias = "pool_size")]
    pub pool_size: i32,
    #[serde(skip_serializing_if = "is_default", alias = "max_invocations")]
    pub max_invocations: i32,
    #[serde(skip_serializing_if = "Option::is_none", alias = "image_pull_secret")]
    pub image_pull_secret: Option<ImagePullSecret>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "is_default", alias = "image_pull_policy")]
    pub image_pull_policy: ImagePullPolicy,
    #[serde(skip_serializing_if = "is_default", alias = "max_concurrency")]
    pub max_concurrency: i32,
}

/// `Service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Service {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none", alias = "local_resources")]
    pub local_resources: Option<LocalResources>,
    #[serde(
        with = "u64_string",
        skip_serializing_if = "is_default",
        alias = "max_restarts"
    )]
    pub max_restarts: u64,
    #[serde(skip_serializing_if = "Option::is_none", alias = "image_pull_secret")]
    pub image_pull_secret: Option<ImagePullSecret>,
    #[serde(skip_serializing_if = "is_default", alias = "image_pull_policy")]
    pub image_pull_policy: ImagePullPolicy,
}

/// `LocalResources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocalResources {
    #[serde(skip_serializing_if = "is_default", alias = "memory_limit_mb")]
    pub memory_limit_mb: i32,
    #[serde(skip_serializing_if = "is_default", alias = "cpu_limit")]
    pub cpu_limit: i32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty", alias = "volume_mounts")]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(skip_serializing_if = "Vec::is_empty", alias = "allowed_hosts")]
    pub allowed_hosts: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        alias = "allowed_ip_name_lookups"
    )]
    pub allowed_ip_name_lookups: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        alias = "allowed_host_loopback_ports"
    )]
    pub allowed_host_loopback_ports: Vec<String>,
}

/// `Volume`; exactly one of `host_path` and `empty_dir` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Volume {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", alias = "host_path")]
    pub host_path: Option<HostPathVolume>,
    #[serde(skip_serializing_if = "Option::is_none", alias = "empty_dir")]
    pub empty_dir: Option<EmptyDirVolume>,
}

/// `HostPathVolume`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HostPathVolume {
    #[serde(skip_serializing_if = "String::is_empty", alias = "local_path")]
    pub local_path: String,
}

/// `EmptyDirVolume`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyDirVolume {}

/// `VolumeMount`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VolumeMount {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty", alias = "mount_path")]
    pub mount_path: String,
    #[serde(skip_serializing_if = "is_default", alias = "read_only")]
    pub read_only: bool,
}

/// `ImagePullSecret`. The password never prints.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImagePullSecret {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
}

impl std::fmt::Debug for ImagePullSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagePullSecret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `HostHeartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HostHeartbeat {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(skip_serializing_if = "String::is_empty", alias = "friendly_name")]
    pub friendly_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(
        with = "timestamp",
        skip_serializing_if = "Option::is_none",
        alias = "started_at"
    )]
    pub started_at: Option<SystemTime>,
    #[serde(skip_serializing_if = "String::is_empty", alias = "os_arch")]
    pub os_arch: String,
    #[serde(skip_serializing_if = "String::is_empty", alias = "os_name")]
    pub os_name: String,
    #[serde(skip_serializing_if = "String::is_empty", alias = "os_kernel")]
    pub os_kernel: String,
    #[serde(skip_serializing_if = "is_default", alias = "system_cpu_usage")]
    pub system_cpu_usage: f32,
    #[serde(
        with = "u64_string",
        skip_serializing_if = "is_default",
        alias = "system_memory_total"
    )]
    pub system_memory_total: u64,
    #[serde(
        with = "u64_string",
        skip_serializing_if = "is_default",
        alias = "system_memory_free"
    )]
    pub system_memory_free: u64,
    #[serde(
        with = "u64_string",
        skip_serializing_if = "is_default",
        alias = "component_count"
    )]
    pub component_count: u64,
    #[serde(
        with = "u64_string",
        skip_serializing_if = "is_default",
        alias = "workload_count"
    )]
    pub workload_count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<WitInterface>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<WitInterface>,
    #[serde(skip_serializing_if = "is_default", alias = "http_port")]
    pub http_port: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub environment: String,
}

/// `HostHeartbeatRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostHeartbeatRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HostHeartbeat>,
}

/// `WorkloadStartRequest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadStartRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    #[serde(skip_serializing_if = "String::is_empty", alias = "workload_id")]
    pub workload_id: String,
}

/// `WorkloadStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadStatus {
    #[serde(skip_serializing_if = "String::is_empty", alias = "workload_id")]
    pub workload_id: String,
    #[serde(skip_serializing_if = "is_default", alias = "workload_state")]
    pub workload_state: WorkloadState,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `WorkloadStartResponse`, `WorkloadStatusResponse` and
/// `WorkloadStopResponse` (the same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadResponse {
    #[serde(skip_serializing_if = "Option::is_none", alias = "workload_status")]
    pub workload_status: Option<WorkloadStatus>,
}

/// `WorkloadStatusRequest` and `WorkloadStopRequest` (the same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadIdRequest {
    #[serde(skip_serializing_if = "String::is_empty", alias = "workload_id")]
    pub workload_id: String,
}

impl From<types::WorkloadState> for WorkloadState {
    fn from(state: types::WorkloadState) -> Self {
        match state {
            types::WorkloadState::Unspecified => Self::Unspecified,
            types::WorkloadState::Starting => Self::Starting,
            types::WorkloadState::Running => Self::Running,
            types::WorkloadState::Completed => Self::Completed,
            types::WorkloadState::Stopping => Self::Stopping,
            types::WorkloadState::Error => Self::Error,
            types::WorkloadState::NotFound => Self::NotFound,
        }
    }
}

impl From<WorkloadState> for types::WorkloadState {
    fn from(state: WorkloadState) -> Self {
        match state {
            WorkloadState::Unspecified => Self::Unspecified,
            WorkloadState::Starting => Self::Starting,
            WorkloadState::Running => Self::Running,
            WorkloadState::Completed => Self::Completed,
            WorkloadState::Stopping => Self::Stopping,
            WorkloadState::Error => Self::Error,
            WorkloadState::NotFound => Self::NotFound,
        }
    }
}

impl From<types::WorkloadStatus> for WorkloadStatus {
    fn from(status: types::WorkloadStatus) -> Self {
        Self {
            workload_id: status.workload_id,
            workload_state: status.workload_state.into(),
            message: status.message,
        }
    }
}

impl From<&types::WitInterface> for WitInterface {
    fn from(i: &types::WitInterface) -> Self {
        Self {
            namespace: i.namespace.clone(),
            package: i.package.clone(),
            version: i.version.clone().unwrap_or_default(),
            interfaces: i.interfaces.clone(),
            config: i.config.clone(),
            name: i.name.clone().unwrap_or_default(),
        }
    }
}

impl From<WitInterface> for types::WitInterface {
    fn from(i: WitInterface) -> Self {
        Self {
            namespace: i.namespace,
            package: i.package,
            interfaces: i.interfaces,
            version: (!i.version.is_empty()).then_some(i.version),
            config: i.config,
            name: (!i.name.is_empty()).then_some(i.name),
        }
    }
}

impl From<LocalResources> for types::LocalResources {
    fn from(r: LocalResources) -> Self {
        Self {
            memory_limit_mb: r.memory_limit_mb,
            cpu_limit: r.cpu_limit,
            config: r.config,
            environment: r.environment,
            volume_mounts: r
                .volume_mounts
                .into_iter()
                .map(|m| types::VolumeMount {
                    name: m.name,
                    mount_path: m.mount_path,
                    read_only: m.read_only,
                })
                .collect(),
            allowed_hosts: r.allowed_hosts,
            allowed_ip_name_lookups: r.allowed_ip_name_lookups,
            allowed_host_loopback_ports: r.allowed_host_loopback_ports,
            request_timeout_ms: 0,
        }
    }
}

impl From<&types::LocalResources> for LocalResources {
    fn from(r: &types::LocalResources) -> Self {
        Self {
            memory_limit_mb: r.memory_limit_mb,
            cpu_limit: r.cpu_limit,
            config: r.config.clone(),
            environment: r.environment.clone(),
            volume_mounts: r
                .volume_mounts
                .iter()
                .map(|m| VolumeMount {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            allowed_hosts: r.allowed_hosts.clone(),
            allowed_ip_name_lookups: r.allowed_ip_name_lookups.clone(),
            allowed_host_loopback_ports: r.allowed_host_loopback_ports.clone(),
        }
    }
}

/// Why a protocol workload cannot become a runtime workload.
#[derive(Debug, thiserror::Error)]
#[error("invalid workload: {0}")]
pub struct InvalidWorkload(pub String);

impl TryFrom<Workload> for types::Workload {
    type Error = InvalidWorkload;

    fn try_from(w: Workload) -> Result<Self, InvalidWorkload> {
        let world = w.wit_world.unwrap_or_default();
        let components = world
            .components
            .into_iter()
            .map(|c| {
                if c.image.is_empty() {
                    return Err(InvalidWorkload(format!(
                        "component `{}` has no image",
                        c.name
                    )));
                }
                Ok(types::Component {
                    name: c.name,
                    bytes: None,
                    image: Some(c.image),
                    digest: None,
                    local_resources: c.local_resources.map(Into::into).unwrap_or_default(),
                    pool_size: c.pool_size,
                    max_invocations: c.max_invocations,
                    max_concurrency: c.max_concurrency,
                    image_pull_secret: c
                        .image_pull_secret
                        .map(|s| types::Credentials::new(s.username, s.password)),
                    image_pull_policy: match c.image_pull_policy {
                        ImagePullPolicy::Always => types::PullPolicy::Always,
                        ImagePullPolicy::Never => types::PullPolicy::Never,
                        _ => types::PullPolicy::IfNotPresent,
                    },
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let volumes = w
            .volumes
            .into_iter()
            .map(|v| {
                let source = match (v.host_path, v.empty_dir) {
                    (Some(host), None) => types::VolumeSource::HostPath {
                        local_path: host.local_path,
                    },
                    (None, Some(_)) => types::VolumeSource::EmptyDir {},
                    _ => {
                        return Err(InvalidWorkload(format!(
                            "volume `{}` must set exactly one of hostPath and emptyDir",
                            v.name
                        )));
                    }
                };
                Ok(types::Volume {
                    name: v.name,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(types::Workload {
            namespace: w.namespace,
            name: w.name,
            annotations: w.annotations,
            service: None,
            components,
            host_interfaces: world.host_interfaces.into_iter().map(Into::into).collect(),
            volumes,
        })
    }
}

impl From<&types::Workload> for Workload {
    fn from(w: &types::Workload) -> Self {
        Self {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            annotations: w.annotations.clone(),
            service: None,
            wit_world: Some(WitWorld {
                components: w
                    .components
                    .iter()
                    .map(|c| Component {
                        image: c.image.clone().unwrap_or_default(),
                        local_resources: Some((&c.local_resources).into()),
                        pool_size: c.pool_size,
                        max_invocations: c.max_invocations,
                        image_pull_secret: c.image_pull_secret.as_ref().map(|s| ImagePullSecret {
                            username: s.username().to_string(),
                            password: s.password().to_string(),
                        }),
                        name: c.name.clone(),
                        image_pull_policy: match c.image_pull_policy {
                            types::PullPolicy::Always => ImagePullPolicy::Always,
                            types::PullPolicy::Never => ImagePullPolicy::Never,
                            types::PullPolicy::IfNotPresent => ImagePullPolicy::IfNotPresent,
                        },
                        max_concurrency: c.max_concurrency,
                    })
                    .collect(),
                host_interfaces: w.host_interfaces.iter().map(Into::into).collect(),
            }),
            volumes: w
                .volumes
                .iter()
                .map(|v| Volume {
                    name: v.name.clone(),
                    host_path: match &v.source {
                        types::VolumeSource::HostPath { local_path } => Some(HostPathVolume {
                            local_path: local_path.clone(),
                        }),
                        types::VolumeSource::EmptyDir {} => None,
                    },
                    empty_dir: match &v.source {
                        types::VolumeSource::EmptyDir {} => Some(EmptyDirVolume {}),
                        types::VolumeSource::HostPath { .. } => None,
                    },
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Golden vectors: each message's JSON exactly as the reference's
    //! protobuf-JSON encoder writes it.

    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::{Value, json};

    use super::*;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
        value: &T,
        golden: Value,
    ) {
        assert_eq!(serde_json::to_value(value).unwrap(), golden);
        let back: T = serde_json::from_value(golden).unwrap();
        assert_eq!(&back, value);
    }

    fn wit(namespace: &str, package: &str, interfaces: &[&str]) -> WitInterface {
        WitInterface {
            namespace: namespace.into(),
            package: package.into(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn host_heartbeat() {
        let heartbeat = HostHeartbeat {
            id: "host-1".into(),
            hostname: "node-a".into(),
            friendly_name: "brave-otter".into(),
            version: "0.1.0".into(),
            labels: [("hostgroup".to_string(), "default".to_string())].into(),
            started_at: Some(UNIX_EPOCH + Duration::from_millis(1_764_000_000_500)),
            os_arch: "x86_64".into(),
            os_name: "linux".into(),
            os_kernel: "6.1.0".into(),
            system_cpu_usage: 12.5,
            system_memory_total: 25_769_803_776,
            system_memory_free: 1_073_741_824,
            component_count: 3,
            workload_count: 2,
            imports: vec![wit("wasi", "keyvalue", &["store", "atomics"])],
            exports: vec![wit("wasi", "http", &["incoming-handler"])],
            http_port: 8080,
            environment: String::new(),
        };
        round_trip(
            &heartbeat,
            json!({
                "id": "host-1",
                "hostname": "node-a",
                "friendlyName": "brave-otter",
                "version": "0.1.0",
                "labels": {"hostgroup": "default"},
                "startedAt": "2025-11-24T16:00:00.500Z",
                "osArch": "x86_64",
                "osName": "linux",
                "osKernel": "6.1.0",
                "systemCpuUsage": 12.5,
                "systemMemoryTotal": "25769803776",
                "systemMemoryFree": "1073741824",
                "componentCount": "3",
                "workloadCount": "2",
                "imports": [{"namespace": "wasi", "package": "keyvalue", "interfaces": ["store", "atomics"]}],
                "exports": [{"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"]}],
                "httpPort": 8080
            }),
        );
        round_trip(
            &HostHeartbeatRequest {
                heartbeat: Some(HostHeartbeat {
                    id: "h".into(),
                    ..Default::default()
                }),
            },
            json!({"heartbeat": {"id": "h"}}),
        );
    }

    #[test]
    fn workload_start_request() {
        let request = WorkloadStartRequest {
            workload_id: "wl-1".into(),
            workload: Some(Workload {
                namespace: "default".into(),
                name: "hello".into(),
                annotations: [("team".to_string(), "web".to_string())].into(),
                service: None,
                wit_world: Some(WitWorld {
                    components: vec![Component {
                        image: "registry.local/hello:1".into(),
                        local_resources: Some(LocalResources {
                            memory_limit_mb: 64,
                            allowed_hosts: vec!["api.example.com".into()],
                            volume_mounts: vec![VolumeMount {
                                name: "data".into(),
                                mount_path: "/data".into(),
                                read_only: true,
                            }],
                            ..Default::default()
                        }),
                        pool_size: 2,
                        image_pull_secret: Some(ImagePullSecret {
                            username: "u".into(),
                            password: "p".into(),
                        }),
                        name: "web".into(),
                        image_pull_policy: ImagePullPolicy::IfNotPresent,
                        ..Default::default()
                    }],
                    host_interfaces: vec![WitInterface {
                        config: [("host".to_string(), "hello.example.com".to_string())].into(),
                        ..wit("wasi", "http", &["incoming-handler"])
                    }],
                }),
                volumes: vec![
                    Volume {
                        name: "data".into(),
                        host_path: Some(HostPathVolume {
                            local_path: "/srv".into(),
                        }),
                        empty_dir: None,
                    },
                    Volume {
                        name: "tmp".into(),
                        host_path: None,
                        empty_dir: Some(EmptyDirVolume {}),
                    },
                ],
            }),
        };
        round_trip(
            &request,
            json!({
                "workload": {
                    "namespace": "default",
                    "name": "hello",
                    "annotations": {"team": "web"},
                    "witWorld": {
                        "components": [{
                            "image": "registry.local/hello:1",
                            "localResources": {
                                "memoryLimitMb": 64,
                                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                                "allowedHosts": ["api.example.com"]
                            },
                            "poolSize": 2,
                            "imagePullSecret": {"username": "u", "password": "p"},
                            "name": "web",
                            "imagePullPolicy": "IMAGE_PULL_POLICY_IF_NOT_PRESENT"
                        }],
                        "hostInterfaces": [{
                            "namespace": "wasi", "package": "http",
                            "interfaces": ["incoming-handler"],
                            "config": {"host": "hello.example.com"}
                        }]
                    },
                    "volumes": [
                        {"name": "data", "hostPath": {"localPath": "/srv"}},
                        {"name": "tmp", "emptyDir": {}}
                    ]
                },
                "workloadId": "wl-1"
            }),
        );
    }

    #[test]
    fn workload_status_messages() {
        round_trip(
            &WorkloadIdRequest {
                workload_id: "wl-1".into(),
            },
            json!({"workloadId": "wl-1"}),
        );
        let running = WorkloadResponse {
            workload_status: Some(WorkloadStatus {
                workload_id: "wl-1".into(),
                workload_state: WorkloadState::Running,
                message: String::new(),
            }),
        };
        round_trip(
            &running,
            json!({"workloadStatus": {"workloadId": "wl-1", "workloadState": "WORKLOAD_STATE_RUNNING"}}),
        );
        let failed = WorkloadResponse {
            workload_status: Some(WorkloadStatus {
                workload_id: "wl-2".into(),
                workload_state: WorkloadState::Error,
                message: "boom".into(),
            }),
        };
        round_trip(
            &failed,
            json!({"workloadStatus": {"workloadId": "wl-2", "workloadState": "WORKLOAD_STATE_ERROR", "message": "boom"}}),
        );
    }

    #[test]
    fn parsers_accept_snake_case_names_numbers_and_number_strings() {
        let status: WorkloadStatus =
            serde_json::from_value(json!({"workload_id": "x", "workload_state": 6})).unwrap();
        assert_eq!(status.workload_state, WorkloadState::NotFound);
        let heartbeat: HostHeartbeat =
            serde_json::from_value(json!({"workload_count": 4, "systemMemoryFree": "9"})).unwrap();
        assert_eq!(
            (heartbeat.workload_count, heartbeat.system_memory_free),
            (4, 9)
        );
        let bad = serde_json::from_value::<WorkloadStatus>(
            json!({"workloadState": "WORKLOAD_STATE_SLEEPY"}),
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("WORKLOAD_STATE_SLEEPY")
        );
    }

    #[test]
    fn pull_secrets_do_not_print() {
        let secret = ImagePullSecret {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
