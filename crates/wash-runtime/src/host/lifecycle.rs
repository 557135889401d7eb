//! Starting and stopping workloads: resolve every component, bind the
//! plugins it uses, register its routes, and undo all of it on every path
//! a start can fail or a workload can end by.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::bound::BoundPlugins;
use super::registry::Slot;
use super::resolve::{
    HttpComponent, PluginImports, ResolveContext, ResolveError, ResolvedComponent,
};
use super::volumes::prepare_volumes;
use super::{Host, HostApi, HostError};
use crate::plugin::{ResolvedWorkload, WorkloadBind};
use crate::types::{Workload, WorkloadState, WorkloadStatus};

/// A workload whose components are compiled, linked and pre-instantiated.
pub(crate) struct RunningWorkload {
    pub(crate) components: Vec<ResolvedComponent>,
    pub(crate) http_index: Option<usize>,
    /// The plugins bound to this workload; unbound when it ends.
    pub(crate) plugins: Arc<BoundPlugins>,
    /// Scratch directories of `emptyDir` volumes; removed on drop.
    _scratch: Vec<tempfile::TempDir>,
}

impl RunningWorkload {
    /// The HTTP side of the component that serves HTTP, if any.
    pub(crate) fn http(&self) -> Option<&HttpComponent> {
        self.http_index
            .and_then(|i| self.components[i].http.as_ref())
    }
}

impl Host {
    /// The status a start in progress (`generation`) ends with: a replayed
    /// start reports the first start's outcome instead of a second
    /// workload or a bare "starting".
    async fn outcome_of(&self, id: &str, generation: u64) -> WorkloadStatus {
        loop {
            let changed = self.inner.registry.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.inner.registry.read().get(id) {
                Some(Slot::Starting { generation: g, .. }) if *g == generation => {}
                Some(Slot::Running { .. }) => {
                    return WorkloadStatus::new(id, WorkloadState::Running, "");
                }
                Some(Slot::Failed { message, .. }) => {
                    return WorkloadStatus::new(id, WorkloadState::Error, message.clone());
                }
                Some(Slot::Starting { .. }) => {
                    return WorkloadStatus::new(id, WorkloadState::Starting, "");
                }
                None => return WorkloadStatus::new(id, WorkloadState::NotFound, ""),
            }
            changed.await;
        }
    }

    async fn start_inner(&self, id: &str, workload: Workload) -> Result<WorkloadStatus, HostError> {
        let inner = &self.inner;
        let spec = Arc::new(workload);
        let generation = inner.generation.fetch_add(1, Ordering::Relaxed);
        let replayed = {
            let mut slots = inner.registry.write();
            let replayed = match slots.get(id) {
                Some(Slot::Running { spec: existing, .. }) if **existing == *spec => {
                    return Ok(WorkloadStatus::new(id, WorkloadState::Running, ""));
                }
                Some(Slot::Starting {
                    spec: existing,
                    generation: first,
                }) if **existing == *spec => Some(*first),
                Some(Slot::Failed { .. }) | None => None,
                Some(slot) => {
                    tracing::debug!(existing = %slot.spec().name, "workload id conflict");
                    return Err(HostError::WorkloadIdConflict(id.to_string()));
                }
            };
            if replayed.is_none() {
                slots.insert(
                    id.to_string(),
                    Slot::Starting {
                        spec: spec.clone(),
                        generation,
                    },
                );
            }
            replayed
        };
        // The same start again while the first is under way: one workload,
        // and this caller learns how the first start ends.
        if let Some(first) = replayed {
            return Ok(self.outcome_of(id, first).await);
        }

        let result = self.resolve(id, &spec).await;
        // Record the outcome under the registry's lock; unbinding what a
        // start that does not land had bound waits until it is released.
        let undo = {
            let mut slots = inner.registry.write();
            // Only record the outcome if this start still owns the slot (a
            // stop or another start may have replaced it meanwhile).
            let owned = matches!(
                slots.get(id),
                Some(Slot::Starting { generation: g, .. }) if *g == generation
            );
            match result {
                Err(e) => {
                    if owned {
                        slots.insert(
                            id.to_string(),
                            Slot::Failed {
                                spec,
                                message: crate::types::error_report(&e),
                            },
                        );
                    }
                    return Err(e);
                }
                Ok(running) if !owned => Some((
                    running.plugins.clone(),
                    HostError::StoppedWhileStarting(id.to_string()),
                )),
                Ok(running) => match &inner.router {
                    Some(router) if running.http_index.is_some() => {
                        match router.register(id, &spec) {
                            Ok(()) => {
                                slots.insert(id.to_string(), Slot::running(spec, running));
                                None
                            }
                            Err(e) => {
                                slots.insert(
                                    id.to_string(),
                                    Slot::Failed {
                                        spec,
                                        message: crate::types::error_report(&e),
                                    },
                                );
                                Some((running.plugins.clone(), e.into()))
                            }
                        }
                    }
                    _ => {
                        slots.insert(id.to_string(), Slot::running(spec, running));
                        None
                    }
                },
            }
        };
        if let Some((plugins, error)) = undo {
            plugins.unbind().await;
            return Err(error);
        }
        tracing::info!(workload_id = %id, "workload running");
        Ok(WorkloadStatus::new(id, WorkloadState::Running, ""))
    }

    /// Compiles every component, binds the plugins they use, links and
    /// pre-instantiates them; plugins bound along the way are unbound again
    /// if a later step fails.
    async fn resolve(
        &self,
        id: &str,
        workload: &Arc<Workload>,
    ) -> Result<RunningWorkload, HostError> {
        if workload.components.is_empty() {
            return Err(HostError::NoComponents(workload.name.clone()));
        }
        let (volumes, scratch) = prepare_volumes(workload)?;
        let workload_id: Arc<str> = id.into();
        let limits = Arc::default();
        let workload = &self.pull_images(workload).await?;

        // 1. Compile (CPU-bound: off the async workers) and find who
        //    provides each import.
        let compiled = self
            .blocking(
                &workload_id,
                workload,
                &volumes,
                &limits,
                |context, spec| {
                    spec.components
                        .iter()
                        .map(|component| {
                            let compiled = context.compile(spec, component)?;
                            let imports = context.plugin_imports(spec, component, &compiled)?;
                            Ok((compiled, imports))
                        })
                        .collect::<Result<Vec<_>, ResolveError>>()
                },
            )
            .await??;

        // 2. Bind the plugins the workload uses. From here on, `bound`
        //    unbinds them on every way out.
        let bound = Arc::new(BoundPlugins::new(id, self.inner.bindings.clone()));
        self.bind_plugins(id, workload, &compiled, &bound).await?;
        let fail = |e: HostError| {
            let bound = bound.clone();
            async move {
                bound.unbind().await;
                Err(e)
            }
        };

        // 3. Link and pre-instantiate.
        let linking = bound.clone();
        let linked = self
            .blocking(
                &workload_id,
                workload,
                &volumes,
                &limits,
                move |context, spec| {
                    spec.components
                        .iter()
                        .zip(compiled)
                        .map(|(component, (compiled, imports))| {
                            context.link(spec, component, compiled, &imports, &linking)
                        })
                        .collect::<Result<Vec<_>, ResolveError>>()
                },
            )
            .await;
        let components = match linked {
            Ok(Ok(components)) => components,
            Ok(Err(e)) => return fail(e.into()).await,
            Err(e) => return fail(e).await,
        };
        let http_index = match self.http_component(workload, &components) {
            Ok(index) => index,
            Err(e) => return fail(e).await,
        };

        // 4. Tell the plugins the workload is ready (e.g. to subscribe).
        let resolved = ResolvedWorkload {
            workload_id: id,
            workload,
            components: components.iter().map(|c| c.handle.clone()).collect(),
        };
        if let Err(e) = bound.resolved(&resolved).await {
            return fail(e.into()).await;
        }
        Ok(RunningWorkload {
            components,
            http_index,
            plugins: bound,
            _scratch: scratch,
        })
    }

    /// Fetches the bytes of components that name an image, all at once.
    async fn pull_images(&self, workload: &Arc<Workload>) -> Result<Arc<Workload>, HostError> {
        let needed: Vec<usize> = workload
            .components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.bytes.is_none() && c.image.is_some())
            .map(|(i, _)| i)
            .collect();
        if needed.is_empty() {
            return Ok(workload.clone());
        }
        let Some(oci) = &self.inner.oci else {
            // Resolution reports the component that cannot be loaded.
            return Ok(workload.clone());
        };
        let pulls = needed.iter().map(|index| {
            let component = &workload.components[*index];
            let image = component.image.clone().unwrap_or_default();
            async move {
                let started = std::time::Instant::now();
                let pulled = oci
                    .pull(
                        &image,
                        component.image_pull_secret.as_ref(),
                        component.image_pull_policy,
                        &|_, _| {},
                    )
                    .await
                    .map_err(|source| HostError::Pull {
                        component: component.name.clone(),
                        source,
                    })?;
                tracing::info!(
                    %image,
                    digest = %pulled.digest,
                    cached = pulled.cached,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "component image ready"
                );
                Ok::<_, HostError>((*index, pulled))
            }
        });
        let mut filled = (**workload).clone();
        for result in futures::future::join_all(pulls).await {
            let (index, pulled) = result?;
            filled.components[index].bytes = Some(pulled.bytes);
        }
        Ok(Arc::new(filled))
    }

    /// Runs resolution work on a blocking thread with a resolve context.
    async fn blocking<R, F>(
        &self,
        workload_id: &Arc<str>,
        workload: &Arc<Workload>,
        volumes: &Arc<Vec<(String, PathBuf)>>,
        limits: &Arc<crate::instance::store::WorkloadLimits>,
        work: F,
    ) -> Result<R, HostError>
    where
        R: Send + 'static,
        F: FnOnce(&ResolveContext<'_>, &Workload) -> R + Send + 'static,
    {
        let host = self.clone();
        let (workload_id, spec, volumes) = (workload_id.clone(), workload.clone(), volumes.clone());
        let limits = limits.clone();
        self.inner
            .engine
            .prepare(move || {
                let inner = &host.inner;
                let (engine, linker) = match &inner.synchronous_plugins {
                    Some(sync) if sync.workloads.contains(&*workload_id) => {
                        (&sync.engine, &sync.linker)
                    }
                    _ => (&inner.engine, &inner.linker),
                };
                let context = ResolveContext {
                    engine,
                    linker,
                    provided: &inner.provided,
                    plugins: &inner.plugins,
                    workload_id,
                    outgoing: inner.outgoing.clone(),
                    default_timeout: inner.request_timeout,
                    idle_timeout: inner.idle_timeout,
                    live: inner.live.clone(),
                    slots: inner.slots.clone(),
                    component_slots: inner.component_slots,
                    limits: limits.clone(),
                    allow_private: inner.allow_private_networks,
                    volumes: &volumes,
                    metrics: inner.metrics.clone(),
                    workload_name: spec.name.as_str().into(),
                };
                work(&context, &spec)
            })
            .await
            .map_err(|e| HostError::Http {
                workload: workload.name.clone(),
                reason: format!("component preparation task failed: {e}"),
            })
    }

    /// Binds every plugin whose interfaces the components import or the
    /// workload's `host_interfaces` name, into `bound`; on an error, those
    /// bound so far are unbound.
    async fn bind_plugins(
        &self,
        id: &str,
        workload: &Workload,
        compiled: &[(crate::engine::CompiledComponent, PluginImports)],
        bound: &BoundPlugins,
    ) -> Result<(), HostError> {
        let plugins = &self.inner.plugins;
        let mut involved: Vec<usize> = compiled
            .iter()
            .flat_map(|(_, imports)| imports.iter().map(|(index, _)| *index))
            .collect();
        for (index, plugin) in plugins.iter().enumerate() {
            let world = plugin.world();
            if workload
                .host_interfaces
                .iter()
                .any(|i| world.iter().any(|w| w.matches(i)))
            {
                involved.push(index);
            }
        }
        involved.sort_unstable();
        involved.dedup();
        for index in involved {
            let plugin = &plugins[index];
            let world = plugin.world();
            let bind = WorkloadBind {
                workload_id: id,
                workload,
                interfaces: workload
                    .host_interfaces
                    .iter()
                    .filter(|i| world.iter().any(|w| w.matches(i)))
                    .collect(),
            };
            match plugin.bind(&bind).await {
                Ok(state) => bound.push(index, plugin.clone(), state),
                Err(e) => {
                    bound.unbind().await;
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// Which component serves HTTP: none, or exactly one when the workload
    /// asks for HTTP.
    fn http_component(
        &self,
        workload: &Workload,
        components: &[ResolvedComponent],
    ) -> Result<Option<usize>, HostError> {
        let serving: Vec<usize> = components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.http.is_some())
            .map(|(i, _)| i)
            .collect();
        let wants_http = workload.host_interface("wasi", "http").is_some();
        match serving.as_slice() {
            [] if wants_http => {
                let component = &components[0];
                Err(ResolveError::NoHttpExport {
                    origin: crate::host::resolve::origin_of(workload, &workload.components[0]),
                    exports: if component.exports.is_empty() {
                        "(none)".into()
                    } else {
                        component.exports.join(", ")
                    },
                }
                .into())
            }
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(HostError::Http {
                workload: workload.name.clone(),
                reason: format!(
                    "{} components export an HTTP handler ({}); exactly one may",
                    many.len(),
                    many.iter()
                        .map(|i| &*components[*i].name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
}

impl HostApi for Host {
    async fn workload_start(
        &self,
        workload_id: &str,
        workload: Workload,
    ) -> Result<WorkloadStatus, HostError> {
        self.start_inner(workload_id, workload).await
    }

    async fn workload_status(&self, workload_id: &str) -> WorkloadStatus {
        match self.inner.registry.read().get(workload_id) {
            Some(Slot::Starting { .. }) => {
                WorkloadStatus::new(workload_id, WorkloadState::Starting, "")
            }
            Some(Slot::Running { .. }) => {
                // A component plugin out of restarts still has its
                // workload, but serves nothing.
                let failure = workload_id
                    .strip_prefix("plugin:")
                    .and_then(|id| self.component_plugin_status(id))
                    .and_then(|status| status.failure);
                match failure {
                    Some(message) => {
                        WorkloadStatus::new(workload_id, WorkloadState::Error, message)
                    }
                    None => WorkloadStatus::new(workload_id, WorkloadState::Running, ""),
                }
            }
            Some(Slot::Failed { message, .. }) => {
                WorkloadStatus::new(workload_id, WorkloadState::Error, message.clone())
            }
            None => WorkloadStatus::new(workload_id, WorkloadState::NotFound, ""),
        }
    }

    async fn workload_stop(&self, workload_id: &str) -> WorkloadStatus {
        let removed = self.inner.registry.write().remove(workload_id);
        if let Some(router) = &self.inner.router {
            router.unregister(workload_id);
        }
        self.inner.outgoing.workload_stopped(workload_id);
        if let Some(Slot::Running { workload, .. }) = &removed {
            workload.plugins.unbind().await;
        }
        match removed {
            None => WorkloadStatus::new(workload_id, WorkloadState::NotFound, ""),
            Some(slot) => {
                // Requests in flight hold their own reference to the
                // workload; it is released when the last one finishes.
                drop(slot);
                tracing::info!(%workload_id, "workload stopped");
                WorkloadStatus::new(workload_id, WorkloadState::Stopping, "stopped")
            }
        }
    }
}
