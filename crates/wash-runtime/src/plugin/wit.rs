//! Host bindings generated from the repository's `wit/`, and the one view
//! through which every plugin's host functions reach their state.

use wasmtime::component::{HasData, ResourceTable};

use super::Bindings;

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/plugins",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:keyvalue/store.bucket": crate::plugin::keyvalue::Bucket,
            "wasi:blobstore/container.container": crate::plugin::blobstore::Container,
            "wasi:blobstore/container.stream-object-names": crate::plugin::blobstore::ObjectNames,
            "wasi:blobstore/types.outgoing-value": crate::plugin::blobstore::OutgoingValue,
            "wasi:blobstore/types.incoming-value": crate::plugin::blobstore::IncomingValue,
            "wasmcloud:secrets/store.secret": crate::plugin::secrets::Secret,
        },
    });

    /// The export side: components that handle messages.
    pub mod handler {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "wash:host/message-handler",
            exports: { default: async },
            require_store_data_send: true,
            with: {
                "wasmcloud:messaging/types": super::wasmcloud::messaging::types,
            },
        });
    }
}

pub use generated::handler::MessageHandlerPre;
pub use generated::wasi::{blobstore, config, keyvalue, logging};
pub use generated::wasmcloud::{messaging, secrets};

/// What plugin host functions see of a store: its resource table and the
/// component's plugin [`Bindings`].
pub struct PluginView<'a> {
    /// Resources of the instance (buckets, containers, secrets...).
    pub table: &'a mut ResourceTable,
    /// Per-component plugin state.
    pub bindings: &'a Bindings,
}

/// [`HasData`] for [`PluginView`], for `add_to_linker` functions.
pub struct Plugins;

impl HasData for Plugins {
    type Data<'a> = PluginView<'a>;
}
