//! One module per subcommand; each `run` turns flags into library calls.

pub mod build;
pub mod completion;
pub mod config;
pub mod dev;
pub mod host;
pub mod inspect;
pub mod new;
pub mod oci;
pub mod wit;
pub mod workload;

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::GlobalArgs;

/// The project directory: `-C`, else the current directory.
pub fn project_dir(global: &GlobalArgs) -> PathBuf {
    global
        .project_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are in place
/// when this returns, not when the future is first polled: a signal that
/// arrives while a command is still starting is kept for it, instead of
/// killing the process with the default action.
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot handle Ctrl-C (SIGINT)")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
