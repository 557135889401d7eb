//! `wasmcloud:host/identity`: tells a component plugin which workload's
//! call it is serving, so that it can keep workloads' data apart.

use crate::instance::{PluginView, Plugins, StoreState};
use crate::plugin::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, WorkloadBind,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/identity",
        imports: { default: async | trappable },
        require_store_data_send: true,
    });
}

use self::bindings::wasmcloud::host::identity;

const ID: &str = "wasmcloud-host-identity";

/// Provides `wasmcloud:host/identity` to component plugins (the host adds
/// it when it has any). The caller lives in each plugin instance's store,
/// set by the plugin's runtime around every call, so instances serving
/// calls at once never see each other's caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity;

impl HostPlugin for Identity {
    type WorkloadState = ();

    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasmcloud",
            "host",
            "0.1.0-draft",
            &["identity"],
        )]
    }

    fn on_workload_bind<'a>(&'a self, _: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn on_workload_item_bind(&self, _: &(), item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        identity::add_to_linker::<StoreState, Plugins>(item.linker, StoreState::plugin_view)
            .map_err(|e| PluginError::link(ID, "wasmcloud:host/identity", e))
    }

    fn on_workload_unbind<'a>(&'a self, _: &'a str, _: ()) -> PluginFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

impl identity::Host for PluginView<'_> {
    async fn caller(&mut self) -> wasmtime::Result<String> {
        Ok(self.caller.unwrap_or_default().to_string())
    }
}
