//! The host's admin listener: probes that follow the control plane and
//! starting workloads, and metrics scraped by a real Prometheus server.

mod common;

use std::path::Path;
use std::time::Duration;

use common::hosts::{get_host, push_hello, start_host};
use common::servers::{Nats, Prometheus, Registry, free_port};
use common::{fixture, get, run, wash};
use serde_json::Value;

/// Waits (polling, 100 ms apart) until `check` returns `Some`.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn workload_file(dir: &Path, name: &str, image: &str, host: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\nnamespace: default\ncomponents:\n  - name: {name}\n    image: {image}\nhostInterfaces:\n  - namespace: wasi\n    package: http\n    interfaces: [incoming-handler]\n    config:\n      host: {host}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// A Prometheus instant query's single value, if it has one yet.
fn query(prometheus: &Prometheus, expr: &str) -> Option<f64> {
    let output = std::process::Command::new("curl")
        .args(["-sf", "-G", &format!("{}/api/v1/query", prometheus.url())])
        .args(["--data-urlencode", &format!("query={expr}")])
        .output()
        .expect("curl runs");
    let body: Value = serde_json::from_slice(&output.stdout).ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_nats_and_starts_and_prometheus_counts_requests() {
    let mut nats = Nats::start();
    let registry = Registry::start();
    let hello = push_hello(&registry).await;
    let trap = format!("{}/trap:1", registry.address());
    let pushed = run(
        &[
            "oci",
            "push",
            &trap,
            fixture("trap").to_str().unwrap(),
            "--insecure",
        ],
        None,
    )
    .await;
    assert!(pushed.success, "{}", pushed.stderr);

    let admin = format!("127.0.0.1:{}", free_port());
    let host = start_host(
        "admin-1",
        &nats.url(),
        &registry.address(),
        &["--admin-addr", &admin, "--registry-pull-timeout", "2m"],
    );
    host.ready().await;
    let probe = |path: &str| {
        let url = format!("http://{admin}{path}");
        async move { get(&url).await }
    };
    assert_eq!(probe("/livez").await, (200, "ok\n".into()));
    assert_eq!(probe("/readyz").await, (200, "ready\n".into()));

    // A workload whose image never arrives (a registry that accepts and
    // says nothing): not ready while it starts.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let slow = workload_file(
        dir.path(),
        "slow",
        &format!("{silent_addr}/slow:1"),
        "slow.test",
    );
    let mut start = wash();
    start.args([
        "workload",
        "start",
        "--host",
        "admin-1",
        "--scheduler-nats-url",
        &nats.url(),
    ]);
    start.args(["-f", &slow]);
    let mut starting = start.spawn().unwrap();
    let (status, body) = until(
        "not ready while `slow` starts",
        Duration::from_secs(30),
        || async {
            let answer = probe("/readyz").await;
            (answer.0 == 503).then_some(answer)
        },
    )
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("workloads starting: slow"), "{body}");
    let stopped = run(
        &[
            "workload",
            "stop",
            "--host",
            "admin-1",
            "--scheduler-nats-url",
            &nats.url(),
            "--id",
            "slow",
        ],
        None,
    )
    .await;
    let _ = starting.kill().await;
    hold.abort();
    let _ = stopped;
    until(
        "ready once nothing starts",
        Duration::from_secs(30),
        || async { (probe("/readyz").await.0 == 200).then_some(()) },
    )
    .await;

    // Traffic, counted and scraped.
    let prometheus = Prometheus::start(std::slice::from_ref(&admin));
    for (name, image, host_name) in [
        ("hello", &hello, "hello.test"),
        ("trap", &trap, "trap.test"),
    ] {
        let file = workload_file(dir.path(), name, image, host_name);
        let started = run(
            &[
                "workload",
                "start",
                "--host",
                "admin-1",
                "--scheduler-nats-url",
                &nats.url(),
                "-f",
                &file,
            ],
            None,
        )
        .await;
        assert!(started.success, "{}", started.stderr);
    }
    const N: usize = 7;
    for _ in 0..N {
        assert_eq!(get_host(&host.url("/"), "hello.test").await.0, 200);
    }
    for _ in 0..3 {
        assert_eq!(get_host(&host.url("/"), "trap.test").await.0, 500);
    }
    let requests = until("Prometheus to see the requests", Duration::from_secs(60), || async {
        query(&prometheus, "sum(wash_http_server_requests_total{workload=\"hello\",http_response_status_class=\"2xx\"})")
            .filter(|v| *v >= N as f64)
    })
    .await;
    assert_eq!(requests, N as f64);
    let timed = query(
        &prometheus,
        "sum(http_server_request_duration_seconds_count{workload=\"hello\"})",
    );
    assert_eq!(timed, Some(N as f64));
    let traps = until(
        "Prometheus to see the traps",
        Duration::from_secs(60),
        || async {
            query(
                &prometheus,
                "sum(wash_instances_discarded_total{workload=\"trap\",reason=\"trap\"})",
            )
            .filter(|v| *v >= 3.0)
        },
    )
    .await;
    assert_eq!(traps, 3.0);
    let failed = query(
        &prometheus,
        "sum(wash_http_server_requests_total{workload=\"trap\",http_response_status_class=\"5xx\"})",
    );
    assert_eq!(failed, Some(3.0));
    assert_eq!(
        query(&prometheus, "wash_workloads{state=\"running\"}"),
        Some(2.0)
    );

    // The control plane goes away: not ready, and the gauge says so.
    nats.stop();
    let (_, body) = until(
        "not ready without NATS",
        Duration::from_secs(30),
        || async {
            let answer = probe("/readyz").await;
            (answer.0 == 503).then_some(answer)
        },
    )
    .await;
    assert!(body.contains("control plane"), "{body}");
    let metrics = probe("/metrics").await.1;
    assert!(metrics.contains("wash_nats_connected 0"), "{metrics}");
    nats.restart();
    until(
        "ready again with NATS back",
        Duration::from_secs(60),
        || async { (probe("/readyz").await.0 == 200).then_some(()) },
    )
    .await;
    // Serving never depended on it.
    assert_eq!(get_host(&host.url("/"), "hello.test").await.0, 200);
}
