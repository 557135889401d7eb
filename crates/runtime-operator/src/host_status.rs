//! A Host's `Reporting` and `Ready` conditions, from asking the host.

use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};

use crate::crd::{Condition, ConditionStatus, Host};
use crate::liveness::{Probe, probe, readiness};

/// How long a probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets condition `type_` in `conditions`; its transition time moves only
/// when its status changes. Returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    let next = |last_transition_time| Condition {
        type_: type_.to_string(),
        status,
        observed_generation: None,
        last_transition_time,
        last_probe_time: None,
        reason: Some(reason.to_string()),
        message: (!message.is_empty()).then(|| message.to_string()),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(current) => {
            let transition = if current.status == status {
                current.last_transition_time.clone()
            } else {
                Some(now.to_string())
            };
            let updated = next(transition);
            let changed = *current != updated;
            *current = updated;
            changed
        }
        None => {
            conditions.push(next(Some(now.to_string())));
            true
        }
    }
}

/// The Host's conditions as they are now.
pub fn conditions_of(host: &Host) -> Vec<Condition> {
    host.fields
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default()
}

/// Writes the Host's conditions through its status.
pub async fn write_conditions(
    hosts: &Api<Host>,
    name: &str,
    conditions: &[Condition],
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({ "status": { "conditions": conditions } });
    hosts
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
}

/// Asks the host behind `host` and records `Reporting` and `Ready` in its
/// status. `bus_healthy_for` is how long the operator's own NATS
/// connection has been up (None while it is down); see
/// [`readiness`](crate::liveness::readiness). Returns the Ready status.
pub async fn refresh(
    hosts: &Api<Host>,
    client: &async_nats::Client,
    host: &Host,
    bus_healthy_for: Option<Duration>,
    settle: Duration,
    now: &str,
) -> Result<ConditionStatus, kube::Error> {
    let outcome = probe(client, &host.fields.host_id, PROBE_TIMEOUT).await;
    let (reporting, reason, message) = match outcome {
        Probe::Answered => (ConditionStatus::True, "Available", ""),
        Probe::NoResponders => (
            ConditionStatus::False,
            "NoResponders",
            "nothing listens on the host's control subject: the host is gone",
        ),
        Probe::TimedOut => (
            ConditionStatus::Unknown,
            "TimedOut",
            "the host did not answer in time",
        ),
        Probe::Failed => (
            ConditionStatus::Unknown,
            "ProbeFailed",
            "the operator could not ask the host",
        ),
    };
    let ready = readiness(outcome, bus_healthy_for, settle);
    let mut conditions = conditions_of(host);
    let mut changed = set_condition(
        &mut conditions,
        "Reporting",
        reporting,
        reason,
        message,
        now,
    );
    let ready_reason = match ready {
        ConditionStatus::True => "Available",
        ConditionStatus::False => "HostGone",
        ConditionStatus::Unknown => "Unconfirmed",
    };
    changed |= set_condition(&mut conditions, "Ready", ready, ready_reason, "", now);
    if changed {
        let name = host.metadata.name.clone().unwrap_or_default();
        write_conditions(hosts, &name, &conditions).await?;
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_times_move_only_with_the_status() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::True,
            "Available",
            "",
            "t1"
        ));
        assert!(!set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::True,
            "Available",
            "",
            "t2"
        ));
        assert_eq!(conditions[0].last_transition_time.as_deref(), Some("t1"));
        assert!(set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "HostGone",
            "",
            "t3"
        ));
        assert_eq!(conditions[0].last_transition_time.as_deref(), Some("t3"));
        assert_eq!(conditions.len(), 1);
    }
}
