//! The data model shared by every part of the runtime: what a workload is.
//!
//! Field names follow the reference platform (`wasmcloud.runtime.v2`), so a
//! workload written for it reads the same here. On the wire (YAML/JSON) the
//! names are lowerCamelCase, as in the reference's protobuf-JSON and CRDs.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Memory a component may use when its `memory_limit_mb` is unset: enough for
/// interpreters such as componentize-py's CPython.
pub const DEFAULT_MEMORY_LIMIT_MB: u32 = 256;

/// A unit of deployment: components plus the host interfaces they use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Workload {
    /// Namespace the workload belongs to (Kubernetes-style grouping).
    pub namespace: String,
    /// Human-readable name of the workload.
    pub name: String,
    /// Free-form metadata; not interpreted by the host.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// An optional long-running `wasi:cli/run` component beside the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// The components of the workload.
    pub components: Vec<Component>,
    /// Interfaces the host provides to (or consumes from) the components,
    /// with their configuration, e.g. `wasi:http/incoming-handler` + `host`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_interfaces: Vec<WitInterface>,
    /// Volumes that components may mount.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

impl Workload {
    /// The host interface entry matching `namespace:package`, if any.
    pub fn host_interface(&self, namespace: &str, package: &str) -> Option<&WitInterface> {
        self.host_interfaces
            .iter()
            .find(|i| i.namespace == namespace && i.package == package)
    }
}

/// One WebAssembly component of a workload.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Component {
    /// Name of the component, unique within its workload.
    pub name: String,
    /// The component's bytes, for in-process embedders (`wash dev`).
    #[serde(skip)]
    pub bytes: Option<Bytes>,
    /// An OCI reference to pull the component from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Expected digest (`sha256:<hex>`) of the component's bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Limits, configuration and permissions.
    pub local_resources: LocalResources,
    /// Warm instances to keep (0: a fresh instance per request).
    pub pool_size: i32,
    /// Requests one instance may serve before it is replaced (0: unlimited).
    pub max_invocations: i32,
    /// Requests one instance may serve at once (P3 components only).
    pub max_concurrency: i32,
    /// Registry credentials for `image` (else the docker config is used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<Credentials>,
    /// When `image` is pulled.
    pub image_pull_policy: PullPolicy,
}

/// When a host pulls a component's image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum PullPolicy {
    /// On every start, even when cached.
    Always,
    /// Only when the image is not in the local cache.
    #[default]
    IfNotPresent,
    /// Never: the image must be cached.
    Never,
}

/// Registry credentials. The password never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// A user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for Component {
    // Hand-written so a component's bytes never flood logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component")
            .field("name", &self.name)
            .field(
                "bytes",
                &self.bytes.as_ref().map(|b| format!("<{} bytes>", b.len())),
            )
            .field("image", &self.image)
            .field("digest", &self.digest)
            .field("local_resources", &self.local_resources)
            .field("pool_size", &self.pool_size)
            .field("max_invocations", &self.max_invocations)
            .field("max_concurrency", &self.max_concurrency)
            .field("image_pull_secret", &self.image_pull_secret)
            .field("image_pull_policy", &self.image_pull_policy)
            .finish()
    }
}

/// Per-component limits, configuration and permissions. Allowlists deny by
/// default: an empty list allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalResources {
    /// Linear memory limit in MiB; 0 means [`DEFAULT_MEMORY_LIMIT_MB`].
    pub memory_limit_mb: i32,
    /// CPU limit in millicores (advisory; enforced through the deadline).
    pub cpu_limit: i32,
    /// Configuration values (`wasi:config`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Environment variables visible through `wasi:cli/environment`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Volumes (declared on the workload) mounted into this component.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Hosts outbound HTTP may reach: `host`, `*.suffix` or `host:port`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Names the component may resolve through `wasi:sockets`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_ip_name_lookups: Vec<String>,
    /// Loopback ports the component may connect to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_host_loopback_ports: Vec<String>,
    /// Request deadline in milliseconds (ours; 0 means the host default).
    #[serde(skip_serializing_if = "is_zero")]
    pub request_timeout_ms: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl LocalResources {
    /// The effective memory limit in bytes.
    pub fn memory_limit_bytes(&self) -> usize {
        let mb = match self.memory_limit_mb {
            n if n > 0 => n as usize,
            _ => DEFAULT_MEMORY_LIMIT_MB as usize,
        };
        mb << 20
    }
}

/// A long-running component of a workload (`wasi:cli/run`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// OCI reference of the service component.
    pub image: String,
    /// Limits, configuration and permissions.
    pub local_resources: LocalResources,
    /// How many times the service is restarted after it exits.
    pub max_restarts: u64,
}

/// A WIT interface the host provides, with its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WitInterface {
    /// WIT namespace, e.g. `wasi`.
    pub namespace: String,
    /// WIT package, e.g. `http`.
    pub package: String,
    /// Interfaces of the package, e.g. `incoming-handler`.
    pub interfaces: Vec<String>,
    /// Package version, e.g. `0.2.2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Configuration for the provider of this interface.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Instance name, when one workload binds the same interface twice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl fmt::Display for WitInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.package)?;
        match self.interfaces.as_slice() {
            [] => {}
            [one] => write!(f, "/{one}")?,
            many => write!(f, "/{{{}}}", many.join(","))?,
        }
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

/// A named volume a workload's components can mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Name referenced by [`VolumeMount::name`].
    pub name: String,
    /// Where the volume's files live.
    #[serde(flatten)]
    pub source: VolumeSource,
}

/// Backing storage of a [`Volume`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VolumeSource {
    /// A directory of the host.
    HostPath {
        /// Absolute path on the host.
        #[serde(rename = "localPath")]
        local_path: String,
    },
    /// A scratch directory created for the workload and removed with it.
    EmptyDir {},
}

/// Mounts a workload [`Volume`] into a component's filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeMount {
    /// Name of the volume.
    pub name: String,
    /// Path the guest sees.
    pub mount_path: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

/// Lifecycle state of a workload on a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkloadState {
    /// Not set.
    #[default]
    Unspecified,
    /// Compiling, linking and pre-instantiating.
    Starting,
    /// Serving.
    Running,
    /// Finished on its own (services).
    Completed,
    /// Draining and releasing resources.
    Stopping,
    /// Failed; the status message says why.
    Error,
    /// No workload with that id on this host.
    NotFound,
}

impl fmt::Display for WorkloadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Unspecified => "unspecified",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Stopping => "stopping",
            Self::Error => "error",
            Self::NotFound => "not found",
        };
        f.write_str(s)
    }
}

/// The state of one workload, as reported by a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Id the workload was started under.
    pub workload_id: String,
    /// Current state.
    pub workload_state: WorkloadState,
    /// Human-readable detail, e.g. the error that stopped it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl WorkloadStatus {
    pub(crate) fn new(id: &str, state: WorkloadState, message: impl Into<String>) -> Self {
        Self {
            workload_id: id.to_string(),
            workload_state: state,
            message: message.into(),
        }
    }
}

/// An error and each of its causes, joined with `: `, for places that show
/// one line (status messages, a guest's error string).
pub fn error_report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut report = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !report.ends_with(&text) {
            report.push_str(": ");
            report.push_str(&text);
        }
        source = cause.source();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_yaml_shape_matches_reference_names() {
        let json = r#"{
            "namespace": "default", "name": "hello",
            "components": [{"name": "web", "image": "localhost:5000/hello:1",
                "localResources": {"memoryLimitMb": 64, "allowedHosts": ["*.example.com"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]},
                "poolSize": 2}],
            "hostInterfaces": [{"namespace": "wasi", "package": "http",
                "interfaces": ["incoming-handler"], "config": {"host": "hello.local"}}],
            "volumes": [{"name": "data", "hostPath": {"localPath": "/srv"}},
                        {"name": "tmp", "emptyDir": {}}]
        }"#;
        let w: Workload = serde_json::from_str(json).unwrap();
        assert_eq!(
            w.components[0].local_resources.memory_limit_bytes(),
            64 << 20
        );
        assert_eq!(w.components[0].pool_size, 2);
        assert_eq!(
            w.volumes[0].source,
            VolumeSource::HostPath {
                local_path: "/srv".into()
            }
        );
        assert_eq!(w.volumes[1].source, VolumeSource::EmptyDir {});
        let http = w.host_interface("wasi", "http").unwrap();
        assert_eq!(http.to_string(), "wasi:http/incoming-handler");
        // Round trip keeps everything but the in-process bytes.
        let again: Workload = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(again, w);
    }

    #[test]
    fn unset_memory_limit_uses_default() {
        assert_eq!(
            LocalResources::default().memory_limit_bytes(),
            (DEFAULT_MEMORY_LIMIT_MB as usize) << 20
        );
    }

    #[test]
    fn state_serializes_in_screaming_case() {
        assert_eq!(
            serde_json::to_string(&WorkloadState::NotFound).unwrap(),
            "\"NOT_FOUND\""
        );
    }
}
