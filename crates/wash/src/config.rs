//! The project configuration file, `.wash/config.{yaml,yml,json,toml}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// File names tried, in order, inside a project's `.wash/` directory.
pub const CONFIG_FILES: [&str; 4] = ["config.yaml", "config.yml", "config.json", "config.toml"];

/// The parts of the configuration wash reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub build: BuildConfig,
    pub dev: DevConfig,
}

/// How to build the project's component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BuildConfig {
    /// A shell command that builds the component (instead of cargo).
    pub command: Option<String>,
    /// Environment for the build command.
    pub env: BTreeMap<String, String>,
    /// Where the built component lands, relative to the project.
    pub component_path: Option<PathBuf>,
}

/// `wash dev` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DevConfig {
    /// Address to serve on.
    pub address: Option<String>,
    /// Key-value in Redis at this URL.
    pub wasi_keyvalue_redis_url: Option<String>,
    /// Key-value in NATS JetStream KV at this URL.
    pub wasi_keyvalue_nats_url: Option<String>,
    /// Key-value in files under this directory.
    pub wasi_keyvalue_path: Option<PathBuf>,
    /// Blobs in files under this directory.
    pub wasi_blobstore_path: Option<PathBuf>,
    /// Messaging over NATS at this URL.
    pub data_nats_url: Option<String>,
}

/// The project's config file, if it has one.
pub fn project_file(project: &Path) -> Option<PathBuf> {
    CONFIG_FILES
        .iter()
        .map(|name| project.join(".wash").join(name))
        .find(|path| path.is_file())
}

/// Loads the project's configuration (defaults when there is no file).
pub fn load(project: &Path) -> Result<Config> {
    match project_file(project) {
        Some(path) => parse_file(&path),
        None => Ok(Config::default()),
    }
}

fn parse_file(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => serde_norway::from_str(&text).map_err(anyhow::Error::from),
        Some("json") => serde_json::from_str(&text).map_err(anyhow::Error::from),
        Some("toml") => toml::from_str(&text).map_err(anyhow::Error::from),
        _ => bail!("{}: unknown config format", path.display()),
    };
    parsed.with_context(|| format!("invalid config file {}", path.display()))
}
