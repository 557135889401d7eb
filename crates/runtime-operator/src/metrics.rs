//! Prometheus metrics: reconciles, errors by kind, the work waiting, and
//! NATS round trips.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

type RttFamily = Family<OperationLabels, Histogram, fn() -> Histogram>;

fn rtt_histogram() -> Histogram {
    // 0.5 ms .. about 65 s: a start may pull and compile for up to a minute.
    Histogram::new(exponential_buckets(0.000_5, 2.0, 18))
}

/// The operator's metrics.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    queue_depth: Family<ControllerLabels, Gauge>,
    waiting: Mutex<HashSet<(String, String)>>,
    nats_rtt: RttFamily,
    nats_connected: Gauge,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under `runtime_operator_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("runtime_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles run, by controller",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by controller and kind of error",
            errors.clone(),
        );
        let queue_depth = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Objects waiting for their next reconcile, by controller",
            queue_depth.clone(),
        );
        let nats_rtt: RttFamily = Family::new_with_constructor(rtt_histogram);
        registry.register(
            "nats_request_duration_seconds",
            "Round trips of control-plane requests to hosts, by operation",
            nats_rtt.clone(),
        );
        let nats_connected = Gauge::default();
        registry.register(
            "nats_connected",
            "1 while the operator's NATS connection is up",
            nats_connected.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            queue_depth,
            waiting: Mutex::default(),
            nats_rtt,
            nats_connected,
            leader,
        }
    }

    /// A reconcile of `object` by `controller` begins: it leaves the queue.
    pub fn reconcile_started(&self, controller: &str, object: &str) {
        self.reconciles
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .inc();
        self.queue(controller, object, false);
    }

    /// The reconcile is over and another is scheduled for `object`.
    pub fn requeued(&self, controller: &str, object: &str) {
        self.queue(controller, object, true);
    }

    /// The object is gone: nothing waits for it.
    pub fn forgotten(&self, controller: &str, object: &str) {
        self.queue(controller, object, false);
    }

    fn queue(&self, controller: &str, object: &str, waiting: bool) {
        let mut set = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let key = (controller.to_string(), object.to_string());
        if waiting {
            set.insert(key);
        } else {
            set.remove(&key);
        }
        let depth = set.iter().filter(|(c, _)| c == controller).count();
        self.queue_depth
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// A reconcile failed with an error of `kind`.
    pub fn reconcile_failed(&self, controller: &str, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                kind: kind.into(),
            })
            .inc();
    }

    /// A control-plane request took `elapsed`.
    pub fn nats_round_trip(&self, operation: &str, elapsed: Duration) {
        self.nats_rtt
            .get_or_create(&OperationLabels {
                operation: operation.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The NATS connection is up, or not.
    pub fn set_nats_connected(&self, up: bool) {
        self.nats_connected.set(i64::from(up));
    }

    /// This replica leads, or not.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_what_happened() {
        let metrics = Metrics::new();
        metrics.reconcile_started("workload", "default/a");
        metrics.requeued("workload", "default/a");
        metrics.requeued("workload", "default/b");
        metrics.reconcile_started("workload", "default/b");
        metrics.reconcile_failed("workload", "config");
        metrics.nats_round_trip("workload.start", Duration::from_millis(3));
        let text = metrics.encode();
        assert!(
            text.contains(r#"runtime_operator_reconciles_total{controller="workload"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"runtime_operator_reconcile_errors_total{controller="workload",kind="config"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"runtime_operator_queue_depth{controller="workload"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"runtime_operator_nats_request_duration_seconds_count{operation="workload.start"} 1"#
            ),
            "{text}"
        );
    }
}
