//! Per-instance resource limits and the typed errors they raise.
//!
//! A guest that grows memory past its limit traps with
//! [`MemoryLimitExceeded`], so the request path can name the cause in its one
//! log line instead of reporting a generic trap.

use std::time::Instant;

use wasmtime::ResourceLimiter;

/// Largest table a guest may grow (function-pointer tables of big runtimes
/// stay far below this).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The guest tried to grow its memory past the component's limit.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("memory limit of {limit_mb} MiB exceeded (the guest asked for {requested_mb} MiB)")]
pub struct MemoryLimitExceeded {
    /// The limit, in MiB.
    pub limit_mb: usize,
    /// What the guest asked for, in MiB.
    pub requested_mb: usize,
}

/// The guest ran past its request deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("request deadline exceeded")]
pub struct DeadlineExceeded;

/// Memory and table limits of one store.
pub(crate) struct StoreLimits {
    memory_limit: usize,
}

impl StoreLimits {
    pub(crate) fn new(memory_limit: usize) -> Self {
        Self { memory_limit }
    }
}

impl ResourceLimiter for StoreLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit_mb: self.memory_limit >> 20,
                requested_mb: desired.div_ceil(1 << 20),
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The deadline of the work currently running in a store; checked on every
/// epoch tick.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    pub(crate) fn set(&mut self, at: Instant) {
        self.0 = Some(at);
    }

    pub(crate) fn passed(&self, now: Instant) -> bool {
        self.0.is_some_and(|at| now >= at)
    }
}
