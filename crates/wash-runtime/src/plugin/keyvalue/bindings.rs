//! Host bindings of `wasi:keyvalue`, generated from `wit/`.

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/keyvalue",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasi:keyvalue/store.bucket": crate::plugin::keyvalue::Bucket,
        },
    });
}

pub(crate) use generated::wasi::keyvalue::{atomics, batch, store};
