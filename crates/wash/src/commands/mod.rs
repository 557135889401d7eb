//! One module per subcommand; each `run` turns flags into library calls.

pub mod build;
pub mod completion;
pub mod config;
pub mod dev;
pub mod host;
pub mod inspect;
pub mod new;
pub mod oci;
pub mod workload;

use std::path::PathBuf;

use crate::cli::GlobalArgs;

/// The project directory: `-C`, else the current directory.
pub fn project_dir(global: &GlobalArgs) -> PathBuf {
    global
        .project_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
