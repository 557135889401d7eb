//! `wash wit build | publish | fetch`: WIT packages as OCI artifacts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use wash_runtime::types::Credentials;

use super::oci::Registry;
use crate::build::Project;
use crate::cli::GlobalArgs;
use crate::output;
use crate::wit::package::{self, Provenance, Resolved};
use crate::wit::registry::{self, Access, Outcome};
use crate::wit::{fetch, naming};

#[derive(Debug, Args)]
pub struct WitArgs {
    #[command(subcommand)]
    pub command: WitCommand,
}

#[derive(Debug, Subcommand)]
pub enum WitCommand {
    /// Validate a WIT package and write it as a binary package with
    /// provenance metadata (`<namespace>_<name>@<version>.wasm`).
    Build(BuildArgs),
    /// Push a WIT package (a built `.wasm`, or a directory built first) to
    /// an OCI registry. Stable versions are immutable.
    Publish(PublishArgs),
    /// Fetch the packages the project's WIT imports into `wit/deps`, and pin
    /// them in `wkg.lock`.
    Fetch(FetchArgs),
}

/// Provenance recorded in a built package; git fills in source and
/// revision when the directory is in a checkout.
#[derive(Debug, Clone, Args)]
pub struct ProvenanceArgs {
    /// Source repository URL (default: the git remote `origin`).
    #[arg(long)]
    pub source: Option<String>,
    /// Source revision (default: the git commit checked out).
    #[arg(long)]
    pub revision: Option<String>,
    /// SPDX license expression, e.g. `Apache-2.0`.
    #[arg(long)]
    pub license: Option<String>,
    /// Authors.
    #[arg(long)]
    pub author: Option<String>,
    /// A one-line description.
    #[arg(long)]
    pub description: Option<String>,
    /// Homepage URL.
    #[arg(long)]
    pub homepage: Option<String>,
}

impl ProvenanceArgs {
    fn given(&self) -> Provenance {
        Provenance {
            source: self.source.clone(),
            revision: self.revision.clone(),
            licenses: self.license.clone(),
            authors: self.author.clone(),
            description: self.description.clone(),
            homepage: self.homepage.clone(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The package's directory (default: the project's `wit/`).
    pub dir: Option<PathBuf>,
    /// Directory of dependency packages (default: `DIR/deps`, or the
    /// siblings of a package that sits in a `deps` directory).
    #[arg(long)]
    pub deps: Option<PathBuf>,
    /// Where to write the package (default: `<namespace>_<name>@<version>.wasm`
    /// in the current directory).
    #[arg(long)]
    pub output_file: Option<PathBuf>,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A built package (`.wasm`) or a package directory to build.
    pub package: PathBuf,
    /// The registry, with an optional path: `ghcr.io/acme`,
    /// `http://127.0.0.1:5000` (default: from `wit.registries`).
    #[arg(long)]
    pub registry: Option<String>,
    /// Replace a pre-release version that holds other content.
    #[arg(long)]
    pub force: bool,
    /// Dependency packages, when building a directory.
    #[arg(long)]
    pub deps: Option<PathBuf>,
    #[command(flatten)]
    pub access: Registry,
    #[command(flatten)]
    pub provenance: ProvenanceArgs,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Resolve locked packages again and move the lock to what the
    /// registries hold now.
    #[arg(long)]
    pub update: bool,
}

pub async fn run(global: &GlobalArgs, args: WitArgs) -> Result<()> {
    match args.command {
        WitCommand::Build(args) => build(global, args),
        WitCommand::Publish(args) => publish(global, args).await,
        WitCommand::Fetch(args) => fetch_deps(global, args).await,
    }
}

#[derive(Serialize)]
struct Built {
    package: String,
    file: String,
    digest: String,
    provenance: Provenance,
}

/// Resolves and encodes the package in `dir` with its provenance.
fn build_dir(
    dir: &Path,
    deps: Option<&Path>,
    provenance: &ProvenanceArgs,
) -> Result<(Resolved, Vec<u8>, Provenance)> {
    let resolved = package::resolve_dir(dir, deps)?;
    let version = resolved.name().version.as_ref().map(ToString::to_string);
    let provenance = package::provenance_for(dir, provenance.given(), version);
    let bytes = package::encode(&resolved, &provenance)?;
    Ok((resolved, bytes, provenance))
}

fn default_wit_dir(global: &GlobalArgs) -> Result<PathBuf> {
    let project = Project::open(&super::project_dir(global), global.user_config.as_deref())?;
    Ok(fetch::wit_dir(&project))
}

fn build(global: &GlobalArgs, args: BuildArgs) -> Result<()> {
    let dir = match args.dir {
        Some(dir) => dir,
        None => default_wit_dir(global)?,
    };
    let (resolved, bytes, provenance) = build_dir(&dir, args.deps.as_deref(), &args.provenance)?;
    let file = args
        .output_file
        .unwrap_or_else(|| PathBuf::from(naming::package_file_name(resolved.name())));
    std::fs::write(&file, &bytes).with_context(|| format!("cannot write {}", file.display()))?;
    let built = Built {
        package: resolved.name().to_string(),
        file: file.display().to_string(),
        digest: crate::wit::sha256_digest(&bytes),
        provenance,
    };
    output::emit(
        global.output,
        || {
            format!(
                "Built {} to {} ({})",
                built.package, built.file, built.digest
            )
        },
        &built,
    );
    Ok(())
}

#[derive(Serialize)]
struct Published {
    package: String,
    reference: String,
    digest: String,
    outcome: Outcome,
}

async fn publish(global: &GlobalArgs, args: PublishArgs) -> Result<()> {
    let path = &args.package;
    let (resolved, bytes, provenance) = if path.is_dir() {
        build_dir(path, args.deps.as_deref(), &args.provenance)?
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let resolved = package::decode(&bytes).with_context(|| path.display().to_string())?;
        let provenance = package::provenance_of(&bytes)?;
        (resolved, bytes, provenance)
    };
    let name = resolved.name().clone();
    let Some(version) = name.version.clone() else {
        bail!("{name} has no version: a published package needs one (`package {name}@0.1.0;`)");
    };
    let location = match &args.registry {
        Some(registry) => naming::Location::parse(registry, None)?,
        None => {
            let project =
                Project::open(&super::project_dir(global), global.user_config.as_deref())?;
            naming::location_for(&project.config.wit, &name.namespace)?.with_context(|| {
                format!(
                    "no registry for the `{}` namespace: pass --registry or add one to \
                     `wit.registries`",
                    name.namespace
                )
            })?
        }
    };
    let reference = location.reference(&name, &version);
    let credentials = match (&args.access.user, &args.access.password) {
        (Some(user), Some(password)) => Some(Credentials::new(user, password)),
        (None, None) => None,
        _ => bail!("give both --user and --password, or neither"),
    };
    let access = Access {
        insecure: if location.insecure || args.access.insecure {
            vec![location.host.clone()]
        } else {
            Vec::new()
        },
        ca_files: args.access.ca_path.iter().cloned().collect(),
    };
    let scratch = tempfile::tempdir()?;
    let oci = access.client(scratch.path().to_path_buf())?;
    let spinner = output::spinner(format!(
        "Publishing {name} ({:.1} kB) to {reference}",
        bytes.len() as f64 / 1e3
    ));
    let published = registry::publish(
        &oci,
        &reference,
        &resolved,
        bytes,
        &provenance,
        args.force,
        credentials.as_ref(),
    )
    .await;
    spinner.finish_and_clear();
    let (outcome, digest) = published?;
    let done = Published {
        package: name.to_string(),
        reference: reference.clone(),
        digest: digest.clone(),
        outcome,
    };
    output::emit(
        global.output,
        || match outcome {
            Outcome::Published => format!("Published {name} to {reference} ({digest})"),
            Outcome::Replaced => {
                format!("Replaced pre-release {name} at {reference} ({digest})")
            }
            Outcome::Unchanged => format!(
                "{reference} already holds this exact package ({digest}); nothing to publish"
            ),
        },
        &done,
    );
    Ok(())
}

async fn fetch_deps(global: &GlobalArgs, args: FetchArgs) -> Result<()> {
    let project = Project::open(&super::project_dir(global), global.user_config.as_deref())?;
    let report = fetch::fetch(&project, args.update).await?;
    output::emit(
        global.output,
        || {
            if report.fetched.is_empty() {
                return "WIT dependencies are up to date".to_string();
            }
            report
                .fetched
                .iter()
                .map(|f| format!("{} -> {}", f.package, f.dir))
                .collect::<Vec<_>>()
                .join("\n")
        },
        &report,
    );
    Ok(())
}
