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

mod bindings;
pub mod blobstore;
pub mod config;
mod fs;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
pub(crate) mod names;
pub(crate) mod nats;
pub mod secrets;
pub(crate) mod wit;

use std::future::Future;
use std::pin::Pin;

use wasmtime::component::Linker;

pub use self::bindings::{Bindings, BindingsBuilder};
pub use self::wit::{PluginView, Plugins};
pub use crate::engine::store::StoreState;
pub use crate::host::invoke::ComponentHandle;
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
    #[error("plugin `{plugin}`: {message}")]
    Backend {
        /// The plugin.
        plugin: String,
        /// What failed, naming the backend and address.
        message: String,
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
    pub fn backend(plugin: &str, message: impl Into<String>) -> Self {
        Self::Backend {
            plugin: plugin.into(),
            message: message.into(),
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
pub trait HostPlugin: Send + Sync + 'static {
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

    /// A workload using this plugin is starting: validate its configuration
    /// and reach its backends. An error fails the start.
    fn on_workload_bind<'a>(&'a self, workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        let _ = workload;
        Box::pin(async { Ok(()) })
    }

    /// Links this plugin's interfaces for one component.
    fn on_workload_item_bind(&self, item: &mut ItemBind<'_>) -> Result<(), PluginError>;

    /// Every component of the workload is ready.
    fn on_workload_resolved<'a>(
        &'a self,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        let _ = workload;
        Box::pin(async { Ok(()) })
    }

    /// The workload stopped (or failed to start after binding).
    fn on_workload_unbind<'a>(&'a self, workload_id: &'a str) -> PluginFuture<'a, ()> {
        let _ = workload_id;
        Box::pin(async { Ok(()) })
    }
}

/// The built-in plugins, each with its in-process default backend:
/// config, logging, key-value, blobstore, messaging and secrets.
pub fn builtin() -> Vec<std::sync::Arc<dyn HostPlugin>> {
    vec![
        std::sync::Arc::new(config::Config),
        std::sync::Arc::new(logging::Logging),
        std::sync::Arc::new(keyvalue::KeyValue::in_memory()),
        std::sync::Arc::new(blobstore::Blobstore::in_memory()),
        std::sync::Arc::new(messaging::Messaging::in_memory()),
        std::sync::Arc::new(secrets::Secrets::new()),
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

/// Rejects configuration keys outside `known`, naming the first stranger.
pub(crate) fn check_keys(
    plugin: &str,
    interface: &WitInterface,
    known: &[&str],
) -> Result<(), PluginError> {
    match interface
        .config
        .keys()
        .find(|k| !known.contains(&k.as_str()))
    {
        Some(key) => Err(PluginError::config(
            plugin,
            key,
            format!("unknown key (known keys: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
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
