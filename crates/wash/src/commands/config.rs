//! `wash config init|show|info|validate|cleanup`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::config::{self, Format, Locations, example, validate};
use crate::output::emit;
use crate::paths;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write `.wash/config.<format>` in the project.
    Init {
        /// File format.
        #[arg(long, value_enum, default_value = "yaml")]
        format: Format,
        /// Fill every section with illustrative values.
        #[arg(long)]
        example: bool,
        /// Replace an existing config file.
        #[arg(long)]
        force: bool,
        /// Deprecated and without effect: the project's `.wash/` is always
        /// written.
        #[arg(long)]
        global: bool,
    },
    /// Show the merged configuration and where each value came from.
    Show,
    /// Show the paths wash uses.
    Info,
    /// Check the merged configuration; every problem is reported.
    Validate {
        /// Validate this file instead of the project's config file.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Remove wash's cache and/or data directories.
    Cleanup {
        /// The cache directory (compiled components, pulled images).
        #[arg(long)]
        cache: bool,
        /// The data directory.
        #[arg(long)]
        data: bool,
        /// Both.
        #[arg(long)]
        all: bool,
        /// List what would be removed, with sizes; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(global: &GlobalArgs, args: ConfigArgs) -> Result<()> {
    let project = super::project_dir(global);
    // Absolute, so every path printed says exactly where.
    let project = project.canonicalize().unwrap_or(project);
    let locations = Locations::new(&project, global.user_config.clone());
    match args.command {
        ConfigCommand::Init {
            format,
            example,
            force,
            global: deprecated_global,
        } => init(
            global.output,
            &project,
            format,
            example,
            force,
            deprecated_global,
        ),
        ConfigCommand::Show => show(global.output, &locations),
        ConfigCommand::Info => info(global.output, &locations),
        ConfigCommand::Validate { file } => {
            let mut locations = locations;
            if let Some(file) = file {
                if !file.is_file() {
                    bail!("{} does not exist", file.display());
                }
                locations.project_override = Some(file);
            }
            validate_config(global.output, &locations)
        }
        ConfigCommand::Cleanup {
            cache,
            data,
            all,
            dry_run,
        } => cleanup(global.output, cache || all, data || all, dry_run),
    }
}

fn init(
    output: OutputFormat,
    project: &Path,
    format: Format,
    example: bool,
    force: bool,
    deprecated_global: bool,
) -> Result<()> {
    if deprecated_global {
        eprintln!(
            "warning: `--global` is deprecated and has no effect; the project's .wash/ is written"
        );
    }
    let dir = project.join(".wash");
    let path = dir.join(format!("config.{}", format.extension()));
    let existing = config::project_files(project);
    if !existing.is_empty() && !force {
        bail!(
            "{} already exists; pass --force to replace it",
            existing[0].display()
        );
    }
    let config = if example {
        example::example()
    } else {
        example::minimal()
    };
    let text = format
        .render(&config)
        .map_err(|e| anyhow::anyhow!("cannot write the config as {}: {e}", format.extension()))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    // One config file in .wash/: the replaced ones would shadow or be
    // shadowed by the new one.
    for old in existing.iter().filter(|old| **old != path) {
        std::fs::remove_file(old).with_context(|| format!("cannot remove {}", old.display()))?;
    }
    emit(
        output,
        || format!("Wrote {}", path.display()),
        &serde_json::json!({"path": path}),
    );
    Ok(())
}

fn show(output: OutputFormat, locations: &Locations) -> Result<()> {
    let loaded = config::load(locations)?;
    #[derive(Serialize)]
    struct Shown<'a> {
        files: &'a [PathBuf],
        config: &'a serde_json::Value,
        sources: &'a std::collections::BTreeMap<String, PathBuf>,
    }
    emit(
        output,
        || {
            if loaded.files.is_empty() {
                return "No config files; wash uses its defaults.".to_string();
            }
            let mut lines = Vec::new();
            for (key, file) in &loaded.origins {
                let value = lookup(&loaded.document, key)
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                lines.push(format!("{key} = {value}    # {}", file.display()));
            }
            lines.join("\n")
        },
        &Shown {
            files: &loaded.files,
            config: &loaded.document,
            sources: &loaded.origins,
        },
    );
    Ok(())
}

/// The value at a dotted key path.
fn lookup<'a>(document: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    key.split('.')
        .try_fold(document, |value, part| value.get(part))
}

fn info(output: OutputFormat, locations: &Locations) -> Result<()> {
    let user = locations
        .user_file()
        .or_else(|| config::user_config_dir().map(|dir| dir.join(config::CONFIG_FILES[0])));
    let project = locations.project_file().unwrap_or_else(|| {
        locations
            .project
            .join(".wash")
            .join(config::CONFIG_FILES[0])
    });
    let entries = [
        ("user config", user),
        ("project config", Some(project)),
        ("cache", Some(paths::cache_dir())),
        ("compiled components", Some(paths::compile_cache_dir())),
        ("pulled images", Some(paths::oci_cache_dir())),
        ("data", Some(paths::data_dir())),
    ];
    #[derive(Serialize)]
    struct Entry {
        name: &'static str,
        path: Option<PathBuf>,
        exists: bool,
    }
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|(name, path)| Entry {
            name,
            exists: path.as_ref().is_some_and(|p| p.exists()),
            path,
        })
        .collect();
    emit(
        output,
        || {
            entries
                .iter()
                .map(|e| {
                    let path = e
                        .path
                        .as_ref()
                        .map_or("(none)".to_string(), |p| p.display().to_string());
                    let missing = if e.exists { "" } else { " (not there yet)" };
                    format!("{:<20} {path}{missing}", e.name)
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        &entries,
    );
    Ok(())
}

fn validate_config(output: OutputFormat, locations: &Locations) -> Result<()> {
    let loaded = config::load_all(locations);
    let problems = validate::validate(&loaded);
    let (files, warnings) = (loaded.files, loaded.warnings);
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    #[derive(Serialize)]
    struct Report {
        valid: bool,
        files: Vec<PathBuf>,
        warnings: Vec<String>,
        errors: Vec<String>,
    }
    let report = Report {
        valid: problems.is_empty(),
        files,
        warnings,
        errors: problems.iter().map(ToString::to_string).collect(),
    };
    if problems.is_empty() {
        emit(
            output,
            || {
                if report.files.is_empty() {
                    "No config files to validate; the defaults are valid.".to_string()
                } else {
                    let names: Vec<_> = report
                        .files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect();
                    format!("Valid: {}", names.join(", "))
                }
            },
            &report,
        );
        return Ok(());
    }
    if output == OutputFormat::Json {
        emit(output, String::new, &report);
    }
    bail!(
        "{} problem{} in the configuration:\n  {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        report.errors.join("\n  ")
    )
}

fn cleanup(output: OutputFormat, cache: bool, data: bool, dry_run: bool) -> Result<()> {
    if !cache && !data {
        bail!("say what to remove: --cache, --data or --all (add --dry-run to see sizes first)");
    }
    let mut targets = Vec::new();
    if cache {
        targets.push(("cache", paths::cache_dir()));
    }
    if data {
        targets.push(("data", paths::data_dir()));
    }
    #[derive(Serialize)]
    struct Cleaned {
        name: &'static str,
        path: PathBuf,
        bytes: u64,
        size: String,
        removed: bool,
    }
    let mut report = Vec::new();
    for (name, path) in targets {
        let bytes = dir_size(&path);
        let exists = path.exists();
        if exists && !dry_run {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
        report.push(Cleaned {
            name,
            size: humansize::format_size(bytes, humansize::BINARY),
            path,
            bytes,
            removed: exists && !dry_run,
        });
    }
    emit(
        output,
        || {
            report
                .iter()
                .map(|c| {
                    let verb = if !c.path.exists() && !c.removed {
                        "nothing at"
                    } else if dry_run {
                        "would remove"
                    } else {
                        "removed"
                    };
                    format!("{verb} {} ({}, {})", c.path.display(), c.name, c.size)
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        &report,
    );
    Ok(())
}

/// Bytes under `path`, not following symlinks; 0 when it is not there.
fn dir_size(path: &Path) -> u64 {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !metadata.is_dir() {
        return metadata.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|entry| dir_size(&entry.path())).sum())
        .unwrap_or(0)
}
