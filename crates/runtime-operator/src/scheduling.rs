//! Where a Workload goes: among the Ready hosts whose labels match its
//! `hostSelector` and whose environment it may use, the least loaded (fewest
//! workloads, then most free memory), where the reference picks at random.

use std::collections::BTreeMap;

use crate::crd::{ConditionStatus, Host, WorkloadSpec};

/// Why no host was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulingError {
    /// The workload asks for another environment's hosts, and hosts are not
    /// shared across environments.
    #[error(
        "environment `{asked}` is not this namespace's (`{namespace}`) and hosts are not shared \
         across environments (--allow-shared-hosts=false)"
    )]
    CrossEnvironmentDenied {
        /// The environment the workload asks for.
        asked: String,
        /// The workload's namespace.
        namespace: String,
    },
    /// No Ready host matches.
    #[error("no Ready host matches hostSelector {selector:?}{}", environment.as_ref().map(|e| format!(" in environment `{e}`")).unwrap_or_default())]
    NoMatchingHost {
        /// The selector asked for.
        selector: BTreeMap<String, String>,
        /// The environment hosts had to be in, if any.
        environment: Option<String>,
    },
}

impl SchedulingError {
    /// The reason for the Event and condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::CrossEnvironmentDenied { .. } => "CrossEnvironmentSchedulingDenied",
            Self::NoMatchingHost { .. } => "NoMatchingHost",
        }
    }
}

/// The environment hosts must be in for a workload of `namespace`.
pub fn environment_filter(
    spec: &WorkloadSpec,
    namespace: &str,
    allow_shared_hosts: bool,
) -> Result<Option<String>, SchedulingError> {
    match spec.environment.as_deref() {
        Some(asked) if asked != namespace && !allow_shared_hosts => {
            Err(SchedulingError::CrossEnvironmentDenied {
                asked: asked.into(),
                namespace: namespace.into(),
            })
        }
        Some(asked) => Ok(Some(asked.into())),
        None if !allow_shared_hosts => Ok(Some(namespace.into())),
        None => Ok(None),
    }
}

/// Whether the host's `Ready` condition is True.
pub fn is_ready(host: &Host) -> bool {
    host.fields.status.as_ref().is_some_and(|status| {
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    })
}

/// The host a workload of `namespace` goes to.
pub fn choose_host<'a>(
    spec: &WorkloadSpec,
    namespace: &str,
    hosts: &'a [Host],
    allow_shared_hosts: bool,
) -> Result<&'a Host, SchedulingError> {
    choose_host_with(
        spec,
        namespace,
        hosts,
        allow_shared_hosts,
        &Hints::default(),
    )
}

/// What the operator knows beyond the Hosts' last heartbeats.
#[derive(Debug, Default)]
pub struct Hints<'a> {
    /// Hosts to use only when no other matches (a replica was stuck there).
    pub avoid: Vec<&'a str>,
    /// Workloads the operator has placed on each host: heartbeats lag
    /// behind placements, so a burst would otherwise pile onto one host.
    pub placed: BTreeMap<String, i64>,
}

/// As [`choose_host`], with [`Hints`]: the load of a host is the larger of
/// its heartbeat's count and what the operator placed there; avoided hosts
/// come last.
pub fn choose_host_with<'a>(
    spec: &WorkloadSpec,
    namespace: &str,
    hosts: &'a [Host],
    allow_shared_hosts: bool,
    hints: &Hints<'_>,
) -> Result<&'a Host, SchedulingError> {
    let environment = environment_filter(spec, namespace, allow_shared_hosts)?;
    let labels_match = |host: &Host| {
        let labels = host.metadata.labels.as_ref();
        spec.host_selector
            .iter()
            .all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
    };
    let in_environment = |host: &Host| match &environment {
        Some(wanted) => host.fields.environment.as_deref().unwrap_or_default() == wanted,
        None => true,
    };
    // Not avoided, then least loaded; the host id breaks ties so the
    // choice is stable.
    let load = |host: &Host| {
        let status = host.fields.status.as_ref();
        let reported = status.and_then(|s| s.workload_count).unwrap_or(0);
        let placed = hints.placed.get(&host.fields.host_id).copied().unwrap_or(0);
        (
            hints.avoid.contains(&host.fields.host_id.as_str()),
            reported.max(placed),
            std::cmp::Reverse(status.map(|s| s.system_memory_free).unwrap_or(0)),
            host.fields.host_id.clone(),
        )
    };
    hosts
        .iter()
        .filter(|h| is_ready(h) && labels_match(h) && in_environment(h))
        .min_by_key(|h| load(h))
        .ok_or_else(|| SchedulingError::NoMatchingHost {
            selector: spec.host_selector.clone(),
            environment,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Condition, HostFields, HostStatus};

    fn host(id: &str, labels: &[(&str, &str)], env: &str, workloads: i64, free: i64) -> Host {
        let mut host = Host::new(
            id,
            HostFields {
                host_id: id.into(),
                environment: (!env.is_empty()).then(|| env.to_string()),
                status: Some(HostStatus {
                    conditions: vec![Condition {
                        type_: "Ready".into(),
                        status: ConditionStatus::True,
                        observed_generation: None,
                        last_transition_time: None,
                        last_probe_time: None,
                        reason: None,
                        message: None,
                    }],
                    workload_count: Some(workloads),
                    system_memory_free: free,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        host.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        host
    }

    fn selector(pairs: &[(&str, &str)]) -> WorkloadSpec {
        WorkloadSpec {
            host_selector: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_least_loaded_matching_ready_host_wins() {
        let mut not_ready = host("idle-but-down", &[("hostgroup", "web")], "", 0, 1 << 40);
        not_ready.fields.status.as_mut().unwrap().conditions[0].status = ConditionStatus::Unknown;
        let hosts = [
            host("busy", &[("hostgroup", "web")], "", 9, 1 << 30),
            host("other-group", &[("hostgroup", "batch")], "", 0, 1 << 30),
            not_ready,
            host("light", &[("hostgroup", "web")], "", 2, 1 << 20),
            host("light-more-memory", &[("hostgroup", "web")], "", 2, 1 << 30),
        ];
        let chosen = choose_host(&selector(&[("hostgroup", "web")]), "default", &hosts, true);
        assert_eq!(chosen.unwrap().fields.host_id, "light-more-memory");
        // A replacement avoids the host its replica was stuck on, if it can.
        let web = selector(&[("hostgroup", "web")]);
        let avoid = Hints {
            avoid: vec!["light-more-memory"],
            ..Default::default()
        };
        let chosen = choose_host_with(&web, "default", &hosts, true, &avoid);
        assert_eq!(chosen.unwrap().fields.host_id, "light");
        let only = [host("only", &[("hostgroup", "web")], "", 0, 0)];
        let avoid = Hints {
            avoid: vec!["only"],
            ..Default::default()
        };
        let chosen = choose_host_with(&web, "default", &only, true, &avoid);
        assert_eq!(chosen.unwrap().fields.host_id, "only");
        // Placements not yet in a heartbeat count.
        let placed = Hints {
            placed: BTreeMap::from([("light-more-memory".to_string(), 3)]),
            ..Default::default()
        };
        let chosen = choose_host_with(&web, "default", &hosts, true, &placed);
        assert_eq!(chosen.unwrap().fields.host_id, "light");
    }

    #[test]
    fn no_match_says_what_was_asked() {
        let hosts = [host("a", &[("hostgroup", "web")], "", 0, 0)];
        let error = choose_host(&selector(&[("gpu", "yes")]), "default", &hosts, true).unwrap_err();
        assert_eq!(error.reason(), "NoMatchingHost");
        assert!(error.to_string().contains("gpu"), "{error}");
    }

    #[test]
    fn environments_follow_the_reference_rules() {
        let hosts = [
            host("team-a", &[], "team-a", 5, 0),
            host("team-b", &[], "team-b", 0, 0),
        ];
        let chosen = |spec: &WorkloadSpec, shared: bool| {
            choose_host(spec, "team-a", &hosts, shared).map(|h| h.fields.host_id.clone())
        };
        let mut spec = WorkloadSpec::default();
        // Shared hosts, no environment asked: anyone, least loaded.
        assert_eq!(chosen(&spec, true).unwrap(), "team-b");
        // Not shared: the namespace's own environment only.
        assert_eq!(chosen(&spec, false).unwrap(), "team-a");
        // Another environment, asked for, not shared: refused.
        spec.environment = Some("team-b".into());
        let error = chosen(&spec, false).unwrap_err();
        assert_eq!(error.reason(), "CrossEnvironmentSchedulingDenied");
        // Shared: allowed.
        assert_eq!(chosen(&spec, true).unwrap(), "team-b");
    }
}
