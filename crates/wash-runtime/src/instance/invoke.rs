//! Calling into a started component from the host (for plugins that
//! deliver messages or events to components).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::engine::Engine;
use crate::instance::store::{InstanceTemplate, StoreState};

/// A store holding one of the host's instance slots until it is dropped.
pub struct InstanceStore {
    // Declared first: dropped (freeing the pool slot) before the permit.
    store: Store<StoreState>,
    _slot: crate::instance::store::InstanceSlot,
}

impl std::ops::Deref for InstanceStore {
    type Target = Store<StoreState>;

    fn deref(&self) -> &Store<StoreState> {
        &self.store
    }
}

impl std::ops::DerefMut for InstanceStore {
    fn deref_mut(&mut self) -> &mut Store<StoreState> {
        &mut self.store
    }
}

/// A started component, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct ComponentHandle {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pre: InstancePre<StoreState>,
    template: Arc<InstanceTemplate>,
    exports: Vec<String>,
    timeout: Duration,
}

impl ComponentHandle {
    pub(crate) fn new(
        engine: Engine,
        pre: InstancePre<StoreState>,
        template: Arc<InstanceTemplate>,
        exports: Vec<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                pre,
                template,
                exports,
                timeout,
            }),
        }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.inner.template.labels.component
    }

    /// Id of the workload it belongs to.
    pub fn workload_id(&self) -> &str {
        &self.inner.template.labels.workload_id
    }

    /// Its export names, e.g. `wasmcloud:messaging/handler@0.2.0`.
    pub fn exports(&self) -> &[String] {
        &self.inner.exports
    }

    /// Whether it exports `namespace:package/interface` (any version).
    pub fn exports_interface(&self, interface: &str) -> bool {
        self.inner
            .exports
            .iter()
            .any(|e| e.split('@').next() == Some(interface))
    }

    /// The pre-instantiated component.
    pub fn instance_pre(&self) -> &InstancePre<StoreState> {
        &self.inner.pre
    }

    /// A fresh store with the component's limits and its deadline
    /// running, once the host has a free instance slot (waiting at most the
    /// component's deadline).
    pub async fn new_store(&self) -> wasmtime::Result<InstanceStore> {
        let (store, slot) = self
            .inner
            .template
            .new_store_with_slot(&self.inner.engine, self.inner.timeout)
            .await?;
        Ok(InstanceStore { store, _slot: slot })
    }

    /// The deadline each call into the component gets.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }
}
