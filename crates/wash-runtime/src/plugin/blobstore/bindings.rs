//! Host bindings of `wasi:blobstore`, generated from `wit/` (its streams are
//! wasmtime-wasi's `wasi:io`).

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/blobstore",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:blobstore/container.container": crate::plugin::blobstore::Container,
            "wasi:blobstore/container.stream-object-names": crate::plugin::blobstore::ObjectNames,
            "wasi:blobstore/types.outgoing-value": crate::plugin::blobstore::OutgoingValue,
            "wasi:blobstore/types.incoming-value": crate::plugin::blobstore::IncomingValue,
        },
    });
}

pub(crate) use generated::wasi::blobstore::{blobstore, container, types};
