//! Building a project's component: cargo for Rust projects, or the
//! project's own `build.command`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::OnceCell;

use crate::config::{self, Config, Locations};

/// The Rust target components are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A project directory and its configuration.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
}

impl Project {
    /// Opens the project in `dir`, its config merged over the user's
    /// (`user_config` overrides where that is).
    pub fn open(dir: &Path, user_config: Option<&Path>) -> Result<Self> {
        let root = dir
            .canonicalize()
            .with_context(|| format!("project directory {} does not exist", dir.display()))?;
        let loaded = config::load(&Locations::new(&root, user_config.map(Path::to_path_buf)))?;
        Ok(Self {
            root,
            config: loaded.config,
        })
    }
}

/// Fetches the WIT packages the project imports and `wit/deps` lacks,
/// unless `wit.skip_fetch` (or `skip`) says not to.
pub async fn fetch_missing_wit(project: &Project, skip: bool) -> Result<()> {
    if skip || project.config.wit.skip_fetch {
        return Ok(());
    }
    let missing = crate::wit::fetch::missing(project)?;
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
    eprintln!(
        "wit/deps lacks {}; fetching (skip with --skip-fetch or `wit.skip_fetch`)",
        names.join(", ")
    );
    crate::wit::fetch::fetch(project, false).await?;
    Ok(())
}

/// Builds the project and returns the path of the component it produced.
/// Compiler output streams to stderr as it comes. WIT dependencies the
/// project lacks are fetched first.
pub async fn build(project: &Project) -> Result<PathBuf> {
    build_with(project, false).await
}

/// [`build`], with WIT fetching skipped when `skip_fetch`.
pub async fn build_with(project: &Project, skip_fetch: bool) -> Result<PathBuf> {
    fetch_missing_wit(project, skip_fetch).await?;
    if let Some(command) = &project.config.build.command {
        return build_with_command(project, command).await;
    }
    if !project.root.join("Cargo.toml").is_file() {
        bail!(
            "don't know how to build {}: it has no Cargo.toml and no `build.command` in \
             .wash/config.yaml",
            project.root.display()
        );
    }
    ensure_wasm_target().await?;
    build_with_cargo(project).await
}

async fn build_with_command(project: &Project, command: &str) -> Result<PathBuf> {
    if command.trim().is_empty() {
        bail!("`build.command` in the project config is empty");
    }
    let Some(component_path) = &project.config.build.component_path else {
        bail!(
            "`build.command` is set but `build.component_path` is not: wash needs to know \
             where the command writes the component"
        );
    };
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(&project.root)
        .envs(&project.config.build.env)
        .stdout(Stdio::inherit())
        .status()
        .await
        .with_context(|| format!("cannot run build command `{command}`"))?;
    if !status.success() {
        bail!("build command `{command}` failed ({status})");
    }
    let artifact = project.root.join(component_path);
    if !artifact.is_file() {
        bail!(
            "build command `{command}` succeeded but {} does not exist (check \
             `build.component_path`)",
            artifact.display()
        );
    }
    Ok(artifact)
}

async fn build_with_cargo(project: &Project) -> Result<PathBuf> {
    let mut child = Command::new(cargo())
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(&project.root)
        .envs(&project.config.build.env)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo (is Rust installed? see https://rustup.rs)")?;
    let stdout = child.stdout.take().context("cargo stdout")?;
    let manifest = project.root.join("Cargo.toml");
    let mut artifacts = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(artifact) = wasm_artifact(&line, &manifest) {
            artifacts.push(artifact);
        }
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("cargo exited with {status}");
    }
    if let Some(path) = &project.config.build.component_path {
        return Ok(project.root.join(path));
    }
    match artifacts.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "cargo built no WebAssembly component for {}: make it a `cdylib` library \
             (`[lib] crate-type = [\"cdylib\"]`) or a binary",
            manifest.display()
        ),
        many => bail!(
            "cargo built several components ({}); set `build.component_path` in \
             .wash/config.yaml to pick one",
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The `.wasm` produced by the project's own package, from one line of
/// cargo's JSON messages.
fn wasm_artifact(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let from_manifest = Path::new(message.get("manifest_path")?.as_str()?);
    if from_manifest != manifest {
        return None;
    }
    message
        .get("filenames")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str())
        .find(|f| f.ends_with(".wasm"))
        .map(PathBuf::from)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Adds the wasm target with rustup when it is missing (once per process).
async fn ensure_wasm_target() -> Result<()> {
    static CHECKED: OnceCell<()> = OnceCell::const_new();
    CHECKED
        .get_or_try_init(|| async {
            let Ok(output) = Command::new("rustup")
                .args(["target", "list", "--installed"])
                .output()
                .await
            else {
                // No rustup: let cargo report a missing target itself.
                return Ok(());
            };
            let installed = String::from_utf8_lossy(&output.stdout);
            if installed.lines().any(|l| l.trim() == WASM_TARGET) {
                return Ok(());
            }
            eprintln!("The {WASM_TARGET} Rust target is missing; adding it with rustup...");
            let status = Command::new("rustup")
                .args(["target", "add", WASM_TARGET])
                .status()
                .await
                .context("cannot run rustup")?;
            if !status.success() {
                bail!("`rustup target add {WASM_TARGET}` failed ({status})");
            }
            Ok(())
        })
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_wasm_of_the_projects_own_package() {
        let manifest = Path::new("/p/Cargo.toml");
        let own = r#"{"reason":"compiler-artifact","manifest_path":"/p/Cargo.toml","filenames":["/t/app.d","/t/app.wasm"]}"#;
        let dep = r#"{"reason":"compiler-artifact","manifest_path":"/dep/Cargo.toml","filenames":["/t/libdep.rlib"]}"#;
        assert_eq!(
            wasm_artifact(own, manifest),
            Some(PathBuf::from("/t/app.wasm"))
        );
        assert_eq!(wasm_artifact(dep, manifest), None);
        assert_eq!(wasm_artifact("not json", manifest), None);
        assert_eq!(
            wasm_artifact(r#"{"reason":"build-finished","success":true}"#, manifest),
            None
        );
    }
}
