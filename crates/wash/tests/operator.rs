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
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use runtime_operator::bus::{Bus, NatsSettings};
use runtime_operator::crd::{ConditionStatus, Host, Workload, WorkloadReplicaSet};
use runtime_operator::metrics::Metrics;
use runtime_operator::operator::{self, Settings};
use test_support::eventually;
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
    // The status follows within the same pass that started it elsewhere.
    let moved = eventually("hello Ready on another host", PATIENCE, || async {
        let hello = workloads.get("hello").await.ok()?;
        let ready = condition(&hello, "Ready").is_some_and(|(s, ..)| s == ConditionStatus::True);
        let host = hello.status?.host_id?;
        (ready && host != "h3").then_some(host)
    })
    .await;
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

/// The hosts serving `host_header`, polled until there are `count`.
async fn served_by(hosts: &[HostProc], host_header: &str, count: usize) -> Vec<String> {
    eventually(
        &format!("{host_header} served by {count} hosts"),
        PATIENCE,
        || async {
            let mut serving = Vec::new();
            for host in hosts {
                if get_host(&host.url("/"), host_header).await.0 == 200 {
                    serving.push(host.id.clone());
                }
            }
            (serving.len() == count).then_some(serving)
        },
    )
    .await
}

/// Waits until the hosts serving `host_header` are exactly the hosts the
/// Ready Workloads labelled `selector` are placed on, and there are
/// `replicas` of those; returns the hosts.
async fn served_as_placed(
    workloads: &Api<Workload>,
    selector: &str,
    replicas: usize,
    hosts: &[HostProc],
    host_header: &str,
) -> Vec<String> {
    eventually(
        &format!("{replicas} replicas of {selector} serving {host_header} where placed"),
        PATIENCE,
        || async {
            let list = workloads
                .list(&ListParams::default().labels(selector))
                .await
                .ok()?
                .items;
            let mut placed: Vec<String> = list
                .iter()
                .filter(|w| condition(w, "Ready").is_some_and(|(s, ..)| s == ConditionStatus::True))
                .filter_map(|w| w.status.as_ref()?.host_id.clone())
                .collect();
            if placed.len() != replicas || list.len() != replicas {
                return None;
            }
            placed.sort();
            placed.dedup();
            let mut serving = Vec::new();
            for host in hosts {
                if get_host(&host.url("/"), host_header).await.0 == 200 {
                    serving.push(host.id.clone());
                }
            }
            serving.sort();
            (serving == placed).then_some(serving)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_set_spreads_its_replicas_and_follows_its_count() {
    let Cluster {
        nats,
        registry: _registry,
        image,
        api,
        workloads,
        hosts_api,
        hosts,
    } = Cluster::start(&["r1", "r2", "r3"]).await;
    let operator = Operator::start(&api, &nats.url(), settings()).await;
    hosts_report(&hosts_api, &[("r1", 0), ("r2", 0), ("r3", 0)]).await;
    let sets: Api<WorkloadReplicaSet> = Api::namespaced(api.client(), APPS);
    let set: WorkloadReplicaSet = serde_norway::from_str(&format!(
        r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadReplicaSet
metadata: {{name: web, namespace: {APPS}}}
spec:
  replicas: 3
  template:
    labels: {{app: web}}
    spec:
      hostSelector: {{hostgroup: default}}
      components:
        - name: web
          image: {image}
      hostInterfaces:
        - namespace: wasi
          package: http
          interfaces: [incoming-handler]
          config: {{host: web.test}}
"#
    ))
    .unwrap();
    sets.create(&PostParams::default(), &set).await.unwrap();

    let ready = |count: i32| {
        let sets = sets.clone();
        async move {
            eventually(&format!("{count} Ready replicas"), PATIENCE, || async {
                let set = sets.get("web").await.ok()?;
                let status = set.status?;
                let replicas = status.replicas?;
                let set_ready = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True);
                (set_ready && replicas.ready == count && replicas.current == count).then_some(())
            })
            .await;
        }
    };
    let replicas = |workloads: Api<Workload>| async move {
        workloads
            .list(&ListParams::default().labels("runtime.wasmcloud.dev/workload-replica-set=web"))
            .await
            .unwrap()
            .items
    };

    // Three replicas, one on each host (placements count before heartbeats
    // report them), each owned by the set and labelled from the template.
    ready(3).await;
    let made = replicas(workloads.clone()).await;
    assert_eq!(made.len(), 3);
    let mut placed: Vec<String> = made
        .iter()
        .map(|w| w.status.as_ref().unwrap().host_id.clone().unwrap())
        .collect();
    placed.sort();
    assert_eq!(placed, ["r1", "r2", "r3"]);
    for replica in &made {
        assert_eq!(replica.labels()["app"], "web");
        assert_eq!(replica.owner_references()[0].name, "web");
        assert!(replica.name_any().starts_with("web-"));
    }
    served_by(&hosts, "web.test", 3).await;

    // Down to one: two replicas stopped on their hosts and gone.
    let scale = |n: i32| serde_json::json!({ "spec": { "replicas": n } });
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&scale(1)))
        .await
        .unwrap();
    ready(1).await;
    eventually("two replicas gone", PATIENCE, || async {
        (replicas(workloads.clone()).await.len() == 1).then_some(())
    })
    .await;
    served_by(&hosts, "web.test", 1).await;

    // Up to two again.
    sets.patch("web", &PatchParams::default(), &Patch::Merge(&scale(2)))
        .await
        .unwrap();
    ready(2).await;
    served_as_placed(&workloads, "app=web", 2, &hosts, "web.test").await;
    operator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_stuck_on_a_host_is_replaced_on_another() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let nats = Nats::start();
    let registry = Registry::start();
    let image = push_hello(&registry).await;
    let api = FakeApiServer::start().await;
    let workloads: Api<Workload> = Api::namespaced(api.client(), APPS);
    let hosts_api: Api<Host> = Api::namespaced(api.client(), OPERATOR_NAMESPACE);
    // `bad` may not pull from the plain-HTTP registry; `good` can, and
    // already runs something, so `bad` is the first choice.
    let bad = hosts::start_host("bad", &nats.url(), "127.0.0.1:1", &["--host-name", "bad"]);
    let good = start_host("good", &nats.url(), &registry.address(), &[]);
    bad.ready().await;
    good.ready().await;
    let bus = async_nats::connect(nats.url()).await.unwrap();
    start_directly(&bus, "good", "busy", &image).await;
    let mut settings = settings();
    settings.replica_grace = Duration::from_secs(3);
    let operator = Operator::start(&api, &nats.url(), settings).await;
    hosts_report(&hosts_api, &[("bad", 0), ("good", 1)]).await;

    let mut set: WorkloadReplicaSet = serde_norway::from_str(&format!(
        "apiVersion: runtime.wasmcloud.dev/v1alpha1\nkind: WorkloadReplicaSet\nmetadata: {{name: stuck, namespace: {APPS}}}\nspec:\n  replicas: 1\n  template:\n    spec: {{}}\n"
    ))
    .unwrap();
    set.spec.template.spec = workload("stuck", &image, "").spec;
    Api::<WorkloadReplicaSet>::namespaced(api.client(), APPS)
        .create(&PostParams::default(), &set)
        .await
        .unwrap();
    let first = eventually("a replica on `bad`", PATIENCE, || async {
        let list = workloads.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|w| w.status.as_ref().and_then(|s| s.host_id.as_deref()) == Some("bad"))
    })
    .await;
    let replaced = eventually("a Ready replacement", PATIENCE, || async {
        let list = workloads.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|w| {
            w.name_any() != first.name_any()
                && condition(w, "Ready").is_some_and(|(s, ..)| s == ConditionStatus::True)
        })
    })
    .await;
    assert_eq!(
        replaced.status.as_ref().and_then(|s| s.host_id.as_deref()),
        Some("good")
    );
    assert_eq!(
        replaced.annotations()["runtime.wasmcloud.dev/avoid-hosts"],
        "bad"
    );
    assert_eq!(get_host(&good.url("/"), "stuck.test").await.0, 200);
    operator.stop();
}

/// Waits until deployment `site` is Ready with `replicas`, its roll done
/// and its current replica set not `not_set`; returns that set's name.
async fn site_ready(
    deployments: &Api<runtime_operator::crd::WorkloadDeployment>,
    replicas: i32,
    not_set: Option<&str>,
) -> String {
    eventually(
        &format!("deployment `site` Ready with {replicas}"),
        PATIENCE,
        || async {
            let status = deployments.get("site").await.ok()?.status?;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True);
            let set = status.current_replica_set?.name;
            (ready
                && status.current_replicas == Some(replicas)
                && status.previous_replica_set.is_none()
                && Some(set.as_str()) != not_set)
                .then_some(set)
        },
    )
    .await
}

/// Applies a changed manifest of deployment `site`.
async fn update_site(deployments: &Api<runtime_operator::crd::WorkloadDeployment>, manifest: &str) {
    let patch: serde_json::Value = serde_norway::from_str(manifest).unwrap();
    deployments
        .patch("site", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_resolves_its_artifact_rolls_and_scales() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use runtime_operator::crd::{Artifact, WorkloadDeployment};
    let Cluster {
        nats,
        registry: _registry,
        image,
        api,
        workloads,
        hosts_api,
        hosts,
    } = Cluster::start(&["d1", "d2", "d3"]).await;
    let _ = tracing_subscriber::fmt()
        .with_env_filter("runtime_operator=debug")
        .with_test_writer()
        .try_init();
    let client = api.client();
    // The CRDs, so the API server knows where `/scale` reads and writes.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &runtime_operator::crd::all().unwrap() {
        crds.create(&PostParams::default(), crd).await.unwrap();
    }
    let operator = Operator::start(&api, &nats.url(), settings()).await;
    hosts_report(&hosts_api, &[("d1", 0), ("d2", 0), ("d3", 0)]).await;

    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), APPS);
    let deployments: Api<WorkloadDeployment> = Api::namespaced(client.clone(), APPS);
    let artifact: Artifact = serde_norway::from_str(&format!(
        "apiVersion: runtime.wasmcloud.dev/v1alpha1\nkind: Artifact\nmetadata: {{name: hello-art, namespace: {APPS}}}\nspec: {{image: \"{image}\"}}\n"
    ))
    .unwrap();
    artifacts
        .create(&PostParams::default(), &artifact)
        .await
        .unwrap();
    let manifest = |greeting: &str| {
        format!(
            r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadDeployment
metadata: {{name: site, namespace: {APPS}}}
spec:
  replicas: 2
  artifacts:
    - name: hello
      artifactFrom: {{name: hello-art}}
  template:
    spec:
      hostSelector: {{hostgroup: default}}
      components:
        - name: site
          image: artifact://hello
          localResources:
            environment:
              config: {{GREETING: {greeting}}}
      hostInterfaces:
        - namespace: wasi
          package: http
          interfaces: [incoming-handler]
          config: {{host: site.test}}
"#
        )
    };
    let deployment: WorkloadDeployment = serde_norway::from_str(&manifest("hi")).unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let first_set = site_ready(&deployments, 2, None).await;
    assert!(first_set.starts_with("site-"), "{first_set}");
    let site = "runtime.wasmcloud.dev/workload-deployment=site";
    served_as_placed(&workloads, site, 2, &hosts, "site.test").await;
    // The artifact resolved to the pushed image.
    let replica = workloads
        .list(&ListParams::default().labels("runtime.wasmcloud.dev/workload-deployment=site"))
        .await
        .unwrap()
        .items;
    assert_eq!(replica.len(), 2);
    assert_eq!(replica[0].spec.components[0].image, image);

    // A new template rolls to a new replica set; the old one goes.
    update_site(&deployments, &manifest("hello")).await;
    let second_set = site_ready(&deployments, 2, Some(&first_set)).await;
    let sets: Api<WorkloadReplicaSet> = Api::namespaced(client.clone(), APPS);
    eventually("the old replica set gone", PATIENCE, || async {
        matches!(sets.get_opt(&first_set).await, Ok(None)).then_some(())
    })
    .await;
    served_as_placed(&workloads, site, 2, &hosts, "site.test").await;

    // `/scale`, as kubectl scale or an autoscaler does it.
    deployments
        .patch_scale(
            "site",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "spec": { "replicas": 3 } })),
        )
        .await
        .unwrap();
    assert_eq!(site_ready(&deployments, 3, None).await, second_set);
    let scale = deployments.get_scale("site").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    let scale_status = scale.status.unwrap();
    assert_eq!(scale_status.replicas, 3);
    assert_eq!(
        scale_status.selector.as_deref(),
        Some("runtime.wasmcloud.dev/workload-deployment=site")
    );
    served_as_placed(&workloads, site, 3, &hosts, "site.test").await;

    // Recreate: the old replicas are all gone before a new one exists.
    let recreate = manifest("bye").replace(
        "  replicas: 2\n",
        "  replicas: 3\n  deployPolicy: Recreate\n",
    );
    update_site(&deployments, &recreate).await;
    let watcher = {
        let workloads = workloads.clone();
        let second_set = second_set.clone();
        tokio::spawn(async move {
            let mut overlaps = 0;
            loop {
                let sets: std::collections::BTreeSet<String> = workloads
                    .list(&ListParams::default().labels(site))
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .filter_map(|w| {
                        w.labels()
                            .get("runtime.wasmcloud.dev/workload-replica-set")
                            .cloned()
                    })
                    .collect();
                if sets.len() > 1 {
                    overlaps += 1;
                }
                if sets.len() == 1 && !sets.contains(&second_set) {
                    return overlaps;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let third_set = site_ready(&deployments, 3, Some(&second_set)).await;
    assert_eq!(
        watcher.await.unwrap(),
        0,
        "old and new replicas ran at once during a Recreate"
    );
    assert_ne!(third_set, second_set);

    // The Artifact stays while the deployment names it.
    artifacts
        .delete("hello-art", &DeleteParams::default())
        .await
        .unwrap();
    let held = artifacts.get("hello-art").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.finalizers()
            .contains(&runtime_operator::artifact::FINALIZER.to_string())
    );
    deployments
        .delete("site", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Artifact gone once unused", PATIENCE, || async {
        matches!(artifacts.get_opt("hello-art").await, Ok(None)).then_some(())
    })
    .await;
    // Its replica sets and Workloads went with it; nothing serves.
    eventually("the deployment's Workloads gone", PATIENCE, || async {
        let left = workloads.list(&ListParams::default()).await.ok()?.items;
        left.is_empty().then_some(())
    })
    .await;
    served_by(&hosts, "site.test", 0).await;
    operator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_reaches_ready_hosts_through_its_endpoint_slice_even_during_a_roll() {
    use k8s_openapi::api::core::v1::{Pod, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use runtime_operator::crd::WorkloadDeployment;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let _ = tracing_subscriber::fmt()
        .with_env_filter("runtime_operator=debug")
        .with_test_writer()
        .try_init();
    let nats = Nats::start();
    let registry = Registry::start();
    let image = push_hello(&registry).await;
    let api = FakeApiServer::start().await;
    let client = api.client();
    let hosts_api: Api<Host> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    // Three hosts on one port, as in a cluster: two report a pod name (the
    // default in wasmCloud's templates), one its IP.
    let port = common::servers::free_port();
    let hosts = [
        ("pod-a", "pod-a", "127.0.0.2"),
        ("pod-b", "pod-b", "127.0.0.3"),
        ("by-ip", "127.0.0.4", "127.0.0.4"),
    ]
    .map(|(id, name, ip)| {
        hosts::start_host_on(
            id,
            ip,
            port,
            &nats.url(),
            &registry.address(),
            &["--host-name", name],
        )
    });
    for host in &hosts {
        host.ready().await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    for (name, ip) in [("pod-a", "127.0.0.2"), ("pod-b", "127.0.0.3")] {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"wasmcloud.com/hostgroup": "default"}},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"podIP": ip}})),
        )
        .await
        .unwrap();
    }
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "site", "namespace": APPS},
        "spec": {"ports": [{"name": "http", "port": 80}]},
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), APPS)
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let operator = Operator::start(&api, &nats.url(), settings()).await;
    hosts_report(&hosts_api, &[("pod-a", 0), ("pod-b", 0), ("127.0.0.4", 0)]).await;

    let manifest = |greeting: &str| {
        format!(
            r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadDeployment
metadata: {{name: site, namespace: {APPS}}}
spec:
  replicas: 3
  kubernetes:
    service: {{name: site}}
  template:
    spec:
      hostSelector: {{hostgroup: default}}
      components:
        - name: site
          image: {image}
          localResources:
            environment:
              config: {{GREETING: {greeting}}}
      hostInterfaces:
        - namespace: wasi
          package: http
          interfaces: [incoming-handler]
          config: {{host: site.example.com}}
"#
        )
    };
    let deployments: Api<WorkloadDeployment> = Api::namespaced(client.clone(), APPS);
    deployments
        .create(
            &PostParams::default(),
            &serde_norway::from_str(&manifest("hi")).unwrap(),
        )
        .await
        .unwrap();

    // One slice, owned by the Service, with each host's address once.
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), APPS);
    let slice_name = runtime_operator::route::slice_name("site");
    let addresses = |slices: Api<EndpointSlice>, slice_name: String| async move {
        let slice = slices.get_opt(&slice_name).await.ok()??;
        let mut addresses: Vec<String> = slice
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.clone())
            .collect();
        addresses.sort();
        Some((slice, addresses))
    };
    let (slice, _) = eventually("a slice with the three hosts", PATIENCE, || async {
        let (slice, addresses) = addresses(slices.clone(), slice_name.clone()).await?;
        (addresses == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]).then_some((slice, addresses))
    })
    .await;
    assert_eq!(slice.address_type, "IPv4");
    let ports = slice.ports.clone().unwrap();
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(ports[0].port, Some(i32::from(port)));
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/service-name"], "site");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        runtime_operator::route::MANAGED_BY
    );
    assert_eq!(slice.metadata.owner_references.unwrap()[0].name, "site");

    // The Service path: every request goes to the next address of the
    // slice as it is at that moment, with the Service's name as Host.
    let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (slices, slice_name) = (slices.clone(), slice_name.clone());
        let (failures, served, stop) = (failures.clone(), served.clone(), stop.clone());
        tokio::spawn(async move {
            let mut turn = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Some((_, addresses)) = addresses(slices.clone(), slice_name.clone()).await
                else {
                    failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                };
                turn += 1;
                let ip = &addresses[turn % addresses.len()];
                let url = format!("http://{ip}:{port}/");
                match get_host(&url, "site.apps").await {
                    (200, _) => served.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    (status, body) => {
                        eprintln!("failed through the Service path: {ip}: {status} {body}");
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    }
                };
            }
        })
    };

    // Roll the template while traffic flows.
    let first = deployments.get("site").await.unwrap();
    let first_set = first
        .status
        .and_then(|s| s.current_replica_set)
        .map(|s| s.name);
    update_site(&deployments, &manifest("hello")).await;
    site_ready(&deployments, 3, first_set.as_deref()).await;
    let workloads: Api<Workload> = Api::namespaced(client.clone(), APPS);
    eventually("only the new replicas left", PATIENCE, || async {
        (workloads
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .len()
            == 3)
            .then_some(())
    })
    .await;
    let before = served.load(std::sync::atomic::Ordering::Relaxed);
    eventually("traffic after the roll", PATIENCE, || async {
        (served.load(std::sync::atomic::Ordering::Relaxed) > before + 20).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    traffic.await.unwrap();
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{} requests through the Service path during the roll, {failed} failed",
        served.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_eq!(failed, 0);

    // A pod IP that changes moves the slice's address with it.
    let set_ip = |ip: &'static str| {
        let pods = pods.clone();
        async move {
            pods.patch_status(
                "pod-a",
                &PatchParams::default(),
                &Patch::Merge(&serde_json::json!({"status": {"podIP": ip}})),
            )
            .await
            .unwrap();
        }
    };
    let slice_has = |wanted: &'static str, present: bool| {
        let (slices, slice_name) = (slices.clone(), slice_name.clone());
        async move {
            eventually(
                &format!("{wanted} in the slice: {present}"),
                PATIENCE,
                || async {
                    let (_, addresses) = addresses(slices.clone(), slice_name.clone()).await?;
                    (addresses.iter().any(|a| a == wanted) == present).then_some(())
                },
            )
            .await
        }
    };
    set_ip("127.0.0.5").await;
    slice_has("127.0.0.5", true).await;
    slice_has("127.0.0.2", false).await;
    set_ip("127.0.0.2").await;
    slice_has("127.0.0.2", true).await;

    // A host pod being deleted: its Host goes (and stays gone while the
    // process still heartbeats), its workloads move, the slice follows.
    pods.delete("pod-b", &DeleteParams::default())
        .await
        .unwrap();
    eventually("pod-b's workloads moved", PATIENCE, || async {
        let list = workloads.list(&ListParams::default()).await.ok()?.items;
        let moved = list.len() == 3
            && list.iter().all(|w| {
                condition(w, "Ready").is_some_and(|(s, ..)| s == ConditionStatus::True)
                    && w.status.as_ref().and_then(|s| s.host_id.as_deref()) != Some("pod-b")
            });
        moved.then_some(())
    })
    .await;
    slice_has("127.0.0.3", false).await;
    // Two more heartbeats of another host (every 500 ms), so pod-b's own
    // heartbeats have arrived too, and still no Host for it.
    let last_seen = || async {
        let host = hosts_api.get("127.0.0.4").await.ok()?;
        host.fields.status?.last_seen
    };
    for _ in 0..2 {
        let seen = last_seen().await;
        eventually("another heartbeat", PATIENCE, || async {
            let now = last_seen().await;
            (now.is_some() && now != seen).then_some(())
        })
        .await;
    }
    assert!(
        hosts_api.get_opt("pod-b").await.unwrap().is_none(),
        "the Host of a deleted pod came back"
    );

    // A host's loss takes it out of the slice.
    operator.settled(Settings::new("x").host_loss_settle).await;
    hosts[0].process.signal(libc::SIGKILL);
    eventually("the lost host out of the slice", PATIENCE, || async {
        let (_, addresses) = addresses(slices.clone(), slice_name.clone()).await?;
        (!addresses.contains(&"127.0.0.2".to_string()) && !addresses.is_empty()).then_some(())
    })
    .await;

    // No Ready workload left for the Service: the slice goes.
    deployments
        .delete("site", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the slice gone", PATIENCE, || async {
        matches!(slices.get_opt(&slice_name).await, Ok(None)).then_some(())
    })
    .await;
    operator.stop();
}
