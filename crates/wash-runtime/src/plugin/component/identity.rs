//! `wasmcloud:host/identity`: tells a component plugin which workload's
//! call it is serving, so that it can keep workloads' data apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// The caller of the call a plugin instance is serving (none in lifecycle
/// hooks). The plugin's runtime sets it under the plugin's lock, around
/// each call; the id is shared, not copied.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerSlot(Arc<Mutex<Option<Arc<str>>>>);

impl CallerSlot {
    pub(crate) fn set(&self, caller: Option<Arc<str>>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = caller;
        }
    }

    fn get(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|s| s.as_deref().map(str::to_string))
            .unwrap_or_default()
    }
}

/// Provides `wasmcloud:host/identity` to component plugins (the host adds
/// it when it has any).
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    /// The slot of each plugin's workload, by workload id.
    slots: Arc<Mutex<HashMap<String, CallerSlot>>>,
}

impl Identity {
    /// The slot a plugin running as `workload_id` reads.
    pub(crate) fn slot(&self, workload_id: &str) -> CallerSlot {
        match self.slots.lock() {
            Ok(mut slots) => slots.entry(workload_id.to_string()).or_default().clone(),
            // A poisoned map only loses identities, never another's data.
            Err(_) => CallerSlot::default(),
        }
    }
}

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
        item.bindings.insert(self.slot(item.workload_id));
        identity::add_to_linker::<StoreState, Plugins>(item.linker, StoreState::plugin_view)
            .map_err(|e| PluginError::link(ID, "wasmcloud:host/identity", e))
    }

    fn on_workload_unbind<'a>(&'a self, workload_id: &'a str, _: ()) -> PluginFuture<'a, ()> {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(workload_id);
        }
        Box::pin(async { Ok(()) })
    }
}

impl identity::Host for PluginView<'_> {
    async fn caller(&mut self) -> wasmtime::Result<String> {
        Ok(self
            .bindings
            .get::<CallerSlot>()
            .map(CallerSlot::get)
            .unwrap_or_default())
    }
}
