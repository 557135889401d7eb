//! The five custom resources of group `runtime.wasmcloud.dev`, version
//! `v1alpha1`, field for field as the reference defines them, so a manifest
//! written for the reference applies unchanged. [`all`] is every CRD, as
//! `runtime-operator crds` prints it.

mod artifact;
mod condition;
mod host;
mod workload;
mod workload_deployment;
mod workload_replica_set;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use self::artifact::{Artifact, ArtifactSpec, ArtifactStatus};
pub use self::condition::{Condition, ConditionStatus};
pub use self::host::{Host, HostFields, HostStatus};
pub use self::workload::{
    ConfigLayer, HostInterface, KubernetesOptions, LocalResources, ObjectRef, ServiceRef, Workload,
    WorkloadComponent, WorkloadService, WorkloadSpec, WorkloadStatus, WorkloadVolume,
};
pub use self::workload_deployment::{
    DeployPolicy, WorkloadDeployment, WorkloadDeploymentArtifact, WorkloadDeploymentSpec,
    WorkloadDeploymentStatus,
};
pub use self::workload_replica_set::{
    ReplicaCounts, WorkloadReplicaSet, WorkloadReplicaSetSpec, WorkloadReplicaSetStatus,
    WorkloadTemplate,
};

/// The API group.
pub const GROUP: &str = "runtime.wasmcloud.dev";
/// The API version.
pub const VERSION: &str = "v1alpha1";

/// Why the CRDs could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The hand-made Host CRD did not form.
    #[error("cannot form the Host CRD")]
    Host(#[source] serde_json::Error),
    /// YAML could not be written.
    #[error("cannot write the CRDs as YAML")]
    Yaml(#[source] serde_norway::Error),
}

/// Every CRD, in a stable order.
pub fn all() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    Ok(vec![
        Artifact::crd(),
        host::crd().map_err(CrdError::Host)?,
        Workload::crd(),
        WorkloadDeployment::crd(),
        WorkloadReplicaSet::crd(),
    ])
}

/// Every CRD as one multi-document YAML stream.
pub fn yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in all()? {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).map_err(CrdError::Yaml)?);
    }
    Ok(out)
}
