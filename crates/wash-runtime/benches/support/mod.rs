//! Shared by the benches: fixtures, and a plugin that hands out the
//! components a host has prepared.

#![allow(dead_code, reason = "each bench uses a part")]

use std::sync::{Arc, Mutex};

use test_support::WorkloadBuilder;
use wash_runtime::instance::ComponentHandle;
use wash_runtime::plugin::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, ResolvedWorkload,
    WorkloadBind,
};
use wash_runtime::types::Workload;

pub use test_support::fixture;

/// An HTTP workload routed at `host`, optionally captured by [`Capture`].
pub fn http_workload(name: &str, bytes: bytes::Bytes, host: &str, capture: bool) -> Workload {
    let mut builder = WorkloadBuilder::new(name)
        .namespace("bench")
        .component(name, bytes)
        .http(&[("host", host)]);
    if capture {
        builder = builder.interface("bench", "capture", &[]);
    }
    builder.build()
}

/// Keeps the [`ComponentHandle`]s of workloads that list `bench:capture`.
#[derive(Default)]
pub struct Capture(pub Mutex<Vec<ComponentHandle>>);

impl Capture {
    pub fn handles(&self) -> Vec<ComponentHandle> {
        self.0.lock().map(|h| h.clone()).unwrap_or_default()
    }
}

impl HostPlugin for Capture {
    type WorkloadState = ();

    fn id(&self) -> &str {
        "bench-capture"
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "bench",
            "capture",
            "0.1.0",
            &["capture"],
        )]
    }

    fn on_workload_bind<'a>(&'a self, _workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn on_workload_item_bind(&self, _: &(), _item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        Ok(())
    }

    fn on_workload_resolved<'a>(
        &'a self,
        _: &'a mut (),
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        if let Ok(mut handles) = self.0.lock() {
            handles.extend(workload.components.iter().cloned());
        }
        Box::pin(async { Ok(()) })
    }
}

/// Resident set size of this process, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

pub fn capture_plugin() -> Arc<Capture> {
    Arc::new(Capture::default())
}
