//! Capability plugins: in-process providers of WIT interfaces beyond WASI
//! (key-value, blobs, messaging, config, logging, secrets).
//!
//! A [`HostPlugin`] says which interfaces it provides ([`HostPlugin::world`]).
//! When a workload starts, every plugin whose interfaces its components
//! import (or that its `host_interfaces` name) is asked to bind it
//! ([`HostPlugin::on_workload_bind`]), then to link each component
//! ([`HostPlugin::on_workload_item_bind`]), and is told when the workload is
//! ready ([`HostPlugin::on_workload_resolved`]) and when it stops
//! ([`HostPlugin::on_workload_unbind`]). Plugins never depend on each other.
//!
//! Per-component state a plugin needs in its host functions lives in
//! [`Bindings`], reached from the store by type.

mod backends;
pub mod blobstore;
pub mod component;
pub mod config;
mod fs;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
pub(crate) mod names;
pub(crate) mod nats;
pub mod secrets;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::component::Linker;

pub use self::backends::{BackendChoice, BackendError, BackendKey, Backends, BoxError};
use crate::instance::{BindingsBuilder, ComponentHandle, StoreState};
use crate::types::{Component, WitInterface, Workload};

/// What plugin hooks return.
pub type PluginFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PluginError>> + Send + 'a>>;

/// A family of interfaces a plugin provides, e.g. `wasi:keyvalue@0.2.0-draft`
/// with `store`, `atomics` and `batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedInterface {
    /// WIT namespace, e.g. `wasi`.
    pub namespace: String,
    /// WIT package, e.g. `keyvalue`.
    pub package: String,
    /// Package version, e.g. `0.2.0-draft`.
    pub version: String,
    /// Interfaces of the package the plugin implements.
    pub interfaces: Vec<String>,
}

impl ProvidedInterface {
    /// `namespace:package@version` with these interfaces.
    pub fn new(namespace: &str, package: &str, version: &str, interfaces: &[&str]) -> Self {
        Self {
            namespace: namespace.into(),
            package: package.into(),
            version: version.into(),
            interfaces: interfaces.iter().map(|i| i.to_string()).collect(),
        }
    }

    /// Whether an import name such as `wasi:keyvalue/store@0.2.0-draft` is
    /// one of these interfaces (any patch of the same version line).
    pub fn provides(&self, import: &str) -> bool {
        let Some((namespace, rest)) = import.split_once(':') else {
            return false;
        };
        let (path, version) = rest.split_once('@').unwrap_or((rest, ""));
        let Some((package, interface)) = path.split_once('/') else {
            return false;
        };
        namespace == self.namespace
            && package == self.package
            && self.interfaces.iter().any(|i| i == interface)
            && (version.is_empty() || same_line(version, &self.version))
    }

    /// Whether a workload's host interface entry names this package.
    pub fn matches(&self, interface: &WitInterface) -> bool {
        interface.namespace == self.namespace && interface.package == self.package
    }
}

/// `0.2.0-draft` and `0.2.3` are on one line; `0.3.0` is not.
fn same_line(a: &str, b: &str) -> bool {
    fn line(v: &str) -> (&str, &str) {
        let mut parts = v.split(['.', '-']);
        let major = parts.next().unwrap_or("");
        let minor = parts.next().unwrap_or("");
        if major == "0" {
            (major, minor)
        } else {
            (major, "")
        }
    }
    line(a) == line(b)
}

/// Why a plugin refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// A configuration key is unknown or its value unusable.
    #[error("plugin `{plugin}`: configuration `{key}`: {message}")]
    Config {
        /// The plugin.
        plugin: String,
        /// The offending key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The backend could not be reached or refused.
    #[error("plugin `{plugin}`: {context}")]
    Backend {
        /// The plugin.
        plugin: String,
        /// What failed, naming the backend and address.
        context: String,
        /// Why.
        #[source]
        source: Option<BoxError>,
    },
    /// Linking the plugin's interfaces failed.
    #[error("plugin `{plugin}`: cannot link `{interface}`: {message}")]
    Link {
        /// The plugin.
        plugin: String,
        /// The interface.
        interface: String,
        /// What wasmtime said.
        message: String,
    },
    /// The host broke a promise it makes plugins (a bug, reported instead
    /// of a panic).
    #[error("plugin `{plugin}`: {message}")]
    Internal {
        /// The plugin.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

impl PluginError {
    /// A configuration error.
    pub fn config(plugin: &str, key: &str, message: impl Into<String>) -> Self {
        Self::Config {
            plugin: plugin.into(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A backend error.
    pub fn backend(plugin: &str, error: BackendError) -> Self {
        let (context, source) = error.into_parts();
        Self::Backend {
            plugin: plugin.into(),
            context,
            source,
        }
    }

    /// A linking error.
    pub fn link(plugin: &str, interface: &str, error: impl std::fmt::Display) -> Self {
        Self::Link {
            plugin: plugin.into(),
            interface: interface.into(),
            message: error.to_string(),
        }
    }
}

/// A workload a plugin is asked to serve.
pub struct WorkloadBind<'a> {
    /// Id the workload starts under.
    pub workload_id: &'a str,
    /// The workload.
    pub workload: &'a Workload,
    /// Its `host_interfaces` entries for this plugin's packages.
    pub interfaces: Vec<&'a WitInterface>,
}

/// One component of a workload, to link.
pub struct ItemBind<'a> {
    /// Id of the workload.
    pub workload_id: &'a str,
    /// The workload.
    pub workload: &'a Workload,
    /// The component.
    pub component: &'a Component,
    /// The component's imports this plugin provides, e.g.
    /// `wasi:keyvalue/store@0.2.0-draft`.
    pub imports: Vec<String>,
    /// The workload's `host_interfaces` entries for this plugin's packages.
    pub interfaces: Vec<&'a WitInterface>,
    /// The component's linker: add the plugin's interfaces here.
    pub linker: &'a mut Linker<StoreState>,
    /// Per-component state for the plugin's host functions.
    pub bindings: &'a mut BindingsBuilder,
}

impl ItemBind<'_> {
    /// Whether the component imports `interface` (e.g. `atomics`) of this
    /// plugin's package.
    pub fn imports_interface(&self, interface: &str) -> bool {
        self.imports.iter().any(|i| {
            i.split_once('/')
                .map(|(_, rest)| rest.split('@').next() == Some(interface))
                .unwrap_or(false)
        })
    }
}

/// A workload whose components are ready, for plugins that call into them.
pub struct ResolvedWorkload<'a> {
    /// Id of the workload.
    pub workload_id: &'a str,
    /// The workload.
    pub workload: &'a Workload,
    /// Its components, ready to instantiate.
    pub components: Vec<ComponentHandle>,
}

/// An in-process provider of WIT interfaces.
///
/// A plugin keeps what it needs for one workload in its
/// [`WorkloadState`](HostPlugin::WorkloadState): made by
/// [`on_workload_bind`](HostPlugin::on_workload_bind), lent to the other
/// hooks, and handed back by value to
/// [`on_workload_unbind`](HostPlugin::on_workload_unbind). The host owns it
/// in between and unbinds on every path a workload can end by, so a plugin
/// keeps no map of workloads of its own.
///
/// ```
/// use wash_runtime::plugin::{
///     HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, WorkloadBind,
/// };
///
/// /// Greets in the language a workload configures.
/// struct Greeter;
///
/// impl HostPlugin for Greeter {
///     /// The greeting of one workload.
///     type WorkloadState = String;
///
///     fn id(&self) -> &str {
///         "greeter"
///     }
///
///     fn world(&self) -> Vec<ProvidedInterface> {
///         vec![ProvidedInterface::new("example", "greeter", "0.1.0", &["greet"])]
///     }
///
///     fn on_workload_bind<'a>(&'a self, bind: &'a WorkloadBind<'a>) -> PluginFuture<'a, String> {
///         Box::pin(async move {
///             let language = bind.interfaces.iter().find_map(|i| i.config.get("language"));
///             Ok(match language.map(String::as_str) {
///                 Some("fr") => "bonjour".to_string(),
///                 _ => "hello".to_string(),
///             })
///         })
///     }
///
///     fn on_workload_item_bind(
///         &self,
///         greeting: &String,
///         item: &mut ItemBind<'_>,
///     ) -> Result<(), PluginError> {
///         // Host functions find it in the component's bindings by type.
///         item.bindings.insert(greeting.clone());
///         Ok(())
///     }
/// }
/// ```
pub trait HostPlugin: Send + Sync + 'static {
    /// What the plugin keeps for one workload, from bind to unbind.
    type WorkloadState: Send + Sync + 'static;

    /// A unique id, e.g. `wasi-keyvalue`.
    fn id(&self) -> &str;

    /// The interfaces this plugin provides.
    fn world(&self) -> Vec<ProvidedInterface>;

    /// Exports of components this plugin calls (e.g. a message handler),
    /// as the host reports them to the control plane.
    fn called_interfaces(&self) -> Vec<crate::types::WitInterface> {
        Vec::new()
    }

    /// Called once when the host starts.
    fn start(&self) -> PluginFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Called once when the host stops.
    fn stop(&self) -> PluginFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// A workload using this plugin is starting: validate its configuration,
    /// reach its backends and return what the plugin keeps for it. An error
    /// fails the start.
    fn on_workload_bind<'a>(
        &'a self,
        workload: &'a WorkloadBind<'a>,
    ) -> PluginFuture<'a, Self::WorkloadState>;

    /// Links this plugin's interfaces for one component.
    fn on_workload_item_bind(
        &self,
        state: &Self::WorkloadState,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError>;

    /// Every component of the workload is ready (e.g. to subscribe them).
    fn on_workload_resolved<'a>(
        &'a self,
        state: &'a mut Self::WorkloadState,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        let _ = (state, workload);
        Box::pin(async { Ok(()) })
    }

    /// The workload stopped, or failed to start after binding: release what
    /// `state` holds. Dropping the state must release it too; this hook is
    /// for work that needs to wait (flushes, graceful unsubscribes).
    fn on_workload_unbind<'a>(
        &'a self,
        workload_id: &'a str,
        state: Self::WorkloadState,
    ) -> PluginFuture<'a, ()> {
        let _ = workload_id;
        drop(state);
        Box::pin(async { Ok(()) })
    }
}

/// A plugin's per-workload state with its type erased, as the host keeps it.
pub(crate) type AnyState = Box<dyn Any + Send + Sync>;

/// [`HostPlugin`] without its state type, so plugins of every kind can sit
/// in one list.
trait ErasedPlugin: Send + Sync {
    fn id(&self) -> &str;
    fn world(&self) -> Vec<ProvidedInterface>;
    fn called_interfaces(&self) -> Vec<crate::types::WitInterface>;
    fn start(&self) -> PluginFuture<'_, ()>;
    fn stop(&self) -> PluginFuture<'_, ()>;
    fn bind<'a>(&'a self, workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, AnyState>;
    fn item_bind(&self, state: &AnyState, item: &mut ItemBind<'_>) -> Result<(), PluginError>;
    fn resolved<'a>(
        &'a self,
        state: &'a mut AnyState,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()>;
    fn unbind<'a>(&'a self, workload_id: &'a str, state: AnyState) -> PluginFuture<'a, ()>;
}

/// The host only hands a plugin states that plugin made; anything else is a
/// bug in the host, reported instead of panicking.
fn foreign_state(plugin: &str) -> PluginError {
    PluginError::Internal {
        plugin: plugin.to_string(),
        message: "was handed another plugin's workload state".into(),
    }
}

impl<P: HostPlugin> ErasedPlugin for P {
    fn id(&self) -> &str {
        HostPlugin::id(self)
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        HostPlugin::world(self)
    }

    fn called_interfaces(&self) -> Vec<crate::types::WitInterface> {
        HostPlugin::called_interfaces(self)
    }

    fn start(&self) -> PluginFuture<'_, ()> {
        HostPlugin::start(self)
    }

    fn stop(&self) -> PluginFuture<'_, ()> {
        HostPlugin::stop(self)
    }

    fn bind<'a>(&'a self, workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, AnyState> {
        Box::pin(async move {
            let state = self.on_workload_bind(workload).await?;
            Ok(Box::new(state) as AnyState)
        })
    }

    fn item_bind(&self, state: &AnyState, item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        let state = state
            .downcast_ref::<P::WorkloadState>()
            .ok_or_else(|| foreign_state(HostPlugin::id(self)))?;
        self.on_workload_item_bind(state, item)
    }

    fn resolved<'a>(
        &'a self,
        state: &'a mut AnyState,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        match state.downcast_mut::<P::WorkloadState>() {
            Some(state) => self.on_workload_resolved(state, workload),
            None => Box::pin(async move { Err(foreign_state(HostPlugin::id(self))) }),
        }
    }

    fn unbind<'a>(&'a self, workload_id: &'a str, state: AnyState) -> PluginFuture<'a, ()> {
        match state.downcast::<P::WorkloadState>() {
            Ok(state) => self.on_workload_unbind(workload_id, *state),
            Err(_) => Box::pin(async move { Err(foreign_state(HostPlugin::id(self))) }),
        }
    }
}

/// A plugin of any kind, as the host holds it. Cheap to clone.
#[derive(Clone)]
pub struct Plugin(Arc<dyn ErasedPlugin>);

impl Plugin {
    /// Wraps a plugin.
    pub fn new<P: HostPlugin>(plugin: P) -> Self {
        Self(Arc::new(plugin))
    }

    /// The plugin's id.
    pub fn id(&self) -> &str {
        self.0.id()
    }

    /// The interfaces it provides.
    pub fn world(&self) -> Vec<ProvidedInterface> {
        self.0.world()
    }

    /// Exports of components it calls.
    pub fn called_interfaces(&self) -> Vec<crate::types::WitInterface> {
        self.0.called_interfaces()
    }

    pub(crate) fn start(&self) -> PluginFuture<'_, ()> {
        self.0.start()
    }

    pub(crate) fn stop(&self) -> PluginFuture<'_, ()> {
        self.0.stop()
    }

    pub(crate) fn bind<'a>(&'a self, workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, AnyState> {
        self.0.bind(workload)
    }

    pub(crate) fn item_bind(
        &self,
        state: &AnyState,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        self.0.item_bind(state, item)
    }

    pub(crate) fn resolved<'a>(
        &'a self,
        state: &'a mut AnyState,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        self.0.resolved(state, workload)
    }

    pub(crate) fn unbind<'a>(
        &'a self,
        workload_id: &'a str,
        state: AnyState,
    ) -> PluginFuture<'a, ()> {
        self.0.unbind(workload_id, state)
    }
}

impl<P: HostPlugin> From<Arc<P>> for Plugin {
    fn from(plugin: Arc<P>) -> Self {
        Self(plugin)
    }
}

impl<P: HostPlugin> From<P> for Plugin {
    fn from(plugin: P) -> Self {
        Self::new(plugin)
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Plugin").field(&self.id()).finish()
    }
}

/// The built-in plugins, each with its in-process default backend:
/// config, logging, key-value, blobstore, messaging and secrets. The
/// key-value, blobstore and messaging plugins share one [`Backends`] cache.
pub fn builtin() -> Vec<Plugin> {
    let backends = Backends::new();
    vec![
        Plugin::new(config::Config),
        Plugin::new(logging::Logging),
        Plugin::new(keyvalue::KeyValue::in_memory().with_backends(backends.clone())),
        Plugin::new(blobstore::Blobstore::in_memory().with_backends(backends.clone())),
        Plugin::new(messaging::Messaging::in_memory().with_backends(backends)),
        Plugin::new(secrets::Secrets::new()),
    ]
}

/// Splits `a, b,c` into trimmed, non-empty parts.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provided_interfaces_match_imports_by_version_line() {
        let kv = ProvidedInterface::new("wasi", "keyvalue", "0.2.0-draft", &["store", "atomics"]);
        assert!(kv.provides("wasi:keyvalue/store@0.2.0-draft"));
        assert!(kv.provides("wasi:keyvalue/atomics@0.2.0-draft2"));
        assert!(!kv.provides("wasi:keyvalue/batch@0.2.0-draft"));
        assert!(!kv.provides("wasi:keyvalue/store@0.3.0"));
        let messaging = ProvidedInterface::new("wasmcloud", "messaging", "0.2.0", &["consumer"]);
        assert!(messaging.provides("wasmcloud:messaging/consumer@0.2.0"));
        assert!(!messaging.provides("wasmcloud:messaging/consumer@0.3.0"));
    }
}
