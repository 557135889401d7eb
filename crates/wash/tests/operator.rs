//! The runtime-operator driving real `wash host` processes: real
//! `nats-server`, real `docker-registry` with the hello component pushed,
//! and the operator's loops and controller in this process. Only the
//! Kubernetes API is a test double (no kube-apiserver can be installed
//! here); the operator talks to it over HTTP through kube's client.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::hosts::{self, HostProc, get_host, push_hello};
use common::servers::{Nats, Registry};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use runtime_operator::bus::{Bus, NatsSettings};
use runtime_operator::crd::{ConditionStatus, Host, Workload};
use runtime_operator::metrics::Metrics;
use runtime_operator::operator::{self, Settings};
use test_support::kube_api::FakeApiServer;

const OPERATOR_NAMESPACE: &str = "wasmcloud";
const APPS: &str = "apps";
/// Long enough for anything the operator does; conditions are waited on,
/// this only bounds a failing run.
const PATIENCE: Duration = Duration::from_secs(60);

fn start_host(name: &str, nats: &str, registry: &str, labels: &[&str]) -> HostProc {
    let mut extra = vec!["--host-name", name, "--drain-timeout", "5s"];
    for label in labels {
        extra.extend(["--label", label]);
    }
    hosts::start_host(name, nats, registry, &extra)
}

/// Polls `check` every 100 ms until it gives a value; panics with `what`
/// after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator, running in this process.
struct Operator {
    bus: Bus,
    task: tokio::task::JoinHandle<()>,
}

impl Operator {
    async fn start(api: &FakeApiServer, nats: &str, settings: Settings) -> Self {
        let bus = Bus::connect(&NatsSettings {
            url: nats.into(),
            ..Default::default()
        })
        .await
        .expect("the operator connects to NATS");
        let client = api.client();
        let task_bus = bus.clone();
        let task = tokio::spawn(async move {
            operator::run(
                client,
                task_bus,
                settings,
                std::sync::Arc::new(Metrics::new()),
            )
            .await
            .expect("the operator runs");
        });
        Self { bus, task }
    }

    /// Waits until the operator's connection has been up for `settle`, so
    /// that it may conclude a host is gone.
    async fn settled(&self, settle: Duration) {
        eventually(
            "the operator's NATS connection to settle",
            PATIENCE,
            || async { self.bus.healthy_for().filter(|up| *up >= settle).map(drop) },
        )
        .await;
    }

    fn stop(self) {
        self.task.abort();
    }
}

fn settings() -> Settings {
    let mut settings = Settings::new(OPERATOR_NAMESPACE);
    settings.identity = "operator-under-test".into();
    settings
}

/// A Workload as one would write it for the reference operator.
fn workload(name: &str, image: &str, extra_spec: &str) -> Workload {
    let yaml = format!(
        r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata:
  name: {name}
  namespace: {APPS}
spec:
  hostSelector:
    hostgroup: default
{extra_spec}
  components:
    - name: {name}
      image: {image}
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config:
        host: {name}.test
"#
    );
    serde_norway::from_str(&yaml).expect("a Workload")
}

fn condition(workload: &Workload, type_: &str) -> Option<(ConditionStatus, String, String)> {
    workload.status.as_ref().and_then(|s| {
        s.conditions.iter().find(|c| c.type_ == type_).map(|c| {
            (
                c.status,
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
    })
}

/// Waits until the workload is Ready; returns its host id.
async fn ready_on(workloads: &Api<Workload>, name: &str) -> String {
    let last = std::sync::Mutex::new(None);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let w = workloads.get_opt(name).await.ok().flatten();
        if let Some(host) = w.as_ref().and_then(|w| {
            let (status, ..) = condition(w, "Ready")?;
            (status == ConditionStatus::True).then(|| w.status.as_ref()?.host_id.clone())?
        }) {
            return host;
        }
        *last.lock().unwrap() = w.and_then(|w| w.status);
        assert!(
            Instant::now() < deadline,
            "Workload `{name}` not Ready in time; last status: {:#?}",
            last.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn host_ready(host: &Host) -> Option<ConditionStatus> {
    host.fields.status.as_ref().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status)
    })
}

/// Waits until every named host has a Ready Host object reporting
/// `workloads` workloads.
async fn hosts_report(hosts: &Api<Host>, expected: &[(&str, i64)]) {
    eventually("Hosts from heartbeats", PATIENCE, || async {
        let list = hosts.list(&ListParams::default()).await.ok()?;
        expected
            .iter()
            .all(|(name, count)| {
                list.items.iter().any(|h| {
                    h.name_any() == *name
                        && host_ready(h) == Some(ConditionStatus::True)
                        && h.fields.status.as_ref().and_then(|s| s.workload_count) == Some(*count)
                })
            })
            .then_some(())
    })
    .await;
}

/// Starts a workload on a host directly over the control plane (load the
/// operator did not place).
async fn start_directly(nats: &async_nats::Client, host: &str, name: &str, image: &str) {
    let request = serde_json::json!({
        "workloadId": name,
        "workload": {
            "namespace": "direct",
            "name": name,
            "witWorld": {
                "components": [{"name": name, "image": image}],
                "hostInterfaces": [{"namespace": "wasi", "package": "http",
                    "interfaces": ["incoming-handler"], "config": {"host": format!("{name}.test")}}]
            }
        }
    });
    let reply = nats
        .request(
            format!("runtime.host.{host}.workload.start"),
            serde_json::to_vec(&request).unwrap().into(),
        )
        .await
        .expect("a start reply");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_ne!(
        reply["workloadStatus"]["workloadState"], "WORKLOAD_STATE_ERROR",
        "{reply}"
    );
}

async fn workload_state(nats: &async_nats::Client, host: &str, id: &str) -> String {
    let reply = nats
        .request(
            format!("runtime.host.{host}.workload.status"),
            serde_json::to_vec(&serde_json::json!({ "workloadId": id }))
                .unwrap()
                .into(),
        )
        .await
        .expect("a status reply");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    reply["workloadStatus"]["workloadState"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Servers, the test API server and `wash host`s named `names`, all ready.
struct Cluster {
    nats: Nats,
    registry: Registry,
    image: String,
    api: FakeApiServer,
    workloads: Api<Workload>,
    hosts_api: Api<Host>,
    hosts: Vec<HostProc>,
}

impl Cluster {
    async fn start(names: &[&str]) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let nats = Nats::start();
        let registry = Registry::start();
        let image = push_hello(&registry).await;
        let api = FakeApiServer::start().await;
        let client = api.client();
        let hosts: Vec<HostProc> = names
            .iter()
            .map(|name| start_host(name, &nats.url(), &registry.address(), &[]))
            .collect();
        for host in &hosts {
            host.ready().await;
        }
        Self {
            workloads: Api::namespaced(client.clone(), APPS),
            hosts_api: Api::namespaced(client, OPERATOR_NAMESPACE),
            nats,
            registry,
            image,
            api,
            hosts,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_places_moves_and_removes_workloads_on_real_hosts() {
    // The operator's log, shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("runtime_operator=debug")
        .with_test_writer()
        .try_init();
    let Cluster {
        nats,
        registry,
        image,
        api,
        workloads,
        hosts_api,
        mut hosts,
    } = Cluster::start(&["h1", "h2", "h3"]).await;
    let client = api.client();
    let settings = settings();
    let operator = Operator::start(&api, &nats.url(), settings.clone()).await;
    let bus = async_nats::connect(nats.url()).await.unwrap();

    // h1 and h2 already run something; h3 runs nothing.
    start_directly(&bus, "h1", "busy-1", &image).await;
    start_directly(&bus, "h2", "busy-2", &image).await;
    hosts_report(&hosts_api, &[("h1", 1), ("h2", 1), ("h3", 0)]).await;

    // Placed on the least loaded matching host, and served there.
    workloads
        .create(&PostParams::default(), &workload("hello", &image, ""))
        .await
        .unwrap();
    let placed = ready_on(&workloads, "hello").await;
    assert_eq!(placed, "h3", "the least loaded host");
    let h3 = hosts.iter().find(|h| h.id == "h3").unwrap();
    assert_eq!(
        get_host(&h3.url("/"), "hello.test").await,
        (200, "Hello from wash!\n".into())
    );
    let hello = workloads.get("hello").await.unwrap();
    assert!(
        hello
            .finalizers()
            .contains(&runtime_operator::workload::FINALIZER.to_string())
    );
    assert_eq!(
        hello.status.as_ref().unwrap().workload_id,
        hello.uid(),
        "the workload id is the object's UID"
    );

    // kill -9 the host serving it: served again from another host.
    operator.settled(settings.host_loss_settle).await;
    let index = hosts.iter().position(|h| h.id == "h3").unwrap();
    let killed = hosts.remove(index);
    let began = Instant::now();
    killed.process.signal(libc::SIGKILL);
    let others: Vec<String> = hosts.iter().map(|h| h.url("/")).collect();
    let served_by = eventually("hello to be served again", PATIENCE, || async {
        for url in &others {
            if get_host(url, "hello.test").await.0 == 200 {
                return Some(url.clone());
            }
        }
        None
    })
    .await;
    let elapsed = began.elapsed();
    println!("served again {elapsed:?} after kill -9 of its host (by {served_by})");
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} to serve again"
    );
    let moved = ready_on(&workloads, "hello").await;
    assert_ne!(moved, "h3");
    drop(killed);

    // A missing ConfigMap: Config=False naming it, Ready once it exists.
    let mut configured = workload("configured", &image, "");
    configured.spec.components[0].local_resources = Some(
        serde_norway::from_str("environment:\n  configFrom:\n    - name: greeting\n").unwrap(),
    );
    workloads
        .create(&PostParams::default(), &configured)
        .await
        .unwrap();
    let message = eventually("Config=False", PATIENCE, || async {
        let w = workloads.get("configured").await.ok()?;
        let (status, _, message) = condition(&w, "Config")?;
        (status == ConditionStatus::False).then_some(message)
    })
    .await;
    assert!(
        message.contains("ConfigMap `greeting` not found"),
        "{message}"
    );
    let mut greeting = ConfigMap::default();
    greeting.metadata.name = Some("greeting".into());
    greeting.data = Some(BTreeMap::from([("GREETING".into(), "hi".into())]));
    Api::<ConfigMap>::namespaced(client.clone(), APPS)
        .create(&PostParams::default(), &greeting)
        .await
        .unwrap();
    ready_on(&workloads, "configured").await;

    // No host matches: HostSelection=False and an Event; placed when one
    // joins.
    workloads
        .create(
            &PostParams::default(),
            &workload("gpu", &image, "    gpu: \"yes\""),
        )
        .await
        .unwrap();
    let (reason, message) = eventually("HostSelection=False", PATIENCE, || async {
        let w = workloads.get("gpu").await.ok()?;
        let (status, reason, message) = condition(&w, "HostSelection")?;
        (status == ConditionStatus::False).then_some((reason, message))
    })
    .await;
    assert_eq!(reason, "NoMatchingHost");
    assert!(message.contains("gpu"), "{message}");
    let events: Api<Event> = Api::namespaced(client.clone(), APPS);
    eventually("a NoMatchingHost Event", PATIENCE, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("NoMatchingHost")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("gpu")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;
    let gpu_host = start_host("h4", &nats.url(), &registry.address(), &["gpu=yes"]);
    gpu_host.ready().await;
    assert_eq!(ready_on(&workloads, "gpu").await, "h4");
    assert_eq!(get_host(&gpu_host.url("/"), "gpu.test").await.0, 200);

    // Delete: stopped on its host, finalizer gone with the object.
    let hello = workloads.get("hello").await.unwrap();
    let id = hello.uid().unwrap();
    workloads
        .delete("hello", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Workload to be gone", PATIENCE, || async {
        matches!(workloads.get_opt("hello").await, Ok(None)).then_some(())
    })
    .await;
    assert_eq!(
        workload_state(&bus, &moved, &id).await,
        "WORKLOAD_STATE_NOT_FOUND"
    );
    assert_eq!(get_host(&served_by, "hello.test").await.0, 404);

    operator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_or_an_operator_restart_deletes_and_moves_nothing() {
    let Cluster {
        mut nats,
        registry: _registry,
        image,
        api,
        workloads,
        hosts_api,
        hosts,
    } = Cluster::start(&["o1", "o2"]).await;
    let settings = settings();
    let operator = Operator::start(&api, &nats.url(), settings.clone()).await;
    hosts_report(&hosts_api, &[("o1", 0), ("o2", 0)]).await;
    workloads
        .create(&PostParams::default(), &workload("steady", &image, ""))
        .await
        .unwrap();
    let placed = ready_on(&workloads, "steady").await;
    let serving = hosts.iter().find(|h| h.id == placed).unwrap();
    assert_eq!(get_host(&serving.url("/"), "steady.test").await.0, 200);

    // NATS down for 30 s: the outage itself is the scenario.
    nats.stop();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        hosts_api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    nats.restart();

    // Once everyone is back and the operator could have concluded
    // anything (settled, and several probes later), nothing moved.
    operator
        .settled(settings.host_loss_settle + 3 * settings.host_probe_interval)
        .await;
    eventually("both Hosts Ready again", PATIENCE, || async {
        let list = hosts_api.list(&ListParams::default()).await.ok()?;
        (list.items.len() == 2
            && list
                .items
                .iter()
                .all(|h| host_ready(h) == Some(ConditionStatus::True)))
        .then_some(())
    })
    .await;
    let check = || async {
        let all_hosts = hosts_api.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(all_hosts.len(), 2, "no Host deleted");
        let steady = workloads.get("steady").await.expect("the Workload stays");
        assert_eq!(
            steady.status.as_ref().and_then(|s| s.host_id.clone()),
            Some(placed.clone()),
            "the workload did not move"
        );
        assert_eq!(get_host(&serving.url("/"), "steady.test").await.0, 200);
    };
    check().await;

    // An operator restart: the new one keeps everything as it is.
    operator.stop();
    let operator = Operator::start(&api, &nats.url(), settings.clone()).await;
    operator
        .settled(settings.host_loss_settle + 3 * settings.host_probe_interval)
        .await;
    ready_on(&workloads, "steady").await;
    check().await;
    operator.stop();
}
