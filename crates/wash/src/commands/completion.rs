//! `wash completion <shell>`: completions generated from the clap
//! definition, so they never drift from the real flags.

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionArgs) -> Result<()> {
    let mut command = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut command, "wash", &mut std::io::stdout());
    Ok(())
}
