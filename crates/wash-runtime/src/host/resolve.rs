//! Turning a component of a workload into something that serves: validate,
//! compile (or load from cache), check imports, link, pre-instantiate.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use std::borrow::Cow;

use wasmtime::component::Linker;
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};

use super::bound::BoundPlugins;
use super::interfaces::ProvidedInterfaces;
use crate::egress::sockets::SocketPolicy;
use crate::egress::{
    AddressPolicy, AllowedHosts, GuestEgress, OutgoingHandler, OutgoingRequestContext,
};
use crate::engine::{CacheOutcome, CompiledComponent, Engine, EngineError};
use crate::instance::BindingsBuilder;
use crate::instance::invoke::ComponentHandle;
use crate::instance::pool::{ComponentInstances, HttpWorld, Reuse};
use crate::instance::store::{GuestLabels, InstanceTemplate, Preopen, StoreState};
use crate::plugin::{ItemBind, Plugin, PluginError};
use crate::types::{Component, Workload};

/// Why a component could not be made ready.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Validation or compilation failed.
    #[error(transparent)]
    Compile(#[from] EngineError),
    /// A plugin refused the component or its workload.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The component gives neither bytes nor an image.
    #[error("component `{component}` has neither bytes nor an image to load")]
    NoSource {
        /// Component name.
        component: String,
    },
    /// The component names an image, but this host cannot pull images.
    #[error("component `{component}` refers to image `{image}`, but this host has no OCI client")]
    ImageUnsupported {
        /// Component name.
        component: String,
        /// The image reference.
        image: String,
    },
    /// The component imports an interface nothing on this host provides.
    #[error(
        "{origin}: imports `{interface}`, which nothing on this host provides \
         (no built-in WASI interface or plugin matches)"
    )]
    MissingImport {
        /// Where the component came from.
        origin: String,
        /// The import, e.g. `example:kv/store@0.1.0`.
        interface: String,
    },
    /// Linking failed for another reason (e.g. a type mismatch).
    #[error("{origin}: cannot link: {reason}")]
    Link {
        /// Where the component came from.
        origin: String,
        /// What the linker said (it names the import).
        reason: String,
    },
    /// The component exports no HTTP handler but the workload needs one.
    #[error(
        "{origin}: exports no HTTP handler (expected `wasi:http/incoming-handler@0.2.x` or \
         `wasi:http/handler@0.3.x`); its exports are: {exports}"
    )]
    NoHttpExport {
        /// Where the component came from.
        origin: String,
        /// What it does export.
        exports: String,
    },
    /// A loopback port in `allowed_host_loopback_ports` is not a port.
    #[error("component `{component}`: `{value}` in allowedHostLoopbackPorts is not a port number")]
    InvalidPort {
        /// Component name.
        component: String,
        /// The offending value.
        value: String,
    },
    /// A volume mount names a volume the workload does not declare.
    #[error(
        "component `{component}` mounts volume `{volume}`, which the workload does not declare"
    )]
    UnknownVolume {
        /// Component name.
        component: String,
        /// Volume name.
        volume: String,
    },
}

/// What resolving a component needs from the host.
pub(crate) struct ResolveContext<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) linker: &'a Linker<StoreState>,
    pub(crate) provided: &'a ProvidedInterfaces,
    pub(crate) plugins: &'a [Plugin],
    pub(crate) workload_id: Arc<str>,
    pub(crate) outgoing: Arc<dyn OutgoingHandler>,
    pub(crate) default_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) live: Arc<AtomicUsize>,
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// Slots one component may hold at once.
    pub(crate) component_slots: usize,
    /// What the workload's components share: log budget, outbound cap.
    pub(crate) limits: Arc<crate::instance::store::WorkloadLimits>,
    /// Whether guests may reach private and special address ranges through
    /// host names.
    pub(crate) allow_private: bool,
    /// Host directories backing each declared volume, by volume name.
    pub(crate) volumes: &'a [(String, std::path::PathBuf)],
    /// Where the components' series go, and the workload's name for them.
    pub(crate) metrics: Arc<super::HostMetrics>,
    pub(crate) workload_name: Arc<str>,
}

/// A component ready to serve requests.
pub(crate) struct ResolvedComponent {
    pub(crate) name: Arc<str>,
    pub(crate) digest: String,
    pub(crate) cache: CacheOutcome,
    pub(crate) http: Option<HttpComponent>,
    /// The component's export names, for errors about missing handlers.
    pub(crate) exports: Vec<String>,
    /// For plugins that call into the component.
    pub(crate) handle: ComponentHandle,
    /// Keeps the compiled code shared with other workloads of the same bytes.
    pub(crate) _shared: Arc<crate::engine::Loaded>,
}

/// Which plugin provides which imports of one component (by plugin index).
pub(crate) type PluginImports = Vec<(usize, Vec<String>)>;

/// The HTTP-serving side of a resolved component.
pub(crate) struct HttpComponent {
    pub(crate) world: HttpWorld,
    pub(crate) handler: ProxyHandler<ComponentInstances>,
    /// For a component that reuses instances: the same component with a
    /// fresh instance per request, for retries and for when reuse is off.
    pub(crate) fresh: Option<ProxyHandler<ComponentInstances>>,
}

/// How errors name a component.
pub(crate) fn origin_of(workload: &Workload, component: &Component) -> String {
    if workload.name.is_empty() || workload.name == component.name {
        format!("component `{}`", component.name)
    } else {
        format!(
            "component `{}` of workload `{}`",
            component.name, workload.name
        )
    }
}

impl ResolveContext<'_> {
    /// Compiles `component` (blocking: run on a blocking thread).
    pub(crate) fn compile(
        &self,
        workload: &Workload,
        component: &Component,
    ) -> Result<CompiledComponent, ResolveError> {
        let bytes = match (&component.bytes, &component.image) {
            (Some(bytes), _) => bytes,
            (None, Some(image)) => {
                return Err(ResolveError::ImageUnsupported {
                    component: component.name.clone(),
                    image: image.clone(),
                });
            }
            (None, None) => {
                return Err(ResolveError::NoSource {
                    component: component.name.clone(),
                });
            }
        };
        let origin = origin_of(workload, component);
        Ok(self
            .engine
            .compile(bytes, &origin, component.digest.as_deref())?)
    }

    /// Which plugin provides each import that WASI does not; an import
    /// nobody provides is an error naming it.
    pub(crate) fn plugin_imports(
        &self,
        workload: &Workload,
        component: &Component,
        compiled: &CompiledComponent,
    ) -> Result<PluginImports, ResolveError> {
        let engine = self.engine.wasmtime();
        let mut grouped: PluginImports = Vec::new();
        for (import, _) in compiled.component.component_type().imports(engine) {
            if self.provided.provides(import) {
                continue;
            }
            let provides = |p: &Plugin| p.world().iter().any(|w| w.provides(import));
            // A host interface entry naming a plugin (`name`) picks it;
            // otherwise the first plugin providing the import (component
            // plugins come first: an operator added them on purpose).
            let named = self.plugins.iter().position(|p| {
                provides(p)
                    && workload.host_interfaces.iter().any(|i| {
                        i.name.as_deref() == Some(p.id())
                            && import.starts_with(&format!("{}:{}/", i.namespace, i.package))
                    })
            });
            let Some(index) = named.or_else(|| self.plugins.iter().position(provides)) else {
                return Err(ResolveError::MissingImport {
                    origin: origin_of(workload, component),
                    interface: import.to_string(),
                });
            };
            match grouped.iter_mut().find(|(i, _)| *i == index) {
                Some((_, imports)) => imports.push(import.to_string()),
                None => grouped.push((index, vec![import.to_string()])),
            }
        }
        Ok(grouped)
    }

    /// Links (with the plugins that provide its imports) and
    /// pre-instantiates a compiled component.
    pub(crate) fn link(
        &self,
        workload: &Workload,
        component: &Component,
        compiled: CompiledComponent,
        plugin_imports: &PluginImports,
        bound: &BoundPlugins,
    ) -> Result<ResolvedComponent, ResolveError> {
        let origin = origin_of(workload, component);
        let engine = self.engine.wasmtime();
        let ty = compiled.component.component_type();
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let mut bindings = BindingsBuilder::default();
        let linker = if plugin_imports.is_empty() {
            Cow::Borrowed(self.linker)
        } else {
            let mut linker = self.linker.clone();
            for (index, imports) in plugin_imports {
                let plugin = &self.plugins[*index];
                let world = plugin.world();
                let mut item = ItemBind {
                    workload_id: &self.workload_id,
                    workload,
                    component,
                    imports: imports.clone(),
                    interfaces: workload
                        .host_interfaces
                        .iter()
                        .filter(|i| world.iter().any(|w| w.matches(i)))
                        .collect(),
                    linker: &mut linker,
                    bindings: &mut bindings,
                };
                bound.item_bind(*index, &mut item)?;
            }
            Cow::Owned(linker)
        };
        let pre = linker
            .instantiate_pre(&compiled.component)
            .map_err(|e| ResolveError::Link {
                origin: origin.clone(),
                reason: crate::engine::describe_error(&e),
            })?;

        // A P3 handler is preferred when a component exports both.
        let proxy_pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()) {
            Ok(p3) => Some(ProxyPre::P3(p3)),
            Err(_) => wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre.clone())
                .ok()
                .map(ProxyPre::P2),
        };
        let name: Arc<str> = component.name.as_str().into();
        let template = Arc::new(self.template(component, name.clone(), bindings.build())?);
        let timeout = match component.local_resources.request_timeout_ms {
            0 => self.default_timeout,
            ms => Duration::from_millis(ms),
        };
        let handle = ComponentHandle::new(
            self.engine.clone(),
            pre,
            template.clone(),
            exports.clone(),
            timeout,
        );
        let http = match proxy_pre {
            Some(proxy_pre) => {
                let reuse = Reuse::from_component(
                    component.pool_size,
                    component.max_invocations,
                    component.max_concurrency,
                    self.idle_timeout,
                );
                let instances = ComponentInstances::new(
                    self.engine.clone(),
                    proxy_pre,
                    template,
                    timeout,
                    reuse,
                );
                let fresh = instances
                    .reuses()
                    .then(|| ProxyHandler::new(instances.fresh()));
                Some(HttpComponent {
                    world: instances.world(),
                    handler: ProxyHandler::new(instances),
                    fresh,
                })
            }
            None => None,
        };
        Ok(ResolvedComponent {
            name,
            digest: compiled.digest,
            cache: compiled.cache,
            _shared: compiled.shared,
            http,
            exports,
            handle,
        })
    }

    fn template(
        &self,
        component: &Component,
        name: Arc<str>,
        bindings: crate::instance::Bindings,
    ) -> Result<InstanceTemplate, ResolveError> {
        let resources = &component.local_resources;
        let preopens = resources
            .volume_mounts
            .iter()
            .map(|mount| {
                let host = self
                    .volumes
                    .iter()
                    .find(|(volume, _)| *volume == mount.name)
                    .map(|(_, path)| path.clone())
                    .ok_or_else(|| ResolveError::UnknownVolume {
                        component: component.name.clone(),
                        volume: mount.name.clone(),
                    })?;
                Ok(Preopen {
                    host,
                    guest: mount.mount_path.clone(),
                    read_only: mount.read_only,
                })
            })
            .collect::<Result<Vec<_>, ResolveError>>()?;
        let metrics = self
            .metrics
            .component(&self.workload_name, &self.workload_id, &name);
        let labels = Arc::new(GuestLabels {
            workload_id: self.workload_id.clone(),
            component: name.clone(),
            metrics: metrics.clone(),
        });
        let loopback_ports = resources
            .allowed_host_loopback_ports
            .iter()
            .map(|p| {
                p.trim()
                    .parse::<u16>()
                    .map_err(|_| ResolveError::InvalidPort {
                        component: component.name.clone(),
                        value: p.clone(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addresses = Arc::new(AddressPolicy::new(
            AllowedHosts::new(&resources.allowed_hosts),
            loopback_ports,
            self.allow_private,
        ));
        let allowed = addresses.allowed.clone();
        let context = Arc::new(OutgoingRequestContext {
            workload_id: self.workload_id.clone(),
            component: name,
            addresses,
        });
        Ok(InstanceTemplate {
            labels,
            env: resources
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            preopens,
            memory_limit: resources.memory_limit_bytes(),
            egress: GuestEgress {
                handler: self.outgoing.clone(),
                allowed: allowed.clone(),
                context: context.clone(),
                in_flight: self.limits.outbound.clone(),
                metrics,
                trace: None,
            },
            sockets: Arc::new(SocketPolicy { context }),
            name_lookups: !resources.allowed_ip_name_lookups.is_empty(),
            bindings,
            live: self.live.clone(),
            slots: self.slots.clone(),
            share: Arc::new(tokio::sync::Semaphore::new(self.component_slots)),
            log_budget: self.limits.clone(),
        })
    }
}
