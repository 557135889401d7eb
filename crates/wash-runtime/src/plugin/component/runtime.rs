//! One component plugin's live instance: calls from workloads served one at
//! a time under its own deadline, resources it hands out kept in a table,
//! and a restart after a trap, up to its limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// The instance and what belongs to it.
struct Live {
    store: InstanceStore,
    instance: Instance,
    /// Each exported resource type of this instance, with the id workloads
    /// know it by.
    resource_types: Vec<(ResourceType, u32)>,
    /// Functions looked up so far, by their slot.
    funcs: Vec<Option<Func>>,
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

/// The state behind the plugin's lock.
#[derive(Default)]
struct State {
    live: Option<Live>,
    /// The `on-workload-bind` arguments of every workload bound now, to
    /// tell a restarted instance what the failed one knew.
    bound: Vec<(String, Vec<Val>)>,
    /// Resources the plugin gave to workloads, by the handle they hold.
    /// Handles are never reused, so one from before a restart cannot reach
    /// a new resource.
    resources: HashMap<u32, ResourceAny>,
}

/// A component plugin, running.
pub(crate) struct PluginRuntime {
    pub(crate) id: String,
    handle: ComponentHandle,
    exports: Arc<PluginExports>,
    /// Who is calling, read by the plugin through `wasmcloud:host/identity`.
    caller: super::identity::CallerSlot,
    state: tokio::sync::Mutex<State>,
    next_rep: AtomicU32,
    restarts: AtomicU32,
    max_restarts: u32,
}

impl PluginRuntime {
    pub(crate) fn new(
        id: String,
        handle: ComponentHandle,
        exports: Arc<PluginExports>,
        caller: super::identity::CallerSlot,
        max_restarts: u32,
    ) -> Self {
        Self {
            id,
            handle,
            exports,
            caller,
            state: tokio::sync::Mutex::new(State::default()),
            next_rep: AtomicU32::new(1),
            restarts: AtomicU32::new(0),
            max_restarts,
        }
    }

    /// Whether it failed for good.
    pub(crate) fn failed(&self) -> bool {
        self.restarts.load(Ordering::Relaxed) > self.max_restarts
    }

    fn error(&self, message: impl Into<String>) -> PluginCallError {
        PluginCallError::Call {
            plugin: self.id.clone(),
            message: message.into(),
        }
    }

    /// Instantiates, unless an instance is live.
    async fn ensure_live<'a>(&self, state: &'a mut State) -> Result<&'a mut Live, PluginCallError> {
        if self.failed() {
            return Err(PluginCallError::Exhausted {
                plugin: self.id.clone(),
                restarts: self.max_restarts,
            });
        }
        if state.live.is_none() {
            let mut store = self
                .handle
                .new_store()
                .await
                .map_err(|e| self.error(format!("cannot make a store: {e}")))?;
            store
                .data_mut()
                .deadline
                .set(std::time::Instant::now() + self.handle.timeout());
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
            let mut live = Live {
                store,
                instance,
                resource_types,
                funcs: vec![None; self.exports.functions],
            };
            // A restarted instance learns the workloads bound to the one
            // that failed.
            if let Some(hook) = &self.exports.on_bind {
                for (workload, params) in &state.bound {
                    if let Err(e) = self.invoke(&mut live, hook, params).await {
                        tracing::warn!(
                            plugin = %self.id,
                            workload,
                            error = %e,
                            "replaying on-workload-bind after a restart failed"
                        );
                    }
                }
            }
            state.live = Some(live);
        }
        state
            .live
            .as_mut()
            .ok_or_else(|| self.error("no instance after instantiation"))
    }

    /// Calls `function` in `live` under the plugin's deadline.
    async fn invoke(
        &self,
        live: &mut Live,
        function: &FunctionExport,
        params: &[Val],
    ) -> Result<Vec<Val>, wasmtime::Error> {
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
        live.store
            .data_mut()
            .deadline
            .set(std::time::Instant::now() + self.handle.timeout());
        let mut out = vec![Val::Bool(false); function.results];
        func.call_async(&mut *live.store, params, &mut out).await?;
        Ok(out)
    }

    /// A failure in the plugin: the instance (and every resource it gave
    /// out) is gone; the next call starts a new one, if restarts remain.
    fn fail(&self, state: &mut State, function: &str, error: &wasmtime::Error) -> PluginCallError {
        state.live = None;
        state.resources.clear();
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
        let mut state = self.state.lock().await;
        let state = &mut *state;
        // Resolve handles first: a stale one fails the call, not the plugin.
        let params = params
            .into_iter()
            .map(|p| p.into_plugin(&mut state.resources, &self.id))
            .collect::<Result<Vec<_>, _>>()?;
        let out = self.call_locked(state, caller, function, &params).await?;
        if function.plain_results {
            return Ok(out.into_iter().map(PluginVal::Plain).collect());
        }
        let types = match state.live.as_ref() {
            Some(live) => live.resource_types.clone(),
            None => return Err(self.error("the instance went away during the call")),
        };
        Ok(out
            .into_iter()
            .map(|v| PluginVal::from_plugin(v, &types, &mut state.resources, &self.next_rep))
            .collect())
    }

    /// [`Self::call`] for a function whose values hold no handles: they
    /// cross as they are.
    pub(crate) async fn call_plain(
        &self,
        caller: Option<&Arc<str>>,
        function: &FunctionExport,
        params: &[Val],
    ) -> Result<Vec<Val>, PluginCallError> {
        let mut state = self.state.lock().await;
        self.call_locked(&mut state, caller, function, params).await
    }

    /// One call under the plugin's lock: an instance made if needed, the
    /// caller's identity set for its duration, a failure turned into a
    /// restart.
    async fn call_locked(
        &self,
        state: &mut State,
        caller: Option<&Arc<str>>,
        function: &FunctionExport,
        params: &[Val],
    ) -> Result<Vec<Val>, PluginCallError> {
        let live = self.ensure_live(state).await?;
        self.caller.set(caller.cloned());
        let outcome = self.invoke(live, function, params).await;
        self.caller.set(None);
        outcome.map_err(|e| self.fail(state, &function.name, &e))
    }

    /// A workload dropped its handle `rep`: drop the plugin's resource.
    pub(crate) async fn drop_resource(&self, rep: u32) -> Result<(), PluginCallError> {
        let mut state = self.state.lock().await;
        let Some(resource) = state.resources.remove(&rep) else {
            // Gone with a restart already.
            return Ok(());
        };
        let Some(live) = state.live.as_mut() else {
            return Ok(());
        };
        live.store
            .data_mut()
            .deadline
            .set(std::time::Instant::now() + self.handle.timeout());
        if let Err(e) = resource.resource_drop_async(&mut *live.store).await {
            let state = &mut *state;
            return Err(self.fail(state, "resource drop", &e));
        }
        Ok(())
    }

    /// Tells the plugin `workload_id` is bound (its `on-workload-bind`,
    /// with `config`), remembering it for restarts; the plugin's answer.
    pub(crate) async fn bind(
        &self,
        hook: &FunctionExport,
        workload_id: &str,
        config: Val,
    ) -> Result<Option<Val>, PluginCallError> {
        let params = vec![Val::String(workload_id.to_string()), config];
        let answer = self
            .call(
                None,
                hook,
                params.iter().cloned().map(PluginVal::Plain).collect(),
            )
            .await?;
        let accepted = !matches!(answer.first(), Some(PluginVal::Result(Err(_))));
        if accepted {
            let mut state = self.state.lock().await;
            state.bound.retain(|(w, _)| w != workload_id);
            state.bound.push((workload_id.to_string(), params));
        }
        Ok(answer.into_iter().next().and_then(PluginVal::plain_deep))
    }

    /// Forgets `workload_id` and tells the plugin (its
    /// `on-workload-unbind`, if it exports one).
    pub(crate) async fn unbind(
        &self,
        hook: Option<&FunctionExport>,
        workload_id: &str,
    ) -> Result<(), PluginCallError> {
        self.state
            .lock()
            .await
            .bound
            .retain(|(w, _)| w != workload_id);
        if let Some(hook) = hook {
            let params = vec![PluginVal::Plain(Val::String(workload_id.to_string()))];
            self.call(None, hook, params).await?;
        }
        Ok(())
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
    /// The value, when it holds no resource.
    fn plain_deep(self) -> Option<Val> {
        let boxed = |v: Option<Box<PluginVal>>| match v {
            None => Some(None),
            Some(v) => v.plain_deep().map(|v| Some(Box::new(v))),
        };
        Some(match self {
            PluginVal::Plain(v) => v,
            PluginVal::Resource { .. } => return None,
            PluginVal::List(items) => Val::List(
                items
                    .into_iter()
                    .map(Self::plain_deep)
                    .collect::<Option<_>>()?,
            ),
            PluginVal::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(n, v)| v.plain_deep().map(|v| (n, v)))
                    .collect::<Option<_>>()?,
            ),
            PluginVal::Tuple(items) => Val::Tuple(
                items
                    .into_iter()
                    .map(Self::plain_deep)
                    .collect::<Option<_>>()?,
            ),
            PluginVal::Variant(case, v) => Val::Variant(case, boxed(v)?),
            PluginVal::Option(v) => Val::Option(boxed(v)?),
            PluginVal::Result(Ok(v)) => Val::Result(Ok(boxed(v)?)),
            PluginVal::Result(Err(v)) => Val::Result(Err(boxed(v)?)),
        })
    }

    /// Into the plugin's value, looking handles up in its table (an owned
    /// one leaves the table: the plugin has it back).
    fn into_plugin(
        self,
        table: &mut HashMap<u32, ResourceAny>,
        plugin: &str,
    ) -> Result<Val, PluginCallError> {
        let boxed = |v: Option<Box<PluginVal>>, table: &mut HashMap<u32, ResourceAny>| {
            v.map(|v| v.into_plugin(table, plugin).map(Box::new))
                .transpose()
        };
        Ok(match self {
            PluginVal::Plain(v) => v,
            PluginVal::Resource { rep, owned, .. } => {
                let found = if owned {
                    table.remove(&rep)
                } else {
                    table.get(&rep).copied()
                };
                Val::Resource(found.ok_or_else(|| PluginCallError::StaleResource {
                    plugin: plugin.to_string(),
                    rep,
                })?)
            }
            PluginVal::List(items) => Val::List(
                items
                    .into_iter()
                    .map(|v| v.into_plugin(table, plugin))
                    .collect::<Result<_, _>>()?,
            ),
            PluginVal::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(n, v)| Ok((n, v.into_plugin(table, plugin)?)))
                    .collect::<Result<_, PluginCallError>>()?,
            ),
            PluginVal::Tuple(items) => Val::Tuple(
                items
                    .into_iter()
                    .map(|v| v.into_plugin(table, plugin))
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
        table: &mut HashMap<u32, ResourceAny>,
        next: &AtomicU32,
    ) -> PluginVal {
        let mut go = |v: Val| Self::from_plugin(v, types, table, next);
        match val {
            Val::Resource(resource) => {
                let ty = types
                    .iter()
                    .find(|(t, _)| *t == resource.ty())
                    .map(|(_, id)| *id)
                    .unwrap_or(u32::MAX);
                let rep = next.fetch_add(1, Ordering::Relaxed);
                let owned = resource.owned();
                table.insert(rep, resource);
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
