//! What host lifecycle operations fail with.

use std::net::SocketAddr;

use super::http::RouteError;
use super::resolve::ResolveError;
use crate::engine::EngineError;
use crate::plugin::PluginError;

/// Errors of host lifecycle operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Building the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Setting up the host's linker failed.
    #[error("cannot link WASI into the host")]
    Linker(#[source] crate::plugin::BoxError),
    /// The default outbound HTTP client could not be set up.
    #[error("cannot set up outbound HTTP: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// HTTPS for the ingress could not be set up (a certificate or key
    /// file that is missing, not PEM, or not a pair).
    #[error("HTTPS ingress: {0}")]
    TlsIngress(#[from] super::http::TlsIngressError),
    /// The HTTP server could not bind its address.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another workload already runs under this id.
    #[error("workload id `{0}` is already in use by a different workload")]
    WorkloadIdConflict(String),
    /// The workload has no components.
    #[error("workload `{0}` has no components")]
    NoComponents(String),
    /// A component could not be made ready.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The workload's routing configuration was refused.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The workload asks for HTTP, but no component serves it; or several do.
    #[error("workload `{workload}`: {reason}")]
    Http {
        /// Workload name.
        workload: String,
        /// What is wrong.
        reason: String,
    },
    /// A component's image could not be pulled.
    #[error("component `{component}`: {source}")]
    Pull {
        /// Component name.
        component: String,
        /// What went wrong.
        source: crate::oci::OciError,
    },
    /// A volume could not be prepared.
    #[error("workload `{workload}`: volume `{volume}`: {reason}")]
    Volume {
        /// Workload name.
        workload: String,
        /// Volume name.
        volume: String,
        /// What is wrong.
        reason: String,
    },
    /// The workload was stopped while it was starting.
    #[error("workload `{0}` was stopped while starting")]
    StoppedWhileStarting(String),
    /// Two plugins with the same id.
    #[error("a plugin with id `{0}` is already registered")]
    DuplicatePlugin(String),
    /// A component plugin could not be loaded or started.
    #[error(transparent)]
    ComponentPlugin(#[from] crate::plugin::component::ComponentPluginError),
    /// A plugin failed to start, bind or stop.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}
