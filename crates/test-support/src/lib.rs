//! Test harness shared by the integration tests of the workspace: real
//! backend servers (NATS, Redis, an OCI registry) on free loopback ports,
//! started and stopped by the tests.

pub mod servers;
