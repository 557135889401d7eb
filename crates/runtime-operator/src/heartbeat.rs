//! A `Host` object from a host's heartbeat, as the operator upserts it.

use runtime_proto::v2::HostHeartbeat;

use crate::crd::{Host, HostFields, HostStatus};

/// Why a heartbeat cannot become a Host object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// The heartbeat carries no host id.
    #[error("heartbeat without a host id")]
    NoId,
    /// The name the Host would get is not a Kubernetes object name.
    #[error(
        "host `{id}`: name `{name}` is not a valid object name (lowercase letters, digits, `-` \
         and `.`, at most 253)"
    )]
    InvalidName {
        /// The host id.
        id: String,
        /// The name.
        name: String,
    },
}

/// Whether `name` is a DNS-1123 subdomain, as object names must be.
fn valid_name(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !name.is_empty()
        && name.len() <= 253
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// The Host a heartbeat describes, seen at `now` (RFC 3339). It is named by
/// the host's friendly name (its id when it has none); its labels are the
/// host's, replacing any others.
pub fn host_from_heartbeat(heartbeat: &HostHeartbeat, now: &str) -> Result<Host, HeartbeatError> {
    if heartbeat.id.is_empty() {
        return Err(HeartbeatError::NoId);
    }
    let name = if heartbeat.friendly_name.is_empty() {
        heartbeat.id.to_lowercase()
    } else {
        heartbeat.friendly_name.clone()
    };
    if !valid_name(&name) {
        return Err(HeartbeatError::InvalidName {
            id: heartbeat.id.clone(),
            name,
        });
    }
    let saturating = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut host = Host::new(
        &name,
        HostFields {
            host_id: heartbeat.id.clone(),
            hostname: heartbeat.hostname.clone(),
            http_port: (heartbeat.http_port != 0)
                .then(|| i32::try_from(heartbeat.http_port).unwrap_or(i32::MAX)),
            environment: (!heartbeat.environment.is_empty()).then(|| heartbeat.environment.clone()),
            status: Some(HostStatus {
                conditions: Vec::new(),
                version: heartbeat.version.clone(),
                os_name: heartbeat.os_name.clone(),
                os_arch: heartbeat.os_arch.clone(),
                os_kernel: heartbeat.os_kernel.clone(),
                system_cpu_usage: heartbeat.system_cpu_usage.to_string(),
                system_memory_total: saturating(heartbeat.system_memory_total),
                system_memory_free: saturating(heartbeat.system_memory_free),
                component_count: Some(saturating(heartbeat.component_count)),
                workload_count: Some(saturating(heartbeat.workload_count)),
                last_seen: Some(now.to_string()),
            }),
        },
    );
    host.metadata.labels = Some(heartbeat.labels.clone());
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat() -> HostHeartbeat {
        HostHeartbeat {
            id: "3f6c0e2a-host".into(),
            hostname: "10.0.0.7".into(),
            friendly_name: "brave-otter".into(),
            version: "0.1.0".into(),
            labels: [("hostgroup".to_string(), "default".to_string())].into(),
            os_name: "linux".into(),
            os_arch: "x86_64".into(),
            os_kernel: "6.1".into(),
            system_cpu_usage: 12.5,
            system_memory_total: 8 << 30,
            system_memory_free: 1 << 30,
            component_count: 3,
            workload_count: 2,
            http_port: 9191,
            environment: "team-a".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_heartbeat_becomes_a_host_named_by_its_friendly_name() {
        let host = host_from_heartbeat(&heartbeat(), "2026-12-01T10:00:00Z").unwrap();
        assert_eq!(host.metadata.name.as_deref(), Some("brave-otter"));
        assert_eq!(
            host.metadata.labels.as_ref().unwrap()["hostgroup"],
            "default"
        );
        assert_eq!(host.fields.host_id, "3f6c0e2a-host");
        assert_eq!(host.fields.http_port, Some(9191));
        assert_eq!(host.fields.environment.as_deref(), Some("team-a"));
        let status = host.fields.status.unwrap();
        assert_eq!(status.system_cpu_usage, "12.5");
        assert_eq!(status.workload_count, Some(2));
        assert_eq!(status.last_seen.as_deref(), Some("2026-12-01T10:00:00Z"));
        // The object serializes with the fields at the top level, no spec.
        let json = serde_json::to_value(
            host_from_heartbeat(&heartbeat(), "2026-12-01T10:00:00Z").unwrap(),
        )
        .unwrap();
        assert_eq!(json["hostId"], "3f6c0e2a-host");
        assert_eq!(json["apiVersion"], "runtime.wasmcloud.dev/v1alpha1");
        assert!(json.get("spec").is_none());
    }

    #[test]
    fn bad_heartbeats_are_named() {
        let mut no_id = heartbeat();
        no_id.id.clear();
        assert_eq!(host_from_heartbeat(&no_id, "t"), Err(HeartbeatError::NoId));
        let mut bad_name = heartbeat();
        bad_name.friendly_name = "Brave Otter".into();
        let error = host_from_heartbeat(&bad_name, "t").unwrap_err();
        assert!(error.to_string().contains("Brave Otter"), "{error}");
        let mut unnamed = heartbeat();
        unnamed.friendly_name.clear();
        let host = host_from_heartbeat(&unnamed, "t").unwrap();
        assert_eq!(host.metadata.name.as_deref(), Some("3f6c0e2a-host"));
    }
}
