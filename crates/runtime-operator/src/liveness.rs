//! Whether a host is there. The operator asks the host directly
//! (`runtime.host.<id>.heartbeat`) instead of waiting for heartbeats to
//! stop: when a host process dies, NATS answers "no responders" at once, so
//! its workloads can move within seconds (the reference notices after
//! 60-120 s). And silence is never taken for death while the operator's own
//! connection is not healthy: a NATS outage or an operator restart deletes
//! nothing (the reference deletes every Host then).

use std::time::Duration;

use async_nats::RequestErrorKind;

use crate::crd::ConditionStatus;

/// What asking a host gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The host answered.
    Answered,
    /// NATS says nobody listens on the host's subject: the host is gone.
    NoResponders,
    /// No answer in time: busy, or a slow network. Not proof of anything.
    TimedOut,
    /// The request could not be made: the operator's connection failed,
    /// or the id cannot be a subject.
    Failed,
}

/// Asks host `host_id` for a heartbeat.
pub async fn probe(client: &async_nats::Client, host_id: &str, timeout: Duration) -> Probe {
    let subject = runtime_proto::subjects::host(host_id, "heartbeat");
    match tokio::time::timeout(timeout, client.request(subject, "".into())).await {
        Err(_) => Probe::TimedOut,
        Ok(Ok(_)) => Probe::Answered,
        Ok(Err(e)) => match e.kind() {
            RequestErrorKind::NoResponders => Probe::NoResponders,
            RequestErrorKind::TimedOut => Probe::TimedOut,
            _ => Probe::Failed,
        },
    }
}

/// The host's `Ready` status: True when it answered; False only when NATS
/// says it is gone *and* the operator's connection has been healthy for at
/// least `settle` (so the answer is not an artefact of a reconnect);
/// Unknown otherwise. Only False lets its workloads move.
pub fn readiness(
    probe: Probe,
    bus_healthy_for: Option<Duration>,
    settle: Duration,
) -> ConditionStatus {
    match probe {
        Probe::Answered => ConditionStatus::True,
        Probe::NoResponders if bus_healthy_for.is_some_and(|up| up >= settle) => {
            ConditionStatus::False
        }
        Probe::NoResponders | Probe::TimedOut | Probe::Failed => ConditionStatus::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_settled_bus_saying_nobody_is_there_makes_a_host_not_ready() {
        let settle = Duration::from_secs(5);
        let up = Some(Duration::from_secs(60));
        assert_eq!(
            readiness(Probe::Answered, None, settle),
            ConditionStatus::True
        );
        assert_eq!(
            readiness(Probe::NoResponders, up, settle),
            ConditionStatus::False
        );
        // Just reconnected: not trusted yet.
        assert_eq!(
            readiness(Probe::NoResponders, Some(Duration::from_secs(1)), settle),
            ConditionStatus::Unknown
        );
        // The operator's own connection is down: nothing is concluded.
        assert_eq!(
            readiness(Probe::NoResponders, None, settle),
            ConditionStatus::Unknown
        );
        assert_eq!(
            readiness(Probe::Failed, up, settle),
            ConditionStatus::Unknown
        );
        assert_eq!(
            readiness(Probe::TimedOut, up, settle),
            ConditionStatus::Unknown
        );
    }
}
