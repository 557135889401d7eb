//! `runtime-operator`: places `Workload`s on `wash host`s over the NATS
//! control plane (`runtime.host.<id>.*`).
//!
//! So far: the custom resources ([`crd`]; `runtime-operator crds` prints
//! them for `kubectl apply`), the Host a heartbeat describes ([`heartbeat`])
//! and where a Workload goes ([`scheduling`]). It links no WebAssembly
//! runtime: the control-plane messages come from `runtime-proto`.

pub mod crd;
pub mod heartbeat;
pub mod host_status;
pub mod hosts;
pub mod liveness;
pub mod scheduling;
