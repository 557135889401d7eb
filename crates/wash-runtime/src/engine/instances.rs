//! Instances of one HTTP component: how they are created, how long they live
//! and what happens when they fail.
//!
//! Requests are dispatched by `wasmtime_wasi_http::handler::ProxyHandler`,
//! which serves P2 (`incoming-handler`) and P3 (`handler`) exports alike; this
//! module supplies its policy. The default is a fresh instance per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{future::Future, pin::Pin, task::Context, task::Poll};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

use super::Engine;
use super::limits::{DeadlineExceeded, MemoryLimitExceeded};
use super::store::{InstanceTemplate, StoreState};

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
    template: InstanceTemplate,
    request_timeout: Duration,
    instantiations: AtomicU64,
}

impl ComponentInstances {
    pub(crate) fn new(
        engine: Engine,
        pre: ProxyPre<StoreState>,
        template: InstanceTemplate,
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

    pub(crate) fn labels(&self) -> &super::store::GuestLabels {
        &self.template.labels
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = StoreState;
    type WorkerExpiration = Expiration;
    type WorkerState = FreshInstance;

    async fn instantiate(&self) -> wasmtime::Result<Instance<StoreState, Expiration, FreshInstance>> {
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
            },
        })
    }
}

/// An instance that serves exactly one request.
pub(crate) struct FreshInstance {
    labels: Arc<super::store::GuestLabels>,
    request_timeout: Duration,
}

impl WorkerState for FreshInstance {
    type StoreData = StoreState;
    type RequestData = ();

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
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // The epoch check traps a busy guest at the deadline; the sleep
        // covers a guest that is idle-waiting and never ticks.
        store
            .data_mut()
            .deadline
            .set(Instant::now() + self.request_timeout);
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<StoreState>, result: wasmtime::Result<()>) {
        if let Err(error) = result {
            log_instance_failure(&self.labels, &error);
        }
        drop(store);
    }
}

/// Logs an instance-level failure. Traps of P3 guests surface here, not on
/// the request (which only learns that its instance died), so this is their
/// one log line; other instance errors were already reported per request.
fn log_instance_failure(labels: &super::store::GuestLabels, error: &wasmtime::Error) {
    let reportable = error.chain().any(|e| {
        e.is::<wasmtime::Trap>() || e.is::<MemoryLimitExceeded>() || e.is::<DeadlineExceeded>()
    });
    if reportable {
        tracing::warn!(
            workload = %labels.workload_id,
            component = %labels.component,
            "instance failed: {}",
            super::describe_error(error)
        );
    } else {
        tracing::debug!(
            workload = %labels.workload_id,
            component = %labels.component,
            "instance ended: {error:#}"
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
