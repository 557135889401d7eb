//! The host's Prometheus metrics. Names follow the OpenTelemetry HTTP
//! semantic conventions where one exists (`http_server_request_duration_seconds`),
//! the rest are `wash_*`.
//!
//! The request path touches only handles made once per component (a
//! counter per status class, one histogram): no label lookup per request.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::engine::failure::FailureKind;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    workload: String,
    workload_id: String,
    component: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    workload: String,
    workload_id: String,
    component: String,
    http_response_status_class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    workload: String,
    workload_id: String,
    component: String,
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    workload: String,
    workload_id: String,
    component: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type HistogramFamily = Family<ComponentLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // The OpenTelemetry default boundaries for HTTP durations, in seconds.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ])
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const DISCARD_REASONS: [&str; 4] = ["trap", "deadline", "memory", "other"];
/// Outcomes of a guest's outbound HTTP request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EgressOutcome {
    /// A response came back.
    Ok,
    /// `allowed_hosts` refused it.
    Denied,
    /// The workload had too many requests in flight.
    Limited,
    /// The request failed (connect, TLS, timeout...).
    Error,
}
const EGRESS_OUTCOMES: [&str; 4] = ["ok", "denied", "limited", "error"];

/// Every metric the host keeps.
pub struct HostMetrics {
    registry: Mutex<Registry>,
    requests: Family<StatusLabels, Counter>,
    duration: HistogramFamily,
    created: Family<ComponentLabels, Counter>,
    reused: Family<ComponentLabels, Counter>,
    discarded: Family<ReasonLabels, Counter>,
    egress: Family<OutcomeLabels, Counter>,
    workloads: Family<StateLabels, Gauge>,
    cache_hits: Gauge,
    cache_misses: Gauge,
    nats_connected: Gauge,
    /// Asked at each scrape whether the control-plane link is up.
    nats_probe: Mutex<Option<ConnectionProbe>>,
}

/// Tells whether a connection is up, when asked.
pub type ConnectionProbe = Box<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for HostMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostMetrics").finish_non_exhaustive()
    }
}

impl Default for HostMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HostMetrics {
    /// The metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "wash_http_server_requests",
            "HTTP requests served, by workload, component and status class",
            requests.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "http_server_request_duration",
            "Time from a request's arrival to its response head",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let created = Family::<ComponentLabels, Counter>::default();
        registry.register(
            "wash_instances_created",
            "Component instances created",
            created.clone(),
        );
        let reused = Family::<ComponentLabels, Counter>::default();
        registry.register(
            "wash_instances_reused",
            "Requests served by an instance that had served one before",
            reused.clone(),
        );
        let discarded = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "wash_instances_discarded",
            "Instances thrown away after a failure, by reason (trap, deadline, memory, other)",
            discarded.clone(),
        );
        let egress = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "wash_egress_requests",
            "Outbound HTTP requests of guests, by outcome (ok, denied, limited, error)",
            egress.clone(),
        );
        let workloads = Family::<StateLabels, Gauge>::default();
        registry.register(
            "wash_workloads",
            "Workloads on the host, by state",
            workloads.clone(),
        );
        let cache_hits = Gauge::default();
        registry.register(
            "wash_compile_cache_hits",
            "Components loaded from the compile cache (since start)",
            cache_hits.clone(),
        );
        let cache_misses = Gauge::default();
        registry.register(
            "wash_compile_cache_misses",
            "Components compiled because the cache had none (since start)",
            cache_misses.clone(),
        );
        let nats_connected = Gauge::default();
        registry.register(
            "wash_nats_connected",
            "1 while the control-plane NATS connection is up",
            nats_connected.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            duration,
            created,
            reused,
            discarded,
            egress,
            workloads,
            cache_hits,
            cache_misses,
            nats_connected,
            nats_probe: Mutex::new(None),
        }
    }

    /// Handles for one component's series.
    pub(crate) fn component(
        self: &Arc<Self>,
        workload: &str,
        workload_id: &str,
        component: &str,
    ) -> Arc<ComponentMetrics> {
        let labels = ComponentLabels {
            workload: workload.into(),
            workload_id: workload_id.into(),
            component: component.into(),
        };
        let status = |class: &str| StatusLabels {
            workload: workload.into(),
            workload_id: workload_id.into(),
            component: component.into(),
            http_response_status_class: class.into(),
        };
        let reason = |reason: &str| ReasonLabels {
            workload: workload.into(),
            workload_id: workload_id.into(),
            component: component.into(),
            reason: reason.into(),
        };
        let outcome = |outcome: &str| OutcomeLabels {
            workload: workload.into(),
            workload_id: workload_id.into(),
            component: component.into(),
            outcome: outcome.into(),
        };
        Arc::new(ComponentMetrics {
            otel: crate::telemetry::enabled()
                .then(|| OtelInstruments::new(workload, workload_id, component)),
            requests: STATUS_CLASSES.map(|c| self.requests.get_or_create_owned(&status(c))),
            duration: self.duration.get_or_create_owned(&labels),
            created: self.created.get_or_create_owned(&labels),
            reused: self.reused.get_or_create_owned(&labels),
            discarded: DISCARD_REASONS.map(|r| self.discarded.get_or_create_owned(&reason(r))),
            egress: EGRESS_OUTCOMES.map(|o| self.egress.get_or_create_owned(&outcome(o))),
            host: Arc::downgrade(self),
            labels,
        })
    }

    /// Whether the control-plane connection is up (the embedder knows).
    pub fn set_nats_connected(&self, connected: bool) {
        self.nats_connected.set(i64::from(connected));
    }

    /// How to learn, at each scrape, whether the control-plane connection
    /// is up: the gauge is then never stale.
    pub fn set_nats_probe(&self, probe: ConnectionProbe) {
        *self.nats_probe.lock().unwrap_or_else(|e| e.into_inner()) = Some(probe);
    }

    /// Sets the gauges read from the host at scrape time.
    pub(crate) fn set_scraped(&self, states: &[(&str, usize)], hits: u64, misses: u64) {
        for (state, count) in states {
            self.workloads
                .get_or_create(&StateLabels {
                    state: (*state).into(),
                })
                .set(*count as i64);
        }
        self.cache_hits.set(hits as i64);
        self.cache_misses.set(misses as i64);
    }

    /// The Prometheus text exposition of everything.
    pub(crate) fn encode(&self) -> String {
        if let Some(probe) = &*self.nats_probe.lock().unwrap_or_else(|e| e.into_inner()) {
            self.set_nats_connected(probe());
        }
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }

    /// Drops a component's series once its workload is gone.
    fn forget(&self, metrics: &ComponentMetrics) {
        let labels = &metrics.labels;
        for class in STATUS_CLASSES {
            self.requests.remove(&StatusLabels {
                workload: labels.workload.clone(),
                workload_id: labels.workload_id.clone(),
                component: labels.component.clone(),
                http_response_status_class: class.into(),
            });
        }
        for reason in DISCARD_REASONS {
            self.discarded.remove(&ReasonLabels {
                workload: labels.workload.clone(),
                workload_id: labels.workload_id.clone(),
                component: labels.component.clone(),
                reason: reason.into(),
            });
        }
        for outcome in EGRESS_OUTCOMES {
            self.egress.remove(&OutcomeLabels {
                workload: labels.workload.clone(),
                workload_id: labels.workload_id.clone(),
                component: labels.component.clone(),
                outcome: outcome.into(),
            });
        }
        self.duration.remove(labels);
        self.created.remove(labels);
        self.reused.remove(labels);
    }
}

/// The same measurements as OpenTelemetry instruments, made only while
/// telemetry is on (exported by the embedder's meter provider).
struct OtelInstruments {
    duration: opentelemetry::metrics::Histogram<f64>,
    created: opentelemetry::metrics::Counter<u64>,
    discarded: opentelemetry::metrics::Counter<u64>,
    egress: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<opentelemetry::KeyValue>,
}

impl OtelInstruments {
    fn new(workload: &str, workload_id: &str, component: &str) -> Self {
        use opentelemetry::KeyValue;
        let meter = opentelemetry::global::meter("wash");
        Self {
            duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests")
                .with_boundaries(vec![
                    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                ])
                .build(),
            created: meter
                .u64_counter("wash.instances.created")
                .with_description("Component instances created")
                .build(),
            discarded: meter
                .u64_counter("wash.instances.discarded")
                .with_description("Instances thrown away after a failure, by reason")
                .build(),
            egress: meter
                .u64_counter("wash.egress.requests")
                .with_description("Outbound HTTP requests of guests, by outcome")
                .build(),
            attributes: vec![
                KeyValue::new("workload", workload.to_string()),
                KeyValue::new("workload.id", workload_id.to_string()),
                KeyValue::new("component", component.to_string()),
            ],
        }
    }

    fn with(&self, key: &'static str, value: opentelemetry::Value) -> Vec<opentelemetry::KeyValue> {
        let mut attributes = self.attributes.clone();
        attributes.push(opentelemetry::KeyValue::new(key, value));
        attributes
    }
}

/// One component's series, ready to count into.
pub(crate) struct ComponentMetrics {
    otel: Option<OtelInstruments>,
    requests: [Counter; 5],
    duration: Histogram,
    created: Counter,
    reused: Counter,
    discarded: [Counter; 4],
    egress: [Counter; 4],
    host: std::sync::Weak<HostMetrics>,
    labels: ComponentLabels,
}

impl std::fmt::Debug for ComponentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentMetrics")
            .field("component", &self.labels.component)
            .finish()
    }
}

impl ComponentMetrics {
    /// A request answered with `status` after `seconds`.
    pub(crate) fn request(&self, status: u16, seconds: f64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[class].inc();
        self.duration.observe(seconds);
        if let Some(otel) = &self.otel {
            let attributes = otel.with("http.response.status_code", i64::from(status).into());
            otel.duration.record(seconds, &attributes);
        }
    }

    pub(crate) fn instance_created(&self) {
        self.created.inc();
        if let Some(otel) = &self.otel {
            otel.created.add(1, &otel.attributes);
        }
    }

    pub(crate) fn instance_reused(&self) {
        self.reused.inc();
    }

    pub(crate) fn instance_discarded(&self, kind: FailureKind) {
        let index = match kind {
            FailureKind::Trap => 0,
            FailureKind::Deadline => 1,
            FailureKind::MemoryLimit => 2,
            FailureKind::Other => 3,
        };
        self.discarded[index].inc();
        if let Some(otel) = &self.otel {
            otel.discarded
                .add(1, &otel.with("reason", DISCARD_REASONS[index].into()));
        }
    }

    pub(crate) fn egress(&self, outcome: EgressOutcome) {
        let index = match outcome {
            EgressOutcome::Ok => 0,
            EgressOutcome::Denied => 1,
            EgressOutcome::Limited => 2,
            EgressOutcome::Error => 3,
        };
        self.egress[index].inc();
        if let Some(otel) = &self.otel {
            otel.egress
                .add(1, &otel.with("outcome", EGRESS_OUTCOMES[index].into()));
        }
    }
}

impl Drop for ComponentMetrics {
    fn drop(&mut self) {
        if let Some(host) = self.host.upgrade() {
            host.forget(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_count_and_go_when_the_component_does() {
        let host = Arc::new(HostMetrics::new());
        let metrics = host.component("shop", "w-1", "api");
        metrics.request(200, 0.002);
        metrics.request(204, 0.02);
        metrics.request(503, 1.0);
        metrics.instance_created();
        metrics.instance_discarded(FailureKind::Trap);
        metrics.egress(EgressOutcome::Denied);
        host.set_nats_connected(true);
        let text = host.encode();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_string()
        };
        assert!(
            line("wash_http_server_requests_total{workload=\"shop\",workload_id=\"w-1\",component=\"api\",http_response_status_class=\"2xx\"}")
                .ends_with(" 2")
        );
        assert!(line("http_server_request_duration_seconds_count{").ends_with(" 3"));
        assert!(line("wash_instances_discarded_total{workload=\"shop\",workload_id=\"w-1\",component=\"api\",reason=\"trap\"}").ends_with(" 1"));
        assert!(line("wash_egress_requests_total{workload=\"shop\",workload_id=\"w-1\",component=\"api\",outcome=\"denied\"}").ends_with(" 1"));
        assert!(line("wash_nats_connected ").ends_with(" 1"));
        drop(metrics);
        assert!(!host.encode().contains("component=\"api\""));
    }
}
