//! Command-line arguments. Flags become domain types here; each subcommand's
//! `run` lives in its own module under `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// wash: build, run and inspect WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wash", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Output format of results.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(short = 'l', long = "log-level", global = true, env = "WASH_LOG")]
    pub log_level: Option<String>,

    /// Run as if started in this directory.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,

    /// User config file (default: `~/.config/wash/config.yaml` and friends).
    #[arg(long, global = true, value_name = "PATH", env = "WASH_USER_CONFIG")]
    pub user_config: Option<PathBuf>,

    /// Never prompt; fail with a clear message when a value is missing.
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// Show more detail (same as `--log-level debug` for wash itself).
    #[arg(long, global = true)]
    pub verbose: bool,

    /// Export OpenTelemetry traces and metrics (OTLP) from `host` and `dev`
    /// to this collector, e.g. `http://127.0.0.1:4318` (or set
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; `OTEL_EXPORTER_OTLP_PROTOCOL` picks
    /// `grpc` or `http/protobuf`).
    #[arg(long, global = true, value_name = "URL")]
    pub otel_endpoint: Option<String>,
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// One JSON document (or one per line for streams of events).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the project's component and print the artifact's path.
    Build(crate::commands::build::BuildArgs),
    /// Build, serve and hot-reload a component on a local host.
    Dev(crate::commands::dev::DevArgs),
    /// Show a component's WIT world or a WIT package, with provenance.
    Inspect(crate::commands::inspect::InspectArgs),
    /// Run a host that joins the control plane over NATS.
    Host(Box<crate::commands::host::HostArgs>),
    /// Start, inspect or stop workloads on a host (control-plane protocol).
    Workload(crate::commands::workload::WorkloadArgs),
    /// Push and pull components to and from OCI registries.
    Oci(crate::commands::oci::OciArgs),
    /// Build, publish and fetch WIT packages (OCI registries, `wkg.lock`).
    Wit(crate::commands::wit::WitArgs),
    /// Create, inspect, validate and clean up wash's configuration.
    Config(crate::commands::config::ConfigArgs),
    /// Create a project from a template or a git repository.
    New(crate::commands::new::NewArgs),
    /// Print shell completions.
    Completion(crate::commands::completion::CompletionArgs),
}

/// Parses a `KEY=VALUE` flag value (the value may be empty or hold `=`).
pub fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{raw}` is not KEY=VALUE")),
    }
}

/// A listening address given as `HOST:PORT`, where the host may be a name
/// (`localhost:8000`) as well as an address; `what` names the flag or key.
pub fn socket_addr(value: &str, what: &str) -> anyhow::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let resolved = value.to_socket_addrs().map_err(|e| {
        anyhow::anyhow!(
            "{what} `{value}` is not a socket address: expected HOST:PORT, such as \
             127.0.0.1:8000 or localhost:8000 ({e})"
        )
    })?;
    let mut resolved: Vec<_> = resolved.collect();
    // `localhost` may resolve to ::1 first; prefer IPv4 like most clients.
    resolved.sort_by_key(|addr| addr.is_ipv6());
    resolved
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("{what} `{value}` resolves to no address"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn socket_addresses_take_names_and_say_what_is_expected() {
        let addr = super::socket_addr("localhost:8001", "--address").unwrap();
        assert_eq!(addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(
            super::socket_addr("[::1]:80", "--address").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        let error = super::socket_addr("localhost", "--address")
            .unwrap_err()
            .to_string();
        assert!(error.contains("--address `localhost`"), "{error}");
        assert!(error.contains("HOST:PORT"), "{error}");
    }
}
