//! `wash host`: a long-running host that joins the control plane over NATS,
//! pulls components from OCI registries and serves them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wash_runtime::engine::EngineBuilder;
use wash_runtime::host::egress::DefaultOutgoingHandler;
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{HostBuilder, HostError};
use wash_runtime::oci::{OciClient, OciConfig};
use wash_runtime::plugin::HostPlugin;
use wash_runtime::plugin::blobstore::{Blobstore, NatsBlobstore};
use wash_runtime::plugin::keyvalue::{KeyValue, NatsKeyValue};
use wash_runtime::plugin::messaging::{Messaging, NatsMessaging};
use wash_runtime::tls::TrustRoots;
use wash_runtime::washlet::{DEFAULT_MAX_REQUEST, Washlet, WashletConfig};

use crate::cli::GlobalArgs;
use crate::paths;

#[derive(Debug, Args)]
pub struct HostArgs {
    /// Host group this host joins (reported as the `hostgroup` label).
    #[arg(long, default_value = "default")]
    pub host_group: String,

    /// Friendly name (defaults to the machine's host name).
    #[arg(long)]
    pub host_name: Option<String>,

    /// Host id on the control plane (defaults to `<name>-<random>`).
    #[arg(long)]
    pub host_id: Option<String>,

    /// NATS server of the control plane.
    #[arg(
        long,
        default_value = "nats://127.0.0.1:4222",
        env = "WASH_SCHEDULER_NATS_URL"
    )]
    pub scheduler_nats_url: String,
    #[command(flatten)]
    pub scheduler_tls: SchedulerTls,

    /// NATS server for data (messaging, key-value and blob defaults);
    /// without it those stay in memory.
    #[arg(long, env = "WASH_DATA_NATS_URL")]
    pub data_nats_url: Option<String>,
    #[command(flatten)]
    pub data_tls: DataTls,

    /// Address to serve HTTP on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Extra CA certificates (PEM) for components' outbound HTTPS.
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
    #[arg(long = "label", value_parser = parse_label)]
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

fn parse_label(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{raw}` is not key=value")),
    }
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

pub async fn run(_global: &GlobalArgs, args: HostArgs) -> Result<()> {
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
        &args.scheduler_nats_url,
        args.scheduler_tls.scheduler_ca.as_ref(),
        args.scheduler_tls.scheduler_cert.as_ref(),
        args.scheduler_tls.scheduler_key.as_ref(),
        "control-plane",
    )
    .await?;

    let mut plugins = wash_runtime::plugin::builtin();
    if let Some(url) = &args.data_nats_url {
        let data = connect(
            url,
            args.data_tls.data_ca.as_ref(),
            args.data_tls.data_cert.as_ref(),
            args.data_tls.data_key.as_ref(),
            "data",
        )
        .await?;
        let on_nats: Vec<Arc<dyn HostPlugin>> = vec![
            Arc::new(KeyValue::new(Arc::new(NatsKeyValue::with_client(
                url,
                data.clone(),
            )))),
            Arc::new(Blobstore::new(Arc::new(NatsBlobstore::with_client(
                url,
                data.clone(),
            )))),
            Arc::new(Messaging::new(Arc::new(NatsMessaging::with_client(
                url, data,
            )))),
        ];
        plugins.retain(|p| on_nats.iter().all(|n| n.id() != p.id()));
        plugins.extend(on_nats);
    }

    let oci = OciClient::new(OciConfig {
        cache_dir: args
            .oci_cache_dir
            .clone()
            .unwrap_or_else(|| paths::cache_dir().join("oci")),
        insecure_registries: args.allow_insecure_registries.clone(),
        ca_files: Vec::new(),
        pull_timeout: args.registry_pull_timeout,
    })?;
    let trust = args
        .http_client_ca_paths
        .iter()
        .fold(TrustRoots::webpki(), |roots, path| roots.with_ca_file(path));
    let outgoing = DefaultOutgoingHandler::builder()
        .trust(trust)
        .build()
        .context("cannot set up outbound HTTP (check --http-client-ca-path)")?;
    let engine = EngineBuilder::new()
        .with_compile_cache(paths::compile_cache_dir())
        .build()
        .context("cannot set up the WebAssembly engine")?;
    let mut builder = HostBuilder::new()
        .with_engine(engine)
        .with_oci(oci)
        .with_http(
            HttpServerBuilder::new(args.http_addr)
                .router(Arc::new(DynamicRouter::new()))
                .outgoing_handler(Arc::new(outgoing)),
        );
    for plugin in plugins {
        builder = builder.with_plugin(plugin)?;
    }
    let host = builder.start().await.map_err(|e| match e {
        HostError::Bind { addr, source } => {
            anyhow::anyhow!("cannot listen for HTTP on {addr}: {source} (pick another --http-addr)")
        }
        other => other.into(),
    })?;

    let washlet = Washlet::start(
        host.clone(),
        scheduler,
        WashletConfig {
            host_id: host_id.clone(),
            friendly_name,
            host_group: args.host_group.clone(),
            labels: args.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
            heartbeat_interval: args.heartbeat_interval,
            max_request: DEFAULT_MAX_REQUEST,
        },
    )
    .await?;
    println!(
        "Host {host_id} (group {}) serving HTTP on {}, control plane {}",
        args.host_group,
        host.http_addr().map(|a| a.to_string()).unwrap_or_default(),
        args.scheduler_nats_url
    );

    super::shutdown_signal().await;
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
