//! `wash build`: build the project's component and print where it is.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::build::{self, Project};
use crate::cli::GlobalArgs;
use crate::output;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Do not fetch WIT dependencies that `wit/deps` lacks.
    #[arg(long)]
    pub skip_fetch: bool,
}

#[derive(Serialize)]
struct Built {
    artifact: String,
}

pub async fn run(global: &GlobalArgs, args: BuildArgs) -> Result<()> {
    let project = Project::open(&super::project_dir(global), global.user_config.as_deref())?;
    let artifact = build::build_with(&project, args.skip_fetch).await?;
    let artifact = artifact.display().to_string();
    output::emit(
        global.output,
        || artifact.clone(),
        &Built {
            artifact: artifact.clone(),
        },
    );
    Ok(())
}
