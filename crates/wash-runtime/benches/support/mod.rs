//! Shared by the benches: fixtures, and a plugin that hands out the
//! components a host has prepared.

#![allow(dead_code, reason = "each bench uses a part")]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wash_runtime::plugin::{
    ComponentHandle, HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface,
    ResolvedWorkload,
};
use wash_runtime::types::{Component, WitInterface, Workload};

/// A guest component built by `components/` (release).
pub fn fixture(name: &str) -> bytes::Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../components/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(bytes) => bytes.into(),
        Err(e) => panic!(
            "{}: {e}; build the guests first: cargo build --release --target wasm32-wasip2 \
             --manifest-path components/Cargo.toml",
            path.display()
        ),
    }
}

/// An HTTP workload routed at `host`, optionally captured by [`Capture`].
pub fn http_workload(name: &str, bytes: bytes::Bytes, host: &str, capture: bool) -> Workload {
    let mut interfaces = vec![WitInterface {
        namespace: "wasi".into(),
        package: "http".into(),
        interfaces: vec!["incoming-handler".into()],
        config: [("host".to_string(), host.to_string())].into(),
        ..Default::default()
    }];
    if capture {
        interfaces.push(WitInterface {
            namespace: "bench".into(),
            package: "capture".into(),
            interfaces: vec!["capture".into()],
            ..Default::default()
        });
    }
    Workload {
        namespace: "bench".into(),
        name: name.into(),
        components: vec![Component {
            name: name.into(),
            bytes: Some(bytes),
            ..Default::default()
        }],
        host_interfaces: interfaces,
        ..Default::default()
    }
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

    fn on_workload_item_bind(&self, _item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        Ok(())
    }

    fn on_workload_resolved<'a>(
        &'a self,
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
