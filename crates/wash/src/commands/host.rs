//! `wash host`: a long-running host that joins the control plane over NATS,
//! pulls components from OCI registries and serves them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wash_runtime::host::admin::{AdminServer, Readiness};
use wash_runtime::host::http::{DynamicRouter, TlsSettings};
use wash_runtime::oci::{OciClient, OciConfig};
use wash_runtime::washlet::{DEFAULT_MAX_REQUEST, Washlet, WashletConfig};

use crate::cli::GlobalArgs;
use crate::config::{HostConfig, Locations};
use crate::host_setup::{self, DefaultBackends, HostSetup};
use crate::paths;

#[derive(Debug, Args)]
pub struct HostArgs {
    /// Host group this host joins (reported as the `hostgroup` label)
    /// [default: default].
    #[arg(long)]
    pub host_group: Option<String>,

    /// Name reported as the host's friendly name and hostname (defaults to
    /// the machine's host name). In a cluster, pass the pod IP so Service
    /// traffic can be routed to it.
    #[arg(long)]
    pub host_name: Option<String>,

    /// Environment whose workloads this host serves (usually the Kubernetes
    /// namespace); the operator schedules by it.
    #[arg(long, env = "WASMCLOUD_HOST_ENVIRONMENT")]
    pub environment: Option<String>,

    /// Host id on the control plane (defaults to `<name>-<random>`).
    #[arg(long)]
    pub host_id: Option<String>,

    /// NATS server of the control plane [default: nats://127.0.0.1:4222].
    #[arg(long, env = "WASH_SCHEDULER_NATS_URL")]
    pub scheduler_nats_url: Option<String>,
    #[command(flatten)]
    pub scheduler_tls: SchedulerTls,

    /// NATS server for data (messaging, key-value and blob defaults);
    /// without it those stay in memory.
    #[arg(long, env = "WASH_DATA_NATS_URL")]
    pub data_nats_url: Option<String>,
    #[command(flatten)]
    pub data_tls: DataTls,

    /// Address to serve HTTP on, `HOST:PORT` [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,

    /// Serve HTTPS with this certificate chain (PEM), re-read when it
    /// changes; needs --tls-key.
    #[arg(long = "tls-cert", alias = "tls-cert-path", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", alias = "tls-key-path", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates issued by this CA (PEM): mutual TLS.
    #[arg(long = "tls-client-ca", alias = "tls-ca-path", value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Per-host certificates chosen by SNI: `DIR/<host>/tls.crt` and
    /// `tls.key` (as Kubernetes mounts TLS secrets), falling back to
    /// --tls-cert.
    #[arg(long, value_name = "DIR")]
    pub tls_sni_dir: Option<PathBuf>,

    /// Serve /livez, /readyz and /metrics on this address, `HOST:PORT`
    /// (apart from the workloads' traffic). Off unless given.
    #[arg(long, value_name = "ADDR", env = "WASH_ADMIN_ADDR")]
    pub admin_addr: Option<String>,

    /// A component plugin to load: `id=NAME,file=PATH` or
    /// `id=NAME,image=REF[,digest=sha256:...]`, with `max-restarts=N`
    /// (default 3), `instances=N` (calls served at once, default 1),
    /// `memory-limit-mb=N`, `timeout-ms=N`, `allow-host=H`,
    /// `config.KEY=VALUE`. Repeatable; adds to `host.plugins`.
    #[arg(long = "host-plugin", value_name = "SPEC", value_parser = crate::config::PluginEntry::parse)]
    pub host_plugins: Vec<crate::config::PluginEntry>,

    /// Extra CA certificates (PEM) for components' outbound HTTPS and
    /// their own TLS connections (`wasi:tls`).
    #[arg(long = "http-client-ca-path", value_name = "FILE")]
    pub http_client_ca_paths: Vec<PathBuf>,

    /// Where pulled components are cached.
    #[arg(long)]
    pub oci_cache_dir: Option<PathBuf>,

    /// Registries (`host[:port]`) to reach over plain HTTP.
    #[arg(long, value_delimiter = ',', value_name = "REGISTRY")]
    pub allow_insecure_registries: Vec<String>,

    /// Longest an image pull may take.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub registry_pull_timeout: Duration,

    /// A label for heartbeats, `key=value` (repeatable).
    #[arg(long = "label", value_parser = crate::cli::parse_key_value)]
    pub labels: Vec<(String, String)>,

    /// Time between heartbeats.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,

    /// How long requests in flight may finish on shutdown.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
}

/// TLS for the control-plane connection.
#[derive(Debug, Args)]
pub struct SchedulerTls {
    /// CA certificate (PEM) of the control-plane NATS server.
    #[arg(long = "scheduler-nats-tls-ca")]
    pub scheduler_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long = "scheduler-nats-tls-cert", requires = "scheduler_key")]
    pub scheduler_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long = "scheduler-nats-tls-key", requires = "scheduler_cert")]
    pub scheduler_key: Option<PathBuf>,
}

/// TLS for the data NATS connection.
#[derive(Debug, Args)]
pub struct DataTls {
    /// CA certificate (PEM) of the data NATS server.
    #[arg(long = "data-nats-tls-ca")]
    pub data_ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long = "data-nats-tls-cert", requires = "data_key")]
    pub data_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long = "data-nats-tls-key", requires = "data_cert")]
    pub data_key: Option<PathBuf>,
}

/// Connects to NATS with optional TLS; errors name the URL.
async fn connect(
    url: &str,
    ca: Option<&PathBuf>,
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
    what: &str,
) -> Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .name(format!("wash host ({what})"));
    if let Some(ca) = ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (cert, key) {
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    options
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to the {what} NATS server at {url}"))
}

/// The admin listener: ready while the control plane is connected and no
/// workload is still starting; `wash_nats_connected` follows the link.
async fn start_admin(
    addr: &str,
    host: &wash_runtime::host::Host,
    scheduler: &async_nats::Client,
) -> Result<AdminServer> {
    let addr = crate::cli::socket_addr(addr, "--admin-addr")?;
    let connected = {
        let scheduler = scheduler.clone();
        move || scheduler.connection_state() == async_nats::connection::State::Connected
    };
    host.metrics().set_nats_probe(Box::new(connected.clone()));
    let ready_host = host.clone();
    let ready: Readiness = Arc::new(move || {
        if !connected() {
            return Err("not connected to the control plane (NATS)".into());
        }
        let starting = ready_host.starting_workloads();
        if !starting.is_empty() {
            return Err(format!("workloads starting: {}", starting.join(", ")));
        }
        Ok(())
    });
    AdminServer::start(addr, host.clone(), ready)
        .await
        .with_context(|| format!("cannot listen on --admin-addr {addr}"))
}

/// Fills what the flags left open from the config's `host` section, then
/// the defaults. Flags win; labels and insecure registries add up.
fn with_config(mut args: HostArgs, config: HostConfig) -> Result<Settled> {
    let tls = ingress_tls(
        args.tls_cert.take().or(config.tls_cert_path),
        args.tls_key.take().or(config.tls_key_path),
        args.tls_client_ca.take().or(config.tls_ca_path),
        args.tls_sni_dir.take().or(config.tls_sni_dir),
    )?;
    let http_addr = match (&args.http_addr, &config.http_addr) {
        (Some(addr), _) => crate::cli::socket_addr(addr, "--http-addr")?,
        (None, Some(addr)) => crate::cli::socket_addr(addr, "`host.http_addr`")?,
        (None, None) => crate::cli::socket_addr(DEFAULT_HTTP_ADDR, "the default address")?,
    };
    let mut labels = config.labels;
    labels.extend(args.labels.drain(..));
    args.allow_insecure_registries
        .extend(config.allow_insecure_registries);
    args.oci_cache_dir = args.oci_cache_dir.take().or(config.oci_cache_dir);
    args.data_nats_url = args.data_nats_url.take().or(config.data_nats_url);
    let mut plugins = config.plugins;
    plugins.append(&mut args.host_plugins);
    args.host_plugins = plugins;
    Ok(Settled {
        host_group: args
            .host_group
            .take()
            .or(config.host_group)
            .unwrap_or_else(|| "default".into()),
        scheduler_nats_url: args
            .scheduler_nats_url
            .take()
            .or(config.scheduler_nats_url)
            .unwrap_or_else(|| DEFAULT_SCHEDULER_NATS_URL.into()),
        http_addr,
        labels,
        tls,
        args,
    })
}

/// HTTPS settings from flags or config: a certificate needs its key, and
/// client CAs or SNI certificates need both.
fn ingress_tls(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    sni_dir: Option<PathBuf>,
) -> Result<Option<TlsSettings>> {
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            if client_ca.is_some() || sni_dir.is_some() {
                anyhow::bail!(
                    "--tls-client-ca and --tls-sni-dir need HTTPS: give --tls-cert and --tls-key \
                     (or `host.tls_cert_path` and `host.tls_key_path`)"
                );
            }
            return Ok(None);
        }
        (Some(_), None) => {
            anyhow::bail!("--tls-cert needs its key: give --tls-key (or `host.tls_key_path`)")
        }
        (None, Some(_)) => anyhow::bail!(
            "--tls-key needs its certificate: give --tls-cert (or `host.tls_cert_path`)"
        ),
    };
    let mut settings = TlsSettings::new(cert, key);
    if let Some(ca) = client_ca {
        settings = settings.client_ca(ca);
    }
    if let Some(dir) = sni_dir {
        settings = settings.sni_dir(dir);
    }
    Ok(Some(settings))
}

/// Flags and config, settled.
struct Settled {
    host_group: String,
    scheduler_nats_url: String,
    http_addr: SocketAddr,
    labels: BTreeMap<String, String>,
    tls: Option<TlsSettings>,
    args: HostArgs,
}

const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8080";
const DEFAULT_SCHEDULER_NATS_URL: &str = "nats://127.0.0.1:4222";

/// The config's `host` section, its paths resolved against the project.
fn host_config(locations: &Locations) -> Result<HostConfig> {
    let loaded = crate::config::load(locations)?;
    let oci_cache_dir = loaded
        .config
        .host
        .oci_cache_dir
        .as_deref()
        .map(|dir| loaded.resolve(dir));
    let mut host = loaded.config.host.clone();
    host.oci_cache_dir = oci_cache_dir;
    for path in [
        &mut host.tls_cert_path,
        &mut host.tls_key_path,
        &mut host.tls_ca_path,
        &mut host.tls_sni_dir,
    ] {
        *path = path.as_deref().map(|p| loaded.resolve(p));
    }
    for plugin in &mut host.plugins {
        plugin.file = plugin.file.as_deref().map(|p| loaded.resolve(p));
    }
    Ok(host)
}

pub async fn run(global: &GlobalArgs, args: HostArgs) -> Result<()> {
    let shutdown = super::shutdown_signal()?;
    let locations = Locations::new(super::project_dir(global), global.user_config.clone());
    let Settled {
        host_group,
        scheduler_nats_url,
        http_addr,
        labels,
        tls,
        args,
    } = with_config(args, host_config(&locations)?)?;
    let friendly_name = args
        .host_name
        .clone()
        .or_else(sysinfo::System::host_name)
        .unwrap_or_else(|| "wash-host".into());
    let host_id = args.host_id.clone().unwrap_or_else(|| {
        let token: String = friendly_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!(
            "{token}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    });

    let scheduler = connect(
        &scheduler_nats_url,
        args.scheduler_tls.scheduler_ca.as_ref(),
        args.scheduler_tls.scheduler_cert.as_ref(),
        args.scheduler_tls.scheduler_key.as_ref(),
        "control-plane",
    )
    .await?;

    let backends = match &args.data_nats_url {
        Some(url) => {
            let data = connect(
                url,
                args.data_tls.data_ca.as_ref(),
                args.data_tls.data_cert.as_ref(),
                args.data_tls.data_key.as_ref(),
                "data",
            )
            .await?;
            DefaultBackends::on_nats(url, data)
        }
        None => DefaultBackends::in_memory(),
    };

    let oci = OciClient::new(OciConfig {
        cache_dir: args
            .oci_cache_dir
            .clone()
            .unwrap_or_else(paths::oci_cache_dir),
        insecure_registries: args.allow_insecure_registries.clone(),
        ca_files: Vec::new(),
        pull_timeout: args.registry_pull_timeout,
    })?;
    let host = host_setup::start(HostSetup {
        address: http_addr,
        address_flag: "--http-addr",
        router: Arc::new(DynamicRouter::new()),
        ca_paths: args.http_client_ca_paths.clone(),
        plugins: backends.plugins(),
        oci: Some(oci),
        request_timeout: None,
        tls: tls.clone(),
        component_plugins: args.host_plugins.clone(),
    })
    .await?;

    let admin = match &args.admin_addr {
        Some(addr) => Some(start_admin(addr, &host, &scheduler).await?),
        None => None,
    };
    let washlet = Washlet::start(
        host.clone(),
        scheduler,
        WashletConfig {
            host_id: host_id.clone(),
            hostname: friendly_name.clone(),
            friendly_name,
            environment: args.environment.clone().unwrap_or_default(),
            host_group: host_group.clone(),
            labels,
            heartbeat_interval: args.heartbeat_interval,
            max_request: DEFAULT_MAX_REQUEST,
            max_in_flight: wash_runtime::washlet::DEFAULT_MAX_IN_FLIGHT,
        },
    )
    .await?;
    println!(
        "Host {host_id} (group {}) serving {} on {}, control plane {}",
        host_group,
        if tls.is_some() { "HTTPS" } else { "HTTP" },
        host.http_addr().map(|a| a.to_string()).unwrap_or_default(),
        scheduler_nats_url
    );

    if let Some(admin) = &admin {
        println!(
            "Admin listener on http://{} (/livez, /readyz, /metrics)",
            admin.local_addr()
        );
    }

    shutdown.await;
    eprintln!(
        "Shutting down: draining requests in flight (up to {:?})",
        args.drain_timeout
    );
    washlet.stop();
    host.shutdown(args.drain_timeout).await;
    washlet.final_heartbeat().await;
    println!("Host {host_id} stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(flags: &[&str]) -> HostArgs {
        let cli = Cli::try_parse_from(["wash", "host"].iter().chain(flags)).unwrap();
        match cli.command {
            Command::Host(args) => *args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn flags_win_over_the_config_which_wins_over_defaults() {
        let config = HostConfig {
            host_group: Some("edge".into()),
            http_addr: Some("127.0.0.1:9000".into()),
            scheduler_nats_url: Some("nats://cp:4222".into()),
            labels: [
                ("zone".to_string(), "a".to_string()),
                ("tier".to_string(), "1".to_string()),
            ]
            .into(),
            allow_insecure_registries: vec!["localhost:5000".into()],
            ..Default::default()
        };
        let settled = with_config(
            args(&["--http-addr", "127.0.0.1:1", "--label", "zone=b"]),
            config,
        )
        .unwrap();
        assert_eq!(settled.http_addr, "127.0.0.1:1".parse().unwrap());
        assert_eq!(settled.host_group, "edge");
        assert_eq!(settled.scheduler_nats_url, "nats://cp:4222");
        assert_eq!(settled.labels["zone"], "b");
        assert_eq!(settled.labels["tier"], "1");
        assert_eq!(
            settled.args.allow_insecure_registries,
            vec!["localhost:5000".to_string()]
        );

        let defaults = with_config(args(&[]), HostConfig::default()).unwrap();
        assert_eq!(defaults.http_addr, DEFAULT_HTTP_ADDR.parse().unwrap());
        assert_eq!(defaults.host_group, "default");
        assert_eq!(defaults.scheduler_nats_url, DEFAULT_SCHEDULER_NATS_URL);

        let tls = HostConfig {
            tls_cert_path: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(with_config(args(&[]), tls).is_err());
    }

    #[test]
    fn a_relative_oci_cache_dir_starts_at_the_project() {
        let project = tempfile::tempdir().unwrap();
        std::fs::create_dir(project.path().join(".wash")).unwrap();
        std::fs::write(
            project.path().join(".wash/config.yaml"),
            "host:\n  oci_cache_dir: cache/oci\n  plugins:\n    - {id: kv, file: plugins/kv.wasm, max-restarts: 1}\n",
        )
        .unwrap();
        let user = project.path().join("user.yaml");
        std::fs::write(&user, "{}\n").unwrap();
        let config = host_config(&Locations::new(project.path(), Some(user))).unwrap();
        assert_eq!(config.oci_cache_dir, Some(project.path().join("cache/oci")));
        // Plugin files too; `--host-plugin` adds to the config's.
        assert_eq!(
            config.plugins[0].file,
            Some(project.path().join("plugins/kv.wasm"))
        );
        assert_eq!(config.plugins[0].max_restarts, Some(1));
        let settled = with_config(
            args(&["--host-plugin", "id=greeter,image=reg/greeter:1"]),
            config,
        )
        .unwrap();
        let ids: Vec<&str> = settled
            .args
            .host_plugins
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(ids, ["kv", "greeter"]);
    }
}
