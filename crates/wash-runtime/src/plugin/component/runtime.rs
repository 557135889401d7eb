//! One component plugin's instances: a pool of up to `instances` of them,
//! each serving one call at a time under its own deadline; resources they
//! hand out kept in one table (a resource stays with the instance that made
//! it); an instance that fails is replaced on its next call, up to the
//! plugin's restart limit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::{Func, Instance, ResourceAny, ResourceType, Val};

use super::PluginExports;
use crate::engine::failure::GuestFailure;
use crate::instance::ComponentHandle;
use crate::instance::invoke::InstanceStore;

/// Why a call into a plugin failed. The workload sees the message as the
/// error of its import (a trap of its own call).
#[derive(Debug, thiserror::Error)]
pub enum PluginCallError {
    /// The plugin trapped, ran out of time or memory while serving the call.
    #[error("plugin `{plugin}` failed in `{function}`: {detail} (restart {restart} of {max})")]
    Failed {
        /// The plugin.
        plugin: String,
        /// The function called.
        function: String,
        /// What went wrong.
        detail: String,
        /// Which restart this failure caused.
        restart: u32,
        /// How many restarts it may have.
        max: u32,
    },
    /// The plugin failed more often than it may restart.
    #[error("plugin `{plugin}` is failed after {restarts} restarts; its calls are refused")]
    Exhausted {
        /// The plugin.
        plugin: String,
        /// How many restarts it had.
        restarts: u32,
    },
    /// A resource handle from before a restart, or one the plugin never
    /// gave out.
    #[error("plugin `{plugin}`: resource handle {rep} is not live (the plugin restarted?)")]
    StaleResource {
        /// The plugin.
        plugin: String,
        /// The handle.
        rep: u32,
    },
    /// A value did not fit the plugin's types, or the host broke a promise.
    #[error("plugin `{plugin}`: {message}")]
    Call {
        /// The plugin.
        plugin: String,
        /// What went wrong.
        message: String,
    },
}

/// One instance and what belongs to it.
pub(crate) struct Live {
    pub(crate) store: InstanceStore,
    instance: Instance,
    /// Each exported resource type of this instance, with the id workloads
    /// know it by.
    resource_types: Vec<(ResourceType, u32)>,
    /// Functions looked up so far, by their slot.
    funcs: Vec<Option<Func>>,
    /// Workloads whose `on-workload-bind` this instance has seen.
    bound: HashSet<String>,
    /// Typed bindings of its `wasi:keyvalue` exports, if it has them.
    pub(crate) keyvalue: Option<super::keyvalue::Provider>,
}

impl Live {
    /// Names the workload calling. Every call names its caller, so the
    /// last one may stay in place between calls: swapped only when it
    /// changes.
    fn set_caller(&mut self, caller: Option<&Arc<str>>) {
        let current = &mut self.store.data_mut().caller;
        let same = match (&*current, caller) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            *current = caller.cloned();
        }
    }
}

/// `interface`'s export `name` in `instance`.
fn export_index(
    instance: &Instance,
    store: &mut InstanceStore,
    interface: &str,
    name: &str,
) -> Option<wasmtime::component::ComponentExportIndex> {
    let parent = instance.get_export_index(&mut **store, None, interface)?;
    instance.get_export_index(&mut **store, Some(&parent), name)
}

/// A pool slot's lock. futures' mutex, not tokio's: it is released with
/// one atomic operation, where tokio's takes its waiter list's lock every
/// time, and a slot changes hands on every call.
type Slot = futures::lock::Mutex<Option<Live>>;

/// A pool slot, held.
type SlotGuard<'a> = futures::lock::MutexGuard<'a, Option<Live>>;

/// Locks `slot`: a free one at once, without setting up a wait.
async fn lock(slot: &Slot) -> SlotGuard<'_> {
    match slot.try_lock() {
        Some(live) => live,
        None => slot.lock().await,
    }
}

/// Resources handed to workloads: handle -> (pool slot, the plugin's
/// resource).
type ResourceTable = HashMap<u32, (usize, ResourceAny), foldhash::fast::RandomState>;

/// What all instances share; only held between awaits.
#[derive(Default)]
struct Shared {
    /// The `on-workload-bind` arguments of every workload bound now, to
    /// tell a new instance (a restart, or one more in the pool) what the
    /// others know.
    bound: Vec<(String, Vec<Val>)>,
    /// Resources the plugin gave to workloads, by the handle they hold,
    /// with the pool slot of the instance that owns each. Handles are never
    /// reused, so one from before a restart cannot reach a new resource.
    resources: ResourceTable,
}

/// A pool slot, locked for one call: `live` is its instance, if any.
struct Lease<'a> {
    index: usize,
    live: SlotGuard<'a>,
    _permit: Option<tokio::sync::SemaphorePermit<'a>>,
}

/// A component plugin, running.
pub(crate) struct PluginRuntime {
    pub(crate) id: String,
    handle: ComponentHandle,
    exports: Arc<PluginExports>,
    /// The pool; slots are filled on demand, lowest first.
    slots: Box<[Slot]>,
    /// With more than one slot, one permit per slot: a call holds one while
    /// it is in a slot or waits for a pinned one, so a call that scans for a
    /// free slot finds one. A single slot needs only its lock.
    permits: Option<tokio::sync::Semaphore>,
    shared: Mutex<Shared>,
    next_rep: AtomicU32,
    restarts: AtomicU32,
    max_restarts: u32,
    /// Where its `wasi:keyvalue` exports are, when it exports the whole of
    /// store and atomics (calls then take the typed path).
    keyvalue: Option<super::keyvalue::ProviderIndices>,
}

impl PluginRuntime {
    pub(crate) fn new(
        id: String,
        handle: ComponentHandle,
        exports: Arc<PluginExports>,
        instances: u32,
        max_restarts: u32,
    ) -> Self {
        let instances = instances.max(1) as usize;
        let keyvalue = super::keyvalue::ProviderIndices::of(handle.instance_pre());
        Self {
            id,
            handle,
            exports,
            slots: (0..instances).map(|_| Slot::new(None)).collect(),
            permits: (instances > 1).then(|| tokio::sync::Semaphore::new(instances)),
            shared: Mutex::new(Shared::default()),
            next_rep: AtomicU32::new(1),
            restarts: AtomicU32::new(0),
            max_restarts,
            keyvalue,
        }
    }

    /// Whether its `wasi:keyvalue` exports can be called typed.
    pub(crate) fn typed_keyvalue(&self) -> bool {
        self.keyvalue.is_some()
    }

    /// Whether it failed for good.
    pub(crate) fn failed(&self) -> bool {
        self.restarts.load(Ordering::Relaxed) > self.max_restarts
    }

    /// Why it failed for good, if it did: its status.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failed().then(|| {
            PluginCallError::Exhausted {
                plugin: self.id.clone(),
                restarts: self.max_restarts,
            }
            .to_string()
        })
    }

    /// Failures so far, capped at the limit.
    pub(crate) fn restarts(&self) -> u32 {
        self.restarts
            .load(Ordering::Relaxed)
            .min(self.max_restarts.saturating_add(1))
    }

    /// Instances live now.
    pub(crate) fn live_instances(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.try_lock().is_none_or(|live| live.is_some()))
            .count()
    }

    fn error(&self, message: impl Into<String>) -> PluginCallError {
        PluginCallError::Call {
            plugin: self.id.clone(),
            message: message.into(),
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        // Nothing panics while holding it; a poisoned lock still holds
        // consistent maps.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for one call: `pinned` when the call passes resources of
    /// that slot's instance, else a free one, preferring a live instance.
    async fn lease(&self, pinned: Option<usize>) -> Result<Lease<'_>, PluginCallError> {
        let Some(permits) = &self.permits else {
            return Ok(Lease {
                index: 0,
                live: lock(&self.slots[0]).await,
                _permit: None,
            });
        };
        let permit = match permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => permits
                .acquire()
                .await
                .map_err(|_| self.error("is shutting down"))?,
        };
        let permit = Some(permit);
        let lease = |index, live| Lease {
            index,
            live,
            _permit: permit,
        };
        if let Some(index) = pinned {
            let slot = self
                .slots
                .get(index)
                .ok_or_else(|| self.error("a resource names no pool slot"))?;
            return Ok(lease(index, lock(slot).await));
        }
        let mut empty = None;
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(live) = slot.try_lock() {
                if live.is_some() {
                    return Ok(lease(index, live));
                }
                if empty.is_none() {
                    empty = Some((index, live));
                }
            }
        }
        match empty {
            Some((index, live)) => Ok(lease(index, live)),
            // Every slot changed hands while we looked (others hold at most
            // one fewer than all): wait for the first.
            None => Ok(lease(0, self.slots[0].lock().await)),
        }
    }

    /// Instantiates into the leased slot, unless an instance is live there.
    async fn ensure_live<'l>(
        &self,
        lease: &'l mut Lease<'_>,
    ) -> Result<&'l mut Live, PluginCallError> {
        if self.failed() {
            return Err(PluginCallError::Exhausted {
                plugin: self.id.clone(),
                restarts: self.max_restarts,
            });
        }
        if lease.live.is_none() {
            let mut store = self
                .handle
                .new_store()
                .await
                .map_err(|e| self.error(format!("cannot make a store: {e}")))?;
            self.arm(&mut store);
            let instance = self
                .handle
                .instance_pre()
                .instantiate_async(&mut *store)
                .await
                .map_err(|e| self.error(format!("cannot instantiate: {e:#}")))?;
            let mut resource_types = Vec::new();
            for (interface, name, id) in &self.exports.resources {
                if let Some(index) = export_index(&instance, &mut store, interface, name)
                    && let Some(ty) = instance.get_resource(&mut *store, index)
                {
                    resource_types.push((ty, *id));
                }
            }
            let keyvalue =
                match &self.keyvalue {
                    Some(indices) => Some(indices.load(&mut store, &instance).map_err(|e| {
                        self.error(format!("cannot bind its wasi:keyvalue: {e:#}"))
                    })?),
                    None => None,
                };
            let mut live = Live {
                store,
                instance,
                resource_types,
                funcs: vec![None; self.exports.functions],
                bound: HashSet::new(),
                keyvalue,
            };
            // A new instance learns the workloads bound to the others.
            if let Some(hook) = &self.exports.on_bind {
                let bound = self.shared().bound.clone();
                for (workload, params) in bound {
                    if let Err(e) = self.invoke(&mut live, hook, &params).await {
                        tracing::warn!(
                            plugin = %self.id,
                            workload,
                            error = %e,
                            "replaying on-workload-bind into a new instance failed"
                        );
                    }
                    live.bound.insert(workload);
                }
            }
            *lease.live = Some(live);
        }
        lease
            .live
            .as_mut()
            .ok_or_else(|| self.error("no instance after instantiation"))
    }

    /// Starts the plugin's per-call deadline in `store`.
    fn arm(&self, store: &mut InstanceStore) {
        store.data_mut().deadline.set_after(self.handle.timeout());
    }

    /// Calls `function` in `live` under the plugin's deadline.
    async fn invoke(
        &self,
        live: &mut Live,
        function: &FunctionExport,
        params: &[Val],
    ) -> Result<Vec<Val>, wasmtime::Error> {
        let mut out = vec![Val::Bool(false); function.results];
        self.invoke_into(live, function, params, &mut out).await?;
        Ok(out)
    }

    /// [`Self::invoke`], the results written to `results`.
    async fn invoke_into(
        &self,
        live: &mut Live,
        function: &FunctionExport,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), wasmtime::Error> {
        let func = match live.funcs.get(function.slot).copied().flatten() {
            Some(func) => func,
            None => {
                let func = export_index(
                    &live.instance,
                    &mut live.store,
                    &function.interface,
                    &function.name,
                )
                .and_then(|index| live.instance.get_func(&mut *live.store, index))
                .ok_or_else(|| {
                    wasmtime::format_err!("the plugin exports no function `{}`", function.name)
                })?;
                if let Some(slot) = live.funcs.get_mut(function.slot) {
                    *slot = Some(func);
                }
                func
            }
        };
        self.arm(&mut live.store);
        func.call_async(&mut *live.store, params, results).await
    }

    /// A failure in the leased slot's instance: it (and every resource it
    /// gave out) is gone; the slot's next call starts a new one, if
    /// restarts remain.
    fn fail(
        &self,
        lease: &mut Lease<'_>,
        function: &str,
        error: &wasmtime::Error,
    ) -> PluginCallError {
        *lease.live = None;
        let index = lease.index;
        self.shared()
            .resources
            .retain(|_, (slot, _)| *slot != index);
        let restart = self.restarts.fetch_add(1, Ordering::Relaxed) + 1;
        let detail = GuestFailure::of(error).detail.to_string();
        if restart > self.max_restarts {
            tracing::error!(
                plugin = %self.id,
                function,
                %detail,
                restarts = self.max_restarts,
                "component plugin failed and is out of restarts; its calls are refused from now on"
            );
            return PluginCallError::Exhausted {
                plugin: self.id.clone(),
                restarts: self.max_restarts,
            };
        }
        tracing::warn!(
            plugin = %self.id,
            function,
            %detail,
            restart,
            max_restarts = self.max_restarts,
            "component plugin failed; it restarts on its next call"
        );
        PluginCallError::Failed {
            plugin: self.id.clone(),
            function: function.to_string(),
            detail,
            restart,
            max: self.max_restarts,
        }
    }

    /// Calls `function` (an export of the plugin) for `caller` with
    /// `params`, which hold plugin-side resources already; results come
    /// back with resources the plugin gave out entered in the table, as
    /// `(handle, type id)`.
    pub(crate) async fn call(
        &self,
        caller: Option<&Arc<str>>,
        function: &FunctionExport,
        params: Vec<PluginVal>,
    ) -> Result<Vec<PluginVal>, PluginCallError> {
        // Resources live in the instance that made them: the call goes
        // there.
        let mut pinned = None;
        {
            let shared = self.shared();
            for param in &params {
                param.visit_handles(&mut |rep| {
                    let slot = shared.resources.get(&rep).map(|(slot, _)| *slot);
                    match (slot, pinned) {
                        (Some(slot), None) => pinned = Some(Ok(slot)),
                        (Some(slot), Some(Ok(other))) if slot != other => {
                            pinned = Some(Err(()));
                        }
                        _ => {}
                    }
                });
            }
        }
        let pinned = match pinned {
            Some(Err(())) => {
                return Err(self
                    .error("the call passes resources made by different instances of the plugin"));
            }
            Some(Ok(slot)) => Some(slot),
            None => None,
        };
        let mut lease = self.lease(pinned).await?;
        // Resolve handles first: a stale one fails the call, not the plugin.
        let params = {
            let mut shared = self.shared();
            params
                .into_iter()
                .map(|p| p.into_plugin(&mut shared.resources, lease.index, &self.id))
                .collect::<Result<Vec<_>, _>>()?
        };
        let out = self
            .call_leased(&mut lease, caller, function, &params)
            .await?;
        if function.plain_results {
            return Ok(out.into_iter().map(PluginVal::Plain).collect());
        }
        let Some(live) = lease.live.as_ref() else {
            return Err(self.error("the instance went away during the call"));
        };
        let mut shared = self.shared();
        Ok(out
            .into_iter()
            .map(|v| {
                PluginVal::from_plugin(
                    v,
                    &live.resource_types,
                    lease.index,
                    &mut shared.resources,
                    &self.next_rep,
                )
            })
            .collect())
    }

    /// [`Self::call`] for a function whose values hold no handles: they
    /// cross as they are, to any instance.
    pub(crate) async fn call_plain(
        &self,
        caller: &Arc<str>,
        function: &FunctionExport,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), PluginCallError> {
        // As for typed calls: a live, free one-instance plugin is called
        // inline, anything else through a boxed lease.
        let Some(live) = self.free_live_slot() else {
            return Box::pin(async {
                let mut lease = self.lease(None).await?;
                self.run(&mut lease, Some(caller), &function.name, async |live| {
                    self.invoke_into(live, function, params, results).await
                })
                .await
            })
            .await;
        };
        let mut lease = Lease {
            index: 0,
            live,
            _permit: None,
        };
        self.call_in(&mut lease, Some(caller), &function.name, async |live| {
            self.invoke_into(live, function, params, results).await
        })
        .await
    }

    /// One call in a leased slot: an instance made if needed, the caller's
    /// identity set for its duration, a failure turned into a restart.
    async fn call_leased(
        &self,
        lease: &mut Lease<'_>,
        caller: Option<&Arc<str>>,
        function: &FunctionExport,
        params: &[Val],
    ) -> Result<Vec<Val>, PluginCallError> {
        self.run(lease, caller, &function.name, async |live| {
            self.invoke(live, function, params).await
        })
        .await
    }

    /// What every call does in its leased slot: an instance made if
    /// needed, the caller's identity set while `call` runs, a failure
    /// turned into a restart.
    async fn run<R>(
        &self,
        lease: &mut Lease<'_>,
        caller: Option<&Arc<str>>,
        function: &str,
        call: impl AsyncFnOnce(&mut Live) -> wasmtime::Result<R>,
    ) -> Result<R, PluginCallError> {
        // Instantiating is rare and its future large: boxed, for the same
        // reason as the call below.
        if lease.live.is_none() || self.failed() {
            Box::pin(self.ensure_live(lease)).await?;
        }
        // Boxed: wasmtime's call future is large (1.6 KB for a typed
        // `wasi:keyvalue` call), and held inline it would make every future
        // around it as large, each copied as the call is set up: the
        // workload's host function, whose future wasmtime boxes too, carried
        // 14 KB.
        Box::pin(self.call_in(lease, caller, function, call)).await
    }

    /// Calls `call` in the leased slot's instance with `caller` named, a
    /// failure turned into a restart.
    async fn call_in<R>(
        &self,
        lease: &mut Lease<'_>,
        caller: Option<&Arc<str>>,
        function: &str,
        call: impl AsyncFnOnce(&mut Live) -> wasmtime::Result<R>,
    ) -> Result<R, PluginCallError> {
        let Some(live) = lease.live.as_mut() else {
            return Err(self.error("no instance in the leased slot"));
        };
        live.set_caller(caller);
        call(live).await.map_err(|e| self.fail(lease, function, &e))
    }

    /// Runs `call` for `caller` under the plugin's deadline, in the
    /// instance that owns the resource behind handle `rep` (looked up once
    /// that instance is held, so that one from before a restart is refused,
    /// not used in the new instance) or, without one, in any instance; the
    /// slot it ran in, and its answer.
    pub(crate) async fn call_typed<R>(
        &self,
        rep: Option<u32>,
        caller: &Arc<str>,
        function: &str,
        call: impl AsyncFnOnce(&mut Live, Option<ResourceAny>) -> wasmtime::Result<R>,
    ) -> Result<(usize, R), PluginCallError> {
        // The common case, a one-instance plugin that is live and free,
        // awaits only the call itself; the rest (waiting for a slot, making
        // an instance) is boxed, so that wasmtime's box of the workload's
        // import future holds little more than the plugin call's future.
        let Some(live) = self.free_live_slot() else {
            return Box::pin(self.call_typed_leased(rep, caller, function, call)).await;
        };
        let mut lease = Lease {
            index: 0,
            live,
            _permit: None,
        };
        let resource = match rep {
            Some(rep) => Some(self.resource_in(rep, 0)?),
            None => None,
        };
        // Inline: this future is wasmtime's call future and little else,
        // and wasmtime boxes it once.
        let answer = self
            .call_in(&mut lease, Some(caller), function, async |live| {
                self.arm(&mut live.store);
                call(live, resource).await
            })
            .await?;
        Ok((0, answer))
    }

    /// The only slot of a one-instance plugin, if it is free at once and
    /// holds a live instance.
    fn free_live_slot(&self) -> Option<SlotGuard<'_>> {
        if self.permits.is_some() || self.failed() {
            return None;
        }
        let live = self.slots.first()?.try_lock()?;
        live.is_some().then_some(live)
    }

    /// [`Self::call_typed`] through a lease: any pool size, waiting for a
    /// slot, making an instance.
    async fn call_typed_leased<R>(
        &self,
        rep: Option<u32>,
        caller: &Arc<str>,
        function: &str,
        call: impl AsyncFnOnce(&mut Live, Option<ResourceAny>) -> wasmtime::Result<R>,
    ) -> Result<(usize, R), PluginCallError> {
        // One slot needs no lookup to know where the call goes; the handle
        // is checked once the slot is held.
        let pinned = match rep {
            Some(_) if self.slots.len() == 1 => Some(0),
            Some(rep) => Some(self.resource(rep)?.0),
            None => None,
        };
        let mut lease = self.lease(pinned).await?;
        let resource = match rep {
            Some(rep) => Some(self.resource_in(rep, lease.index)?),
            None => None,
        };
        let answer = self
            .run(&mut lease, Some(caller), function, async |live| {
                self.arm(&mut live.store);
                call(live, resource).await
            })
            .await?;
        Ok((lease.index, answer))
    }

    /// Enters `resource`, made by the instance in `slot`, in the table; the
    /// handle a workload holds for it.
    pub(crate) fn adopt(&self, slot: usize, resource: ResourceAny) -> u32 {
        let rep = self.next_rep.fetch_add(1, Ordering::Relaxed);
        self.shared().resources.insert(rep, (slot, resource));
        rep
    }

    /// The resource behind handle `rep` and the slot of its instance.
    fn resource(&self, rep: u32) -> Result<(usize, ResourceAny), PluginCallError> {
        self.shared()
            .resources
            .get(&rep)
            .copied()
            .ok_or_else(|| PluginCallError::StaleResource {
                plugin: self.id.clone(),
                rep,
            })
    }

    /// The resource behind handle `rep`, which must belong to the instance
    /// in `slot` (the one the caller holds).
    fn resource_in(&self, rep: u32, slot: usize) -> Result<ResourceAny, PluginCallError> {
        match self.resource(rep)? {
            (owner, resource) if owner == slot => Ok(resource),
            _ => Err(PluginCallError::StaleResource {
                plugin: self.id.clone(),
                rep,
            }),
        }
    }

    /// A workload dropped its handle `rep`: drop the plugin's resource.
    pub(crate) async fn drop_resource(&self, rep: u32) -> Result<(), PluginCallError> {
        let Some(slot) = self.shared().resources.get(&rep).map(|(slot, _)| *slot) else {
            // Gone with a restart already.
            return Ok(());
        };
        let mut lease = self.lease(Some(slot)).await?;
        // Looked up again: the instance may have failed while we waited.
        let Some((_, resource)) = self.shared().resources.remove(&rep) else {
            return Ok(());
        };
        let Some(live) = lease.live.as_mut() else {
            return Ok(());
        };
        // A destructor runs for no workload.
        live.store.data_mut().caller = None;
        self.arm(&mut live.store);
        if let Err(e) = resource.resource_drop_async(&mut *live.store).await {
            return Err(self.fail(&mut lease, "resource drop", &e));
        }
        Ok(())
    }

    /// Tells the plugin `workload_id` is bound (its `on-workload-bind`,
    /// with `config`), remembering it for new instances; the plugin's
    /// answer. Every live instance hears of it.
    pub(crate) async fn bind(
        &self,
        hook: &FunctionExport,
        workload_id: &str,
        config: Val,
    ) -> Result<Option<Val>, PluginCallError> {
        let params = vec![Val::String(workload_id.to_string()), config];
        let answer = {
            let mut lease = self.lease(None).await?;
            let answer = self.call_leased(&mut lease, None, hook, &params).await?;
            if let Some(live) = lease.live.as_mut() {
                live.bound.insert(workload_id.to_string());
            }
            answer.into_iter().next()
        };
        if matches!(answer, Some(Val::Result(Err(_)))) {
            return Ok(answer);
        }
        {
            let mut shared = self.shared();
            shared.bound.retain(|(w, _)| w != workload_id);
            shared.bound.push((workload_id.to_string(), params.clone()));
        }
        for index in 0..self.slots.len() {
            let mut lease = self.lease(Some(index)).await?;
            let Some(live) = lease.live.as_mut() else {
                continue;
            };
            if live.bound.insert(workload_id.to_string())
                && let Err(e) = self.invoke(live, hook, &params).await
            {
                self.fail(&mut lease, &hook.name, &e);
            }
        }
        Ok(answer)
    }

    /// Forgets `workload_id` and tells every live instance that knew of it
    /// (its `on-workload-unbind`, if it exports one).
    pub(crate) async fn unbind(
        &self,
        hook: Option<&FunctionExport>,
        workload_id: &str,
    ) -> Result<(), PluginCallError> {
        self.shared().bound.retain(|(w, _)| w != workload_id);
        let mut failed = None;
        for index in 0..self.slots.len() {
            let mut lease = self.lease(Some(index)).await?;
            let Some(live) = lease.live.as_mut() else {
                continue;
            };
            if !live.bound.remove(workload_id) {
                continue;
            }
            if let Some(hook) = hook {
                let params = [Val::String(workload_id.to_string())];
                if let Err(e) = self.invoke(live, hook, &params).await {
                    failed = Some(self.fail(&mut lease, &hook.name, &e));
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// A function the plugin exports: where it is and how many results it has.
#[derive(Debug, Clone)]
pub(crate) struct FunctionExport {
    /// The interface exporting it, e.g. `example:greeter/api@0.1.0`.
    pub(crate) interface: String,
    pub(crate) name: String,
    pub(crate) results: usize,
    /// Its slot in an instance's function cache.
    pub(crate) slot: usize,
    /// Whether no value it takes or returns can hold a handle: then values
    /// cross without translation.
    pub(crate) plain: bool,
    /// Whether its results hold no handle (they need no translation).
    pub(crate) plain_results: bool,
}

/// A value crossing between a workload and a plugin. Resources are kept
/// as handles (`rep`) into the plugin's table; everything else is as is.
#[derive(Debug)]
pub(crate) enum PluginVal {
    Plain(Val),
    /// A resource of the plugin: its handle, the type id, whether owned.
    Resource {
        rep: u32,
        ty: u32,
        owned: bool,
    },
    List(Vec<PluginVal>),
    Record(Vec<(String, PluginVal)>),
    Tuple(Vec<PluginVal>),
    Variant(String, Option<Box<PluginVal>>),
    Option(Option<Box<PluginVal>>),
    Result(Result<Option<Box<PluginVal>>, Option<Box<PluginVal>>>),
}

impl PluginVal {
    /// Calls `f` with every handle in the value.
    fn visit_handles(&self, f: &mut impl FnMut(u32)) {
        match self {
            PluginVal::Plain(_) => {}
            PluginVal::Resource { rep, .. } => f(*rep),
            PluginVal::List(items) | PluginVal::Tuple(items) => {
                items.iter().for_each(|v| v.visit_handles(f))
            }
            PluginVal::Record(fields) => fields.iter().for_each(|(_, v)| v.visit_handles(f)),
            PluginVal::Variant(_, v)
            | PluginVal::Option(v)
            | PluginVal::Result(Ok(v))
            | PluginVal::Result(Err(v)) => {
                if let Some(v) = v {
                    v.visit_handles(f)
                }
            }
        }
    }

    /// Into the plugin's value, looking handles up in its table (an owned
    /// one leaves the table: the plugin has it back).
    fn into_plugin(
        self,
        table: &mut ResourceTable,
        slot: usize,
        plugin: &str,
    ) -> Result<Val, PluginCallError> {
        let boxed = |v: Option<Box<PluginVal>>, table: &mut ResourceTable| {
            v.map(|v| v.into_plugin(table, slot, plugin).map(Box::new))
                .transpose()
        };
        Ok(match self {
            PluginVal::Plain(v) => v,
            PluginVal::Resource { rep, owned, .. } => {
                let found = match table.get(&rep) {
                    // Only the instance that made it can take it.
                    Some((owner, resource)) if *owner == slot => Some(*resource),
                    _ => None,
                };
                let resource = found.ok_or_else(|| PluginCallError::StaleResource {
                    plugin: plugin.to_string(),
                    rep,
                })?;
                if owned {
                    table.remove(&rep);
                }
                Val::Resource(resource)
            }
            PluginVal::List(items) => Val::List(
                items
                    .into_iter()
                    .map(|v| v.into_plugin(table, slot, plugin))
                    .collect::<Result<_, _>>()?,
            ),
            PluginVal::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(n, v)| Ok((n, v.into_plugin(table, slot, plugin)?)))
                    .collect::<Result<_, PluginCallError>>()?,
            ),
            PluginVal::Tuple(items) => Val::Tuple(
                items
                    .into_iter()
                    .map(|v| v.into_plugin(table, slot, plugin))
                    .collect::<Result<_, _>>()?,
            ),
            PluginVal::Variant(case, v) => Val::Variant(case, boxed(v, table)?),
            PluginVal::Option(v) => Val::Option(boxed(v, table)?),
            PluginVal::Result(Ok(v)) => Val::Result(Ok(boxed(v, table)?)),
            PluginVal::Result(Err(v)) => Val::Result(Err(boxed(v, table)?)),
        })
    }

    /// From the plugin's value: resources it hands out go in its table.
    fn from_plugin(
        val: Val,
        types: &[(ResourceType, u32)],
        slot: usize,
        table: &mut ResourceTable,
        next: &AtomicU32,
    ) -> PluginVal {
        let mut go = |v: Val| Self::from_plugin(v, types, slot, table, next);
        match val {
            Val::Resource(resource) => {
                let ty = types
                    .iter()
                    .find(|(t, _)| *t == resource.ty())
                    .map(|(_, id)| *id)
                    .unwrap_or(u32::MAX);
                let rep = next.fetch_add(1, Ordering::Relaxed);
                let owned = resource.owned();
                table.insert(rep, (slot, resource));
                PluginVal::Resource { rep, ty, owned }
            }
            Val::List(items) => PluginVal::List(items.into_iter().map(&mut go).collect()),
            Val::Record(fields) => {
                PluginVal::Record(fields.into_iter().map(|(n, v)| (n, go(v))).collect())
            }
            Val::Tuple(items) => PluginVal::Tuple(items.into_iter().map(&mut go).collect()),
            Val::Variant(case, v) => PluginVal::Variant(case, v.map(|v| Box::new(go(*v)))),
            Val::Option(v) => PluginVal::Option(v.map(|v| Box::new(go(*v)))),
            Val::Result(Ok(v)) => PluginVal::Result(Ok(v.map(|v| Box::new(go(*v))))),
            Val::Result(Err(v)) => PluginVal::Result(Err(v.map(|v| Box::new(go(*v))))),
            other => PluginVal::Plain(other),
        }
    }
}
