//! Test harness shared by the integration tests and benches of the
//! workspace: the guest components they run ([`fixtures`]), workloads built
//! from them ([`workload`]), and real backend servers (NATS, Redis, an OCI
//! registry) on free loopback ports, started and stopped by the tests
//! ([`servers`]), and a Kubernetes API server for the operator's tests
//! ([`kube_api`]).

pub mod chart;
pub mod fixtures;
pub mod kube_api;
pub mod servers;
pub mod workload;

pub use fixtures::{fixture, fixture_path, fixtures_dir};
pub use workload::{WorkloadBuilder, http_workload, interface};

/// Polls `check` every 100 ms until it gives a value; panics naming `what`
/// after `timeout`. For waiting on a condition, never on a sleep.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
