//! `wasi:config/store@0.2.0-rc.1`: configuration values for components.
//!
//! A component sees its workload's `wasi:config` host interface config,
//! overridden key by key by its own `localResources.config`.

use std::collections::BTreeMap;

use self::bindings::wasi::config::store::{self, Error as ConfigError};
use super::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, StoreState, WorkloadBind,
};
use crate::instance::{PluginView, Plugins};

/// Host bindings generated from `wit/`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/config",
        imports: { default: async | trappable },
        require_store_data_send: true,
    });
}

const ID: &str = "wasi-config";

/// Provides `wasi:config/store`.
#[derive(Debug, Default)]
pub struct Config;

/// The values one component sees.
struct ConfigBinding {
    values: BTreeMap<String, String>,
}

impl HostPlugin for Config {
    type WorkloadState = ();

    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasi",
            "config",
            "0.2.0-rc.1",
            &["store"],
        )]
    }

    fn on_workload_bind<'a>(&'a self, _workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn on_workload_item_bind(&self, _: &(), item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        let mut values: BTreeMap<String, String> = item
            .interfaces
            .iter()
            .flat_map(|i| i.config.clone())
            .collect();
        values.extend(item.component.local_resources.config.clone());
        item.bindings.insert(ConfigBinding { values });
        store::add_to_linker::<StoreState, Plugins>(item.linker, StoreState::plugin_view)
            .map_err(|e| PluginError::link(ID, "wasi:config/store", e))
    }
}

impl PluginView<'_> {
    fn config(&self) -> wasmtime::Result<&ConfigBinding> {
        self.bindings
            .get::<ConfigBinding>()
            .ok_or_else(|| wasmtime::format_err!("wasi:config is not bound for this component"))
    }
}

impl store::Host for PluginView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, ConfigError>> {
        Ok(Ok(self.config()?.values.get(&key).cloned()))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, ConfigError>> {
        Ok(Ok(self
            .config()?
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}
