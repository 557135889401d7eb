//! `runtime-operator`: places `Workload`s on `wash host`s over the NATS
//! control plane (`runtime.host.<id>.*`).
//!
//! This crate defines the custom resources ([`crd`]); `runtime-operator
//! crds` prints them for `kubectl apply`. It links no WebAssembly runtime.

pub mod crd;
