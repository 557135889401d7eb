//! The `runtime-operator` binary.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Args, Parser, Subcommand};
use runtime_operator::bus::{Bus, NatsSettings};
use runtime_operator::leader::{self, LeaseSettings};
use runtime_operator::metrics::Metrics;
use runtime_operator::operator::{self, Settings};
use runtime_operator::serve::{self, Health};

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
    /// Run the operator against the cluster of the current kubeconfig (or
    /// in-cluster) and the hosts' NATS.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// NATS server(s) the hosts use, comma separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// NATS credentials file (JWT and seed).
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// CA certificate to verify the NATS server with.
    #[arg(long, value_name = "FILE")]
    nats_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS with NATS.
    #[arg(long, value_name = "FILE", requires = "nats_client_key")]
    nats_client_cert: Option<PathBuf>,
    /// Key of the client certificate.
    #[arg(long, value_name = "FILE", requires = "nats_client_cert")]
    nats_client_key: Option<PathBuf>,
    /// Start TLS before the NATS handshake (servers with `handshake_first`).
    #[arg(long)]
    nats_tls_first: bool,
    /// Namespace of the Hosts and the leader lease.
    #[arg(long, env = "OPERATOR_NAMESPACE")]
    operator_namespace: String,
    /// Namespaces whose Workloads are reconciled, comma separated (default:
    /// all).
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACES")]
    watch_namespaces: Vec<String>,
    /// Namespaces where host pods run besides the operator's, comma
    /// separated (Service routing reads their pod IPs).
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACES")]
    host_namespaces: Vec<String>,
    /// Let a workload use hosts of any environment (`=false`: only hosts
    /// whose environment is the workload's namespace).
    #[arg(long, action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    allow_shared_hosts: bool,
    /// Act only while holding the leader lease, so replicas can stand by
    /// (`=false` for a single replica).
    #[arg(long, action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    leader_elect: bool,
    /// Where `/metrics` is served (`0` turns it off).
    #[arg(long, default_value = ":8081", value_name = "ADDR")]
    metrics_bind_address: String,
    /// Where `/healthz` and `/readyz` are served (`0` turns them off).
    #[arg(long, default_value = ":8082", value_name = "ADDR")]
    health_probe_bind_address: String,
    /// How often every host is asked whether it is there.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    host_probe_interval: Duration,
    /// How long the NATS connection must have been up before a host that
    /// does not answer counts as gone.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    host_loss_settle: Duration,
    /// How long a gone Host stays before it is deleted.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    host_gc_after: Duration,
    /// This replica's name in the lease and Events (default: the hostname,
    /// which is the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long a replica may stay not Ready before its replica set
    /// replaces it.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    replica_grace_period: Duration,
    /// Do not reconcile Artifacts.
    #[arg(long)]
    disable_artifact_controller: bool,
    /// Log as JSON lines.
    #[arg(long)]
    json_log: bool,
}

/// A Go-style listen address: `:8081` is every interface, `0` is off.
fn bind_address(flag: &str, value: &str) -> Result<Option<SocketAddr>> {
    if value == "0" || value.is_empty() {
        return Ok(None);
    }
    let full = match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_string(),
    };
    full.parse().map(Some).with_context(|| {
        format!("--{flag} `{value}` is not an address like `:8081` or `127.0.0.1:8081`")
    })
}

async fn listen(flag: &str, address: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} (--{flag})"))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(args: RunArgs) -> Result<()> {
    init_logging(args.json_log);
    // kube and async-nats both use rustls; its provider is aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let metrics_address = bind_address("metrics-bind-address", &args.metrics_bind_address)?;
    let probe_address = bind_address("health-probe-bind-address", &args.health_probe_bind_address)?;
    let identity = match args.identity {
        Some(identity) => identity,
        None => hostname(),
    };

    let mut config = kube::Config::infer().await.context(
        "cannot reach the Kubernetes API: no usable kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a cluster",
    )?;
    // Audit logs and API-server metrics name the operator.
    config.headers.push((
        hyper::header::USER_AGENT,
        hyper::header::HeaderValue::from_static(concat!(
            "runtime-operator/",
            env!("CARGO_PKG_VERSION")
        )),
    ));
    let client = kube::Client::try_from(config).context("cannot build the Kubernetes client")?;
    let nats = NatsSettings {
        url: args.nats_url,
        creds: args.nats_creds,
        ca: args.nats_ca,
        client_cert: args.nats_client_cert,
        client_key: args.nats_client_key,
        tls_first: args.nats_tls_first,
    };
    let bus = Bus::connect(&nats)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("the operator needs the hosts' NATS (--nats-url)")?;

    let metrics = Arc::new(Metrics::new());
    metrics.set_nats_connected(bus.connected());
    let health = Arc::new(Health::new(bus.clone()));
    if let Some(address) = probe_address {
        let listener = listen("health-probe-bind-address", address).await?;
        tokio::spawn(serve::probes(listener, health.clone()));
    }
    if let Some(address) = metrics_address {
        let listener = listen("metrics-bind-address", address).await?;
        tokio::spawn(serve::metrics(listener, metrics.clone()));
    }
    health.set_started();

    let mut settings = Settings::new(args.operator_namespace.clone());
    settings.watch_namespaces = args.watch_namespaces;
    settings.allow_shared_hosts = args.allow_shared_hosts;
    settings.host_probe_interval = args.host_probe_interval;
    settings.host_loss_settle = args.host_loss_settle;
    settings.host_gc_after = args.host_gc_after;
    settings.identity = identity.clone();
    settings.replica_grace = args.replica_grace_period;
    settings.disable_artifact_controller = args.disable_artifact_controller;
    settings.host_namespaces = args.host_namespaces;

    let mut leader = if args.leader_elect {
        tracing::info!(%identity, lease = leader::LEASE_NAME, "waiting for the leader lease");
        let leases = kube::Api::namespaced(client.clone(), &args.operator_namespace);
        tokio::select! {
            leader = leader::lead(leases, LeaseSettings::new(identity)) => Some(leader),
            () = shutdown_signal() => return Ok(()),
        }
    } else {
        None
    };
    metrics.set_leader(true);

    let outcome = match &mut leader {
        Some(lease) => tokio::select! {
            outcome = operator::run(client, bus, settings, metrics.clone()) => outcome,
            () = lease.lost() => {
                metrics.set_leader(false);
                bail!("lost the leader lease; exiting so that the new leader acts alone");
            }
        },
        None => operator::run(client, bus, settings, metrics.clone()).await,
    };
    if let Some(lease) = leader {
        lease.release().await;
    }
    outcome.map_err(|e| anyhow::anyhow!(e))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "runtime-operator".into())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Crds => {
            let yaml = runtime_operator::crd::yaml()?;
            std::io::stdout()
                .write_all(yaml.as_bytes())
                .context("cannot write to stdout")?;
            Ok(())
        }
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(run(*args)),
    }
}
