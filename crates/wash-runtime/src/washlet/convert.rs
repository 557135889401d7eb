//! Between the control-plane messages ([`proto`](super::proto)) and the
//! runtime's own types.

use runtime_proto::v2 as proto;

use crate::types;

/// Why a protocol workload cannot become a runtime workload.
#[derive(Debug, thiserror::Error)]
#[error("invalid workload: {0}")]
pub struct InvalidWorkload(pub String);

/// A workload state as the protocol names it.
pub fn state_to_proto(state: types::WorkloadState) -> proto::WorkloadState {
    match state {
        types::WorkloadState::Unspecified => proto::WorkloadState::Unspecified,
        types::WorkloadState::Starting => proto::WorkloadState::Starting,
        types::WorkloadState::Running => proto::WorkloadState::Running,
        types::WorkloadState::Completed => proto::WorkloadState::Completed,
        types::WorkloadState::Stopping => proto::WorkloadState::Stopping,
        types::WorkloadState::Error => proto::WorkloadState::Error,
        types::WorkloadState::NotFound => proto::WorkloadState::NotFound,
    }
}

/// A protocol workload state as the runtime names it.
pub fn state_from_proto(state: proto::WorkloadState) -> types::WorkloadState {
    match state {
        proto::WorkloadState::Unspecified => types::WorkloadState::Unspecified,
        proto::WorkloadState::Starting => types::WorkloadState::Starting,
        proto::WorkloadState::Running => types::WorkloadState::Running,
        proto::WorkloadState::Completed => types::WorkloadState::Completed,
        proto::WorkloadState::Stopping => types::WorkloadState::Stopping,
        proto::WorkloadState::Error => types::WorkloadState::Error,
        proto::WorkloadState::NotFound => types::WorkloadState::NotFound,
    }
}

/// A workload status as the protocol sends it.
pub fn status_to_proto(status: types::WorkloadStatus) -> proto::WorkloadStatus {
    proto::WorkloadStatus {
        workload_id: status.workload_id,
        workload_state: state_to_proto(status.workload_state).into(),
        message: status.message,
    }
}

/// A host interface entry as the protocol sends it.
pub fn interface_to_proto(i: &types::WitInterface) -> proto::WitInterface {
    proto::WitInterface {
        namespace: i.namespace.clone(),
        package: i.package.clone(),
        version: i.version.clone().unwrap_or_default(),
        interfaces: i.interfaces.clone(),
        config: i.config.clone(),
        name: i.name.clone().unwrap_or_default(),
    }
}

fn interface_from_proto(i: proto::WitInterface) -> types::WitInterface {
    types::WitInterface {
        namespace: i.namespace,
        package: i.package,
        interfaces: i.interfaces,
        version: (!i.version.is_empty()).then_some(i.version),
        config: i.config,
        name: (!i.name.is_empty()).then_some(i.name),
    }
}

fn resources_from_proto(r: proto::LocalResources) -> types::LocalResources {
    types::LocalResources {
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

fn resources_to_proto(r: &types::LocalResources) -> proto::LocalResources {
    proto::LocalResources {
        memory_limit_mb: r.memory_limit_mb,
        cpu_limit: r.cpu_limit,
        config: r.config.clone(),
        environment: r.environment.clone(),
        volume_mounts: r
            .volume_mounts
            .iter()
            .map(|m| proto::VolumeMount {
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

/// A protocol workload as the runtime runs it: components come from their
/// images.
pub fn workload_from_proto(w: proto::Workload) -> Result<types::Workload, InvalidWorkload> {
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
            let image_pull_policy = match c.image_pull_policy() {
                proto::ImagePullPolicy::Always => types::PullPolicy::Always,
                proto::ImagePullPolicy::Never => types::PullPolicy::Never,
                _ => types::PullPolicy::IfNotPresent,
            };
            Ok(types::Component {
                name: c.name,
                bytes: None,
                image: Some(c.image),
                digest: None,
                local_resources: c
                    .local_resources
                    .map(resources_from_proto)
                    .unwrap_or_default(),
                pool_size: c.pool_size,
                max_invocations: c.max_invocations,
                max_concurrency: c.max_concurrency,
                image_pull_secret: c
                    .image_pull_secret
                    .map(|s| types::Credentials::new(s.username, s.password)),
                image_pull_policy,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let volumes = w
        .volumes
        .into_iter()
        .map(|v| {
            let source = match v.volume_type {
                Some(proto::volume::VolumeType::HostPath(host)) => types::VolumeSource::HostPath {
                    local_path: host.local_path,
                },
                Some(proto::volume::VolumeType::EmptyDir(_)) => types::VolumeSource::EmptyDir {},
                None => {
                    return Err(InvalidWorkload(format!(
                        "volume `{}` must set one of hostPath and emptyDir",
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
        host_interfaces: world
            .host_interfaces
            .into_iter()
            .map(interface_from_proto)
            .collect(),
        volumes,
    })
}

/// A runtime workload as the protocol sends it (components by image).
pub fn workload_to_proto(w: &types::Workload) -> proto::Workload {
    proto::Workload {
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        annotations: w.annotations.clone(),
        service: None,
        wit_world: Some(proto::WitWorld {
            components: w
                .components
                .iter()
                .map(|c| {
                    let policy = match c.image_pull_policy {
                        types::PullPolicy::Always => proto::ImagePullPolicy::Always,
                        types::PullPolicy::Never => proto::ImagePullPolicy::Never,
                        types::PullPolicy::IfNotPresent => proto::ImagePullPolicy::IfNotPresent,
                    };
                    proto::Component {
                        image: c.image.clone().unwrap_or_default(),
                        local_resources: Some(resources_to_proto(&c.local_resources)),
                        pool_size: c.pool_size,
                        max_invocations: c.max_invocations,
                        image_pull_secret: c.image_pull_secret.as_ref().map(|s| {
                            proto::ImagePullSecret {
                                username: s.username().to_string(),
                                password: s.password().to_string(),
                            }
                        }),
                        name: c.name.clone(),
                        image_pull_policy: policy.into(),
                        max_concurrency: c.max_concurrency,
                    }
                })
                .collect(),
            host_interfaces: w.host_interfaces.iter().map(interface_to_proto).collect(),
        }),
        volumes: w
            .volumes
            .iter()
            .map(|v| proto::Volume {
                name: v.name.clone(),
                volume_type: Some(match &v.source {
                    types::VolumeSource::HostPath { local_path } => {
                        proto::volume::VolumeType::HostPath(proto::HostPathVolume {
                            local_path: local_path.clone(),
                        })
                    }
                    types::VolumeSource::EmptyDir {} => {
                        proto::volume::VolumeType::EmptyDir(proto::EmptyDirVolume {})
                    }
                }),
            })
            .collect(),
    }
}
