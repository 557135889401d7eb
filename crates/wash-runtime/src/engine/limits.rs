//! Per-instance resource limits and the typed errors they raise.
//!
//! A guest that grows memory past its limit traps with
//! [`MemoryLimitExceeded`], so the request path can name the cause in its one
//! log line instead of reporting a generic trap.

use std::time::{Duration, Instant};

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
pub(crate) enum Deadline {
    /// None set.
    #[default]
    Unset,
    /// Due at this instant.
    At(Instant),
    /// Due this long after the first epoch tick that sees it. Setting it
    /// reads no clock, which matters for work as short as a plugin call
    /// (most end before any tick); it is at most one tick late.
    AfterTick(Duration),
}

impl Deadline {
    pub(crate) fn set(&mut self, at: Instant) {
        *self = Self::At(at);
    }

    pub(crate) fn set_after(&mut self, timeout: Duration) {
        *self = Self::AfterTick(timeout);
    }

    /// On an epoch tick at `now`: whether the deadline passed.
    pub(crate) fn tick(&mut self, now: Instant) -> bool {
        match *self {
            Self::Unset => false,
            Self::At(at) => now >= at,
            Self::AfterTick(timeout) => {
                *self = Self::At(now + timeout);
                timeout.is_zero()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_set_after_counts_from_the_first_tick_that_sees_it() {
        let timeout = Duration::from_millis(50);
        let mut deadline = Deadline::default();
        let start = Instant::now();
        assert!(!deadline.tick(start + Duration::from_secs(3600)), "unset");

        deadline.set_after(timeout);
        // The first tick fixes it `timeout` from then: never early.
        assert!(!deadline.tick(start));
        assert!(!deadline.tick(start + timeout - Duration::from_millis(1)));
        assert!(deadline.tick(start + timeout));

        // Set again for the next call, it counts from its own first tick.
        deadline.set_after(timeout);
        let later = start + Duration::from_secs(10);
        assert!(!deadline.tick(later));
        assert!(deadline.tick(later + timeout));

        deadline.set_after(Duration::ZERO);
        assert!(deadline.tick(later), "a zero timeout is due at once");

        deadline.set(start + timeout);
        assert!(!deadline.tick(start));
        assert!(deadline.tick(start + timeout));
    }
}
