//! Workloads by id and the state each is in, with change notifications
//! for requests that wait on a starting workload.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

use super::lifecycle::RunningWorkload;
use crate::types::Workload;

/// Workloads by id.
#[derive(Default)]
pub(crate) struct Registry {
    slots: RwLock<HashMap<String, Slot>>,
    /// Woken on every change, for requests waiting on a starting workload.
    changed: tokio::sync::Notify,
    /// Requests waiting on a starting workload right now.
    pub(crate) held: AtomicUsize,
    /// Requests being served right now.
    pub(crate) in_flight: AtomicUsize,
}

/// Write access to the slots; waiters are woken when it ends.
pub(crate) struct SlotsMut<'a> {
    slots: std::sync::RwLockWriteGuard<'a, HashMap<String, Slot>>,
    changed: &'a tokio::sync::Notify,
}

impl std::ops::Deref for SlotsMut<'_> {
    type Target = HashMap<String, Slot>;

    fn deref(&self) -> &Self::Target {
        &self.slots
    }
}

impl std::ops::DerefMut for SlotsMut<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.slots
    }
}

impl Drop for SlotsMut<'_> {
    fn drop(&mut self) {
        self.changed.notify_waiters();
    }
}

pub(crate) enum Slot {
    Starting {
        spec: Arc<Workload>,
        generation: u64,
    },
    Running {
        spec: Arc<Workload>,
        workload: Arc<RunningWorkload>,
    },
    Failed {
        spec: Arc<Workload>,
        message: String,
    },
}

impl Slot {
    pub(crate) fn running(spec: Arc<Workload>, workload: RunningWorkload) -> Self {
        Slot::Running {
            spec,
            workload: Arc::new(workload),
        }
    }

    pub(crate) fn spec(&self) -> &Workload {
        match self {
            Slot::Starting { spec, .. }
            | Slot::Running { spec, .. }
            | Slot::Failed { spec, .. } => spec,
        }
    }
}

impl Registry {
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> SlotsMut<'_> {
        SlotsMut {
            slots: self.slots.write().unwrap_or_else(|e| e.into_inner()),
            changed: &self.changed,
        }
    }

    /// A future that resolves at the next change of any workload's state.
    /// Enable it (`Notified::enable`) before looking, so no change between
    /// the look and the wait is missed.
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The name of a workload that is starting and for which `wanted`
    /// holds, if any.
    pub(crate) fn starting(&self, wanted: impl Fn(&Workload) -> bool) -> Option<String> {
        self.read().values().find_map(|slot| match slot {
            Slot::Starting { spec, .. } if wanted(spec) => Some(spec.name.clone()),
            _ => None,
        })
    }

    /// The running workload with this id.
    pub(crate) fn running(&self, id: &str) -> Option<Arc<RunningWorkload>> {
        match self.read().get(id) {
            Some(Slot::Running { workload, .. }) => Some(workload.clone()),
            _ => None,
        }
    }
}
