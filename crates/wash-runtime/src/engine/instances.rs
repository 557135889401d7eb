//! Instances of one HTTP component: how they are created, how long they live
//! and what happens when they fail.
//!
//! Requests are dispatched by `wasmtime_wasi_http::handler::ProxyHandler`,
//! which serves P2 (`incoming-handler`) and P3 (`handler`) exports alike; this
//! module supplies its policy. The default is a fresh instance per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{future::Future, pin::Pin, task::Context, task::Poll};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

use futures::channel::oneshot;

use super::Engine;
use super::failure::{FailureKind, GuestFailure};
use super::store::{GuestLabels, InstanceTemplate, StoreState};

/// Time past a request's deadline after which its whole instance is torn
/// down, should the per-request checks not have ended it.
const TEARDOWN_GRACE: Duration = Duration::from_secs(5);

/// Which WASI HTTP world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpWorld {
    /// `wasi:http/incoming-handler@0.2.x` (WASI P2).
    P2,
    /// `wasi:http/handler@0.3.x` (WASI P3).
    P3,
}

/// Creates and retires the instances of one HTTP component.
pub(crate) struct ComponentInstances {
    engine: Engine,
    pre: ProxyPre<StoreState>,
    template: Arc<InstanceTemplate>,
    request_timeout: Duration,
    instantiations: AtomicU64,
}

impl ComponentInstances {
    pub(crate) fn new(
        engine: Engine,
        pre: ProxyPre<StoreState>,
        template: Arc<InstanceTemplate>,
        request_timeout: Duration,
    ) -> Self {
        Self {
            engine,
            pre,
            template,
            request_timeout,
            instantiations: AtomicU64::new(0),
        }
    }

    pub(crate) fn world(&self) -> HttpWorld {
        match self.pre {
            ProxyPre::P2(_) => HttpWorld::P2,
            ProxyPre::P3(_) => HttpWorld::P3,
        }
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub(crate) fn instantiations(&self) -> u64 {
        self.instantiations.load(Ordering::Relaxed)
    }

    pub(crate) fn labels(&self) -> &GuestLabels {
        &self.template.labels
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = StoreState;
    type WorkerExpiration = Expiration;
    type WorkerState = FreshInstance;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<StoreState, Expiration, FreshInstance>> {
        let slot = self
            .template
            .slot(self.request_timeout)
            .await
            .map_err(wasmtime::Error::new)?;
        let mut store = self.template.new_store(&self.engine)?;
        // Start functions run under the same deadline as requests.
        store
            .data_mut()
            .deadline
            .set(Instant::now() + self.request_timeout);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        Ok(Instance {
            store,
            proxy,
            view: StoreState::http_view,
            expiration: Expiration::new(self.request_timeout + TEARDOWN_GRACE),
            state: FreshInstance {
                labels: self.template.labels.clone(),
                request_timeout: self.request_timeout,
                watchers: Mutex::new(Vec::new()),
                slot: Mutex::new(Some(slot)),
            },
        })
    }
}

/// How an instance ended, told to the requests it was serving: a request
/// whose instance died learns why here, since the error its own call
/// returns may only say that no response came.
#[derive(Debug, Clone)]
pub(crate) enum InstanceEnd {
    /// Ended without error.
    Clean,
    /// Trapped, hit a limit, or failed otherwise.
    Failed(GuestFailure),
}

/// Receives the [`InstanceEnd`] of the instance serving a request.
pub(crate) type InstanceWatch = oneshot::Receiver<InstanceEnd>;

/// Creates the request data that carries an [`InstanceWatch`].
pub(crate) fn instance_watch() -> (oneshot::Sender<InstanceEnd>, InstanceWatch) {
    oneshot::channel()
}

/// An instance that serves exactly one request.
pub(crate) struct FreshInstance {
    labels: Arc<GuestLabels>,
    request_timeout: Duration,
    watchers: Mutex<Vec<oneshot::Sender<InstanceEnd>>>,
    /// Released only after the store is dropped (see `drop`).
    slot: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

impl WorkerState for FreshInstance {
    type StoreData = StoreState;
    type RequestData = oneshot::Sender<InstanceEnd>;

    fn should_accept_request(&self, _concurrent: usize, total: usize) -> ShouldAccept {
        if total >= 1 {
            ShouldAccept::Never
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, StoreState>,
        watcher: oneshot::Sender<InstanceEnd>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(watcher);
        // The epoch check traps a busy guest at the deadline; the sleep
        // covers a guest that is idle-waiting and never ticks.
        store
            .data_mut()
            .deadline
            .set(Instant::now() + self.request_timeout);
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<StoreState>, result: wasmtime::Result<()>) {
        // The store first (freeing its pool slot), then the host slot.
        drop(store);
        drop(self.slot.lock().unwrap_or_else(|e| e.into_inner()).take());
        let end = match &result {
            Ok(()) => InstanceEnd::Clean,
            Err(error) => InstanceEnd::Failed(GuestFailure::of(error)),
        };
        let watchers =
            std::mem::take(&mut *self.watchers.lock().unwrap_or_else(|e| e.into_inner()));
        let mut told = false;
        for watcher in watchers {
            // A request still listening reports the failure itself.
            told |= watcher.send(end.clone()).is_ok();
        }
        if let InstanceEnd::Failed(failure) = end
            && !told
        {
            log_instance_failure(&self.labels, &failure);
        }
    }
}

/// Logs a failure no request is left to report (e.g. a trap while a
/// response body was streaming).
fn log_instance_failure(labels: &GuestLabels, failure: &GuestFailure) {
    if failure.kind == FailureKind::Other {
        // Typically teardown after a request already reported its deadline.
        tracing::debug!(
            workload = %labels.workload_id,
            component = %labels.component,
            "instance ended: {}",
            failure.detail
        );
    } else {
        tracing::warn!(
            workload = %labels.workload_id,
            component = %labels.component,
            "instance failed: {}",
            failure.detail
        );
    }
}

/// When an instance is torn down regardless of what its requests do.
pub(crate) struct Expiration {
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Expiration {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
        }
    }
}

impl WorkerExpiration for Expiration {
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        since: Instant,
    ) -> Poll<()> {
        let this = self.get_mut();
        let limit = match status {
            // A fresh instance is never idle for long; no reason to keep it.
            WorkerStatus::Idle => Duration::ZERO,
            WorkerStatus::Requests | WorkerStatus::PostReturn => this.limit,
        };
        let deadline = tokio::time::Instant::from_std(since + limit);
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}
