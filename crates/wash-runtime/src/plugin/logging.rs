//! `wasi:logging/logging@0.1.0-draft`: guest log lines into `tracing`,
//! tagged with workload and component.

use self::bindings::wasi::logging::logging::{self, Level};
use super::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, StoreState, WorkloadBind,
};
use crate::instance::{PluginView, Plugins};

/// Host bindings generated from `wit/`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/logging",
        imports: { default: async | trappable },
        require_store_data_send: true,
    });
}

const ID: &str = "wasi-logging";

/// Provides `wasi:logging/logging`.
#[derive(Debug, Default)]
pub struct Logging;

/// Who is logging.
struct LoggingBinding {
    workload_id: String,
    component: String,
}

impl HostPlugin for Logging {
    type WorkloadState = ();

    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasi",
            "logging",
            "0.1.0-draft",
            &["logging"],
        )]
    }

    fn on_workload_bind<'a>(&'a self, _workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn on_workload_item_bind(&self, _: &(), item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        item.bindings.insert(LoggingBinding {
            workload_id: item.workload_id.to_string(),
            component: item.component.name.clone(),
        });
        logging::add_to_linker::<StoreState, Plugins>(item.linker, StoreState::plugin_view)
            .map_err(|e| PluginError::link(ID, "wasi:logging/logging", e))
    }
}

impl logging::Host for PluginView<'_> {
    async fn log(
        &mut self,
        level: Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        let Some(who) = self.bindings.get::<LoggingBinding>() else {
            return Err(wasmtime::format_err!(
                "wasi:logging is not bound for this component"
            ));
        };
        let (workload, component) = (&who.workload_id, &who.component);
        let ids = self.trace.get();
        // Displayed bare, as on guest stdout/stderr lines.
        let trace_id = ids
            .as_ref()
            .map(|ids| tracing::field::display(ids.trace_id.as_str()));
        let span_id = ids
            .as_ref()
            .map(|ids| tracing::field::display(ids.span_id.as_str()));
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "wash::guest",
                    %workload,
                    %component,
                    %context,
                    trace_id,
                    span_id,
                    "{message}"
                )
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error | Level::Critical => emit!(error),
        }
        Ok(())
    }
}
