//! Component plugins: capabilities written as WebAssembly components.
//!
//! A component plugin exports interfaces (`wasi:keyvalue/store`, or a
//! company's own `acme:billing/api`). The host runs it as a workload of its
//! own (`plugin:<id>`: its own store, memory limit, deadline and egress
//! policy, and the host's native capabilities to import) and links its
//! exports into every workload that imports them: each call is forwarded to
//! the plugin's instance, resources included, with the caller's workload id
//! readable through `wasmcloud:host/identity`. A plugin that traps fails
//! the call in flight, is restarted on the next call up to `max_restarts`
//! times, then refuses calls.
//!
//! Each instance of a plugin serves one call at a time. By default a plugin
//! has one instance, so its in-memory state is all calls' state; with
//! `instances` above 1, calls from many workloads run at once in a pool of
//! instances, and state they must share lives in the plugin's own backing
//! store. A resource stays with the instance that made it: calls passing it
//! go to that instance.

pub(crate) mod identity;
pub(crate) mod keyvalue;
mod link;
pub(crate) mod runtime;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{ResourceType, Val};

use self::runtime::{FunctionExport, PluginRuntime};
use super::{HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, WorkloadBind};
use crate::engine::{CompiledComponent, Engine};
use crate::types::{LocalResources, WitInterface};

pub use self::runtime::PluginCallError;

/// The interface of the optional lifecycle hooks.
const LIFECYCLE: &str = "wasmcloud:host/lifecycle";

/// Where a started plugin's runtime is.
pub(crate) type RuntimeCell = Arc<OnceLock<Arc<PluginRuntime>>>;

/// How a component plugin is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentPluginStatus {
    /// The plugin.
    pub id: String,
    /// Whether its workload has started.
    pub started: bool,
    /// Why it refuses calls, once it failed more often than it may
    /// restart; its interfaces are then no longer offered.
    pub failure: Option<String>,
    /// Failures so far (each replaced the instance that failed).
    pub restarts: u32,
    /// Instances alive now.
    pub live_instances: usize,
    /// Interfaces its workloads call through typed bindings rather than
    /// dynamic values (`wasi:keyvalue` when it exports store and atomics).
    pub typed: Vec<&'static str>,
}

impl ComponentPluginStatus {
    pub(crate) fn of(id: &str, cell: &RuntimeCell) -> Self {
        match cell.get() {
            None => Self {
                id: id.to_string(),
                started: false,
                failure: None,
                restarts: 0,
                live_instances: 0,
                typed: Vec::new(),
            },
            Some(runtime) => Self {
                id: id.to_string(),
                started: true,
                failure: runtime.failure(),
                restarts: runtime.restarts(),
                live_instances: runtime.live_instances(),
                typed: match runtime.typed_keyvalue() {
                    true => vec!["wasi:keyvalue"],
                    false => Vec::new(),
                },
            },
        }
    }
}

/// Where a component plugin's code comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ComponentPluginSource {
    /// These bytes.
    Bytes(Bytes),
    /// A file.
    File(PathBuf),
    /// An OCI image, pulled like a workload's.
    Image(String),
}

/// A component plugin the host loads at start.
#[derive(Debug, Clone)]
pub struct ComponentPluginSpec {
    /// A unique id; the plugin runs as the workload `plugin:<id>`.
    pub id: String,
    /// Its code.
    pub source: ComponentPluginSource,
    /// `sha256:<hex>` the code must have.
    pub digest: Option<String>,
    /// Restarts after failures before it is marked failed.
    pub max_restarts: u32,
    /// Instances that may serve calls at once (at least 1). Each has its
    /// own memory: state all calls must see lives in a backing store, or
    /// the plugin keeps to one instance.
    pub instances: u32,
    /// Its limits, configuration and egress policy, as a component's.
    pub local_resources: LocalResources,
    /// Host interfaces it uses (e.g. a key-value backend of its own).
    pub host_interfaces: Vec<WitInterface>,
}

impl ComponentPluginSpec {
    /// A plugin from `source` with the defaults: 3 restarts, no egress.
    pub fn new(id: impl Into<String>, source: ComponentPluginSource) -> Self {
        Self {
            id: id.into(),
            source,
            digest: None,
            max_restarts: 3,
            instances: 1,
            local_resources: LocalResources::default(),
            host_interfaces: Vec::new(),
        }
    }

    /// The workload id it runs as.
    pub fn workload_id(&self) -> String {
        format!("plugin:{}", self.id)
    }
}

/// Why a component plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentPluginError {
    /// Its file could not be read.
    #[error("component plugin `{id}`: cannot read {path}: {source}")]
    Read {
        /// The plugin.
        id: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It names an image but the host has no OCI client.
    #[error("component plugin `{id}`: image `{image}` given, but this host cannot pull images")]
    NoOci {
        /// The plugin.
        id: String,
        /// The image.
        image: String,
    },
    /// Its image could not be pulled.
    #[error("component plugin `{id}`: {source}")]
    Pull {
        /// The plugin.
        id: String,
        /// Why.
        source: crate::oci::OciError,
    },
    /// It does not compile, or its digest is not the one pinned.
    #[error(transparent)]
    Compile(#[from] crate::engine::EngineError),
    /// It exports no interface a workload could import.
    #[error(
        "component plugin `{id}` exports no interface workloads could import (it exports: {exports})"
    )]
    NothingExported {
        /// The plugin.
        id: String,
        /// What it exports.
        exports: String,
    },
    /// An exported function passes values that cannot cross stores.
    #[error(
        "component plugin `{id}`: `{function}` passes a {kind}, which cannot cross from a \
         plugin to a workload (use lists or resources instead)"
    )]
    Unsupported {
        /// The plugin.
        id: String,
        /// The function, `interface#name`.
        function: String,
        /// What it passes: `stream`, `future` or `error-context`.
        kind: &'static str,
    },
    /// Plugins import each other's exports in a cycle.
    #[error("component plugins import each other in a cycle: {0}")]
    Cycle(String),
    /// Two plugins have one id.
    #[error("component plugin id `{0}` is used twice")]
    Duplicate(String),
    /// Its workload did not start.
    #[error("component plugin `{id}` did not start: {message}")]
    Start {
        /// The plugin.
        id: String,
        /// Why.
        message: String,
    },
}

/// The exports of one interface the plugin provides.
#[derive(Debug, Clone)]
pub(crate) struct InterfaceExports {
    /// e.g. `wasi:keyvalue/store@0.2.0-draft`.
    pub(crate) name: String,
    pub(crate) functions: Vec<FunctionExport>,
    /// Resource types by name, with the id workloads know each by.
    pub(crate) resources: Vec<(String, u32)>,
}

/// What a plugin exports, found once at load.
#[derive(Debug, Default)]
pub(crate) struct PluginExports {
    pub(crate) interfaces: Vec<InterfaceExports>,
    /// Every exported resource type (interface, name) and its id.
    pub(crate) resources: Vec<(String, String, u32)>,
    /// How many functions it exports.
    pub(crate) functions: usize,
    on_bind: Option<FunctionExport>,
    on_unbind: Option<FunctionExport>,
}

/// Ids of host resource types standing for plugins' resources: unique in
/// the process, so no two plugins' (or interfaces') resources can be
/// confused.
static NEXT_RESOURCE_TYPE: AtomicU32 = AtomicU32::new(0x5741_0000);

/// What `f` says of the first leaf of `ty` it says anything of; leaves are
/// the types that are not lists, maps, records, tuples, variants, options
/// or results.
fn find_leaf<T>(
    ty: &wasmtime::component::types::Type,
    f: &impl Fn(&wasmtime::component::types::Type) -> Option<T>,
) -> Option<T> {
    use wasmtime::component::types::Type;
    match ty {
        Type::List(list) => find_leaf(&list.ty(), f),
        Type::FixedLengthList(list) => find_leaf(&list.ty(), f),
        Type::Map(map) => find_leaf(&map.key(), f).or_else(|| find_leaf(&map.value(), f)),
        Type::Record(record) => record.fields().find_map(|field| find_leaf(&field.ty, f)),
        Type::Tuple(tuple) => tuple.types().find_map(|t| find_leaf(&t, f)),
        Type::Variant(variant) => variant
            .cases()
            .find_map(|case| case.ty.as_ref().and_then(|t| find_leaf(t, f))),
        Type::Option(option) => find_leaf(&option.ty(), f),
        Type::Result(result) => result
            .ok()
            .as_ref()
            .and_then(|t| find_leaf(t, f))
            .or_else(|| result.err().as_ref().and_then(|t| find_leaf(t, f))),
        leaf => f(leaf),
    }
}

/// Whether values of `ty` can hold handles (resources, streams, futures),
/// which must be translated between the workload's store and the plugin's;
/// anything else crosses as is.
fn carries_handles(ty: &wasmtime::component::types::Type) -> bool {
    use wasmtime::component::types::Type;
    find_leaf(ty, &|leaf| match leaf {
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64
        | Type::Float32
        | Type::Float64
        | Type::Char
        | Type::String
        | Type::Enum(_)
        | Type::Flags(_) => None,
        // Handles, and what this host does not look into: the careful path.
        _ => Some(()),
    })
    .is_some()
}

/// The first value kind in `ty` that cannot cross between a workload's
/// store and a plugin's: streams, futures and error contexts belong to one
/// store's event loop, and this host does not relay them.
fn store_bound(ty: &wasmtime::component::types::Type) -> Option<&'static str> {
    use wasmtime::component::types::Type;
    find_leaf(ty, &|leaf| match leaf {
        Type::Stream(_) => Some("stream"),
        Type::Future(_) => Some("future"),
        Type::ErrorContext => Some("error-context"),
        _ => None,
    })
}

/// `ns:pkg/iface@version` split; `None` for a plain name.
fn split_name(name: &str) -> Option<(&str, &str, &str, &str)> {
    let (namespace, rest) = name.split_once(':')?;
    let (path, version) = rest.split_once('@').unwrap_or((rest, ""));
    let (package, interface) = path.split_once('/')?;
    Some((namespace, package, interface, version))
}

impl PluginExports {
    /// Reads the exports of a compiled plugin.
    fn of(
        engine: &Engine,
        id: &str,
        compiled: &CompiledComponent,
    ) -> Result<Self, ComponentPluginError> {
        let component = &compiled.component;
        let wasmtime = engine.wasmtime();
        let mut exports = PluginExports::default();
        let mut seen_types: Vec<(ResourceType, u32)> = Vec::new();
        // Each function's slot in an instance's cache of looked-up functions.
        let mut functions = 0;
        let mut names = Vec::new();
        for (name, item) in component.component_type().exports(wasmtime) {
            names.push(name.to_string());
            let ComponentItem::ComponentInstance(instance) = item.ty else {
                continue;
            };
            // What a host calls, not what a workload imports.
            let offered = !(name.starts_with("wasi:http/") || name.starts_with("wasi:cli/"));
            let mut interface = InterfaceExports {
                name: name.to_string(),
                functions: Vec::new(),
                resources: Vec::new(),
            };
            for (item_name, item) in instance.exports(wasmtime) {
                match item.ty {
                    ComponentItem::ComponentFunc(func) => {
                        if offered
                            && let Some(kind) = func
                                .params()
                                .find_map(|(_, ty)| store_bound(&ty))
                                .or_else(|| func.results().find_map(|ty| store_bound(&ty)))
                        {
                            return Err(ComponentPluginError::Unsupported {
                                id: id.to_string(),
                                function: format!("{name}#{item_name}"),
                                kind,
                            });
                        }
                        let plain_results = !func.results().any(|ty| carries_handles(&ty));
                        let plain_params = !func.params().any(|(_, ty)| carries_handles(&ty));
                        interface.functions.push(FunctionExport {
                            interface: name.to_string(),
                            name: item_name.to_string(),
                            results: func.results().len(),
                            slot: functions,
                            plain: plain_params && plain_results,
                            plain_results,
                        });
                        functions += 1;
                    }
                    ComponentItem::Resource(ty) => {
                        // A type used by several interfaces (`use store.{bucket}`)
                        // keeps one id.
                        let id = match seen_types.iter().find(|(t, _)| *t == ty) {
                            Some((_, id)) => *id,
                            None => {
                                let id = NEXT_RESOURCE_TYPE.fetch_add(1, Ordering::Relaxed);
                                seen_types.push((ty, id));
                                exports.resources.push((
                                    name.to_string(),
                                    item_name.to_string(),
                                    id,
                                ));
                                id
                            }
                        };
                        interface.resources.push((item_name.to_string(), id));
                    }
                    _ => {}
                }
            }
            if name.split('@').next() == Some(LIFECYCLE) {
                let find = |n: &str| interface.functions.iter().find(|f| f.name == n).cloned();
                exports.on_bind = find("on-workload-bind");
                exports.on_unbind = find("on-workload-unbind");
                continue;
            }
            if !offered {
                continue;
            }
            if split_name(name).is_some() {
                exports.interfaces.push(interface);
            }
        }
        exports.functions = functions;
        if exports.interfaces.is_empty() {
            return Err(ComponentPluginError::NothingExported {
                id: id.to_string(),
                exports: if names.is_empty() {
                    "nothing".into()
                } else {
                    names.join(", ")
                },
            });
        }
        Ok(exports)
    }

    /// The interfaces, grouped by package as plugins declare them.
    fn provided(&self) -> Vec<ProvidedInterface> {
        let mut provided: Vec<ProvidedInterface> = Vec::new();
        for interface in &self.interfaces {
            let Some((namespace, package, name, version)) = split_name(&interface.name) else {
                continue;
            };
            match provided
                .iter_mut()
                .find(|p| p.namespace == namespace && p.package == package && p.version == version)
            {
                Some(p) => p.interfaces.push(name.to_string()),
                None => provided.push(ProvidedInterface::new(namespace, package, version, &[name])),
            }
        }
        provided
    }

    /// The exported interface a workload's `import` is served by.
    fn serving(&self, import: &str) -> Option<&InterfaceExports> {
        let (namespace, package, name, version) = split_name(import)?;
        self.interfaces.iter().find(|i| {
            split_name(&i.name).is_some_and(|(n, p, f, v)| {
                n == namespace && p == package && f == name && super::same_line(v, version)
            })
        })
    }
}

/// A plugin compiled and inspected, not started yet.
pub(crate) struct LoadedPlugin {
    pub(crate) spec: ComponentPluginSpec,
    pub(crate) bytes: Bytes,
    pub(crate) digest: String,
    pub(crate) plugin: ComponentPlugin,
    /// Interfaces it imports (to order starts and find cycles).
    imports: Vec<String>,
    /// Whether it runs on the synchronous engine (it needs no P3).
    pub(crate) synchronous: bool,
    /// Held until its workload starts, which then reuses the compiled code.
    _compiled: CompiledComponent,
}

/// Loads a plugin: its bytes (read or pulled), compiled (checking the
/// digest pin), its exports read. A plugin is compiled for `synchronous`
/// (an engine without concurrency: calls into it are much cheaper) unless
/// it uses P3, which only `concurrent` runs.
pub(crate) async fn load(
    synchronous: &Engine,
    concurrent: &Engine,
    oci: Option<&crate::oci::OciClient>,
    spec: ComponentPluginSpec,
) -> Result<LoadedPlugin, ComponentPluginError> {
    let id = spec.id.clone();
    let bytes =
        match &spec.source {
            ComponentPluginSource::Bytes(bytes) => bytes.clone(),
            ComponentPluginSource::File(path) => tokio::fs::read(path)
                .await
                .map(Bytes::from)
                .map_err(|source| ComponentPluginError::Read {
                    id: id.clone(),
                    path: path.clone(),
                    source,
                })?,
            ComponentPluginSource::Image(image) => {
                let oci = oci.ok_or_else(|| ComponentPluginError::NoOci {
                    id: id.clone(),
                    image: image.clone(),
                })?;
                oci.pull(
                    image,
                    None,
                    crate::types::PullPolicy::IfNotPresent,
                    &|_, _| {},
                )
                .await
                .map_err(|source| ComponentPluginError::Pull {
                    id: id.clone(),
                    source,
                })?
                .bytes
            }
        };
    let origin = format!("component plugin `{id}`");
    let compile = |engine: &Engine| {
        let (engine, bytes, digest) = (engine.clone(), bytes.clone(), spec.digest.clone());
        let origin = origin.clone();
        let id = id.clone();
        async move {
            tokio::task::spawn_blocking(move || engine.compile(&bytes, &origin, digest.as_deref()))
                .await
                .map_err(|e| ComponentPluginError::Start {
                    id,
                    message: format!("compilation did not finish: {e}"),
                })
        }
    };
    let (compiled, engine) = match compile(synchronous).await? {
        Ok(compiled) => (compiled, synchronous),
        // Valid only with concurrency (a P3 plugin): the other engine says
        // whether it is valid at all.
        Err(crate::engine::EngineError::Invalid { .. }) => {
            (compile(concurrent).await??, concurrent)
        }
        Err(e) => return Err(e.into()),
    };
    let exports = Arc::new(PluginExports::of(engine, &id, &compiled)?);
    let imports = compiled
        .component
        .component_type()
        .imports(engine.wasmtime())
        .map(|(name, _)| name.to_string())
        .collect();
    Ok(LoadedPlugin {
        plugin: ComponentPlugin {
            id: id.clone(),
            provided: exports.provided(),
            exports,
            runtime: Arc::default(),
        },
        digest: compiled.digest.clone(),
        bytes,
        spec,
        imports,
        synchronous: std::ptr::eq(engine, synchronous),
        _compiled: compiled,
    })
}

/// The order to start `plugins` in (each after those whose exports it
/// imports); a cycle is an error naming it.
pub(crate) fn start_order(plugins: &[LoadedPlugin]) -> Result<Vec<usize>, ComponentPluginError> {
    let depends: Vec<Vec<usize>> = plugins
        .iter()
        .map(|p| {
            (0..plugins.len())
                .filter(|&j| {
                    p.imports
                        .iter()
                        .any(|import| plugins[j].plugin.exports.serving(import).is_some())
                })
                .collect()
        })
        .collect();
    let ids: Vec<&str> = plugins.iter().map(|p| p.spec.id.as_str()).collect();
    order_by_dependencies(&ids, &depends)
}

/// A depth-first topological order of `ids`, where `depends[i]` lists what
/// `i` needs started first; a cycle is an error naming its members.
fn order_by_dependencies(
    ids: &[&str],
    depends: &[Vec<usize>],
) -> Result<Vec<usize>, ComponentPluginError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        i: usize,
        ids: &[&str],
        depends: &[Vec<usize>],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> Result<(), ComponentPluginError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::OnPath => {
                let from = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle: Vec<&str> = path[from..].iter().map(|&p| ids[p]).collect();
                cycle.push(ids[i]);
                return Err(ComponentPluginError::Cycle(cycle.join(" -> ")));
            }
            Mark::New => {}
        }
        marks[i] = Mark::OnPath;
        path.push(i);
        for &j in &depends[i] {
            visit(j, ids, depends, marks, path, order)?;
        }
        path.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; ids.len()];
    let mut order = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        visit(i, ids, depends, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// A component plugin as the host's plugin list holds it.
pub(crate) struct ComponentPlugin {
    id: String,
    provided: Vec<ProvidedInterface>,
    exports: Arc<PluginExports>,
    /// Set once its workload runs.
    runtime: RuntimeCell,
}

impl ComponentPlugin {
    /// Where the runtime goes once started.
    pub(crate) fn runtime_cell(&self) -> RuntimeCell {
        self.runtime.clone()
    }

    pub(crate) fn exports(&self) -> Arc<PluginExports> {
        self.exports.clone()
    }

    /// Clones what the host's list needs (the loader keeps the original).
    pub(crate) fn share(&self) -> Self {
        Self {
            id: self.id.clone(),
            provided: self.provided.clone(),
            exports: self.exports.clone(),
            runtime: self.runtime.clone(),
        }
    }

    fn runtime(&self) -> Result<&Arc<PluginRuntime>, PluginError> {
        self.runtime.get().ok_or_else(|| PluginError::Internal {
            plugin: self.id.clone(),
            message: "is not running yet".into(),
        })
    }
}

/// What a component plugin keeps per workload.
pub(crate) struct Bound {
    workload_id: Arc<str>,
}

impl HostPlugin for ComponentPlugin {
    type WorkloadState = Bound;

    fn id(&self) -> &str {
        &self.id
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        // A failed plugin offers nothing: heartbeats stop listing its
        // interfaces and new workloads are not linked to it.
        if self.runtime.get().is_some_and(|r| r.failed()) {
            return Vec::new();
        }
        self.provided.clone()
    }

    fn on_workload_bind<'a>(&'a self, bind: &'a WorkloadBind<'a>) -> PluginFuture<'a, Bound> {
        Box::pin(async move {
            let runtime = self.runtime()?;
            if let Some(hook) = &self.exports.on_bind {
                let config: BTreeMap<&String, &String> = bind
                    .interfaces
                    .iter()
                    .flat_map(|i| i.config.iter())
                    .collect();
                let config = Val::List(
                    config
                        .into_iter()
                        .map(|(k, v)| {
                            Val::Tuple(vec![Val::String(k.clone()), Val::String(v.clone())])
                        })
                        .collect(),
                );
                let answer = runtime
                    .bind(hook, bind.workload_id, config)
                    .await
                    .map_err(|e| PluginError::Internal {
                        plugin: self.id.clone(),
                        message: e.to_string(),
                    })?;
                if let Some(Val::Result(Err(Some(reason)))) = answer
                    && let Val::String(reason) = *reason
                {
                    return Err(PluginError::Config {
                        plugin: self.id.clone(),
                        key: "on-workload-bind".into(),
                        message: reason,
                    });
                }
            }
            Ok(Bound {
                workload_id: bind.workload_id.into(),
            })
        })
    }

    fn on_workload_item_bind(
        &self,
        bound: &Bound,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        let runtime = self.runtime()?.clone();
        // wasi:keyvalue takes the typed path when the plugin exports it
        // whole and the workload imports nothing of it the path lacks
        // (their buckets must be one type).
        let keyvalue_imports: Vec<String> = item
            .imports
            .iter()
            .filter(|i| keyvalue::bridges(i))
            .cloned()
            .collect();
        let typed_keyvalue = runtime.typed_keyvalue()
            && !keyvalue_imports.is_empty()
            && keyvalue_imports.len()
                == item
                    .imports
                    .iter()
                    .filter(|i| i.starts_with("wasi:keyvalue/"))
                    .count();
        if typed_keyvalue {
            keyvalue::link(
                item.linker,
                item.bindings,
                &keyvalue_imports,
                runtime.clone(),
                bound.workload_id.clone(),
            )
            .map_err(|e| PluginError::link(&self.id, "wasi:keyvalue", format!("{e:#}")))?;
        }
        for import in item.imports.clone() {
            if typed_keyvalue && keyvalue::bridges(&import) {
                continue;
            }
            let interface = self.exports.serving(&import).ok_or_else(|| {
                PluginError::link(&self.id, &import, "the plugin does not export it")
            })?;
            link::link_interface(
                item.linker,
                &import,
                interface,
                runtime.clone(),
                bound.workload_id.clone(),
            )
            .map_err(|e| PluginError::link(&self.id, &import, format!("{e:#}")))?;
        }
        Ok(())
    }

    fn on_workload_unbind<'a>(&'a self, workload_id: &'a str, _: Bound) -> PluginFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(runtime) = self.runtime()
                && let Err(e) = runtime
                    .unbind(self.exports.on_unbind.as_ref(), workload_id)
                    .await
            {
                tracing::warn!(plugin = %self.id, workload_id, error = %e, "on-workload-unbind failed");
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_start_after_what_they_import_and_cycles_are_named() {
        // billing imports audit's exports; audit imports nothing.
        let order = order_by_dependencies(&["billing", "audit"], &[vec![1], vec![]]).unwrap();
        assert_eq!(order, vec![1, 0]);

        let err = order_by_dependencies(&["a", "b", "c"], &[vec![1], vec![2], vec![0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("a -> b -> c -> a"), "{err}");

        let err = order_by_dependencies(&["self"], &[vec![0]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("self -> self"), "{err}");
    }

    #[test]
    fn interface_names_split_and_match_by_version_line() {
        assert_eq!(
            split_name("wasi:keyvalue/store@0.2.0-draft"),
            Some(("wasi", "keyvalue", "store", "0.2.0-draft"))
        );
        assert_eq!(split_name("run"), None);
        let exports = PluginExports {
            interfaces: vec![InterfaceExports {
                name: "wasi:keyvalue/store@0.2.0-draft".into(),
                functions: Vec::new(),
                resources: Vec::new(),
            }],
            ..Default::default()
        };
        assert!(exports.serving("wasi:keyvalue/store@0.2.1").is_some());
        assert!(exports.serving("wasi:keyvalue/store@0.3.0").is_none());
        assert!(
            exports
                .serving("wasi:keyvalue/atomics@0.2.0-draft")
                .is_none()
        );
        let provided = exports.provided();
        assert_eq!(provided.len(), 1);
        assert!(provided[0].provides("wasi:keyvalue/store@0.2.0-draft"));
    }
}
