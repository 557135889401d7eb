//! `wash dev`: build the project (or take a prebuilt component), serve it on
//! an in-process host, and rebuild and swap it whenever its sources change.
//!
//! A swap starts the new version under a new workload id, points the router
//! at it, then stops the old one: requests in flight finish on the version
//! they started on. A failed build or start keeps the last good version.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tokio::sync::mpsc;
use wash_runtime::engine::CacheOutcome;
use wash_runtime::host::http::{DevRouter, TlsSettings};
use wash_runtime::host::{Host, HostApi};
use wash_runtime::types::{
    Component, LocalResources, Volume, VolumeMount, VolumeSource, WitInterface, Workload,
};

use crate::build::{self, Project};
use crate::cli::{GlobalArgs, OutputFormat};
use crate::config::DevConfig;
use crate::host_setup::{self, DefaultBackends, HostSetup};
use crate::output;

/// Where `wash dev` serves unless told otherwise.
const DEFAULT_ADDRESS: &str = "127.0.0.1:8000";
/// Changes closer together than this are handled as one.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// How long in-flight requests may take to finish on exit.
const DRAIN: Duration = Duration::from_secs(5);
/// Top-level directories never watched: build output and tooling state.
const IGNORED_DIRS: [&str; 5] = ["target", ".git", "node_modules", "__pycache__", ".venv"];

#[derive(Debug, Args)]
pub struct DevArgs {
    /// A project directory or a prebuilt component (.wasm) to serve.
    /// Defaults to the project in `-C` or the current directory.
    pub target: Option<PathBuf>,

    /// Address to serve HTTP on, `HOST:PORT` (`127.0.0.1:8000`,
    /// `localhost:8000`).
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,

    /// Request deadline, e.g. `30s` or `500ms`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub request_timeout: Option<Duration>,

    /// Memory limit per instance, in MiB (default 256).
    #[arg(long, value_name = "MIB")]
    pub memory_limit_mb: Option<u32>,

    /// Environment variable for the component, `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = crate::cli::parse_key_value)]
    pub env: Vec<(String, String)>,

    /// Hosts the component may reach over HTTP: `host`, `*.suffix` or
    /// `host:port` (repeatable; none by default).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allowed_hosts: Vec<String>,

    /// Loopback port the component may reach (repeatable). A host name
    /// that resolves to loopback, such as `localhost`, reaches only these.
    #[arg(long = "allow-loopback-port", value_name = "PORT")]
    pub loopback_ports: Vec<u16>,

    /// Extra CA certificates (PEM) to trust for outbound HTTPS and the
    /// component's own TLS connections (`wasi:tls`), on top of the webpki
    /// roots (repeatable).
    #[arg(long = "http-client-ca-path", value_name = "FILE")]
    pub http_client_ca_paths: Vec<PathBuf>,

    /// Host name the component may resolve through `wasi:sockets`
    /// (repeatable; none by default). Connecting still needs the address in
    /// `--allow-host` or `--allow-loopback-port`.
    #[arg(long = "allow-name-lookup", value_name = "NAME")]
    pub name_lookups: Vec<String>,

    /// A component plugin to load: `id=NAME,file=PATH` or
    /// `id=NAME,image=REF[,digest=sha256:...]`, with `max-restarts=N`,
    /// `instances=N` (calls served at once), `memory-limit-mb=N`,
    /// `timeout-ms=N`, `allow-host=H`, `config.KEY=VALUE`.
    /// Repeatable; adds to `dev.host_plugins`.
    #[arg(long = "host-plugin", value_name = "SPEC", value_parser = crate::config::PluginEntry::parse)]
    pub host_plugins: Vec<crate::config::PluginEntry>,

    /// Keep this many instances warm and reuse them across requests
    /// (0: a fresh instance per request). Warm instances keep their memory
    /// between requests.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub pool_size: u16,

    /// With --pool-size: requests one instance serves before it is replaced
    /// (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_invocations: u32,

    /// With --pool-size: requests one P3 instance serves at once (0: 16).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_concurrency: u16,

    /// Serve once; do not watch for changes.
    #[arg(long)]
    pub no_watch: bool,
}

/// What `wash dev` serves.
enum Source {
    /// A project it builds.
    Project(Box<Project>),
    /// A component built elsewhere.
    File(PathBuf),
}

impl Source {
    /// The configuration of the project (or of `-C`/the current directory
    /// when serving a prebuilt file), and the directory its relative paths
    /// start from.
    fn config(&self, global: &GlobalArgs) -> Result<(crate::config::Config, PathBuf)> {
        Ok(match self {
            Source::Project(project) => (project.config.clone(), project.root.clone()),
            Source::File(_) => {
                let dir = super::project_dir(global);
                let locations = crate::config::Locations::new(&dir, global.user_config.clone());
                (crate::config::load(&locations)?.config, dir)
            }
        })
    }

    fn from_args(global: &GlobalArgs, args: &DevArgs) -> Result<Self> {
        let target = args
            .target
            .clone()
            .unwrap_or_else(|| super::project_dir(global));
        if target.is_file() || target.extension().is_some_and(|e| e == "wasm") {
            let path = target
                .canonicalize()
                .with_context(|| format!("cannot open component {}", target.display()))?;
            return Ok(Source::File(path));
        }
        Ok(Source::Project(Box::new(Project::open(
            &target,
            global.user_config.as_deref(),
        )?)))
    }

    /// Builds if needed; the component to serve.
    async fn artifact(&self) -> Result<PathBuf> {
        match self {
            Source::Project(project) => build::build(project).await,
            Source::File(path) => Ok(path.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Project(project) => project.root.display().to_string(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// Events `wash dev` reports on stdout (one JSON object per line with `-o json`).
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum DevEvent<'a> {
    Serving {
        url: String,
        component: &'a str,
        compile_cache: &'a str,
    },
    Reloaded {
        component: &'a str,
        elapsed_ms: u128,
    },
    Unchanged {
        component: &'a str,
    },
    BuildFailed {
        error: String,
    },
    ReloadFailed {
        error: String,
    },
    Stopped,
}

fn report(format: OutputFormat, event: DevEvent<'_>) {
    let text = || match &event {
        DevEvent::Serving { url, component, .. } => format!("Serving {component} at {url}"),
        DevEvent::Reloaded {
            component,
            elapsed_ms,
        } => {
            format!("Reloaded {component} in {elapsed_ms} ms")
        }
        DevEvent::Unchanged { component } => format!("{component} is unchanged"),
        DevEvent::BuildFailed { error } => {
            format!("Build failed ({error}); still serving the last good build")
        }
        DevEvent::ReloadFailed { error } => {
            format!("Reload failed: {error}; still serving the last good build")
        }
        DevEvent::Stopped => "Stopped".to_string(),
    };
    output::emit(format, text, &event);
}

/// The version currently served.
struct Deployed {
    id: String,
    bytes: Vec<u8>,
}

struct Dev {
    host: Host,
    format: OutputFormat,
    resources: LocalResources,
    reuse: (i32, i32, i32),
    volumes: Vec<Volume>,
    /// `wasmcloud:secrets` sources by secret name (`env:VAR`, `file:path`).
    secrets: std::collections::BTreeMap<String, String>,
    deployments: u64,
    current: Option<Deployed>,
}

impl Dev {
    /// HTTP, and the secrets the config names.
    fn host_interfaces(&self) -> Vec<WitInterface> {
        let mut interfaces = vec![WitInterface {
            namespace: "wasi".into(),
            package: "http".into(),
            interfaces: vec!["incoming-handler".into()],
            ..Default::default()
        }];
        if !self.secrets.is_empty() {
            interfaces.push(WitInterface {
                namespace: "wasmcloud".into(),
                package: "secrets".into(),
                interfaces: vec!["store".into(), "reveal".into()],
                config: self.secrets.clone(),
                ..Default::default()
            });
        }
        interfaces
    }

    /// Starts `artifact` as a new workload and retires the previous one.
    async fn deploy(&mut self, artifact: &Path) -> Result<Option<CacheOutcome>> {
        let bytes = std::fs::read(artifact)
            .with_context(|| format!("cannot read component {}", artifact.display()))?;
        if self.current.as_ref().is_some_and(|c| c.bytes == bytes) {
            return Ok(None);
        }
        let name = component_name(artifact);
        self.deployments += 1;
        let id = format!("dev-{}", self.deployments);
        let workload = Workload {
            namespace: "dev".into(),
            name: name.clone(),
            components: vec![Component {
                name: name.clone(),
                bytes: Some(bytes.clone().into()),
                local_resources: self.resources.clone(),
                pool_size: self.reuse.0,
                max_invocations: self.reuse.1,
                max_concurrency: self.reuse.2,
                ..Default::default()
            }],
            volumes: self.volumes.clone(),
            host_interfaces: self.host_interfaces(),
            ..Default::default()
        };
        let spinner = output::spinner(format!(
            "Preparing {name} ({:.1} MB)...",
            bytes.len() as f64 / 1e6
        ));
        let started = self.host.workload_start(&id, workload).await;
        spinner.finish_and_clear();
        if let Err(e) = started {
            // Keep the failed id out of the way of the next attempt.
            self.host.workload_stop(&id).await;
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot serve {}", artifact.display()));
        }
        let cache = self
            .host
            .components(&id)
            .and_then(|c| c.first().map(|c| c.cache))
            .unwrap_or(CacheOutcome::Disabled);
        if let Some(previous) = self.current.replace(Deployed { id, bytes }) {
            self.host.workload_stop(&previous.id).await;
        }
        Ok(Some(cache))
    }
}

fn component_name(artifact: &Path) -> String {
    artifact
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "component".into())
}

pub async fn run(global: &GlobalArgs, args: DevArgs) -> Result<()> {
    let shutdown = super::shutdown_signal()?;
    tokio::pin!(shutdown);
    let source = Source::from_args(global, &args)?;
    let (config, root) = source.config(global)?;
    let dev_config = resolve_paths(config.dev, &root);
    refuse_unsupported(&dev_config)?;
    let address = match (&args.address, &dev_config.address) {
        (Some(flag), _) => crate::cli::socket_addr(flag, "--address")?,
        (None, Some(configured)) => crate::cli::socket_addr(configured, "`dev.address`")?,
        (None, None) => crate::cli::socket_addr(DEFAULT_ADDRESS, "the default address")?,
    };
    let workload_config = config.workload;
    let artifact = tokio::select! {
        artifact = source.artifact() => artifact?,
        _ = &mut shutdown => return Ok(()),
    };

    let tls = dev_tls(&dev_config)?;
    let backends = DefaultBackends::from_dev_config(&dev_config).await?;
    eprintln!("{}", backends.describe());
    let host = host_setup::start(HostSetup {
        address,
        address_flag: "--address",
        router: Arc::new(DevRouter::default()),
        ca_paths: args
            .http_client_ca_paths
            .iter()
            .chain(dev_config.tls_ca_path.iter())
            .cloned()
            .collect(),
        plugins: backends.plugins(),
        oci: None,
        request_timeout: args.request_timeout,
        tls: tls.clone(),
        component_plugins: dev_config
            .host_plugins
            .iter()
            .chain(&args.host_plugins)
            .cloned()
            .collect(),
    })
    .await?;
    let url = format!(
        "{}://{}/",
        if tls.is_some() { "https" } else { "http" },
        host.http_addr().context("the host has no HTTP address")?
    );

    let mut dev = Dev {
        host,
        format: global.output,
        resources: LocalResources {
            memory_limit_mb: args.memory_limit_mb.map(|m| m as i32).unwrap_or(0),
            // The config's `workload` section, then the flags on top.
            allowed_hosts: workload_config
                .allowed_hosts
                .iter()
                .chain(&args.allowed_hosts)
                .cloned()
                .collect(),
            allowed_host_loopback_ports: workload_config
                .allowed_host_loopback_ports
                .iter()
                .chain(&args.loopback_ports)
                .map(u16::to_string)
                .collect(),
            allowed_ip_name_lookups: workload_config
                .allowed_ip_name_lookups
                .iter()
                .chain(&args.name_lookups)
                .cloned()
                .collect(),
            environment: workload_config
                .environment
                .clone()
                .into_iter()
                .chain(args.env.iter().cloned())
                .collect(),
            config: workload_config.config.clone(),
            volume_mounts: volume_mounts(&dev_config),
            ..Default::default()
        },
        volumes: volumes(&dev_config),
        secrets: workload_config.secrets.clone(),
        reuse: (
            i32::from(args.pool_size),
            i32::try_from(args.max_invocations).unwrap_or(i32::MAX),
            i32::from(args.max_concurrency),
        ),
        deployments: 0,
        current: None,
    };
    let cache = tokio::select! {
        deployed = dev.deploy(&artifact) => deployed?.unwrap_or(CacheOutcome::Disabled),
        _ = &mut shutdown => {
            dev.host.shutdown(DRAIN).await;
            report(dev.format, DevEvent::Stopped);
            return Ok(());
        }
    };
    let name = component_name(&artifact);
    report(
        dev.format,
        DevEvent::Serving {
            url,
            component: &name,
            compile_cache: match cache {
                CacheOutcome::Hit => "hit",
                CacheOutcome::Miss => "miss",
                CacheOutcome::Disabled => "disabled",
            },
        },
    );

    if args.no_watch {
        shutdown.await;
    } else {
        let (_watcher, mut changes) = watch(&source)?;
        eprintln!("Watching {} for changes", source.describe());
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                change = changes.recv() => {
                    if change.is_none() {
                        break;
                    }
                    debounce(&mut changes).await;
                    reload(&mut dev, &source).await;
                }
            }
        }
    }
    dev.host.shutdown(DRAIN).await;
    report(dev.format, DevEvent::Stopped);
    Ok(())
}

async fn reload(dev: &mut Dev, source: &Source) {
    let started = Instant::now();
    let artifact = match source.artifact().await {
        Ok(artifact) => artifact,
        Err(e) => {
            report(
                dev.format,
                DevEvent::BuildFailed {
                    error: format!("{e:#}"),
                },
            );
            return;
        }
    };
    let name = component_name(&artifact);
    match dev.deploy(&artifact).await {
        Ok(Some(_)) => report(
            dev.format,
            DevEvent::Reloaded {
                component: &name,
                elapsed_ms: started.elapsed().as_millis(),
            },
        ),
        Ok(None) => report(dev.format, DevEvent::Unchanged { component: &name }),
        Err(e) => report(
            dev.format,
            DevEvent::ReloadFailed {
                error: format!("{e:#}"),
            },
        ),
    }
}

/// Relative paths of the `dev` section start at the project directory.
fn resolve_paths(mut dev: DevConfig, root: &Path) -> DevConfig {
    let resolve = |path: &mut Option<PathBuf>| {
        if let Some(p) = path.as_mut().filter(|p| p.is_relative()) {
            *p = root.join(&*p);
        }
    };
    resolve(&mut dev.wasi_keyvalue_path);
    resolve(&mut dev.wasi_blobstore_path);
    resolve(&mut dev.tls_ca_path);
    resolve(&mut dev.tls_cert_path);
    resolve(&mut dev.tls_key_path);
    for plugin in &mut dev.host_plugins {
        resolve(&mut plugin.file);
    }
    for volume in &mut dev.volumes {
        if volume.host_path.is_relative() {
            volume.host_path = root.join(&volume.host_path);
        }
    }
    dev
}

/// HTTPS for `wash dev`: `dev.tls_cert_path` with `dev.tls_key_path`.
fn dev_tls(dev: &DevConfig) -> Result<Option<TlsSettings>> {
    match (&dev.tls_cert_path, &dev.tls_key_path) {
        (Some(cert), Some(key)) => Ok(Some(TlsSettings::new(cert, key))),
        (None, None) => Ok(None),
        _ => anyhow::bail!(
            "`dev.tls_cert_path` and `dev.tls_key_path` go together: set both to serve HTTPS, \
             or neither"
        ),
    }
}

/// Settings this wash cannot honour stop it, rather than being ignored.
fn refuse_unsupported(dev: &DevConfig) -> Result<()> {
    if dev.wasi_webgpu {
        anyhow::bail!("`dev.wasi_webgpu`: this build of wash has no wasi:webgpu support");
    }
    if !dev.components.is_empty() {
        anyhow::bail!(
            "`dev.components`: wash dev serves one component, the project's; start others \
             with `wash host` and `wash workload start`"
        );
    }
    if dev.postgres_url.is_some() {
        eprintln!("warning: `dev.postgres_url` is ignored: wash has no PostgreSQL plugin");
    }
    Ok(())
}

/// `dev.volumes` as workload volumes, named `volume-<n>`.
fn volumes(dev: &DevConfig) -> Vec<Volume> {
    dev.volumes
        .iter()
        .enumerate()
        .map(|(index, volume)| Volume {
            name: format!("volume-{index}"),
            source: VolumeSource::HostPath {
                local_path: volume.host_path.display().to_string(),
            },
        })
        .collect()
}

fn volume_mounts(dev: &DevConfig) -> Vec<VolumeMount> {
    dev.volumes
        .iter()
        .enumerate()
        .map(|(index, volume)| VolumeMount {
            name: format!("volume-{index}"),
            mount_path: volume.guest_path.clone(),
            read_only: false,
        })
        .collect()
}

/// Swallows the burst of events an editor or compiler makes for one change.
async fn debounce(changes: &mut mpsc::UnboundedReceiver<()>) {
    loop {
        match tokio::time::timeout(DEBOUNCE, changes.recv()).await {
            Ok(Some(())) => continue,
            Ok(None) | Err(_) => return,
        }
    }
}

/// Watches the sources (or the prebuilt file); each relevant change sends ().
fn watch(source: &Source) -> Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (root, only_file) = match source {
        Source::Project(project) => (project.root.clone(), None),
        Source::File(path) => (
            path.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            Some(path.clone()),
        ),
    };
    let ignored_roots: Vec<PathBuf> = IGNORED_DIRS.iter().map(|d| root.join(d)).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.iter().any(|path| match &only_file {
            Some(file) => path == file,
            None => {
                !ignored_roots
                    .iter()
                    .any(|ignored| path.starts_with(ignored))
                    && !is_editor_noise(path)
            }
        });
        if relevant {
            let _ = tx.send(());
        }
    })
    .context("cannot watch for file changes")?;

    match source {
        Source::File(_) => watcher.watch(&root, RecursiveMode::NonRecursive)?,
        Source::Project(_) => {
            // Top-level files, then each source directory recursively: build
            // output (target/) is never watched, which keeps inotify cheap.
            watcher.watch(&root, RecursiveMode::NonRecursive)?;
            for entry in std::fs::read_dir(&root)? {
                let path = entry?.path();
                let skip = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| IGNORED_DIRS.contains(&n));
                if path.is_dir() && !skip {
                    watcher.watch(&path, RecursiveMode::Recursive)?;
                }
            }
        }
    }
    Ok((watcher, rx))
}

/// Swap and backup files editors write next to the real ones.
fn is_editor_noise(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913"
}
