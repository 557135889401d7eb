//! The `runtime-operator` binary.

use std::io::Write;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Kubernetes operator for wash hosts.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (`runtime-operator crds |
    /// kubectl apply -f -`).
    Crds,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Crds => {
            let yaml = runtime_operator::crd::yaml()?;
            std::io::stdout()
                .write_all(yaml.as_bytes())
                .context("cannot write to stdout")?;
        }
    }
    Ok(())
}
