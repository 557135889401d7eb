//! Building a [`Host`]: engine, plugins, egress, HTTP ingress and limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;

use super::http::{HttpServer, HttpServerBuilder, Ingress, tls_server_config};
use super::interfaces::{ProvidedInterfaces, base_linker};
use super::registry::Registry;
use super::{DEFAULT_REQUEST_TIMEOUT, Host, HostError, HostInner, SynchronousPlugins};
use crate::egress::{DefaultOutgoingHandler, OutgoingHandler};
use crate::engine::{Engine, EngineBuilder};
use crate::plugin::Plugin;
use crate::plugin::component::{self, ComponentPluginSpec, LoadedPlugin, identity::Identity};

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
    plugins: Vec<Plugin>,
    component_plugins: Vec<ComponentPluginSpec>,
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
            idle_timeout: crate::instance::DEFAULT_IDLE_TIMEOUT,
            allow_private_networks: false,
            component_slots: None,
            plugins: Vec::new(),
            component_plugins: Vec::new(),
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
    pub fn with_plugin(mut self, plugin: impl Into<Plugin>) -> Result<Self, HostError> {
        let plugin = plugin.into();
        if self.plugins.iter().any(|p| p.id() == plugin.id()) {
            return Err(HostError::DuplicatePlugin(plugin.id().to_string()));
        }
        self.plugins.push(plugin);
        Ok(self)
    }

    /// Adds a component plugin: loaded (read or pulled, compiled, its
    /// digest checked) and started when the host starts, in the order their
    /// imports of each other need. Ids must be unique.
    pub fn with_component_plugin(mut self, spec: ComponentPluginSpec) -> Result<Self, HostError> {
        if self.component_plugins.iter().any(|p| p.id == spec.id)
            || self.plugins.iter().any(|p| p.id() == spec.id)
        {
            return Err(HostError::DuplicatePlugin(spec.id));
        }
        self.component_plugins.push(spec);
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
        let linker = base_linker(&engine).map_err(|e| HostError::Linker(e.into()))?;
        let router = self.http.as_ref().map(|http| http.router.clone());
        let outgoing: Arc<dyn OutgoingHandler> =
            match self.http.as_ref().and_then(|http| http.outgoing.clone()) {
                Some(outgoing) => outgoing,
                None => Arc::new(DefaultOutgoingHandler::builder().build()?),
            };
        // Component plugins: loaded first, so that a bad one stops the
        // start before anything listens; listed before the native plugins,
        // so that they serve the interfaces they were added for.
        let mut loaded: Vec<LoadedPlugin> = Vec::new();
        let synchronous = match self.component_plugins.is_empty() {
            true => None,
            false => Some(engine.synchronous()?),
        };
        if let Some(synchronous) = &synchronous {
            for spec in self.component_plugins {
                loaded.push(component::load(synchronous, &engine, self.oci.as_ref(), spec).await?);
            }
        }
        let synchronous_plugins = match synchronous {
            Some(engine) if loaded.iter().any(|l| l.synchronous) => Some(SynchronousPlugins {
                linker: base_linker(&engine).map_err(|e| HostError::Linker(e.into()))?,
                engine,
                workloads: loaded
                    .iter()
                    .filter(|l| l.synchronous)
                    .map(|l| l.spec.workload_id())
                    .collect(),
            }),
            _ => None,
        };
        let order = component::start_order(&loaded)?;
        let mut plugins: Vec<Plugin> = loaded
            .iter()
            .map(|l| Plugin::new(l.plugin.share()))
            .collect();
        if !loaded.is_empty() {
            plugins.push(Plugin::new(Identity));
        }
        plugins.extend(self.plugins);
        for plugin in &plugins {
            plugin.start().await?;
        }
        let registry = Arc::new(Registry::default());
        let server = match (&self.http, &router) {
            (Some(http), Some(router)) => {
                let ingress = Ingress {
                    router: router.clone(),
                    registry: registry.clone(),
                    start_wait: self.request_timeout,
                };
                let tls = http.tls.as_ref().map(tls_server_config).transpose()?;
                Some(
                    HttpServer::start(http, ingress, tls)
                        .await
                        .map_err(|source| HostError::Bind {
                            addr: http.addr,
                            source,
                        })?,
                )
            }
            _ => None,
        };
        let engine_slots = engine.max_instances() as usize;
        let host = Host {
            inner: Arc::new(HostInner {
                engine,
                linker,
                provided: ProvidedInterfaces::wasi(),
                plugins,
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
                bindings: Arc::default(),
                metrics: Arc::new(crate::host::HostMetrics::new()),
                component_plugins: loaded
                    .iter()
                    .map(|l| (l.spec.id.clone(), l.plugin.runtime_cell()))
                    .collect(),
                synchronous_plugins,
            }),
        };
        for index in order {
            host.start_component_plugin(&loaded[index]).await?;
        }
        Ok(host)
    }
}
