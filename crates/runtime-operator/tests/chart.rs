//! The Helm chart: its RBAC splits as wasmCloud 2.2's does when
//! `watchNamespaces` is set, its workloads are what the docs say, and every
//! request the operator makes while it works is granted by the rules it
//! renders (the operator runs against the test API server, which records
//! each request; a test task answers for a host over a real nats-server).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use runtime_operator::crd::{Artifact, Workload, WorkloadDeployment};
use serde_json::{Value, json};
use test_support::chart::{allows, of_kind, render};
use test_support::eventually;
use test_support::kube_api::{ApiRequest, FakeApiServer};
use test_support::servers::{Nats, free_port};

const RELEASE: &str = "wasm";
const NAMESPACE: &str = "wasmcloud";
const ACCOUNT: &str = "wasm-runtime-operator";
const PATIENCE: Duration = Duration::from_secs(60);

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/runtime-operator")
}

fn scoped() -> Value {
    json!({"operator": {"watchNamespaces": ["team-a", "team-b"]}})
}

fn request(verb: &str, group: &str, resource: &str, namespace: &str) -> ApiRequest {
    ApiRequest {
        agent: String::new(),
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
    }
}

fn names(documents: &[Value], kind: &str) -> Vec<String> {
    of_kind(documents, kind)
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["metadata"]["namespace"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn rbac_is_cluster_wide_or_per_watched_namespace() {
    let all = render(&chart(), &json!({}), RELEASE, NAMESPACE).unwrap();
    assert_eq!(names(&all, "ClusterRole"), ["/wasm-runtime-operator"]);
    assert!(
        !names(&all, "RoleBinding")
            .iter()
            .any(|n| n.contains("workload-namespace"))
    );
    let secret_anywhere = request("get", "", "secrets", "any-namespace");
    assert!(allows(&all, NAMESPACE, ACCOUNT, &secret_anywhere));

    let some = render(&chart(), &scoped(), RELEASE, NAMESPACE).unwrap();
    assert_eq!(
        names(&some, "ClusterRole"),
        [
            "/wasm-runtime-operator",
            "/wasm-runtime-operator-workload-namespace"
        ]
    );
    let main = &of_kind(&some, "ClusterRole")[0];
    for rule in main["rules"].as_array().unwrap() {
        for resource in [
            "configmaps",
            "secrets",
            "services",
            "endpointslices",
            "events",
        ] {
            assert!(
                !rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == resource),
                "cluster-wide {resource} rule when scoped: {rule}"
            );
        }
    }
    let bindings = names(&some, "RoleBinding");
    for namespace in ["team-a", "team-b"] {
        assert!(bindings.contains(&format!(
            "{namespace}/wasm-runtime-operator-workload-namespace"
        )));
        assert!(allows(
            &some,
            NAMESPACE,
            ACCOUNT,
            &request("get", "", "secrets", namespace)
        ));
    }
    assert!(!allows(
        &some,
        NAMESPACE,
        ACCOUNT,
        &request("get", "", "secrets", "team-c")
    ));
    // CRDs stay cluster-wide; the lease and host pods are namespaced.
    let crd = request("list", "runtime.wasmcloud.dev", "workloads", "team-c");
    assert!(allows(&some, NAMESPACE, ACCOUNT, &crd));
    let lease = |namespace: &str| request("update", "coordination.k8s.io", "leases", namespace);
    assert!(allows(&some, NAMESPACE, ACCOUNT, &lease(NAMESPACE)));
    assert!(!allows(&some, NAMESPACE, ACCOUNT, &lease("team-a")));
}

#[test]
fn the_workloads_are_locked_down_and_hosts_report_their_pod_ip() {
    let documents = render(
        &chart(),
        &json!({"runtime": {"hostGroups": [
            {"name": "web", "replicas": 3, "httpPort": 8080},
            {"name": "batch", "replicas": 1, "httpPort": 9090}
        ]}}),
        RELEASE,
        NAMESPACE,
    )
    .unwrap();
    let deployments = of_kind(&documents, "Deployment");
    let operator = deployments
        .iter()
        .find(|d| d["metadata"]["name"] == "wasm-runtime-operator")
        .unwrap();
    let pod = &operator["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(args.contains(&"--leader-elect=true"), "{args:?}");
    assert!(
        args.contains(&"--nats-url=nats://wasm-nats:4222"),
        "{args:?}"
    );

    for (group, port) in [("web", 8080), ("batch", 9090)] {
        let host = deployments
            .iter()
            .find(|d| d["metadata"]["name"] == format!("hostgroup-{group}"))
            .unwrap();
        assert_eq!(
            host["spec"]["template"]["metadata"]["labels"]["wasmcloud.com/hostgroup"],
            group
        );
        let args = host["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
        for wanted in [
            "--host-name=$(WASMCLOUD_HOST_IP)".to_string(),
            format!("--host-group={group}"),
            "--environment=$(WASMCLOUD_HOST_ENVIRONMENT)".to_string(),
            format!("--http-addr=0.0.0.0:{port}"),
            "--admin-addr=0.0.0.0:9464".to_string(),
        ] {
            assert!(args.contains(&wanted), "{wanted} not in {args}");
        }
        // Kubernetes probes the admin listener, never the workloads' port.
        let container = &host["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
        let admin = container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "admin")
            .unwrap();
        assert_eq!(admin["containerPort"], 9464);
    }
    assert_eq!(
        names(&documents, "Service").len(),
        4,
        "metrics, nats and one per host group"
    );
}

#[test]
fn the_chart_carries_the_generated_crds() {
    let checked_in =
        std::fs::read_to_string(chart().join("crds/runtime.wasmcloud.dev.yaml")).unwrap();
    assert_eq!(
        checked_in,
        runtime_operator::crd::yaml().unwrap(),
        "charts/runtime-operator/crds is stale: cargo run -p runtime-operator -- crds > charts/runtime-operator/crds/runtime.wasmcloud.dev.yaml"
    );
}

/// Answers for host `host-a` over NATS: heartbeats, and every workload
/// request with RUNNING.
async fn fake_host(client: async_nats::Client) {
    let mut requests = client.subscribe("runtime.host.host-a.>").await.unwrap();
    let heartbeat = json!({
        "id": "host-a", "hostname": "10.1.0.7", "friendlyName": "host-a",
        "labels": {"hostgroup": "default"}, "httpPort": 8080
    });
    let mut beat = tokio::time::interval(Duration::from_millis(300));
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let _ = client
                    .publish("runtime.operator.heartbeat.host-a", heartbeat.to_string().into())
                    .await;
            }
            Some(message) = requests.next() => {
                let Some(reply) = message.reply else { continue };
                let id = serde_json::from_slice::<Value>(&message.payload)
                    .ok()
                    .and_then(|v| v["workloadId"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let answer = json!({"workloadStatus": {
                    "workloadId": id, "workloadState": "WORKLOAD_STATE_RUNNING"
                }});
                let _ = client.publish(reply, answer.to_string().into()).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_operator_makes_is_granted_by_the_chart() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let nats = Nats::start();
    let api = FakeApiServer::start().await;
    let client = api.client();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(dir.path());
    let host = tokio::spawn(fake_host(async_nats::connect(nats.url()).await.unwrap()));
    let mut operator = Command::new(env!("CARGO_BIN_EXE_runtime-operator"))
        .args([
            "run",
            "--nats-url",
            &nats.url(),
            "--watch-namespaces",
            "team-a,team-b",
        ])
        .args([
            "--metrics-bind-address",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args([
            "--health-probe-bind-address",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .env("OPERATOR_NAMESPACE", NAMESPACE)
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    // team-a: a Workload with a ConfigMap, a pull secret and a Service.
    let config_map: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg"}, "data": {"K": "v"}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
    let docker = json!({"auths": {"reg.example.com": {"username": "u", "password": "p"}}});
    let pull: Secret = serde_json::from_value(json!({
        "metadata": {"name": "pull"}, "type": "kubernetes.io/dockerconfigjson",
        "stringData": {}, "data": {".dockerconfigjson": base64(&docker.to_string())}
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), "team-a")
        .create(&PostParams::default(), &pull)
        .await
        .unwrap();
    for (namespace, name) in [("team-a", "svc"), ("team-b", "svc-b")] {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": name}, "spec": {"ports": [{"name": "http", "port": 80}]}
        }))
        .unwrap();
        Api::<Service>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &service)
            .await
            .unwrap();
    }
    let workload: Workload = serde_json::from_value(json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "Workload",
        "metadata": {"name": "w1", "namespace": "team-a"},
        "spec": {
            "components": [{"name": "c", "image": "reg.example.com/c:1",
                "imagePullSecret": {"name": "pull"},
                "localResources": {"environment": {"configFrom": [{"name": "cfg"}]}}}],
            "hostInterfaces": [{"namespace": "wasi", "package": "http",
                "interfaces": ["incoming-handler"], "config": {"host": "w1.test"}}],
            "kubernetes": {"service": {"name": "svc"}}
        }
    }))
    .unwrap();
    let workloads: Api<Workload> = Api::namespaced(client.clone(), "team-a");
    workloads
        .create(&PostParams::default(), &workload)
        .await
        .unwrap();

    // team-b: an Artifact and a deployment of it behind a Service.
    let artifact: Artifact = serde_json::from_value(json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "Artifact",
        "metadata": {"name": "art", "namespace": "team-b"},
        "spec": {"image": "reg.example.com/c:2"}
    }))
    .unwrap();
    let artifacts: Api<Artifact> = Api::namespaced(client.clone(), "team-b");
    artifacts
        .create(&PostParams::default(), &artifact)
        .await
        .unwrap();
    let deployment: WorkloadDeployment = serde_json::from_value(json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "WorkloadDeployment",
        "metadata": {"name": "wd", "namespace": "team-b"},
        "spec": {
            "replicas": 1,
            "artifacts": [{"name": "c", "artifactFrom": {"name": "art"}}],
            "kubernetes": {"service": {"name": "svc-b"}},
            "template": {"spec": {"components": [{"name": "c", "image": "artifact://c"}]}}
        }
    }))
    .unwrap();
    let deployments: Api<WorkloadDeployment> = Api::namespaced(client.clone(), "team-b");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    // Everything routed, then taken down again.
    for namespace in ["team-a", "team-b"] {
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), namespace);
        eventually(
            &format!("an EndpointSlice in {namespace}"),
            PATIENCE,
            || async {
                let list = slices.list(&Default::default()).await.ok()?;
                (!list.items.is_empty()).then_some(())
            },
        )
        .await;
    }
    workloads
        .delete("w1", &DeleteParams::default())
        .await
        .unwrap();
    artifacts
        .delete("art", &DeleteParams::default())
        .await
        .unwrap();
    deployments
        .delete("wd", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Workload and the Artifact gone", PATIENCE, || async {
        let gone = matches!(workloads.get_opt("w1").await, Ok(None))
            && matches!(artifacts.get_opt("art").await, Ok(None));
        gone.then_some(())
    })
    .await;

    // SAFETY: a plain syscall on a child we own.
    unsafe { libc::kill(operator.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || operator.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    host.abort();

    let made = api.requests("runtime-operator/");
    assert!(made.len() > 20, "{made:#?}");
    for values in [json!({}), scoped()] {
        let documents = render(&chart(), &values, RELEASE, NAMESPACE).unwrap();
        let denied: Vec<&ApiRequest> = made
            .iter()
            .filter(|r| !allows(&documents, NAMESPACE, ACCOUNT, r))
            .collect();
        assert!(denied.is_empty(), "not granted with {values}: {denied:#?}");
    }
}

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
