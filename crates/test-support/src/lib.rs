//! Test harness shared by the integration tests and benches of the
//! workspace: the guest components they run ([`fixtures`]), workloads built
//! from them ([`workload`]), and real backend servers (NATS, Redis, an OCI
//! registry) on free loopback ports, started and stopped by the tests
//! ([`servers`]), and a Kubernetes API server for the operator's tests
//! ([`kube_api`]).

pub mod fixtures;
pub mod kube_api;
pub mod servers;
pub mod workload;

pub use fixtures::{fixture, fixture_path, fixtures_dir};
pub use workload::{WorkloadBuilder, http_workload, interface};
