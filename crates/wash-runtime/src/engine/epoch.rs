//! The one epoch ticker thread of an engine.
//!
//! Every store of the engine checks its deadline against this shared clock,
//! so deadlines cost no timer per request. The thread stops when the engine
//! is dropped.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Ticks `engine`'s epoch every `interval` until dropped.
pub(crate) struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn spawn(engine: wasmtime::EngineWeak, interval: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wash-epoch".into())
            .spawn(move || {
                // `recv_timeout` doubles as the sleep and the stop signal, so
                // dropping the ticker ends the thread without waiting a tick.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only sleeps and increments; joining cannot block long.
            let _ = thread.join();
        }
    }
}
