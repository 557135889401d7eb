//! `wasi:config/store@0.2.0-rc.1`: configuration values for components.
//!
//! A component sees its workload's `wasi:config` host interface config,
//! overridden key by key by its own `localResources.config`.

use std::collections::BTreeMap;

use super::wit::config::store::{self, Error as ConfigError};
use super::wit::{PluginView, Plugins};
use super::{HostPlugin, ItemBind, PluginError, ProvidedInterface, StoreState};

const ID: &str = "wasi-config";

/// Provides `wasi:config/store`.
#[derive(Debug, Default)]
pub struct Config;

/// The values one component sees.
struct ConfigBinding {
    values: BTreeMap<String, String>,
}

impl HostPlugin for Config {
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

    fn on_workload_item_bind(&self, item: &mut ItemBind<'_>) -> Result<(), PluginError> {
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
