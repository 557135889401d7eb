//! `runtime-operator`: places `Workload`s on `wash host`s over the NATS
//! control plane (`runtime.host.<id>.*`).
//!
//! The parts: the custom resources ([`crd`]; `runtime-operator crds` prints
//! them for `kubectl apply`); Hosts from heartbeats ([`hosts`]) and from
//! asking them ([`host_status`], [`liveness`]); where a Workload goes
//! ([`scheduling`]); the Workload controller ([`workload`]) that talks to
//! hosts through [`control`]; replica sets ([`replica_set`]), deployments ([`deployment`]) and
//! artifacts ([`artifact`]); Service routing through EndpointSlices
//! ([`route`]); and the process around them ([`operator`],
//! [`leader`], [`serve`], [`metrics`], [`bus`]). It links no WebAssembly
//! runtime: the control-plane messages come from `runtime-proto`.

pub mod artifact;
pub mod bus;
pub mod control;
pub mod crd;
pub mod deployment;
pub mod heartbeat;
pub mod host_pods;
pub mod host_status;
pub mod hosts;
pub mod leader;
pub mod liveness;
pub mod metrics;
pub mod operator;
pub mod replica_set;
pub mod route;
pub mod scheduling;
pub mod serve;
pub mod workload;

/// An error and its causes on one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether the API server said the object is not there.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}
