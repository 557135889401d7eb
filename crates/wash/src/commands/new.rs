//! `wash new`: a project from a template built into wash, or from a git
//! repository (cloned with the git CLI).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::process::Command;

use crate::cli::GlobalArgs;
use crate::config::{self, Locations};
use crate::output::emit;

#[derive(Debug, Args)]
pub struct NewArgs {
    /// A built-in template (`http-hello-world`, `http-kv-counter`,
    /// `http-messaging`, `http-postgres`, `http-client`) or a git URL.
    pub template: String,
    /// Name of the project (and its directory).
    #[arg(long)]
    pub name: Option<String>,
    /// Use this folder of the git repository as the template.
    #[arg(long)]
    pub subfolder: Option<PathBuf>,
    /// Branch, tag or commit of the git repository.
    #[arg(long)]
    pub git_ref: Option<String>,
}

/// A file of a built-in template; `{{name}}` becomes the project's name.
struct TemplateFile {
    path: &'static str,
    contents: &'static str,
}

macro_rules! file {
    ($path:literal, $source:literal) => {
        TemplateFile {
            path: $path,
            contents: include_str!(concat!("../../templates/", $source)),
        }
    };
}

/// A file of the `http-postgres` example in `components/`.
macro_rules! example {
    ($path:literal, $source:literal) => {
        TemplateFile {
            path: $path,
            contents: include_str!(concat!("../../../../components/http-postgres-p3/", $source)),
        }
    };
}

/// The templates compiled into wash.
const TEMPLATES: &[(&str, &str, &[TemplateFile])] = &[
    (
        "http-hello-world",
        "an HTTP component that says hello",
        &[
            file!("Cargo.toml", "http-hello-world/Cargo.toml.in"),
            file!("src/lib.rs", "http-hello-world/src/lib.rs"),
            file!(".wash/config.yaml", "http-hello-world/.wash/config.yaml"),
            file!(".gitignore", "gitignore"),
        ],
    ),
    (
        "http-kv-counter",
        "an HTTP component that counts visits in wasi:keyvalue",
        &[
            file!("Cargo.toml", "http-kv-counter/Cargo.toml.in"),
            file!("src/lib.rs", "http-kv-counter/src/lib.rs"),
            file!("wit/world.wit", "http-kv-counter/wit/world.wit"),
            // The WIT the component imports, from the same files the host
            // is built against.
            TemplateFile {
                path: "wit/deps/wasi-keyvalue-0.2.0-draft/package.wit",
                contents: include_str!(
                    "../../../../wit/deps/wasi-keyvalue-0.2.0-draft/package.wit"
                ),
            },
            file!(".wash/config.yaml", "http-kv-counter/.wash/config.yaml"),
            file!(".gitignore", "gitignore"),
        ],
    ),
    (
        "http-messaging",
        "an HTTP component that publishes on wasmcloud:messaging (its WIT fetched at build)",
        &[
            file!("Cargo.toml", "http-messaging/Cargo.toml.in"),
            file!("src/lib.rs", "http-messaging/src/lib.rs"),
            file!("wit/world.wit", "http-messaging/wit/world.wit"),
            file!(".wash/config.yaml", "http-messaging/.wash/config.yaml"),
            file!(".gitignore", "gitignore"),
        ],
    ),
    (
        "http-postgres",
        "a WASI P3 JSON API over a Postgres table (wasi:sockets, optional wasi:tls)",
        &[
            file!("Cargo.toml", "http-postgres/Cargo.toml.in"),
            file!("README.md", "http-postgres/README.md"),
            file!(".wash/config.yaml", "http-postgres/.wash/config.yaml"),
            file!(".gitignore", "gitignore"),
            // The code and WIT are the example's in components/, which the
            // tests run against a real Postgres.
            example!("src/lib.rs", "src/lib.rs"),
            example!("src/db.rs", "src/db.rs"),
            example!("src/stream.rs", "src/stream.rs"),
            example!("src/tls.rs", "src/tls.rs"),
            example!("wit/world.wit", "wit/world.wit"),
            TemplateFile {
                path: "wit/deps/wasi-config-0.2.0-rc.1/package.wit",
                contents: include_str!("../../../../wit/deps/wasi-config-0.2.0-rc.1/package.wit"),
            },
            TemplateFile {
                path: "wit/deps/wasmcloud-secrets-0.1.0-draft/package.wit",
                contents: include_str!(
                    "../../../../wit/deps/wasmcloud-secrets-0.1.0-draft/package.wit"
                ),
            },
            TemplateFile {
                path: "wit/deps/wasi-tls-0.3.0-draft/package.wit",
                contents: include_str!("../../../../components/tls-client/wit/tls.wit"),
            },
        ],
    ),
    (
        "http-client",
        "an HTTP component that calls another service",
        &[
            file!("Cargo.toml", "http-client/Cargo.toml.in"),
            file!("src/lib.rs", "http-client/src/lib.rs"),
            file!(".wash/config.yaml", "http-client/.wash/config.yaml"),
            file!(".gitignore", "gitignore"),
        ],
    ),
];

fn template_list() -> String {
    TEMPLATES
        .iter()
        .map(|(name, about, _)| format!("  {name:<18} {about}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `template` names a git repository rather than a built-in one.
fn is_git(template: &str) -> bool {
    template.contains("://")
        || template.starts_with("git@")
        || template.ends_with(".git")
        || Path::new(template).join(".git").exists()
}

/// A name cargo and WIT both accept: lowercase letters, digits and dashes
/// (underscores allowed), starting with a letter.
fn check_name(name: &str) -> Result<()> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "`{name}` is not a valid project name: use lowercase letters, digits and dashes, \
             starting with a letter (e.g. my-component)"
        );
    }
    Ok(())
}

/// The project name: `--name`, or asked for on a terminal.
fn project_name(global: &GlobalArgs, args: &NewArgs) -> Result<String> {
    if let Some(name) = &args.name {
        return Ok(name.clone());
    }
    let can_prompt = !global.non_interactive
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if !can_prompt {
        let why = if global.non_interactive {
            "--non-interactive"
        } else {
            "no terminal to ask on"
        };
        bail!("a project name is required: pass --name NAME ({why})");
    }
    let default = if is_git(&args.template) {
        "my-component".to_string()
    } else {
        format!("my-{}", args.template)
    };
    dialoguer::Input::<String>::new()
        .with_prompt("Project name")
        .default(default)
        .interact_text()
        .context("cannot read the project name")
}

pub async fn run(global: &GlobalArgs, args: NewArgs) -> Result<()> {
    let builtin = TEMPLATES.iter().find(|(name, _, _)| *name == args.template);
    if builtin.is_none() && !is_git(&args.template) {
        bail!(
            "`{}` is neither a built-in template nor a git URL; built-in templates:\n{}",
            args.template,
            template_list()
        );
    }
    if builtin.is_some() && (args.subfolder.is_some() || args.git_ref.is_some()) {
        bail!(
            "--subfolder and --git-ref apply to git templates, not to built-in `{}`",
            args.template
        );
    }
    let name = project_name(global, &args)?;
    check_name(&name)?;
    let parent = super::project_dir(global);
    let target = parent.join(&name);
    if target.exists() {
        bail!(
            "{} already exists; pick another --name or remove it",
            target.display()
        );
    }

    match builtin {
        Some((_, _, files)) => write_template(files, &name, &target)?,
        None => clone_template(&args, &target).await?,
    }

    // A template may ask for a command to finish the project.
    let loaded = config::load(&Locations::new(&target, global.user_config.clone()))?;
    if let Some(command) = loaded
        .config
        .new
        .command
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        eprintln!("Running `{command}` in {}", target.display());
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&target)
            .env("WASH_PROJECT_NAME", &name)
            .status()
            .await
            .context("cannot run `new.command`")?;
        if !status.success() {
            bail!(
                "`new.command` `{command}` failed ({status}); the project is in {}",
                target.display()
            );
        }
    }

    emit(
        global.output,
        || {
            format!(
                "Created {name} from {} in {}\nNext: cd {name} && wash dev",
                args.template,
                target.display()
            )
        },
        &serde_json::json!({"name": name, "template": args.template, "path": target}),
    );
    Ok(())
}

fn write_template(files: &[TemplateFile], name: &str, target: &Path) -> Result<()> {
    for file in files {
        let path = target.join(file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, file.contents.replace("{{name}}", name))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn git(args: &[&str], dir: Option<&Path>) -> Result<()> {
    let mut command = Command::new("git");
    command.args(args).env("GIT_TERMINAL_PROMPT", "0");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("git templates need the git CLI, which is not installed")
        } else {
            anyhow::anyhow!("cannot run git: {e}")
        }
    })?;
    if !output.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

async fn clone_template(args: &NewArgs, target: &Path) -> Result<()> {
    let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
    let checkout = scratch.path().join("repo");
    let checkout_str = checkout.to_string_lossy().into_owned();
    eprintln!("Cloning {}...", args.template);
    git(&["clone", "--quiet", &args.template, &checkout_str], None).await?;
    if let Some(reference) = &args.git_ref {
        git(&["checkout", "--quiet", reference], Some(&checkout))
            .await
            .with_context(|| format!("--git-ref `{reference}` is not in {}", args.template))?;
    }
    let source = match &args.subfolder {
        Some(sub) => {
            if sub.is_absolute()
                || sub
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                bail!(
                    "--subfolder `{}` must be a path inside the repository",
                    sub.display()
                );
            }
            let source = checkout.join(sub);
            if !source.is_dir() {
                bail!(
                    "--subfolder `{}` is not a folder of {}",
                    sub.display(),
                    args.template
                );
            }
            source
        }
        None => checkout.clone(),
    };
    copy_tree(&source, target)
}

/// Copies a directory, leaving out `.git`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        let destination = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &destination)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            #[cfg(unix)]
            std::os::unix::fs::symlink(&link, &destination)?;
            #[cfg(not(unix))]
            std::fs::copy(entry.path(), &destination)?;
        } else {
            std::fs::copy(entry.path(), &destination)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_and_wit_accept() {
        assert!(check_name("my-app").is_ok());
        assert!(check_name("app2").is_ok());
        for bad in ["My-App", "2app", "app-", "", "a b", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_are_told_from_git_urls() {
        assert!(is_git("https://github.com/org/repo"));
        assert!(is_git("git@github.com:org/repo.git"));
        assert!(!is_git("http-hello-world"));
    }

    #[test]
    fn every_template_has_a_manifest_and_a_config() {
        for (name, _, files) in TEMPLATES {
            for needed in ["Cargo.toml", ".wash/config.yaml", "src/lib.rs"] {
                assert!(
                    files.iter().any(|f| f.path == needed),
                    "{name} lacks {needed}"
                );
            }
        }
    }
}
