//! One module per subcommand; each `run` turns flags into library calls.

pub mod build;
pub mod dev;
pub mod inspect;

use std::path::PathBuf;

use crate::cli::GlobalArgs;

/// The project directory: `-C`, else the current directory.
pub fn project_dir(global: &GlobalArgs) -> PathBuf {
    global
        .project_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
}
