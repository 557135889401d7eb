//! Starting component plugins: each runs as a workload of its own, then
//! its runtime (the live instance workloads call into) is handed to the
//! plugin in the host's list.

use std::sync::Arc;

use super::{Host, HostApi, HostError};
use crate::plugin::component::runtime::PluginRuntime;
use crate::plugin::component::{ComponentPluginError, LoadedPlugin};
use crate::types::{Component, Workload, WorkloadState};

impl Host {
    /// Starts `loaded` as the workload `plugin:<id>`.
    pub(crate) async fn start_component_plugin(
        &self,
        loaded: &LoadedPlugin,
    ) -> Result<(), HostError> {
        let spec = &loaded.spec;
        let workload_id = spec.workload_id();
        let workload = Workload {
            namespace: "plugins".into(),
            name: format!("plugin-{}", spec.id),
            components: vec![Component {
                name: spec.id.clone(),
                bytes: Some(loaded.bytes.clone()),
                digest: Some(loaded.digest.clone()),
                local_resources: spec.local_resources.clone(),
                ..Default::default()
            }],
            host_interfaces: spec.host_interfaces.clone(),
            ..Default::default()
        };
        let failed = |message: String| ComponentPluginError::Start {
            id: spec.id.clone(),
            message,
        };
        let status = self.workload_start(&workload_id, workload).await?;
        if status.workload_state != WorkloadState::Running {
            return Err(failed(status.message).into());
        }
        let handle = self
            .inner
            .registry
            .running(&workload_id)
            .and_then(|w| w.components.first().map(|c| c.handle.clone()))
            .ok_or_else(|| failed("its workload is not running".into()))?;
        let runtime = Arc::new(PluginRuntime::new(
            spec.id.clone(),
            handle,
            loaded.plugin.exports(),
            spec.instances,
            spec.max_restarts,
        ));
        if loaded.plugin.runtime_cell().set(runtime).is_err() {
            return Err(failed("was started twice".into()).into());
        }
        tracing::info!(plugin = %spec.id, digest = %loaded.digest, "component plugin started");
        Ok(())
    }
}
