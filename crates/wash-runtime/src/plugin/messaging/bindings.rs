//! Bindings of `wasmcloud:messaging`, generated from `wit/`: the host side
//! of `consumer`, and the export side (`handler`) the host calls.

mod generated {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/messaging",
        imports: { default: async | trappable },
        require_store_data_send: true,
    });

    pub(crate) mod handler {
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

pub(crate) use generated::handler::MessageHandlerPre;
pub(crate) use generated::wasmcloud::messaging::{consumer, types};
