//! `wash oci push|pull`: components to and from OCI registries.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::{Args, Subcommand};
use serde::Serialize;
use wash_runtime::oci::{OciClient, OciConfig};
use wash_runtime::types::{Credentials, PullPolicy};

use crate::cli::GlobalArgs;
use crate::{output, paths};

#[derive(Debug, Args)]
pub struct OciArgs {
    #[command(subcommand)]
    pub command: OciCommand,
}

/// Registry access flags.
#[derive(Debug, Args)]
pub struct Registry {
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// User name.
    #[arg(short = 'u', long = "user", env = "WASH_REG_USER")]
    pub user: Option<String>,
    /// Password.
    #[arg(
        short = 'p',
        long = "password",
        env = "WASH_REG_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Extra CA certificate (PEM) to trust.
    #[arg(long)]
    pub ca_path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum OciCommand {
    /// Push a component to a registry.
    Push {
        /// Where to push, e.g. `registry.example.com/team/hello:1.0`.
        reference: String,
        /// The component (.wasm).
        file: PathBuf,
        #[command(flatten)]
        registry: Registry,
    },
    /// Pull a component from a registry.
    Pull {
        /// What to pull.
        reference: String,
        /// Where to write it (default: `<name>.wasm` here).
        file: Option<PathBuf>,
        #[command(flatten)]
        registry: Registry,
    },
}

#[derive(Serialize)]
struct Done {
    reference: String,
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

fn client(
    reference: &str,
    registry: &Registry,
    cache: PathBuf,
) -> Result<(OciClient, Option<Credentials>)> {
    let host = reference.split('/').next().unwrap_or_default().to_string();
    let config = OciConfig {
        insecure_registries: if registry.insecure {
            vec![host]
        } else {
            Vec::new()
        },
        ca_files: registry.ca_path.iter().cloned().collect(),
        ..OciConfig::new(cache)
    };
    let credentials = match (&registry.user, &registry.password) {
        (Some(user), Some(password)) => Some(Credentials::new(user, password)),
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("give both --user and --password, or neither")
        }
        (None, None) => None,
    };
    Ok((OciClient::new(config)?, credentials))
}

pub async fn run(global: &GlobalArgs, args: OciArgs) -> Result<()> {
    match args.command {
        OciCommand::Push {
            reference,
            file,
            registry,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if !bytes.starts_with(b"\0asm") {
                anyhow::bail!("{}: not a WebAssembly component", file.display());
            }
            let (oci, credentials) = client(&reference, &registry, paths::oci_cache_dir())?;
            let spinner = output::spinner(format!(
                "Pushing {} ({:.1} MB) to {reference}",
                file.display(),
                bytes.len() as f64 / 1e6
            ));
            let pushed = oci
                .push(&reference, Bytes::from(bytes), credentials.as_ref())
                .await;
            spinner.finish_and_clear();
            let (_, digest) = pushed?;
            let done = Done {
                reference: reference.clone(),
                digest: digest.clone(),
                file: None,
            };
            output::emit(
                global.output,
                || format!("Pushed {reference} ({digest})"),
                &done,
            );
        }
        OciCommand::Pull {
            reference,
            file,
            registry,
        } => {
            // A private cache: an explicit pull always reaches the registry.
            let scratch = tempfile::tempdir()?;
            let (oci, credentials) = client(&reference, &registry, scratch.path().to_path_buf())?;
            let bar = output::progress_bar(&format!("Pulling {reference}"));
            let pulled = oci
                .pull(
                    &reference,
                    credentials.as_ref(),
                    PullPolicy::Always,
                    &|done, total| {
                        if let Some(total) = total {
                            bar.set_length(total);
                        }
                        bar.set_position(done);
                    },
                )
                .await;
            bar.finish_and_clear();
            let pulled = pulled?;
            let file = file.unwrap_or_else(|| {
                let name = reference
                    .rsplit('/')
                    .next()
                    .and_then(|last| last.split([':', '@']).next())
                    .unwrap_or("component");
                PathBuf::from(format!("{name}.wasm"))
            });
            std::fs::write(&file, &pulled.bytes)
                .with_context(|| format!("cannot write {}", file.display()))?;
            let done = Done {
                reference: reference.clone(),
                digest: pulled.digest.clone(),
                file: Some(file.display().to_string()),
            };
            output::emit(
                global.output,
                || {
                    format!(
                        "Pulled {reference} to {} ({})",
                        file.display(),
                        pulled.digest
                    )
                },
                &done,
            );
        }
    }
    Ok(())
}
