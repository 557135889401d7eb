//! The plugins bound to one workload, each with the state it keeps for it.
//!
//! Unbinding is tied to this value's lifetime: the host unbinds explicitly
//! (and waits) when a workload stops or a start fails, and if a value is
//! dropped without that (a start abandoned midway, a panic), its drop
//! unbinds on the runtime, so no path leaves a plugin serving a workload
//! that is gone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::plugin::{AnyState, ItemBind, Plugin, PluginError, ResolvedWorkload};

/// One plugin bound to the workload.
struct Bound {
    /// The plugin's index in the host's list.
    index: usize,
    plugin: Plugin,
    state: AnyState,
}

/// The plugins bound to one workload.
pub(crate) struct BoundPlugins {
    workload_id: Arc<str>,
    bound: Mutex<Vec<Bound>>,
    /// Bindings alive on the host, for leak checks.
    alive: Arc<AtomicUsize>,
}

impl BoundPlugins {
    pub(crate) fn new(workload_id: &str, alive: Arc<AtomicUsize>) -> Self {
        Self {
            workload_id: workload_id.into(),
            bound: Mutex::default(),
            alive,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Bound>> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a plugin bound with `state`.
    pub(crate) fn push(&self, index: usize, plugin: Plugin, state: AnyState) {
        self.alive.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Bound {
            index,
            plugin,
            state,
        });
    }

    /// Lets plugin `index` link one component, with its state.
    pub(crate) fn item_bind(
        &self,
        index: usize,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        let bound = self.lock();
        let Some(entry) = bound.iter().find(|b| b.index == index) else {
            return Err(PluginError::Internal {
                plugin: format!("#{index}"),
                message: "asked to link a component of a workload it was not bound to".into(),
            });
        };
        entry.plugin.item_bind(&entry.state, item)
    }

    /// Tells every bound plugin the workload is ready, in binding order.
    pub(crate) async fn resolved(
        &self,
        workload: &ResolvedWorkload<'_>,
    ) -> Result<(), PluginError> {
        // The states are taken out for the calls (no lock across an await)
        // and put back whatever happens.
        let mut bound = std::mem::take(&mut *self.lock());
        let mut result = Ok(());
        for entry in &mut bound {
            result = entry.plugin.resolved(&mut entry.state, workload).await;
            if result.is_err() {
                break;
            }
        }
        self.lock().extend(bound);
        result
    }

    /// Unbinds every plugin, last bound first, and waits for them.
    pub(crate) async fn unbind(&self) {
        let bound = std::mem::take(&mut *self.lock());
        unbind_all(self.workload_id.clone(), bound, self.alive.clone()).await;
    }
}

async fn unbind_all(workload_id: Arc<str>, bound: Vec<Bound>, alive: Arc<AtomicUsize>) {
    for entry in bound.into_iter().rev() {
        let id = entry.plugin.id().to_string();
        if let Err(e) = entry.plugin.unbind(&workload_id, entry.state).await {
            tracing::warn!(plugin = %id, %workload_id, "unbind failed: {e}");
        }
        alive.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for BoundPlugins {
    fn drop(&mut self) {
        let bound = std::mem::take(self.bound.get_mut().unwrap_or_else(|e| e.into_inner()));
        if bound.is_empty() {
            return;
        }
        let (workload_id, alive) = (self.workload_id.clone(), self.alive.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(unbind_all(workload_id, bound, alive));
            }
            // No runtime left (the process is ending): dropping the states
            // still releases what they hold.
            Err(_) => {
                alive.fetch_sub(bound.len(), Ordering::Relaxed);
            }
        }
    }
}
