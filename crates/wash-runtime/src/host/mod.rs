//! The running host: workloads by id and their lifecycle, the shared
//! linker, and the HTTP ingress in front of them.

pub mod egress;
pub mod http;
pub(crate) mod invoke;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::component::Linker;

use self::egress::{DefaultOutgoingHandler, OutgoingHandler};
use self::http::{HttpServer, HttpServerBuilder, Ingress, RouteError, Router};
use crate::engine::instances::HttpWorld;
use crate::engine::store::StoreState;
use crate::engine::workload::{
    HttpComponent, PluginImports, ProvidedInterfaces, ResolveContext, ResolveError,
    ResolvedComponent,
};
use crate::engine::{CacheOutcome, Engine, EngineBuilder, EngineError};
use crate::plugin::{HostPlugin, PluginError, ResolvedWorkload, WorkloadBind};
use crate::types::{VolumeSource, Workload, WorkloadState, WorkloadStatus};

/// Request deadline when neither host nor component sets one.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of host lifecycle operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Building the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Setting up the host's linker failed.
    #[error("cannot link WASI into the host: {0}")]
    Linker(String),
    /// The default outbound HTTP client could not be set up.
    #[error("cannot set up outbound HTTP: {0}")]
    Tls(#[from] crate::tls::TlsError),
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
    /// A plugin failed to start, bind or stop.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

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
}

/// Builds a [`Host`].
///
/// ```no_run
/// # async fn demo() -> Result<(), wash_runtime::host::HostError> {
/// use wash_runtime::host::{HostBuilder, http::HttpServerBuilder};
///
/// let host = HostBuilder::new()
///     .with_http(HttpServerBuilder::new("127.0.0.1:8080".parse().unwrap()))
///     .start()
///     .await?;
/// println!("serving on {:?}", host.http_addr());
/// # Ok(()) }
/// ```
pub struct HostBuilder {
    oci: Option<crate::oci::OciClient>,
    engine: Option<Engine>,
    http: Option<HttpServerBuilder>,
    request_timeout: Duration,
    idle_timeout: Duration,
    allow_private_networks: bool,
    component_slots: Option<usize>,
    plugins: Vec<Arc<dyn HostPlugin>>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBuilder {
    /// A host with a default engine, no HTTP server and a 30 s deadline.
    pub fn new() -> Self {
        Self {
            oci: None,
            engine: None,
            http: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: crate::engine::DEFAULT_IDLE_TIMEOUT,
            allow_private_networks: false,
            component_slots: None,
            plugins: Vec::new(),
        }
    }

    /// How many of the engine's instances one component may hold at once
    /// (default: half), so that a flood of slow or hostile requests to one
    /// component leaves room for every other.
    pub fn with_max_instances_per_component(mut self, max: usize) -> Self {
        self.component_slots = Some(max.max(1));
        self
    }

    /// Pulls components that name an `image` with this client.
    pub fn with_oci(mut self, oci: crate::oci::OciClient) -> Self {
        self.oci = Some(oci);
        self
    }

    /// Adds a capability plugin. Ids must be unique.
    pub fn with_plugin(mut self, plugin: Arc<dyn HostPlugin>) -> Result<Self, HostError> {
        if self.plugins.iter().any(|p| p.id() == plugin.id()) {
            return Err(HostError::DuplicatePlugin(plugin.id().to_string()));
        }
        self.plugins.push(plugin);
        Ok(self)
    }

    /// Lets guests' sockets reach private and special address ranges
    /// through host names in `allowed_hosts` (off by default: a name that
    /// resolves into such a range does not open it).
    pub fn with_private_network_egress(mut self, allow: bool) -> Self {
        self.allow_private_networks = allow;
        self
    }

    /// Uses this engine (to share it, or to configure it).
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Serves HTTP as configured.
    pub fn with_http(mut self, http: HttpServerBuilder) -> Self {
        self.http = Some(http);
        self
    }

    /// The request deadline for components that do not set their own.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a warm instance (a component with `pool_size` > 0) may sit
    /// idle before it is reclaimed.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Builds the host and starts its HTTP server, if any.
    pub async fn start(self) -> Result<Host, HostError> {
        let engine = match self.engine {
            Some(engine) => engine,
            None => EngineBuilder::new().build()?,
        };
        let linker = base_linker(&engine).map_err(|e| HostError::Linker(format!("{e:#}")))?;
        let router = self.http.as_ref().map(|http| http.router.clone());
        let outgoing: Arc<dyn OutgoingHandler> =
            match self.http.as_ref().and_then(|http| http.outgoing.clone()) {
                Some(outgoing) => outgoing,
                None => Arc::new(DefaultOutgoingHandler::builder().build()?),
            };
        for plugin in &self.plugins {
            plugin.start().await?;
        }
        let registry = Arc::new(Registry::default());
        let server =
            match (&self.http, &router) {
                (Some(http), Some(router)) => {
                    let ingress = Ingress {
                        router: router.clone(),
                        registry: registry.clone(),
                        start_wait: self.request_timeout,
                    };
                    Some(HttpServer::start(http, ingress).await.map_err(|source| {
                        HostError::Bind {
                            addr: http.addr,
                            source,
                        }
                    })?)
                }
                _ => None,
            };
        let engine_slots = engine.max_instances() as usize;
        Ok(Host {
            inner: Arc::new(HostInner {
                engine,
                linker,
                provided: ProvidedInterfaces::wasi(),
                plugins: self.plugins,
                oci: self.oci.map(Arc::new),
                registry,
                router,
                outgoing,
                request_timeout: self.request_timeout,
                idle_timeout: self.idle_timeout,
                allow_private_networks: self.allow_private_networks,
                http_addr: server.as_ref().map(|s| s.local_addr),
                server: tokio::sync::Mutex::new(server),
                live: Arc::new(AtomicUsize::new(0)),
                slots: Arc::new(tokio::sync::Semaphore::new(engine_slots)),
                component_slots: self
                    .component_slots
                    .unwrap_or(engine_slots / 2)
                    .clamp(1, engine_slots),
                generation: AtomicU64::new(0),
            }),
        })
    }
}

/// The linker every component starts from: WASI P2 and P3, with HTTP.
fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine.wasmtime());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    #[cfg(feature = "wasi-tls")]
    wasmtime_wasi_tls::p3::add_to_linker(&mut linker)?;
    Ok(linker)
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
    plugins: Vec<Arc<dyn HostPlugin>>,
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
}

/// Workloads by id.
#[derive(Default)]
pub(crate) struct Registry {
    slots: RwLock<HashMap<String, Slot>>,
    /// Woken on every change, for requests waiting on a starting workload.
    changed: tokio::sync::Notify,
    /// Requests waiting on a starting workload right now.
    pub(crate) held: AtomicUsize,
    /// Requests being served right now.
    pub(crate) in_flight: AtomicUsize,
}

/// Write access to the slots; waiters are woken when it ends.
struct SlotsMut<'a> {
    slots: std::sync::RwLockWriteGuard<'a, HashMap<String, Slot>>,
    changed: &'a tokio::sync::Notify,
}

impl std::ops::Deref for SlotsMut<'_> {
    type Target = HashMap<String, Slot>;

    fn deref(&self) -> &Self::Target {
        &self.slots
    }
}

impl std::ops::DerefMut for SlotsMut<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.slots
    }
}

impl Drop for SlotsMut<'_> {
    fn drop(&mut self) {
        self.changed.notify_waiters();
    }
}

enum Slot {
    Starting {
        spec: Arc<Workload>,
        generation: u64,
    },
    Running {
        spec: Arc<Workload>,
        workload: Arc<RunningWorkload>,
    },
    Failed {
        spec: Arc<Workload>,
        message: String,
    },
}

impl Slot {
    fn spec(&self) -> &Workload {
        match self {
            Slot::Starting { spec, .. }
            | Slot::Running { spec, .. }
            | Slot::Failed { spec, .. } => spec,
        }
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> SlotsMut<'_> {
        SlotsMut {
            slots: self.slots.write().unwrap_or_else(|e| e.into_inner()),
            changed: &self.changed,
        }
    }

    /// A future that resolves at the next change of any workload's state.
    /// Enable it (`Notified::enable`) before looking, so no change between
    /// the look and the wait is missed.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The name of a workload that is starting and for which `wanted`
    /// holds, if any.
    pub(crate) fn starting(&self, wanted: impl Fn(&Workload) -> bool) -> Option<String> {
        self.read().values().find_map(|slot| match slot {
            Slot::Starting { spec, .. } if wanted(spec) => Some(spec.name.clone()),
            _ => None,
        })
    }

    /// The running workload with this id.
    pub(crate) fn running(&self, id: &str) -> Option<Arc<RunningWorkload>> {
        match self.read().get(id) {
            Some(Slot::Running { workload, .. }) => Some(workload.clone()),
            _ => None,
        }
    }
}

/// A workload whose components are compiled, linked and pre-instantiated.
pub(crate) struct RunningWorkload {
    components: Vec<ResolvedComponent>,
    http_index: Option<usize>,
    /// Indexes of the plugins bound to this workload.
    plugins: Vec<usize>,
    /// Scratch directories of `emptyDir` volumes; removed on drop.
    _scratch: Vec<tempfile::TempDir>,
}

impl RunningWorkload {
    /// The HTTP side of the component that serves HTTP, if any.
    pub(crate) fn http(&self) -> Option<&HttpComponent> {
        self.http_index
            .and_then(|i| self.components[i].http.as_ref())
    }
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

impl Host {
    /// The engine this host runs components on.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Where the HTTP server listens, if there is one.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.inner.http_addr
    }

    /// The client that pulls components' images, if the host has one.
    pub fn oci(&self) -> Option<&crate::oci::OciClient> {
        self.inner.oci.as_deref()
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

    /// The status a start in progress (`generation`) ends with: a replayed
    /// start reports the first start's outcome instead of a second
    /// workload or a bare "starting".
    async fn outcome_of(&self, id: &str, generation: u64) -> WorkloadStatus {
        loop {
            let changed = self.inner.registry.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.inner.registry.read().get(id) {
                Some(Slot::Starting { generation: g, .. }) if *g == generation => {}
                Some(Slot::Running { .. }) => {
                    return WorkloadStatus::new(id, WorkloadState::Running, "");
                }
                Some(Slot::Failed { message, .. }) => {
                    return WorkloadStatus::new(id, WorkloadState::Error, message.clone());
                }
                Some(Slot::Starting { .. }) => {
                    return WorkloadStatus::new(id, WorkloadState::Starting, "");
                }
                None => return WorkloadStatus::new(id, WorkloadState::NotFound, ""),
            }
            changed.await;
        }
    }

    async fn start_inner(&self, id: &str, workload: Workload) -> Result<WorkloadStatus, HostError> {
        let inner = &self.inner;
        let spec = Arc::new(workload);
        let generation = inner.generation.fetch_add(1, Ordering::Relaxed);
        let replayed = {
            let mut slots = inner.registry.write();
            let replayed = match slots.get(id) {
                Some(Slot::Running { spec: existing, .. }) if **existing == *spec => {
                    return Ok(WorkloadStatus::new(id, WorkloadState::Running, ""));
                }
                Some(Slot::Starting {
                    spec: existing,
                    generation: first,
                }) if **existing == *spec => Some(*first),
                Some(Slot::Failed { .. }) | None => None,
                Some(slot) => {
                    tracing::debug!(existing = %slot.spec().name, "workload id conflict");
                    return Err(HostError::WorkloadIdConflict(id.to_string()));
                }
            };
            if replayed.is_none() {
                slots.insert(
                    id.to_string(),
                    Slot::Starting {
                        spec: spec.clone(),
                        generation,
                    },
                );
            }
            replayed
        };
        // The same start again while the first is under way: one workload,
        // and this caller learns how the first start ends.
        if let Some(first) = replayed {
            return Ok(self.outcome_of(id, first).await);
        }

        let result = self.resolve(id, &spec).await;
        let mut slots = inner.registry.write();
        // Only record the outcome if this start still owns the slot (a stop
        // or another start may have replaced it meanwhile).
        let owned = matches!(
            slots.get(id),
            Some(Slot::Starting { generation: g, .. }) if *g == generation
        );
        match result {
            Ok(running) if owned => {
                if running.http_index.is_some()
                    && let Some(router) = &inner.router
                    && let Err(e) = router.register(id, &spec)
                {
                    slots.insert(
                        id.to_string(),
                        Slot::Failed {
                            spec,
                            message: e.to_string(),
                        },
                    );
                    return Err(e.into());
                }
                slots.insert(
                    id.to_string(),
                    Slot::Running {
                        spec,
                        workload: Arc::new(running),
                    },
                );
                tracing::info!(workload_id = %id, "workload running");
                Ok(WorkloadStatus::new(id, WorkloadState::Running, ""))
            }
            Ok(_) => Err(HostError::StoppedWhileStarting(id.to_string())),
            Err(e) => {
                if owned {
                    slots.insert(
                        id.to_string(),
                        Slot::Failed {
                            spec,
                            message: e.to_string(),
                        },
                    );
                }
                Err(e)
            }
        }
    }

    /// Compiles every component, binds the plugins they use, links and
    /// pre-instantiates them; plugins bound along the way are unbound again
    /// if a later step fails.
    async fn resolve(
        &self,
        id: &str,
        workload: &Arc<Workload>,
    ) -> Result<RunningWorkload, HostError> {
        if workload.components.is_empty() {
            return Err(HostError::NoComponents(workload.name.clone()));
        }
        let (volumes, scratch) = prepare_volumes(workload)?;
        let workload_id: Arc<str> = id.into();
        let limits = Arc::default();
        let workload = &self.pull_images(workload).await?;

        // 1. Compile (CPU-bound: off the async workers) and find who
        //    provides each import.
        let compiled = self
            .blocking(
                &workload_id,
                workload,
                &volumes,
                &limits,
                |context, spec| {
                    spec.components
                        .iter()
                        .map(|component| {
                            let compiled = context.compile(spec, component)?;
                            let imports = context.plugin_imports(spec, component, &compiled)?;
                            Ok((compiled, imports))
                        })
                        .collect::<Result<Vec<_>, ResolveError>>()
                },
            )
            .await??;

        // 2. Bind the plugins the workload uses.
        let bound = self.bind_plugins(id, workload, &compiled).await?;

        // 3. Link and pre-instantiate.
        let linked = self
            .blocking(
                &workload_id,
                workload,
                &volumes,
                &limits,
                move |context, spec| {
                    spec.components
                        .iter()
                        .zip(compiled)
                        .map(|(component, (compiled, imports))| {
                            context.link(spec, component, compiled, &imports)
                        })
                        .collect::<Result<Vec<_>, ResolveError>>()
                },
            )
            .await;
        let components = match linked {
            Ok(Ok(components)) => components,
            Ok(Err(e)) => {
                self.unbind_plugins(id, &bound).await;
                return Err(e.into());
            }
            Err(e) => {
                self.unbind_plugins(id, &bound).await;
                return Err(e);
            }
        };
        let http_index = match self.http_component(workload, &components) {
            Ok(index) => index,
            Err(e) => {
                self.unbind_plugins(id, &bound).await;
                return Err(e);
            }
        };

        // 4. Tell the plugins the workload is ready (e.g. to subscribe).
        let resolved = ResolvedWorkload {
            workload_id: id,
            workload,
            components: components.iter().map(|c| c.handle.clone()).collect(),
        };
        for index in &bound {
            if let Err(e) = self.inner.plugins[*index]
                .on_workload_resolved(&resolved)
                .await
            {
                self.unbind_plugins(id, &bound).await;
                return Err(e.into());
            }
        }
        Ok(RunningWorkload {
            components,
            http_index,
            plugins: bound,
            _scratch: scratch,
        })
    }

    /// Fetches the bytes of components that name an image, all at once.
    async fn pull_images(&self, workload: &Arc<Workload>) -> Result<Arc<Workload>, HostError> {
        let needed: Vec<usize> = workload
            .components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.bytes.is_none() && c.image.is_some())
            .map(|(i, _)| i)
            .collect();
        if needed.is_empty() {
            return Ok(workload.clone());
        }
        let Some(oci) = &self.inner.oci else {
            // Resolution reports the component that cannot be loaded.
            return Ok(workload.clone());
        };
        let pulls = needed.iter().map(|index| {
            let component = &workload.components[*index];
            let image = component.image.clone().unwrap_or_default();
            async move {
                let started = std::time::Instant::now();
                let pulled = oci
                    .pull(
                        &image,
                        component.image_pull_secret.as_ref(),
                        component.image_pull_policy,
                        &|_, _| {},
                    )
                    .await
                    .map_err(|source| HostError::Pull {
                        component: component.name.clone(),
                        source,
                    })?;
                tracing::info!(
                    %image,
                    digest = %pulled.digest,
                    cached = pulled.cached,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "component image ready"
                );
                Ok::<_, HostError>((*index, pulled))
            }
        });
        let mut filled = (**workload).clone();
        for result in futures::future::join_all(pulls).await {
            let (index, pulled) = result?;
            filled.components[index].bytes = Some(pulled.bytes);
        }
        Ok(Arc::new(filled))
    }

    /// Runs resolution work on a blocking thread with a resolve context.
    async fn blocking<R, F>(
        &self,
        workload_id: &Arc<str>,
        workload: &Arc<Workload>,
        volumes: &Arc<Vec<(String, PathBuf)>>,
        limits: &Arc<crate::engine::store::WorkloadLimits>,
        work: F,
    ) -> Result<R, HostError>
    where
        R: Send + 'static,
        F: FnOnce(&ResolveContext<'_>, &Workload) -> R + Send + 'static,
    {
        let host = self.clone();
        let (workload_id, spec, volumes) = (workload_id.clone(), workload.clone(), volumes.clone());
        let limits = limits.clone();
        self.inner
            .engine
            .prepare(move || {
                let inner = &host.inner;
                let context = ResolveContext {
                    engine: &inner.engine,
                    linker: &inner.linker,
                    provided: &inner.provided,
                    plugins: &inner.plugins,
                    workload_id,
                    outgoing: inner.outgoing.clone(),
                    default_timeout: inner.request_timeout,
                    idle_timeout: inner.idle_timeout,
                    live: inner.live.clone(),
                    slots: inner.slots.clone(),
                    component_slots: inner.component_slots,
                    limits: limits.clone(),
                    allow_private: inner.allow_private_networks,
                    volumes: &volumes,
                };
                work(&context, &spec)
            })
            .await
            .map_err(|e| HostError::Http {
                workload: workload.name.clone(),
                reason: format!("component preparation task failed: {e}"),
            })
    }

    /// Binds every plugin whose interfaces the components import or the
    /// workload's `host_interfaces` name; returns their indexes.
    async fn bind_plugins(
        &self,
        id: &str,
        workload: &Workload,
        compiled: &[(crate::engine::CompiledComponent, PluginImports)],
    ) -> Result<Vec<usize>, HostError> {
        let plugins = &self.inner.plugins;
        let mut involved: Vec<usize> = compiled
            .iter()
            .flat_map(|(_, imports)| imports.iter().map(|(index, _)| *index))
            .collect();
        for (index, plugin) in plugins.iter().enumerate() {
            let world = plugin.world();
            if workload
                .host_interfaces
                .iter()
                .any(|i| world.iter().any(|w| w.matches(i)))
            {
                involved.push(index);
            }
        }
        involved.sort_unstable();
        involved.dedup();
        let mut bound = Vec::with_capacity(involved.len());
        for index in involved {
            let plugin = &plugins[index];
            let world = plugin.world();
            let bind = WorkloadBind {
                workload_id: id,
                workload,
                interfaces: workload
                    .host_interfaces
                    .iter()
                    .filter(|i| world.iter().any(|w| w.matches(i)))
                    .collect(),
            };
            if let Err(e) = plugin.on_workload_bind(&bind).await {
                self.unbind_plugins(id, &bound).await;
                return Err(e.into());
            }
            bound.push(index);
        }
        Ok(bound)
    }

    async fn unbind_plugins(&self, id: &str, bound: &[usize]) {
        for index in bound {
            let plugin = &self.inner.plugins[*index];
            if let Err(e) = plugin.on_workload_unbind(id).await {
                tracing::warn!(plugin = plugin.id(), workload_id = %id, "unbind failed: {e}");
            }
        }
    }

    /// Which component serves HTTP: none, or exactly one when the workload
    /// asks for HTTP.
    fn http_component(
        &self,
        workload: &Workload,
        components: &[ResolvedComponent],
    ) -> Result<Option<usize>, HostError> {
        let serving: Vec<usize> = components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.http.is_some())
            .map(|(i, _)| i)
            .collect();
        let wants_http = workload.host_interface("wasi", "http").is_some();
        match serving.as_slice() {
            [] if wants_http => {
                let component = &components[0];
                Err(ResolveError::NoHttpExport {
                    origin: crate::engine::workload::origin_of(workload, &workload.components[0]),
                    exports: if component.exports.is_empty() {
                        "(none)".into()
                    } else {
                        component.exports.join(", ")
                    },
                }
                .into())
            }
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(HostError::Http {
                workload: workload.name.clone(),
                reason: format!(
                    "{} components export an HTTP handler ({}); exactly one may",
                    many.len(),
                    many.iter()
                        .map(|i| &*components[*i].name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
}

/// Host directories for the workload's volumes, creating scratch ones.
#[allow(clippy::type_complexity, reason = "a local pair of lists")]
fn prepare_volumes(
    workload: &Workload,
) -> Result<(Arc<Vec<(String, PathBuf)>>, Vec<tempfile::TempDir>), HostError> {
    let mut paths = Vec::new();
    let mut scratch = Vec::new();
    for volume in &workload.volumes {
        let error = |reason: String| HostError::Volume {
            workload: workload.name.clone(),
            volume: volume.name.clone(),
            reason,
        };
        let path = match &volume.source {
            VolumeSource::HostPath { local_path } => {
                let path = PathBuf::from(local_path);
                if !path.is_dir() {
                    return Err(error(format!(
                        "host path `{local_path}` is not a directory"
                    )));
                }
                path
            }
            VolumeSource::EmptyDir {} => {
                let dir = tempfile::Builder::new()
                    .prefix("wash-volume-")
                    .tempdir()
                    .map_err(|e| error(format!("cannot create scratch directory: {e}")))?;
                let path = dir.path().to_path_buf();
                scratch.push(dir);
                path
            }
        };
        paths.push((volume.name.clone(), path));
    }
    Ok((Arc::new(paths), scratch))
}

impl HostApi for Host {
    async fn workload_start(
        &self,
        workload_id: &str,
        workload: Workload,
    ) -> Result<WorkloadStatus, HostError> {
        self.start_inner(workload_id, workload).await
    }

    async fn workload_status(&self, workload_id: &str) -> WorkloadStatus {
        match self.inner.registry.read().get(workload_id) {
            Some(Slot::Starting { .. }) => {
                WorkloadStatus::new(workload_id, WorkloadState::Starting, "")
            }
            Some(Slot::Running { .. }) => {
                WorkloadStatus::new(workload_id, WorkloadState::Running, "")
            }
            Some(Slot::Failed { message, .. }) => {
                WorkloadStatus::new(workload_id, WorkloadState::Error, message.clone())
            }
            None => WorkloadStatus::new(workload_id, WorkloadState::NotFound, ""),
        }
    }

    async fn workload_stop(&self, workload_id: &str) -> WorkloadStatus {
        let removed = self.inner.registry.write().remove(workload_id);
        if let Some(router) = &self.inner.router {
            router.unregister(workload_id);
        }
        self.inner.outgoing.workload_stopped(workload_id);
        if let Some(Slot::Running { workload, .. }) = &removed {
            self.unbind_plugins(workload_id, &workload.plugins).await;
        }
        match removed {
            None => WorkloadStatus::new(workload_id, WorkloadState::NotFound, ""),
            Some(slot) => {
                // Requests in flight hold their own reference to the
                // workload; it is released when the last one finishes.
                drop(slot);
                tracing::info!(%workload_id, "workload stopped");
                WorkloadStatus::new(workload_id, WorkloadState::Stopping, "stopped")
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
