//! Instances of one HTTP component: how they are created, how long they live
//! and what happens when they fail.
//!
//! Requests are dispatched by `wasmtime_wasi_http::handler::ProxyHandler`,
//! which serves P2 (`incoming-handler`) and P3 (`handler`) exports alike; this
//! module supplies its policy. The default is a fresh instance per request.
//! With a [`Reuse`] policy (a component's `pool_size` > 0) instances stay
//! warm: P2 instances serve requests one after another, P3 instances several
//! at once; one that traps or misses a deadline is discarded, and idle ones
//! beyond the pool, or idle longer than the idle timeout, are reclaimed.
//!
//! Any failed request retires its instance. Some guests can only ever serve
//! one request per instance (componentize-js's StarlingMonkey answers the
//! second request of an instance with no response at all): when a reused
//! instance fails a request that a fresh instance then serves, reuse is
//! switched off for that component (see [`ReuseHealth`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use std::{future::Future, pin::Pin, task::Context, task::Poll};

use wasmtime::component::GuestTaskId;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};

use futures::channel::oneshot;

use super::store::{GuestLabels, InstanceTemplate, StoreState};
use crate::engine::Engine;
use crate::engine::failure::{FailureKind, GuestFailure};

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

/// Whether and how instances are reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// Idle instances kept warm.
    pub pool_size: usize,
    /// Requests one instance serves before it is replaced (`None`: no limit).
    pub max_invocations: Option<usize>,
    /// Requests one instance serves at once (P3 only; P2 is always 1).
    pub max_concurrency: usize,
    /// How long a warm instance may sit idle before it is reclaimed.
    pub idle_timeout: Duration,
}

/// P3 requests one warm instance serves at once when the component does not
/// say (the same as `wasmtime serve -Sp3`).
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// How long a warm instance may sit idle, unless the host says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Reuse {
    /// The policy a component's fields ask for: `None` (a fresh instance
    /// per request) unless `pool_size` > 0. Zero or negative limits mean
    /// "unlimited" (`max_invocations`) or "the default"
    /// (`max_concurrency`).
    pub fn from_component(
        pool_size: i32,
        max_invocations: i32,
        max_concurrency: i32,
        idle_timeout: Duration,
    ) -> Option<Self> {
        let pool_size = usize::try_from(pool_size).ok().filter(|n| *n > 0)?;
        Some(Self {
            pool_size,
            max_invocations: usize::try_from(max_invocations).ok().filter(|n| *n > 0),
            max_concurrency: usize::try_from(max_concurrency)
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_MAX_CONCURRENCY),
            idle_timeout,
        })
    }
}

/// How instance reuse fares for one component; shared by its instances.
#[derive(Debug, Default)]
pub(crate) struct ReuseHealth {
    /// A reused instance failed a request that a fresh instance served:
    /// the component gets a fresh instance per request from now on.
    off: AtomicBool,
    /// A reused instance has answered a request, so the component survives
    /// reuse; requests are no longer kept around for a retry.
    proven: AtomicBool,
}

impl ReuseHealth {
    /// Whether reuse was switched off for the component.
    pub(crate) fn is_off(&self) -> bool {
        self.off.load(Ordering::Relaxed)
    }

    /// Whether a reused instance has ever answered.
    pub(crate) fn is_proven(&self) -> bool {
        self.proven.load(Ordering::Relaxed)
    }

    pub(crate) fn prove(&self) {
        self.proven.store(true, Ordering::Relaxed);
    }

    /// Switches reuse off; true for the one call that did.
    pub(crate) fn switch_off(&self) -> bool {
        !self.off.swap(true, Ordering::Relaxed)
    }
}

/// Creates and retires the instances of one HTTP component.
pub(crate) struct ComponentInstances {
    engine: Engine,
    pre: Arc<ProxyPre<StoreState>>,
    template: Arc<InstanceTemplate>,
    request_timeout: Duration,
    reuse: Option<Reuse>,
    health: Arc<ReuseHealth>,
    /// Warm instances idle right now (at most `pool_size`).
    idle_warm: Arc<AtomicUsize>,
    instantiations: Arc<AtomicU64>,
}

impl ComponentInstances {
    pub(crate) fn new(
        engine: Engine,
        pre: ProxyPre<StoreState>,
        template: Arc<InstanceTemplate>,
        request_timeout: Duration,
        reuse: Option<Reuse>,
    ) -> Self {
        // P2 exports cannot be entered again while a call is running.
        let reuse = reuse.map(|mut reuse| {
            if matches!(pre, ProxyPre::P2(_)) {
                reuse.max_concurrency = 1;
            }
            reuse
        });
        Self {
            engine,
            pre: Arc::new(pre),
            template,
            request_timeout,
            reuse,
            health: Arc::default(),
            idle_warm: Arc::default(),
            instantiations: Arc::default(),
        }
    }

    /// The same component with a fresh instance per request, sharing the
    /// counters: what a reusing component falls back to.
    pub(crate) fn fresh(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            pre: self.pre.clone(),
            template: self.template.clone(),
            request_timeout: self.request_timeout,
            reuse: None,
            health: self.health.clone(),
            idle_warm: Arc::default(),
            instantiations: self.instantiations.clone(),
        }
    }

    pub(crate) fn world(&self) -> HttpWorld {
        match *self.pre {
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

    /// Whether instances are reused (and may be retired one by one).
    pub(crate) fn reuses(&self) -> bool {
        self.reuse.is_some()
    }

    pub(crate) fn health(&self) -> &ReuseHealth {
        &self.health
    }
}

impl HandlerState for ComponentInstances {
    type StoreData = StoreState;
    type WorkerExpiration = Expiration;
    type WorkerState = InstanceState;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<StoreState, Expiration, InstanceState>> {
        // Start functions run under the same deadline as requests.
        let (mut store, slot) = self
            .template
            .new_store_with_slot(&self.engine, self.request_timeout)
            .await?;
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        let reuse = self.reuse;
        let retirement = Arc::<Retirement>::default();
        Ok(Instance {
            store,
            proxy,
            view: StoreState::http_view,
            expiration: Expiration::new(
                self.request_timeout + TEARDOWN_GRACE,
                reuse.map(|r| (r, self.idle_warm.clone())),
                retirement.clone(),
            ),
            state: InstanceState {
                labels: self.template.labels.clone(),
                request_timeout: self.request_timeout,
                reuse,
                health: self.health.clone(),
                retirement,
                accepted: AtomicUsize::new(0),
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

/// What a request hands the instance that accepts it.
pub(crate) struct RequestData {
    watcher: oneshot::Sender<InstanceEnd>,
    /// Present for components that reuse instances.
    placement: Option<Arc<Placement>>,
    /// The request's guest span, when traced.
    trace: Option<tracing::Span>,
}

/// Request data and the [`InstanceWatch`] it reports to. With a
/// `placement`, the request also learns which instance served it.
pub(crate) fn instance_watch(
    placement: Option<Arc<Placement>>,
    trace: Option<tracing::Span>,
) -> (RequestData, InstanceWatch) {
    let (watcher, watch) = oneshot::channel();
    (
        RequestData {
            watcher,
            placement,
            trace,
        },
        watch,
    )
}

/// The warm instance a request landed on, told when it is accepted.
#[derive(Debug, Default)]
pub(crate) struct Placement(OnceLock<Seat>);

#[derive(Debug)]
struct Seat {
    retirement: Arc<Retirement>,
    /// Requests the instance had accepted before this one.
    before: usize,
}

/// Whether an instance was taken out of service, and how to wake its
/// worker so that an idle instance ends at once instead of waiting in the
/// pool.
#[derive(Debug, Default)]
struct Retirement {
    retired: AtomicBool,
    worker: futures::task::AtomicWaker,
}

impl Retirement {
    fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

impl Placement {
    /// Whether the instance had served requests before this one.
    pub(crate) fn reused(&self) -> bool {
        self.0.get().is_some_and(|seat| seat.before > 0)
    }

    /// Takes the instance out of service: it accepts no more requests and
    /// ends once those in flight are done.
    pub(crate) fn retire(&self) {
        if let Some(seat) = self.0.get() {
            seat.retirement.retired.store(true, Ordering::Release);
            seat.retirement.worker.wake();
        }
    }
}

/// One instance: serves exactly one request, or with a [`Reuse`] policy
/// as many as the policy allows.
pub(crate) struct InstanceState {
    labels: Arc<GuestLabels>,
    request_timeout: Duration,
    reuse: Option<Reuse>,
    health: Arc<ReuseHealth>,
    /// Set when a request on this instance failed: it takes no more.
    retirement: Arc<Retirement>,
    /// Requests accepted so far.
    accepted: AtomicUsize,
    /// Requests in flight on this instance, told how it ends. A request
    /// that finished drops its receiver, and its sender is pruned.
    watchers: Mutex<Vec<oneshot::Sender<InstanceEnd>>>,
    /// Released only after the store is dropped (see `drop`).
    slot: Mutex<Option<super::store::InstanceSlot>>,
}

impl WorkerState for InstanceState {
    type StoreData = StoreState;
    type RequestData = RequestData;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        let Some(reuse) = self.reuse else {
            return if total >= 1 {
                ShouldAccept::Never
            } else {
                ShouldAccept::Yes
            };
        };
        let spent = self.retirement.is_retired() || self.health.is_off();
        if (spent && total >= 1) || reuse.max_invocations.is_some_and(|max| total >= max) {
            ShouldAccept::Never
        } else if concurrent >= reuse.max_concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, StoreState>,
        data: RequestData,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let RequestData {
            watcher,
            placement,
            trace,
        } = data;
        store.data_mut().set_request_trace(trace);
        let before = self.accepted.fetch_add(1, Ordering::Relaxed);
        if let Some(placement) = placement {
            let _ = placement.0.set(Seat {
                retirement: self.retirement.clone(),
                before,
            });
        }
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        // Requests that got their response no longer listen.
        watchers.retain(|w| !w.is_canceled());
        watchers.push(watcher);
        drop(watchers);
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
        if let InstanceEnd::Failed(failure) = &end {
            self.labels.metrics.instance_discarded(failure.kind);
        }
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

/// When an instance is torn down regardless of what its requests do, and
/// when an idle warm one is reclaimed.
pub(crate) struct Expiration {
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// The policy and the component's count of idle warm instances.
    warm: Option<(Reuse, Arc<AtomicUsize>)>,
    /// Whether this instance holds one of the pool's idle places.
    pooled: bool,
    retirement: Arc<Retirement>,
}

impl Expiration {
    fn new(
        limit: Duration,
        warm: Option<(Reuse, Arc<AtomicUsize>)>,
        retirement: Arc<Retirement>,
    ) -> Self {
        Self {
            limit,
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
            warm,
            pooled: false,
            retirement,
        }
    }

    /// Takes an idle place in the pool if one is free.
    fn enter_pool(&mut self) -> bool {
        let Some((reuse, idle)) = &self.warm else {
            return false;
        };
        if !self.pooled {
            self.pooled = idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < reuse.pool_size).then_some(n + 1)
                })
                .is_ok();
        }
        self.pooled
    }

    fn leave_pool(&mut self) {
        if let (true, Some((_, idle))) = (self.pooled, &self.warm) {
            idle.fetch_sub(1, Ordering::AcqRel);
            self.pooled = false;
        }
    }
}

impl Drop for Expiration {
    fn drop(&mut self) {
        self.leave_pool();
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
        if status == WorkerStatus::Idle {
            // A retired instance ends as soon as it is idle.
            this.retirement.worker.register(cx.waker());
            if this.retirement.is_retired() {
                this.leave_pool();
                return Poll::Ready(());
            }
        }
        let limit = match status {
            // Idle: kept only while it has a place in the pool; a fresh
            // instance never has one.
            WorkerStatus::Idle => match this.enter_pool() {
                true => this
                    .warm
                    .as_ref()
                    .map_or(Duration::ZERO, |(r, _)| r.idle_timeout),
                false => Duration::ZERO,
            },
            WorkerStatus::Requests | WorkerStatus::PostReturn => {
                this.leave_pool();
                this.limit
            }
        };
        let deadline = tokio::time::Instant::from_std(since + limit);
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_is_opt_in_and_fills_defaults() {
        let idle = Duration::from_secs(1);
        assert_eq!(Reuse::from_component(0, 5, 5, idle), None);
        assert_eq!(Reuse::from_component(-1, 5, 5, idle), None);
        let reuse = Reuse::from_component(2, 0, 0, idle).unwrap();
        assert_eq!(reuse.pool_size, 2);
        assert_eq!(reuse.max_invocations, None);
        assert_eq!(reuse.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        let reuse = Reuse::from_component(1, 10, 4, idle).unwrap();
        assert_eq!(
            (reuse.max_invocations, reuse.max_concurrency),
            (Some(10), 4)
        );
    }

    #[tokio::test]
    async fn the_pool_holds_at_most_pool_size_idle_instances() {
        let reuse = Reuse::from_component(2, 0, 0, Duration::from_secs(1)).unwrap();
        let idle = Arc::new(AtomicUsize::new(0));
        let mut instances: Vec<_> = (0..3)
            .map(|_| {
                Expiration::new(
                    Duration::from_secs(1),
                    Some((reuse, idle.clone())),
                    Arc::default(),
                )
            })
            .collect();
        let entered: Vec<bool> = instances.iter_mut().map(|e| e.enter_pool()).collect();
        assert_eq!(entered, [true, true, false]);
        assert_eq!(idle.load(Ordering::Acquire), 2);
        // Going busy, or away, frees the place.
        instances[0].leave_pool();
        assert!(instances[2].enter_pool());
        drop(instances);
        assert_eq!(idle.load(Ordering::Acquire), 0);
    }
}
