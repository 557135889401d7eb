//! The one view through which every plugin's host functions reach a store.

use wasmtime::component::{HasData, ResourceTable};

use super::Bindings;

/// What plugin host functions see of a store: its resource table and the
/// component's plugin [`Bindings`].
pub struct PluginView<'a> {
    /// Resources of the instance (buckets, containers, secrets...).
    pub table: &'a mut ResourceTable,
    /// Per-component plugin state.
    pub bindings: &'a Bindings,
    /// The traced request being served, if any.
    pub(crate) trace: &'a crate::telemetry::TraceSlot,
    /// The workload a component plugin's instance is serving a call for.
    pub(crate) caller: Option<&'a str>,
}

/// [`HasData`] for [`PluginView`], for `add_to_linker` functions.
pub struct Plugins;

impl HasData for Plugins {
    type Data<'a> = PluginView<'a>;
}
