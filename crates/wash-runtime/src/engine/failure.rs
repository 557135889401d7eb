//! What went wrong with a guest, classified once and said in one line.

use std::sync::Arc;

use super::limits::{DeadlineExceeded, MemoryLimitExceeded};

/// The kind of a guest failure; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Ran past its deadline (504).
    Deadline,
    /// Grew memory past its limit (500).
    MemoryLimit,
    /// Trapped: panic, stack overflow, out-of-bounds access... (500).
    Trap,
    /// Anything else, e.g. returned no response (500).
    Other,
}

/// A classified guest failure.
#[derive(Debug, Clone)]
pub(crate) struct GuestFailure {
    pub(crate) kind: FailureKind,
    /// One line for the log.
    pub(crate) detail: Arc<str>,
}

impl GuestFailure {
    /// Classifies an error from wasmtime, if it names a limit or a trap.
    pub(crate) fn recognize(error: &wasmtime::Error) -> Option<Self> {
        for cause in error.chain() {
            let (kind, detail) = if let Some(limit) = cause.downcast_ref::<MemoryLimitExceeded>() {
                (FailureKind::MemoryLimit, limit.to_string())
            } else if cause.is::<DeadlineExceeded>() {
                (FailureKind::Deadline, DeadlineExceeded.to_string())
            } else if let Some(trap) = cause.downcast_ref::<wasmtime::Trap>() {
                (FailureKind::Trap, trap.to_string())
            } else {
                continue;
            };
            return Some(Self {
                kind,
                detail: detail.into(),
            });
        }
        None
    }

    /// A request ran past its deadline.
    pub(crate) fn deadline() -> Self {
        Self {
            kind: FailureKind::Deadline,
            detail: DeadlineExceeded.to_string().into(),
        }
    }

    /// Classifies any error; unrecognized ones become [`FailureKind::Other`].
    pub(crate) fn of(error: &wasmtime::Error) -> Self {
        Self::recognize(error).unwrap_or_else(|| Self {
            kind: FailureKind::Other,
            detail: one_line(error).into(),
        })
    }
}

/// The error chain of `error` on one line.
pub(crate) fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// One line describing a guest failure: the limit or trap when there is
/// one, else the whole error chain.
pub(crate) fn describe_error(error: &wasmtime::Error) -> String {
    GuestFailure::of(error).detail.to_string()
}
