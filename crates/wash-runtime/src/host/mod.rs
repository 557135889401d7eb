//! The running host: workloads by id and their lifecycle, the shared
//! linker, and the HTTP ingress in front of them.
//!
//! | file | concern |
//! |---|---|
//! | `builder.rs` | [`HostBuilder`]: engine, plugins, egress, ingress, limits |
//! | `interfaces.rs` | the one list of WASI interfaces linked into every component |
//! | `registry.rs` | workloads by id and their state |
//! | `lifecycle.rs` | start (resolve, bind, route) and stop, undone on every path |
//! | `bound.rs` | the plugins bound to a workload, unbound when it ends |
//! | `resolve.rs` | one component: compile, check imports, link, pre-instantiate |
//! | `volumes.rs` | host directories behind volumes |
//! | `component_plugins.rs` | component plugins started as workloads of their own |
//! | `http/` | the ingress: server, routers, request service |

pub mod admin;
mod bound;
mod builder;
mod component_plugins;
mod error;
pub mod http;
mod interfaces;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
pub(crate) mod registry;
pub(crate) mod resolve;
mod volumes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::component::Linker;

pub use self::builder::HostBuilder;
pub use self::error::HostError;
use self::http::{HttpServer, Router};
use self::interfaces::ProvidedInterfaces;
pub use self::metrics::HostMetrics;
use self::registry::{Registry, Slot};
pub use self::resolve::ResolveError;
use crate::egress::OutgoingHandler;
use crate::engine::{CacheOutcome, Engine};
use crate::instance::HttpWorld;
use crate::instance::StoreState;
use crate::plugin::Plugin;
use crate::types::{Workload, WorkloadStatus};

/// Request deadline when neither host nor component sets one.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The lifecycle operations every host offers, whoever drives it (`wash
/// dev`, the control plane, an embedder).
pub trait HostApi: Send + Sync {
    /// Starts `workload` under `workload_id`. Replaying the same start is a
    /// no-op that reports the current status; a different workload under a
    /// running id is an error.
    fn workload_start(
        &self,
        workload_id: &str,
        workload: Workload,
    ) -> impl Future<Output = Result<WorkloadStatus, HostError>> + Send;

    /// The status of a workload (`NotFound` when there is none).
    fn workload_status(&self, workload_id: &str) -> impl Future<Output = WorkloadStatus> + Send;

    /// Stops a workload: it receives no new requests; requests in flight
    /// finish. Stopping an unknown id reports `NotFound`.
    fn workload_stop(&self, workload_id: &str) -> impl Future<Output = WorkloadStatus> + Send;
}

/// Counters for tests, metrics and leak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStats {
    /// Workloads known to the host (any state).
    pub workloads: usize,
    /// Components of running workloads.
    pub components: usize,
    /// Component instances (stores) alive right now.
    pub live_instances: usize,
    /// Requests held until the workload that will serve them has started.
    pub held_requests: usize,
    /// Requests being served by components right now.
    pub requests_in_flight: usize,
    /// Plugins bound to workloads (one per plugin per workload): a workload
    /// that is gone leaves none behind.
    pub plugin_bindings: usize,
}

/// Facts about one started component, for embedders and CLIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Component name.
    pub name: String,
    /// `sha256:<hex>` of its bytes.
    pub digest: String,
    /// Whether its compilation came from the cache.
    pub cache: CacheOutcome,
    /// The HTTP world it serves, if any.
    pub http: Option<HttpWorld>,
    /// Instances created so far (HTTP components).
    pub instantiations: u64,
}

/// A running host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: Engine,
    linker: Linker<StoreState>,
    provided: ProvidedInterfaces,
    plugins: Vec<Plugin>,
    oci: Option<Arc<crate::oci::OciClient>>,
    registry: Arc<Registry>,
    router: Option<Arc<dyn Router>>,
    outgoing: Arc<dyn OutgoingHandler>,
    request_timeout: Duration,
    idle_timeout: Duration,
    allow_private_networks: bool,
    http_addr: Option<SocketAddr>,
    server: tokio::sync::Mutex<Option<HttpServer>>,
    live: Arc<AtomicUsize>,
    /// One permit per instance the engine can hold at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// How many of them one component may hold.
    component_slots: usize,
    generation: AtomicU64,
    /// Plugin bindings alive (one per plugin per workload).
    bindings: Arc<AtomicUsize>,
    metrics: Arc<HostMetrics>,
    /// Each component plugin's runtime, by plugin id (set once started).
    component_plugins: Vec<(String, crate::plugin::component::RuntimeCell)>,
    /// Where component plugins that need no P3 run.
    synchronous_plugins: Option<SynchronousPlugins>,
}

/// The engine (without concurrency) and linker of the component plugins
/// that run on it, by their workload ids.
struct SynchronousPlugins {
    engine: Engine,
    linker: Linker<StoreState>,
    workloads: std::collections::HashSet<String>,
}

impl Host {
    /// The engine this host runs components on.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Where the HTTP server listens, if there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.inner.http_addr
    }

    /// The status of the component plugin `id`, if the host has one.
    pub fn component_plugin_status(
        &self,
        id: &str,
    ) -> Option<crate::plugin::component::ComponentPluginStatus> {
        let (_, cell) = self.inner.component_plugins.iter().find(|(p, _)| p == id)?;
        Some(crate::plugin::component::ComponentPluginStatus::of(
            id, cell,
        ))
    }

    /// The client that pulls components' images, if the host has one.
    pub fn oci(&self) -> Option<&crate::oci::OciClient> {
        self.inner.oci.as_deref()
    }

    /// The host's Prometheus metrics (requests, instances, egress...); an
    /// embedder adds what only it knows, such as the control-plane link.
    pub fn metrics(&self) -> &HostMetrics {
        &self.inner.metrics
    }

    /// Every metric in the Prometheus text format, the gauges read now.
    pub fn metrics_text(&self) -> String {
        let (mut starting, mut running, mut failed) = (0, 0, 0);
        for slot in self.inner.registry.read().values() {
            match slot {
                Slot::Starting { .. } => starting += 1,
                Slot::Running { .. } => running += 1,
                Slot::Failed { .. } => failed += 1,
            }
        }
        let cache = self.inner.engine.cache_stats();
        self.inner.metrics.set_scraped(
            &[
                ("starting", starting),
                ("running", running),
                ("failed", failed),
            ],
            cache.hits,
            cache.misses,
        );
        self.inner.metrics.encode()
    }

    /// Names of workloads still starting: a host is not ready to take
    /// traffic for them yet.
    pub fn starting_workloads(&self) -> Vec<String> {
        self.inner
            .registry
            .read()
            .values()
            .filter_map(|slot| match slot {
                Slot::Starting { spec, .. } => Some(spec.name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Counters for metrics and leak checks.
    pub fn stats(&self) -> HostStats {
        let slots = self.inner.registry.read();
        HostStats {
            workloads: slots.len(),
            components: slots
                .values()
                .map(|slot| match slot {
                    Slot::Running { workload, .. } => workload.components.len(),
                    _ => 0,
                })
                .sum(),
            live_instances: self.inner.live.load(Ordering::Relaxed),
            held_requests: self.inner.registry.held.load(Ordering::Relaxed),
            requests_in_flight: self.inner.registry.in_flight.load(Ordering::Relaxed),
            plugin_bindings: self.inner.bindings.load(Ordering::Relaxed),
        }
    }

    /// Interfaces components can import on this host: WASI (P2, P3) and
    /// those of its plugins.
    pub fn provided_interfaces(&self) -> Vec<crate::types::WitInterface> {
        let mut provided: Vec<_> = self.inner.provided.wit_interfaces().collect();
        for plugin in &self.inner.plugins {
            for world in plugin.world() {
                provided.push(crate::types::WitInterface {
                    namespace: world.namespace,
                    package: world.package,
                    interfaces: world.interfaces,
                    version: Some(world.version),
                    ..Default::default()
                });
            }
        }
        provided
    }

    /// Interfaces this host calls on components (the exports it serves).
    pub fn called_interfaces(&self) -> Vec<crate::types::WitInterface> {
        let mut called = Vec::new();
        if self.inner.http_addr.is_some() {
            called.push(crate::types::WitInterface {
                namespace: "wasi".into(),
                package: "http".into(),
                interfaces: vec!["incoming-handler".into(), "handler".into()],
                ..Default::default()
            });
        }
        for plugin in &self.inner.plugins {
            called.extend(plugin.called_interfaces());
        }
        called
    }

    /// The components of a running workload.
    pub fn components(&self, workload_id: &str) -> Option<Vec<ComponentInfo>> {
        let workload = self.inner.registry.running(workload_id)?;
        Some(
            workload
                .components
                .iter()
                .map(|c| ComponentInfo {
                    name: c.name.to_string(),
                    digest: c.digest.clone(),
                    cache: c.cache,
                    http: c.http.as_ref().map(|h| h.world),
                    instantiations: c
                        .http
                        .as_ref()
                        .map(|h| h.handler.state().instantiations())
                        .unwrap_or(0),
                })
                .collect(),
        )
    }

    /// Stops accepting HTTP, drains requests in flight (up to `drain`), then
    /// stops every workload.
    pub async fn shutdown(&self, drain: Duration) {
        if let Some(server) = self.inner.server.lock().await.take() {
            server.shutdown(drain).await;
        }
        let ids: Vec<String> = self.inner.registry.read().keys().cloned().collect();
        for id in ids {
            self.workload_stop(&id).await;
        }
        for plugin in &self.inner.plugins {
            if let Err(e) = plugin.stop().await {
                tracing::warn!(plugin = plugin.id(), "plugin did not stop cleanly: {e}");
            }
        }
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("http_addr", &self.inner.http_addr)
            .field("stats", &self.stats())
            .finish()
    }
}
