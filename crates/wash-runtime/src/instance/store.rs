//! Per-instance state: what lives in each wasmtime `Store`, and the template
//! that creates it quickly from settings resolved once at workload start.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::{Bindings, PluginView};
use crate::egress::GuestEgress;
use crate::egress::sockets::SocketPolicy;
use crate::engine::Engine;
use crate::engine::limits::{Deadline, DeadlineExceeded, StoreLimits};

/// Who a guest is, for log lines and policy decisions.
#[derive(Debug)]
pub(crate) struct GuestLabels {
    pub(crate) workload_id: Arc<str>,
    pub(crate) component: Arc<str>,
    /// The component's metric series.
    pub(crate) metrics: Arc<crate::host::metrics::ComponentMetrics>,
}

/// A directory made visible to the guest.
#[derive(Debug, Clone)]
pub(crate) struct Preopen {
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
    pub(crate) read_only: bool,
}

/// Everything needed to create a store for one component, resolved at
/// workload start so creating a store is only allocation.
pub(crate) struct InstanceTemplate {
    pub(crate) labels: Arc<GuestLabels>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) preopens: Vec<Preopen>,
    pub(crate) memory_limit: usize,
    pub(crate) egress: GuestEgress,
    pub(crate) sockets: Arc<SocketPolicy>,
    /// Whether `wasi:sockets/ip-name-lookup` may be used.
    pub(crate) name_lookups: bool,
    /// Stores alive on the host, for leak checks and metrics.
    pub(crate) live: Arc<AtomicUsize>,
    /// Plugin state of this component.
    pub(crate) bindings: Bindings,
    /// Instance slots of the host: one is held for each live instance.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// This component's share of them: however hostile its guests or its
    /// traffic, it never holds every slot of the host.
    pub(crate) share: Arc<tokio::sync::Semaphore>,
    /// What the workload's guests may still log, and other shared limits.
    pub(crate) log_budget: Arc<WorkloadLimits>,
}

/// Every instance slot of the host stayed taken for as long as the caller
/// could wait.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the host is at its instance limit")]
pub struct HostBusy;

/// Limits shared by every component and instance of one workload.
#[derive(Debug)]
pub(crate) struct WorkloadLimits {
    /// Guest output the workload may still log.
    pub(crate) log: LogBudget,
    /// Outbound HTTP requests in flight (responses not yet dropped).
    pub(crate) outbound: Arc<tokio::sync::Semaphore>,
}

impl Default for WorkloadLimits {
    fn default() -> Self {
        Self {
            log: LogBudget::default(),
            outbound: Arc::new(tokio::sync::Semaphore::new(
                crate::egress::MAX_OUTBOUND_REQUESTS,
            )),
        }
    }
}

/// The instance slots a live instance holds: its component's and the
/// host's. Drop it after the instance's store.
#[derive(Debug)]
pub(crate) struct InstanceSlot {
    _share: tokio::sync::OwnedSemaphorePermit,
    _host: tokio::sync::OwnedSemaphorePermit,
}

/// The data of every store: WASI, HTTP and plugin state of one instance.
pub struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: GuestEgress,
    limits: StoreLimits,
    bindings: Bindings,
    labels: Arc<GuestLabels>,
    pub(crate) deadline: Deadline,
    #[cfg(feature = "wasi-tls")]
    tls: wasmtime_wasi_tls::WasiTlsCtx,
    /// Ids of the traced request being served, for guest log lines.
    trace: Arc<crate::telemetry::TraceSlot>,
    /// In a component plugin's instance, the workload whose call it is
    /// serving (`wasmcloud:host/identity`); set around each call.
    pub(crate) caller: Option<Arc<str>>,
    _live: LiveGuard,
}

impl StoreState {
    /// What plugin host functions work through.
    pub fn plugin_view(&mut self) -> PluginView<'_> {
        PluginView {
            table: &mut self.table,
            bindings: &self.bindings,
            trace: &self.trace,
            caller: self.caller.as_deref(),
        }
    }

    /// The request this instance now serves runs in `span` (its guest
    /// span): outbound requests and log lines join its trace.
    pub(crate) fn set_request_trace(&mut self, span: Option<tracing::Span>) {
        self.trace.set(span.as_ref());
        self.egress.trace = span;
    }

    /// Id of the workload this instance belongs to.
    pub fn workload_id(&self) -> &str {
        &self.labels.workload_id
    }

    /// Name of the component this instance runs.
    pub fn component(&self) -> &str {
        &self.labels.component
    }

    /// The view `wasmtime-wasi-http` works through; a plain fn so it can be
    /// handed to the request machinery as a pointer.
    pub(crate) fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_view()
    }
}

#[cfg(feature = "wasi-tls")]
impl wasmtime_wasi_tls::WasiTlsView for StoreState {
    fn tls(&mut self) -> wasmtime_wasi_tls::WasiTlsCtxView<'_> {
        wasmtime_wasi_tls::WasiTlsCtxView {
            ctx: &mut self.tls,
            table: &mut self.table,
        }
    }
}

/// Decrements the host's live-store count when a store is dropped.
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InstanceTemplate {
    /// Waits (up to `wait`) for an instance slot. Hold the permit until the
    /// instance's store is dropped: the pool slot is freed with the store.
    async fn slot(&self, wait: std::time::Duration) -> Result<InstanceSlot, HostBusy> {
        // Free slots are the common case: no timer for them.
        if let Ok(share) = self.share.clone().try_acquire_owned()
            && let Ok(host) = self.slots.clone().try_acquire_owned()
        {
            return Ok(InstanceSlot {
                _share: share,
                _host: host,
            });
        }
        let both = async {
            let share = self.share.clone().acquire_owned().await.ok()?;
            let host = self.slots.clone().acquire_owned().await.ok()?;
            Some(InstanceSlot {
                _share: share,
                _host: host,
            })
        };
        match tokio::time::timeout(wait, both).await {
            Ok(Some(slot)) => Ok(slot),
            _ => Err(HostBusy),
        }
    }

    /// A store for one instance, once a slot is free (waiting at most
    /// `timeout`), with its deadline `timeout` from now. Drop the permit
    /// after the store.
    pub(crate) async fn new_store_with_slot(
        &self,
        engine: &Engine,
        timeout: std::time::Duration,
    ) -> wasmtime::Result<(Store<StoreState>, InstanceSlot)> {
        let slot = self.slot(timeout).await.map_err(wasmtime::Error::new)?;
        let mut store = self.new_store(engine)?;
        store
            .data_mut()
            .deadline
            .set(std::time::Instant::now() + timeout);
        Ok((store, slot))
    }

    /// A new store with limits, deadline checks and fuel in place.
    pub(crate) fn new_store(&self, engine: &Engine) -> wasmtime::Result<Store<StoreState>> {
        self.labels.metrics.instance_created();
        let trace = Arc::new(crate::telemetry::TraceSlot::default());
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&self.env)
            .stdout(GuestOutput::new(
                self.labels.clone(),
                "stdout",
                self.log_budget.clone(),
                trace.clone(),
            ))
            .stderr(GuestOutput::new(
                self.labels.clone(),
                "stderr",
                self.log_budget.clone(),
                trace.clone(),
            ));
        for dir in &self.preopens {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)?;
        }
        // Every socket address goes through the component's policy, which
        // also logs what it refuses.
        let sockets = self.sockets.clone();
        wasi.allow_tcp(true)
            .allow_udp(true)
            .allow_ip_name_lookup(self.name_lookups)
            .socket_addr_check(move |addr, use_| {
                let sockets = sockets.clone();
                Box::pin(async move { sockets.allows(addr, use_).await })
            });
        let state = StoreState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: self.egress.clone(),
            limits: StoreLimits::new(self.memory_limit),
            bindings: self.bindings.clone(),
            labels: self.labels.clone(),
            deadline: Deadline::default(),
            #[cfg(feature = "wasi-tls")]
            tls: wasmtime_wasi_tls::WasiTlsCtxBuilder::new()
                .provider(Box::new(crate::tls::wasi::SharedProvider(
                    engine.tls_provider().clone(),
                )))
                .build(),
            trace,
            caller: None,
            _live: LiveGuard::new(&self.live),
        };
        let mut store = Store::new(engine.wasmtime(), state);
        store.limiter(|state| &mut state.limits);
        if let Some(fuel) = engine.fuel() {
            store.set_fuel(fuel)?;
        }
        // On every tick of guest execution: past the deadline, trap; else
        // yield so a busy guest never monopolizes an executor thread.
        store.epoch_deadline_callback(|mut ctx| {
            if ctx.data_mut().deadline.tick(Instant::now()) {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        Ok(store)
    }
}

/// Longest partial line kept before it is logged anyway, so a guest printing
/// without newlines cannot grow host memory.
const MAX_LINE: usize = 16 * 1024;

/// Guest stdout/stderr, turned into log lines tagged with workload and
/// component.
/// Lines of guest output a workload may log per second, sustained...
const LOG_LINES_PER_SECOND: f64 = 100.0;
/// ...and in a burst.
const LOG_BURST: f64 = 500.0;

/// How much guest output one workload may still put in the host's log: a
/// token bucket, so a guest printing in a loop cannot drown the log or
/// slow the host. What is dropped is counted and reported.
#[derive(Debug)]
pub(crate) struct LogBudget(std::sync::Mutex<Bucket>);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        Self(std::sync::Mutex::new(Bucket {
            tokens: LOG_BURST,
            refilled: Instant::now(),
            dropped: 0,
        }))
    }
}

impl LogBudget {
    /// Whether one more line may be logged; if so, how many were dropped
    /// since the last line that was.
    fn take(&self) -> Option<u64> {
        let mut bucket = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * LOG_LINES_PER_SECOND).min(LOG_BURST);
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            bucket.dropped += 1;
            return None;
        }
        bucket.tokens -= 1.0;
        Some(std::mem::take(&mut bucket.dropped))
    }

    /// Lines dropped and not yet reported; the count starts again.
    fn take_dropped(&self) -> u64 {
        let mut bucket = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut bucket.dropped)
    }
}

#[derive(Clone)]
struct GuestOutput {
    labels: Arc<GuestLabels>,
    stream: &'static str,
    budget: Arc<WorkloadLimits>,
    trace: Arc<crate::telemetry::TraceSlot>,
}

impl GuestOutput {
    fn new(
        labels: Arc<GuestLabels>,
        stream: &'static str,
        budget: Arc<WorkloadLimits>,
        trace: Arc<crate::telemetry::TraceSlot>,
    ) -> Self {
        Self {
            labels,
            stream,
            budget,
            trace,
        }
    }

    /// One line for the guest output dropped since the last report.
    fn report_dropped(&self, dropped: u64) {
        if dropped > 0 {
            tracing::warn!(
                target: "wash::guest",
                workload = %self.labels.workload_id,
                component = %self.labels.component,
                dropped,
                "{dropped} lines of guest output dropped: the workload logs more than \
                 {LOG_LINES_PER_SECOND} lines a second"
            );
        }
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            output: self.clone(),
            pending: Vec::new(),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

struct LineWriter {
    output: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
            self.pending.extend_from_slice(&bytes[..end]);
            self.emit();
            bytes = &bytes[end + 1..];
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= MAX_LINE {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            self.pending.clear();
            return;
        }
        let labels = &self.output.labels;
        let Some(dropped) = self.output.budget.log.take() else {
            self.pending.clear();
            return;
        };
        self.output.report_dropped(dropped);
        match self.output.trace.get() {
            Some(ids) => tracing::info!(
                target: "wash::guest",
                workload = %labels.workload_id,
                component = %labels.component,
                stream = self.output.stream,
                trace_id = %ids.trace_id,
                span_id = %ids.span_id,
                "{line}"
            ),
            None => tracing::info!(
                target: "wash::guest",
                workload = %labels.workload_id,
                component = %labels.component,
                stream = self.output.stream,
                "{line}"
            ),
        }
        self.pending.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
        // A flood that ends with its instance is still counted, once.
        self.output
            .report_dropped(self.output.budget.log.take_dropped());
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl wasmtime_wasi::p2::Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
