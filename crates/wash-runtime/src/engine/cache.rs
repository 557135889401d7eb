//! On-disk cache of compiled components.
//!
//! Keyed by the component's SHA-256 digest and a hash of every engine setting
//! that affects machine code, so a second start of the same component on a
//! compatible engine skips Cranelift entirely. Artifacts are stored
//! uncompressed so `Component::deserialize_file` can map them straight from
//! disk (wasmtime's own cache compresses, which costs a copy per load).

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Whether a compile was served from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a previously compiled artifact; Cranelift did not run.
    Hit,
    /// Compiled now (and stored, when a cache is configured).
    Miss,
    /// No cache is configured for this engine.
    Disabled,
}

/// Counters of a [`CompileCache`], for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Artifacts loaded from disk.
    pub hits: u64,
    /// Components compiled because no usable artifact existed.
    pub misses: u64,
}

/// A directory of compiled components for one engine configuration.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut hasher = Sha256Hasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        // The hash covers compiler settings; the version guards the format.
        "wasmtime-48.0.8".hash(&mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..12]);
        Ok(Self {
            dir,
            engine_key,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the artifact for a component with this digest (hex).
    pub(crate) fn artifact_path(&self, digest_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{digest_hex}-{}.cwasm", self.engine_key))
    }

    pub(crate) fn record(&self, outcome: CacheOutcome) {
        match outcome {
            CacheOutcome::Hit => self.hits.fetch_add(1, Ordering::Relaxed),
            CacheOutcome::Miss => self.misses.fetch_add(1, Ordering::Relaxed),
            CacheOutcome::Disabled => 0,
        };
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Writes an artifact atomically: a reader sees the old file, no file, or
    /// the whole new file, never a torn one.
    pub(crate) fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_data()?;
        tmp.persist(path).map(drop).map_err(|e| e.error)
    }
}

/// Adapts SHA-256 to `std::hash::Hasher`, so the engine's compatibility hash
/// becomes a key that is stable across processes (unlike `DefaultHasher`).
#[derive(Default)]
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
