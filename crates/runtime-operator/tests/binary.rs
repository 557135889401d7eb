//! The `runtime-operator run` process: it takes the lease, serves its
//! probes and metrics, turns heartbeats into Hosts, releases the lease on
//! SIGTERM, and refuses bad flags with a message naming them.

use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use runtime_operator::crd::Host;
use runtime_operator::leader::LEASE_NAME;
use test_support::eventually;
use test_support::kube_api::FakeApiServer;
use test_support::servers::{Nats, free_port};

const OPERATOR: &str = env!("CARGO_BIN_EXE_runtime-operator");
const PATIENCE: Duration = Duration::from_secs(30);

/// GET over plain HTTP/1.1; (status, body), or None when nothing listens.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_leads_serves_probes_and_metrics_and_releases_on_sigterm() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let nats = Nats::start();
    let api = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (metrics, probes) = (free_port(), free_port());
    let mut operator = Command::new(OPERATOR)
        .args(["run", "--nats-url", &nats.url(), "--identity", "op-1"])
        .args(["--metrics-bind-address", &format!("127.0.0.1:{metrics}")])
        .args([
            "--health-probe-bind-address",
            &format!("127.0.0.1:{probes}"),
        ])
        .env("OPERATOR_NAMESPACE", "wasmcloud")
        .env("KUBECONFIG", api.kubeconfig(dir.path()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    eventually("/readyz to answer 200", PATIENCE, || async {
        (get(probes, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    assert_eq!(get(probes, "/healthz").await.unwrap().0, 200);
    assert_eq!(get(probes, "/nothing").await.unwrap().0, 404);

    let leases: Api<Lease> = Api::namespaced(api.client(), "wasmcloud");
    let holder = eventually("the lease to be taken", PATIENCE, || async {
        leases
            .get_opt(LEASE_NAME)
            .await
            .ok()??
            .spec?
            .holder_identity
    })
    .await;
    assert_eq!(holder, "op-1");

    // Its loops run: a heartbeat becomes a Host.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let heartbeat = serde_json::json!({
        "id": "host-a", "hostname": "node-a", "friendlyName": "host-a",
        "labels": {"hostgroup": "default"}, "httpPort": 8080
    });
    let hosts: Api<Host> = Api::namespaced(api.client(), "wasmcloud");
    eventually("a Host from a heartbeat", PATIENCE, || async {
        client
            .publish(
                "runtime.operator.heartbeat.host-a",
                serde_json::to_vec(&heartbeat).unwrap().into(),
            )
            .await
            .ok()?;
        client.flush().await.ok()?;
        hosts.get_opt("host-a").await.ok()?
    })
    .await;

    let text = eventually("metrics", PATIENCE, || async {
        let (status, body) = get(metrics, "/metrics").await?;
        (status == 200 && body.contains("runtime_operator_nats_request_duration_seconds"))
            .then_some(body)
    })
    .await;
    assert!(text.contains("runtime_operator_leader 1"), "{text}");
    assert!(text.contains("runtime_operator_nats_connected 1"), "{text}");

    // SIGTERM: a clean exit that hands the lease back.
    // SAFETY: a plain syscall on a child we own.
    unsafe { libc::kill(operator.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || operator.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    let lease = leases.get(LEASE_NAME).await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity, None);
}

#[test]
fn bad_flags_are_named() {
    let output = Command::new(OPERATOR)
        .args(["run", "--metrics-bind-address", "everywhere"])
        .env("OPERATOR_NAMESPACE", "wasmcloud")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--metrics-bind-address `everywhere`"),
        "{stderr}"
    );

    let output = Command::new(OPERATOR)
        .arg("run")
        .env_remove("OPERATOR_NAMESPACE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--operator-namespace"), "{stderr}");
}
