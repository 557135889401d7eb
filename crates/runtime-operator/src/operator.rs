//! The operator's loops, wired together: Hosts from heartbeats, probing
//! them, and the Workload controller. Run on the leader only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::DeleteParams;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::bus::Bus;
use crate::control::HostControl;

use crate::crd::{ConditionStatus, Host, Workload};
use crate::host_pods::{self, Retired};
use crate::metrics::Metrics;
use crate::{artifact, deployment, host_status, hosts, replica_set, route, workload};

/// How the operator behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Hosts (and the leader lease) live.
    pub operator_namespace: String,
    /// Namespaces whose Workloads are reconciled; empty: all.
    pub watch_namespaces: Vec<String>,
    /// Namespaces host pods run in, besides the operator's.
    pub host_namespaces: Vec<String>,
    /// Whether a workload may use hosts of any environment.
    pub allow_shared_hosts: bool,
    /// How often every host is asked whether it is there.
    pub host_probe_interval: Duration,
    /// How long the operator's NATS connection must have been up before
    /// "no responders" counts as a host's death.
    pub host_loss_settle: Duration,
    /// How long a Host stays after it was found gone.
    pub host_gc_after: Duration,
    /// This replica's name, for Events.
    pub identity: String,
    /// How long a replica may stay not Ready before its set replaces it.
    pub replica_grace: Duration,
    /// Leave Artifacts alone (another controller publishes them).
    pub disable_artifact_controller: bool,
}

impl Settings {
    /// Defaults for `operator_namespace`: every namespace watched, shared
    /// hosts, probes every 2 s, 10 s to settle, gone Hosts removed after
    /// 5 min.
    pub fn new(operator_namespace: impl Into<String>) -> Self {
        Self {
            operator_namespace: operator_namespace.into(),
            watch_namespaces: Vec::new(),
            host_namespaces: Vec::new(),
            allow_shared_hosts: true,
            host_probe_interval: Duration::from_secs(2),
            host_loss_settle: Duration::from_secs(10),
            host_gc_after: Duration::from_secs(300),
            identity: "runtime-operator".into(),
            replica_grace: replica_set::DEFAULT_GRACE,
            disable_artifact_controller: false,
        }
    }
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Heartbeats cannot be received.
    #[error(
        "cannot subscribe to host heartbeats ({})",
        runtime_proto::subjects::HEARTBEATS
    )]
    Subscribe(#[source] async_nats::SubscribeError),
    /// The Host cache never filled.
    #[error("cannot list Hosts in namespace `{0}`")]
    HostCache(String),
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// Background loops that end with the operator: when `run` returns or is
/// dropped (leadership lost), none of them keeps acting.
struct Loops(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Loops {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Runs until the process is asked to stop (SIGTERM, Ctrl-C).
pub async fn run(
    client: kube::Client,
    bus: Bus,
    settings: Settings,
    metrics: Arc<Metrics>,
) -> Result<(), OperatorError> {
    let hosts_api: Api<Host> = Api::namespaced(client.clone(), &settings.operator_namespace);

    let subscriber = bus
        .client()
        .subscribe(runtime_proto::subjects::HEARTBEATS)
        .await
        .map_err(OperatorError::Subscribe)?;
    let mut loops = Loops(Vec::new());
    let retired = Retired::default();
    loops.0.push(tokio::spawn(hosts::run(
        hosts_api.clone(),
        subscriber,
        now,
        retired.clone(),
    )));

    let (hosts_reader, writer) = reflector::store();
    loops.0.push(tokio::spawn(
        reflector::reflector(
            writer,
            watcher(hosts_api.clone(), watcher::Config::default()),
        )
        .default_backoff()
        .touched_objects()
        .for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "Host watch");
            }
        }),
    ));
    hosts_reader
        .wait_until_ready()
        .await
        .map_err(|_| OperatorError::HostCache(settings.operator_namespace.clone()))?;

    loops.0.push(tokio::spawn(probe_hosts(
        hosts_api.clone(),
        hosts_reader.clone(),
        bus.clone(),
        settings.clone(),
        metrics.clone(),
    )));

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "runtime-operator".into(),
            instance: Some(settings.identity.clone()),
        },
    );
    let ctx = Arc::new(workload::Context {
        client: client.clone(),
        control: HostControl::new(bus.client().clone(), metrics.clone()),
        hosts: hosts_reader.clone(),
        allow_shared_hosts: settings.allow_shared_hosts,
        metrics: metrics.clone(),
        recorder,
        placements: workload::Placements::default(),
    });
    let sets_ctx = Arc::new(replica_set::Context {
        client: client.clone(),
        metrics: metrics.clone(),
        grace: settings.replica_grace,
    });
    let deployments_ctx = Arc::new(deployment::Context {
        client: client.clone(),
        metrics: metrics.clone(),
    });
    let route_metrics = metrics.clone();
    let artifacts_ctx = Arc::new(artifact::Context {
        client: client.clone(),
        metrics,
    });
    // Namespaces of host pods: their addresses route Services, and their
    // deletion retires their hosts.
    let mut pod_namespaces = vec![settings.operator_namespace.clone()];
    for namespace in &settings.host_namespaces {
        if !pod_namespaces.contains(namespace) {
            pod_namespaces.push(namespace.clone());
        }
    }
    for namespace in &pod_namespaces {
        loops.0.push(tokio::spawn(host_pods::run(
            Api::namespaced(client.clone(), namespace),
            hosts_api.clone(),
            hosts_reader.clone(),
            retired.clone(),
        )));
    }

    // One controller of each kind per watched namespace (all namespaces
    // when none is named), so namespace-scoped grants suffice.
    let scopes: Vec<Option<&str>> = if settings.watch_namespaces.is_empty() {
        vec![None]
    } else {
        settings
            .watch_namespaces
            .iter()
            .map(|n| Some(n.as_str()))
            .collect()
    };
    let mut controllers: Vec<futures::future::BoxFuture<'_, ()>> = Vec::new();
    for scope in scopes {
        controllers.push(Box::pin(workload::run(
            scoped(&client, scope),
            hosts_api.clone(),
            ctx.clone(),
        )));
        controllers.push(Box::pin(replica_set::run(
            scoped(&client, scope),
            scoped(&client, scope),
            sets_ctx.clone(),
        )));
        controllers.push(Box::pin(deployment::run(
            scoped(&client, scope),
            scoped(&client, scope),
            scoped(&client, scope),
            deployments_ctx.clone(),
        )));
        let (workload_reader, workload_writer) = reflector::store();
        loops.0.push(tokio::spawn(
            reflector::reflector(
                workload_writer,
                watcher(
                    scoped::<Workload>(&client, scope),
                    watcher::Config::default(),
                ),
            )
            .default_backoff()
            .touched_objects()
            .for_each(|_| async {}),
        ));
        let route_ctx = Arc::new(route::Context {
            client: client.clone(),
            workloads: workload_reader,
            hosts: hosts_api.clone(),
            pods: pod_namespaces
                .iter()
                .map(|n| Api::namespaced(client.clone(), n))
                .collect(),
            metrics: route_metrics.clone(),
        });
        controllers.push(Box::pin(route::run(
            scoped(&client, scope),
            scoped(&client, scope),
            scoped(&client, scope),
            hosts_api.clone(),
            pod_namespaces
                .iter()
                .map(|n| Api::namespaced(client.clone(), n))
                .collect(),
            route_ctx,
        )));
        if !settings.disable_artifact_controller {
            controllers.push(Box::pin(artifact::run(
                scoped(&client, scope),
                artifacts_ctx.clone(),
            )));
        }
    }
    futures::future::join_all(controllers).await;
    drop(loops);
    Ok(())
}

/// The objects of one namespace, or of all when `scope` is None.
fn scoped<K>(client: &kube::Client, scope: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Asks every host whether it is there, each `host_probe_interval`, and
/// records the answers as their `Reporting`/`Ready` conditions. Hosts gone
/// for `host_gc_after` are deleted. Also measures the round trip to NATS.
async fn probe_hosts(
    hosts_api: Api<Host>,
    hosts: Store<Host>,
    bus: Bus,
    settings: Settings,
    metrics: Arc<Metrics>,
) {
    let mut ticker = tokio::time::interval(settings.host_probe_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        metrics.set_nats_connected(bus.connected());
        let began = Instant::now();
        if let Ok(Ok(())) =
            tokio::time::timeout(host_status::PROBE_TIMEOUT, bus.client().flush()).await
        {
            metrics.nats_round_trip("flush", began.elapsed());
        }
        let healthy_for = bus.healthy_for();
        let all = hosts.state();
        let probes = all.iter().map(|host| {
            let hosts_api = &hosts_api;
            let bus = &bus;
            let settings = &settings;
            async move {
                let now = now();
                match host_status::refresh(
                    hosts_api,
                    bus.client(),
                    host,
                    healthy_for,
                    settings.host_loss_settle,
                    &now,
                )
                .await
                {
                    Ok(ConditionStatus::False) if gone_for(host) > settings.host_gc_after => {
                        tracing::info!(host = %host.name_any(), "removing a Host gone for long");
                        if let Err(e) = hosts_api
                            .delete(&host.name_any(), &DeleteParams::default())
                            .await
                        {
                            tracing::warn!(host = %host.name_any(), error = %e, "cannot remove Host");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(host = %host.name_any(), error = %e, "cannot record host status");
                    }
                }
            }
        });
        futures::future::join_all(probes).await;
    }
}

/// How long the host's Ready has been False (zero when it is not).
fn gone_for(host: &Host) -> Duration {
    let since = host.fields.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == ConditionStatus::False)
            .and_then(|c| c.last_transition_time.as_deref())
            .and_then(|t| t.parse::<Timestamp>().ok())
    });
    since
        .and_then(|t| Timestamp::now().duration_since(t).try_into().ok())
        .unwrap_or_default()
}
