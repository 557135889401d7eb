//! The wasmtime engine and what is done once per distinct component:
//! validation, compilation (or a compile-cache load) and the shared loaded
//! code, on a few long-lived preparation threads. The engine knows nothing
//! of hosts, plugins or stores: those layers sit above it.

pub(crate) mod cache;
mod epoch;
pub(crate) mod failure;
pub(crate) mod limits;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};
use wasmtime::component::Component as WasmComponent;

use crate::digest::sha256_hex;
use cache::CompileCache;
pub use cache::{CacheOutcome, CacheStats};
use epoch::EpochTicker;
pub(crate) use failure::describe_error;
pub use limits::{DeadlineExceeded, MemoryLimitExceeded};

/// How often the engine's epoch ticks. Deadlines are checked at this grain.
const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);
/// Bytes of each pooled memory and table reset in place when an instance
/// ends (beyond this, pages are returned to the kernel).
const KEEP_RESIDENT: usize = 128 << 10;
/// Component instances alive at once, across all workloads, by default.
const DEFAULT_MAX_INSTANCES: u32 = 1000;
/// Core instances a component may hold on average (interpreters such as
/// componentize-py link a dozen core modules into one component).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories and tables a component may hold on average.
const MEMORIES_PER_COMPONENT: u32 = 4;
/// Most threads that prepare components at once.
const MAX_PREPARE_THREADS: usize = 8;

/// The thread preparing a component ended without an answer (it panicked).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the component preparation thread failed")]
pub struct PrepareFailed;

/// Errors from building an engine or compiling a component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// wasmtime refused the engine configuration.
    #[error("invalid engine configuration: {reason}")]
    Config {
        /// What wasmtime said.
        reason: String,
    },
    /// The compile cache directory could not be created.
    #[error("cannot use compile cache directory {}: {source}", dir.display())]
    CacheDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The epoch ticker thread could not be started.
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(std::io::Error),
    /// The threads that prepare components could not be started.
    #[error("cannot start the component preparation threads: {0}")]
    PrepareThreads(String),
    /// The default TLS provider could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The bytes are not WebAssembly at all.
    #[error("{origin}: not a WebAssembly binary (it does not start with the `\\0asm` magic)")]
    NotWasm {
        /// Where the bytes came from (a path or a component name).
        origin: String,
    },
    /// The bytes are a core module, which cannot be served directly.
    #[error(
        "{origin}: is a core WebAssembly module, not a component; build for wasm32-wasip2 \
         or wrap it with `wasm-tools component new`"
    )]
    CoreModule {
        /// Where the bytes came from.
        origin: String,
    },
    /// The component is malformed or uses unsupported features.
    #[error("{origin}: invalid component: {reason}")]
    Invalid {
        /// Where the bytes came from.
        origin: String,
        /// What wasmtime found wrong.
        reason: String,
    },
    /// The component's digest differs from the one its workload declared.
    #[error("{origin}: digest mismatch: expected {expected}, got sha256:{actual}")]
    DigestMismatch {
        /// Where the bytes came from.
        origin: String,
        /// Declared digest.
        expected: String,
        /// Digest of the bytes.
        actual: String,
    },
}

/// Builds an [`Engine`].
///
/// ```no_run
/// # fn main() -> Result<(), wash_runtime::engine::EngineError> {
/// let engine = wash_runtime::engine::EngineBuilder::new()
///     .with_max_instances(200)
///     .with_compile_cache("/var/cache/wash/compiled")
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EngineBuilder {
    pooling: bool,
    max_instances: u32,
    fuel: Option<u64>,
    cache_dir: Option<PathBuf>,
    epoch_tick: Duration,
    /// Whether stores support concurrent (WASI P3) execution.
    concurrency: bool,
    #[cfg(feature = "wasi-tls")]
    tls_provider: Option<Arc<dyn crate::tls::wasi::TlsProvider>>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("pooling", &self.pooling)
            .field("max_instances", &self.max_instances)
            .field("fuel", &self.fuel)
            .field("cache_dir", &self.cache_dir)
            .field("epoch_tick", &self.epoch_tick)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineBuilder {
    /// Defaults: pooling allocator on, 1000 instances, no fuel, no disk cache.
    pub fn new() -> Self {
        Self {
            pooling: true,
            max_instances: DEFAULT_MAX_INSTANCES,
            fuel: None,
            cache_dir: None,
            epoch_tick: DEFAULT_EPOCH_TICK,
            concurrency: true,
            #[cfg(feature = "wasi-tls")]
            tls_provider: None,
        }
    }

    /// Replaces the default `wasi:tls` provider (rustls on aws-lc-rs with
    /// webpki roots) for every workload of this engine: a custom root
    /// store, certificate pinning, or another TLS backend.
    #[cfg(feature = "wasi-tls")]
    pub fn with_tls_provider(mut self, provider: Arc<dyn crate::tls::wasi::TlsProvider>) -> Self {
        self.tls_provider = Some(provider);
        self
    }

    /// Use (default) or skip the pooling instance allocator. Where the
    /// address space is too small for the pool, the engine falls back to
    /// on-demand allocation on its own and logs it once.
    pub fn with_pooling_allocator(mut self, enabled: bool) -> Self {
        self.pooling = enabled;
        self
    }

    /// Component instances that may be alive at once, across all workloads.
    pub fn with_max_instances(mut self, max: u32) -> Self {
        self.max_instances = max.max(1);
        self
    }

    /// Gives every instance this much fuel; a guest that burns through it traps.
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// Keeps compiled components in `dir`, so a restart skips compilation.
    pub fn with_compile_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// How often the epoch ticks (the grain of request deadlines).
    pub fn with_epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick.max(Duration::from_millis(1));
        self
    }

    fn config(&self, pooling: bool) -> wasmtime::Config {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.concurrency_support(self.concurrency);
        config.epoch_interruption(true);
        config.consume_fuel(self.fuel.is_some());
        if pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            let max = self.max_instances;
            pool.total_component_instances(max)
                .total_core_instances(max.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
                .total_memories(max.saturating_mul(MEMORIES_PER_COMPONENT))
                .total_tables(max.saturating_mul(MEMORIES_PER_COMPONENT))
                .total_stacks(max)
                .total_gc_heaps(max)
                // Reset small memories and tables with memset instead of
                // madvise: no page-table work or cross-core TLB shootdown
                // each time an instance ends.
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }

    /// Creates the engine and starts its epoch ticker.
    pub fn build(self) -> Result<Engine, EngineError> {
        let (engine, pooling) = match self.pooling {
            true => match wasmtime::Engine::new(&self.config(true)) {
                Ok(engine) => (engine, true),
                Err(e) => {
                    warn!(
                        "pooling allocator unavailable ({e}); falling back to on-demand \
                         instance allocation"
                    );
                    (self.on_demand_engine()?, false)
                }
            },
            false => (self.on_demand_engine()?, false),
        };
        let cache = match &self.cache_dir {
            Some(dir) => Some(CompileCache::new(dir.clone(), &engine).map_err(|source| {
                EngineError::CacheDir {
                    dir: dir.clone(),
                    source,
                }
            })?),
            None => None,
        };
        let ticker =
            EpochTicker::spawn(engine.weak(), self.epoch_tick).map_err(EngineError::Ticker)?;
        let prepare = rayon::ThreadPoolBuilder::new()
            .num_threads(
                std::thread::available_parallelism()
                    .map_or(2, usize::from)
                    .min(MAX_PREPARE_THREADS),
            )
            .thread_name(|i| format!("wash-prepare-{i}"))
            // A panic fails that one preparation (its caller sees the
            // dropped reply); rayon's default would abort the process.
            .panic_handler(|_| {})
            .build()
            .map_err(|e| EngineError::PrepareThreads(e.to_string()))?;
        let settings = self.clone();
        #[cfg(feature = "wasi-tls")]
        let tls_provider = match self.tls_provider {
            Some(provider) => provider,
            None => Arc::new(crate::tls::wasi::RustlsTlsProvider::new()?),
        };
        debug!(pooling, max_instances = self.max_instances, "engine ready");
        Ok(Engine {
            inner: Arc::new(EngineInner {
                settings,
                wasmtime: engine,
                cache,
                fuel: self.fuel,
                pooling,
                max_instances: self.max_instances,
                loaded: Default::default(),
                loads: Default::default(),
                prepare,
                #[cfg(feature = "wasi-tls")]
                tls_provider,
                _ticker: ticker,
            }),
        })
    }

    fn on_demand_engine(&self) -> Result<wasmtime::Engine, EngineError> {
        wasmtime::Engine::new(&self.config(false)).map_err(|e| EngineError::Config {
            reason: format!("{e:#}"),
        })
    }
}

/// A configured wasmtime engine with its epoch ticker and compile cache.
/// Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    /// What it was built with, for [`Engine::synchronous`].
    settings: EngineBuilder,
    wasmtime: wasmtime::Engine,
    cache: Option<CompileCache>,
    fuel: Option<u64>,
    pooling: bool,
    max_instances: u32,
    /// Components loaded or being loaded, by digest: a component started
    /// again (another workload, a replica, a restart), or by many starts at
    /// once, is loaded once and its code shared. An entry lives as long as
    /// a workload holds its [`Loaded`].
    loaded: std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<Loaded>>>,
    /// Components compiled or read from the disk cache (not shared).
    loads: std::sync::atomic::AtomicU64,
    /// Where components are compiled, linked and pre-instantiated. A few
    /// long-lived threads, not tokio's blocking pool: what a start
    /// allocates lives as long as its workload, and an allocator with
    /// per-thread heaps (mimalloc, which `wash` uses) would otherwise
    /// scatter it over every thread a burst of starts ever brought up,
    /// each keeping partly used pages resident.
    prepare: rayon::ThreadPool,
    #[cfg(feature = "wasi-tls")]
    tls_provider: Arc<dyn crate::tls::wasi::TlsProvider>,
    // Last field: dropped after the engine handle it ticks.
    _ticker: EpochTicker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pooling", &self.inner.pooling)
            .field("cache_dir", &self.inner.cache.as_ref().map(|c| c.dir()))
            .finish()
    }
}

/// One component's loaded code, shared by every workload of its bytes. The
/// first start to ask loads it; starts that ask meanwhile wait for that load
/// instead of loading their own copy.
#[derive(Default)]
pub(crate) struct Loaded {
    /// The component and whether the load was a cache hit; or why the bytes
    /// do not compile.
    outcome: std::sync::OnceLock<Result<(WasmComponent, CacheOutcome), String>>,
}

/// A compiled component, ready to link.
#[derive(Clone)]
pub struct CompiledComponent {
    pub(crate) component: WasmComponent,
    /// Held while the component is in use: workloads of the same bytes
    /// share one copy of the compiled code while any of them holds this.
    pub(crate) shared: Arc<Loaded>,
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// Whether compilation was skipped thanks to the cache.
    pub cache: CacheOutcome,
}

impl Engine {
    /// An engine like this one but without concurrent (WASI P3) execution
    /// and with on-demand allocation, for stores that only ever run one
    /// synchronous call at a time (component plugins): a call into such a
    /// store skips the concurrent-call machinery, several times cheaper.
    pub(crate) fn synchronous(&self) -> Result<Engine, EngineError> {
        let mut settings = self.inner.settings.clone();
        settings.concurrency = false;
        settings.pooling = false;
        settings.build()
    }

    /// Whether stores support concurrent (WASI P3) execution.
    pub(crate) fn concurrent(&self) -> bool {
        self.inner.settings.concurrency
    }

    /// The underlying wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    /// Whether the pooling allocator is in use (it may have fallen back).
    pub fn uses_pooling_allocator(&self) -> bool {
        self.inner.pooling
    }

    /// Component instances that may be alive at once.
    pub fn max_instances(&self) -> u32 {
        self.inner.max_instances
    }

    /// Hits and misses of the compile cache (zero when there is none).
    pub fn cache_stats(&self) -> CacheStats {
        self.inner
            .cache
            .as_ref()
            .map(CompileCache::stats)
            .unwrap_or_default()
    }

    pub(crate) fn fuel(&self) -> Option<u64> {
        self.inner.fuel
    }

    #[cfg(feature = "wasi-tls")]
    pub(crate) fn tls_provider(&self) -> &Arc<dyn crate::tls::wasi::TlsProvider> {
        &self.inner.tls_provider
    }

    /// Validates and compiles a component, or loads it from the cache.
    ///
    /// CPU-heavy: call it from a blocking thread. `origin` names the source
    /// (a path or component name) in errors.
    pub fn compile(
        &self,
        bytes: &[u8],
        origin: &str,
        expected_digest: Option<&str>,
    ) -> Result<CompiledComponent, EngineError> {
        check_kind(bytes, origin)?;
        let digest_hex = sha256_hex(bytes);
        if let Some(expected) = expected_digest {
            let expected_hex = expected.strip_prefix("sha256:").unwrap_or(expected);
            if !expected_hex.eq_ignore_ascii_case(&digest_hex) {
                return Err(EngineError::DigestMismatch {
                    origin: origin.to_string(),
                    expected: expected.to_string(),
                    actual: digest_hex,
                });
            }
        }
        let digest = format!("sha256:{digest_hex}");
        let shared = self.loading(&digest);
        let mut loaded_here = false;
        let outcome = shared.outcome.get_or_init(|| {
            loaded_here = true;
            self.inner
                .loads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.compile_or_load(bytes, origin, &digest_hex)
        });
        match outcome {
            Ok((component, cache)) => {
                if !loaded_here {
                    debug!(%origin, %digest, "sharing an already loaded component");
                }
                Ok(CompiledComponent {
                    component: component.clone(),
                    shared: shared.clone(),
                    digest,
                    cache: match (loaded_here, self.inner.cache.is_some()) {
                        (true, _) => *cache,
                        (false, true) => CacheOutcome::Hit,
                        (false, false) => CacheOutcome::Disabled,
                    },
                })
            }
            Err(reason) => {
                // Do not keep a failure: the next start tries again.
                let mut loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
                if loaded
                    .get(&digest)
                    .is_some_and(|entry| std::ptr::eq(entry.as_ptr(), Arc::as_ptr(&shared)))
                {
                    loaded.remove(&digest);
                }
                Err(EngineError::Invalid {
                    origin: origin.to_string(),
                    reason: reason.clone(),
                })
            }
        }
    }

    /// The entry for `digest`: the one in use or being loaded, or a new one.
    fn loading(&self, digest: &str) -> Arc<Loaded> {
        let mut loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = loaded.get(digest).and_then(std::sync::Weak::upgrade) {
            return entry;
        }
        loaded.retain(|_, entry| entry.strong_count() > 0);
        let entry = Arc::new(Loaded::default());
        loaded.insert(digest.to_string(), Arc::downgrade(&entry));
        entry
    }

    /// Runs component preparation (compiling, linking, pre-instantiating:
    /// CPU-bound work whose results live as long as the workload) on the
    /// engine's preparation threads.
    pub(crate) async fn prepare<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PrepareFailed> {
        let (reply, answer) = futures::channel::oneshot::channel();
        self.inner.prepare.spawn(move || {
            let _ = reply.send(work());
        });
        answer.await.map_err(|_| PrepareFailed)
    }

    /// Distinct compiled components held by running workloads (workloads of
    /// the same bytes share one).
    pub fn loaded_components(&self) -> usize {
        let loaded = self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded
            .values()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|entry| matches!(entry.outcome.get(), Some(Ok(_))))
            .count()
    }

    /// Components compiled or read from the compile cache so far; a start
    /// that shares an already loaded component does not count.
    pub fn loads(&self) -> u64 {
        self.inner.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Compiles, or loads from the on-disk cache; an error is why the
    /// bytes do not compile.
    fn compile_or_load(
        &self,
        bytes: &[u8],
        origin: &str,
        digest_hex: &str,
    ) -> Result<(WasmComponent, CacheOutcome), String> {
        let Some(cache) = &self.inner.cache else {
            return Ok((self.compile_now(bytes, origin)?, CacheOutcome::Disabled));
        };

        let path = cache.artifact_path(digest_hex);
        if let Some(component) = self.load_cached(&path) {
            cache.record(CacheOutcome::Hit);
            debug!(%origin, path = %path.display(), "compile cache hit");
            return Ok((component, CacheOutcome::Hit));
        }
        let component = self.compile_now(bytes, origin)?;
        cache.record(CacheOutcome::Miss);
        match component.serialize() {
            Ok(artifact) => {
                if let Err(e) = cache.store(&path, &artifact) {
                    warn!(path = %path.display(), "cannot write compile cache: {e}");
                }
            }
            Err(e) => warn!(%origin, "cannot serialize compiled component: {e}"),
        }
        Ok((component, CacheOutcome::Miss))
    }

    fn compile_now(&self, bytes: &[u8], origin: &str) -> Result<WasmComponent, String> {
        let started = std::time::Instant::now();
        let component =
            WasmComponent::new(&self.inner.wasmtime, bytes).map_err(|e| format!("{e:#}"))?;
        info!(%origin, elapsed_ms = started.elapsed().as_millis() as u64, "compiled component");
        Ok(component)
    }

    fn load_cached(&self, path: &Path) -> Option<WasmComponent> {
        if !path.exists() {
            return None;
        }
        // SAFETY: the file is one this cache wrote (atomically, in a
        // directory the host owns) for exactly this engine configuration;
        // `deserialize_file` additionally checks the header and that the
        // artifact matches this engine's settings and wasmtime version.
        match unsafe { WasmComponent::deserialize_file(&self.inner.wasmtime, path) } {
            Ok(component) => Some(component),
            Err(e) => {
                warn!(path = %path.display(), "discarding unusable compile cache entry: {e}");
                let _ = std::fs::remove_file(path);
                None
            }
        }
    }
}

/// Rejects non-wasm bytes and core modules with errors a user can act on.
fn check_kind(bytes: &[u8], origin: &str) -> Result<(), EngineError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(EngineError::NotWasm {
            origin: origin.to_string(),
        });
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(EngineError::CoreModule {
            origin: origin.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        EngineBuilder::new().with_max_instances(4).build().unwrap()
    }

    #[test]
    fn rejects_non_wasm_naming_the_origin() {
        let err = engine().compile(b"hello", "demo.wasm", None).err().unwrap();
        assert!(matches!(err, EngineError::NotWasm { .. }));
        assert!(
            err.to_string()
                .starts_with("demo.wasm: not a WebAssembly binary")
        );
    }

    #[test]
    fn rejects_core_module() {
        // The smallest core module: magic + version 1.
        let err = engine()
            .compile(b"\0asm\x01\0\0\0", "core.wasm", None)
            .err()
            .unwrap();
        assert!(matches!(err, EngineError::CoreModule { .. }), "{err}");
    }

    #[test]
    fn rejects_truncated_component() {
        // Component header (version 0x0d, layer 1) followed by garbage.
        let err = engine()
            .compile(b"\0asm\x0d\0\x01\0\xff\xff", "broken.wasm", None)
            .err()
            .unwrap();
        assert!(matches!(err, EngineError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("broken.wasm"));
    }

    #[test]
    fn digest_mismatch_is_reported() {
        let err = engine()
            .compile(b"\0asm\x0d\0\x01\0", "x.wasm", Some("sha256:00"))
            .err()
            .unwrap();
        assert!(matches!(err, EngineError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn pooling_is_used_when_address_space_allows() {
        assert!(engine().uses_pooling_allocator());
    }
}
