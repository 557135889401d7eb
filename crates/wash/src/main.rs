//! The `wash` command-line tool.

mod allocator;
mod build;
mod cli;
mod commands;
mod config;
mod host_setup;
mod output;
mod paths;
mod telemetry;
mod wit;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

// A request is parsed on one worker thread and freed on another; under load
// glibc's per-arena locks then make threads sleep on each other (futex waits
// on most requests). mimalloc frees across threads without that lock.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

fn main() -> ExitCode {
    // Before anything can open a TLS connection: aws-lc-rs, never ring.
    wash_runtime::tls::init_crypto();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Exporters start tasks: inside the runtime.
    let telemetry = {
        let _inside = runtime.enter();
        match init_logging(&cli) {
            Ok(telemetry) => telemetry,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Build(args) => commands::build::run(&cli.global, args).await,
            Command::Dev(args) => commands::dev::run(&cli.global, args).await,
            Command::Inspect(args) => commands::inspect::run(&cli.global, args).await,
            Command::Host(args) => commands::host::run(&cli.global, *args).await,
            Command::Workload(args) => commands::workload::run(&cli.global, args).await,
            Command::Oci(args) => commands::oci::run(&cli.global, args).await,
            Command::Wit(args) => commands::wit::run(&cli.global, args).await,
            Command::Config(args) => commands::config::run(&cli.global, args).await,
            Command::New(args) => commands::new::run(&cli.global, args).await,
            Command::Completion(args) => commands::completion::run(args),
        }
    });
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain on one line; never a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; stdout carries results only. Hosts (`host`, `dev`)
/// also export traces and metrics when OpenTelemetry is configured.
fn init_logging(cli: &Cli) -> anyhow::Result<Option<telemetry::Telemetry>> {
    let default = match &cli.command {
        // Dev and hosts show what guests print and why requests fail.
        Command::Dev(_) => "warn,wash::guest=info",
        Command::Host(_) => "info",
        _ => "warn",
    };
    let filter = match (&cli.global.log_level, cli.global.verbose) {
        (Some(level), _) => level.clone(),
        (None, true) => "info,wash=debug,wash_runtime=debug".to_string(),
        (None, false) => std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_string()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter `{filter}` ({e}); using `{default}`");
        tracing_subscriber::EnvFilter::new(default)
    });
    // `log` records (wasmtime logs at trace in its hot paths) become
    // events only up to the most verbose level the filter can show; above
    // it, each record would be built and dispatched just to be dropped.
    let log_level = match filter.max_level_hint() {
        Some(level) => level_for_log(level),
        None => log::LevelFilter::Trace,
    };
    // async-nats logs whole messages at trace, and control messages carry
    // credentials (image pull secrets): its trace events never get out.
    let no_payloads = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.target().starts_with("async_nats") && *meta.level() == tracing::Level::TRACE)
    });
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .compact()
        .with_filter(filter)
        .with_filter(no_payloads);
    let serves = matches!(cli.command, Command::Host(_) | Command::Dev(_));
    let endpoint = cli.global.otel_endpoint.as_deref();
    if serves && telemetry::wanted(endpoint) {
        let registry = tracing_subscriber::registry().with(output);
        let (telemetry, layer) = telemetry::start(endpoint)?;
        // Only the request spans go out, never log events or other spans.
        let spans = tracing_subscriber::filter::Targets::new()
            .with_target("wash::http", tracing::Level::INFO);
        registry.with(layer.with_filter(spans)).init();
        log::set_max_level(log_level);
        return Ok(Some(telemetry));
    }
    tracing_subscriber::registry().with(output).init();
    log::set_max_level(log_level);
    Ok(None)
}

/// The `log` crate's level for a tracing level filter.
fn level_for_log(level: tracing_subscriber::filter::LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(tracing::Level::ERROR) => log::LevelFilter::Error,
        Some(tracing::Level::WARN) => log::LevelFilter::Warn,
        Some(tracing::Level::INFO) => log::LevelFilter::Info,
        Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
        Some(tracing::Level::TRACE) => log::LevelFilter::Trace,
    }
}
