//! `wash workload start|status|stop`: the control-plane protocol from the
//! command line, for scripts and tests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use wash_runtime::types::Workload;
use wash_runtime::washlet::proto::{
    self, WorkloadStartRequest, WorkloadStartResponse, WorkloadState, WorkloadStatusRequest,
    WorkloadStopRequest,
};
use wash_runtime::washlet::workload_to_proto;

use crate::cli::GlobalArgs;
use crate::output;

#[derive(Debug, Args)]
pub struct WorkloadArgs {
    #[command(subcommand)]
    pub command: WorkloadCommand,
}

/// Shared flags.
#[derive(Debug, Args)]
pub struct Target {
    /// Id of the host to talk to.
    #[arg(long)]
    pub host: String,

    /// NATS server of the control plane.
    #[arg(
        long,
        default_value = "nats://127.0.0.1:4222",
        env = "WASH_SCHEDULER_NATS_URL"
    )]
    pub scheduler_nats_url: String,

    /// How long to wait for the host's answer.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Start the workload in a file (YAML or JSON) on a host.
    Start {
        #[command(flatten)]
        target: Target,
        /// The workload file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Id to start it under (default: its name).
        #[arg(long)]
        id: Option<String>,
    },
    /// Show a workload's status on a host.
    Status {
        #[command(flatten)]
        target: Target,
        /// The workload id.
        #[arg(long)]
        id: String,
    },
    /// Stop a workload on a host.
    Stop {
        #[command(flatten)]
        target: Target,
        /// The workload id.
        #[arg(long)]
        id: String,
    },
}

#[derive(Serialize)]
struct Shown<'a> {
    host: &'a str,
    #[serde(flatten)]
    status: proto::WorkloadStatus,
}

async fn call<T: Serialize>(
    target: &Target,
    operation: &str,
    request: &T,
) -> Result<proto::WorkloadStatus> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(&target.scheduler_nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", target.scheduler_nats_url))?;
    let subject = format!("runtime.host.{}.{operation}", target.host);
    let payload = serde_json::to_vec(request)?;
    let reply = tokio::time::timeout(
        target.timeout,
        client.request(subject.clone(), payload.into()),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "host `{}` did not answer within {:?}",
            target.host,
            target.timeout
        )
    })?
    .map_err(|e| anyhow::anyhow!("no answer from host `{}` on {subject}: {e}", target.host))?;
    // Every workload operation answers with the same shape: a status.
    let response: WorkloadStartResponse = serde_json::from_slice(&reply.payload)
        .with_context(|| format!("host `{}` sent an unreadable reply", target.host))?;
    response
        .workload_status
        .context("the host's reply carries no workload status")
}

/// A workload file (YAML, which JSON is too).
fn parse_workload(text: &str) -> Result<Workload, serde_norway::Error> {
    serde_norway::from_str(text)
}

pub async fn run(global: &GlobalArgs, args: WorkloadArgs) -> Result<()> {
    let (target, status) = match args.command {
        WorkloadCommand::Start { target, file, id } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let workload = parse_workload(&text)
                .with_context(|| format!("{} is not a valid workload", file.display()))?;
            let id = id.unwrap_or_else(|| workload.name.clone());
            if id.is_empty() {
                bail!("the workload has no name; give an id with --id");
            }
            let request = WorkloadStartRequest {
                workload: Some(workload_to_proto(&workload)),
                workload_id: id,
            };
            let status = call(&target, "workload.start", &request).await?;
            (target, status)
        }
        WorkloadCommand::Status { target, id } => {
            let status = call(
                &target,
                "workload.status",
                &WorkloadStatusRequest { workload_id: id },
            )
            .await?;
            (target, status)
        }
        WorkloadCommand::Stop { target, id } => {
            let status = call(
                &target,
                "workload.stop",
                &WorkloadStopRequest { workload_id: id },
            )
            .await?;
            (target, status)
        }
    };
    let failed = status.workload_state() == WorkloadState::Error;
    let text = {
        let status = status.clone();
        let host = target.host.clone();
        move || {
            let state = status
                .workload_state()
                .as_str_name()
                .trim_start_matches("WORKLOAD_STATE_")
                .to_lowercase();
            let mut line = format!("{} on {host}: {state}", status.workload_id);
            if !status.message.is_empty() {
                line.push_str(&format!(" ({})", status.message));
            }
            line
        }
    };
    output::emit(
        global.output,
        text,
        &Shown {
            host: &target.host,
            status,
        },
    );
    if failed {
        bail!("the host reported an error");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use wash_runtime::types::{Component, WitInterface};

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 :.#'\"-]{0,12}"
    }

    fn workload() -> impl Strategy<Value = Workload> {
        let component =
            (name(), prop::option::of(name()), 0..5i32).prop_map(|(name, image, pool_size)| {
                Component {
                    name,
                    image,
                    pool_size,
                    ..Default::default()
                }
            });
        let interface = (
            name(),
            name(),
            prop::collection::btree_map(name(), name(), 0..3),
        )
            .prop_map(|(namespace, package, config)| WitInterface {
                namespace,
                package,
                config,
                ..Default::default()
            });
        (
            name(),
            prop::collection::vec(component, 0..3),
            prop::collection::vec(interface, 0..3),
            prop::collection::btree_map(name(), name(), 0..2),
        )
            .prop_map(
                |(name, components, host_interfaces, annotations)| Workload {
                    name,
                    components,
                    host_interfaces,
                    annotations: annotations.into_iter().collect::<BTreeMap<_, _>>(),
                    ..Default::default()
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Any text is a workload or an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(text in "(\\PC|[\n:{}\\[\\]\\-])*") {
            let _ = parse_workload(&text);
        }

        /// What `wash` writes as YAML reads back the same.
        #[test]
        fn workload_yaml_round_trips(workload in workload()) {
            let yaml = serde_norway::to_string(&workload).unwrap();
            prop_assert_eq!(parse_workload(&yaml).unwrap(), workload);
        }
    }
}
