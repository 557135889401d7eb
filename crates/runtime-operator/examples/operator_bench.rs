//! The operator at scale, for `bench/operator.sh`: five `wash host`
//! processes, one nats-server, the registry with hello pushed, the
//! `runtime-operator` binary against the test API server. It applies 10
//! WorkloadDeployments of 200 replicas at once and reports: time until all
//! 2,000 Workloads are Ready, the p99 start round trip (from the operator's
//! own histogram), the operator's CPU time and peak memory, then the time
//! until the workloads of a `kill -9`ed host are Ready elsewhere and its
//! share of traffic is served again.
//!
//! Usage: operator_bench <wash binary> <runtime-operator binary> [deployments] [replicas]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Api;
use kube::api::{ListParams, PostParams};
use runtime_operator::crd::{ConditionStatus, Workload, WorkloadDeployment};
use test_support::kube_api::FakeApiServer;
use test_support::servers::{Nats, Registry, free_port};

const HOSTS: usize = 5;
const NAMESPACE: &str = "bench";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready(workload: &Workload) -> bool {
    workload.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    })
}

/// (utime + stime) seconds and peak RSS in MiB of a process, from /proc.
fn usage(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields after the command: state is [0]; utime [11], stime [12].
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Ok((ticks / 100.0, peak_kib / 1024.0))
}

/// The upper bound of the bucket holding quantile `q` of a Prometheus
/// histogram for `operation`.
fn quantile(metrics: &str, operation: &str, q: f64) -> Option<f64> {
    let prefix = "runtime_operator_nats_request_duration_seconds_bucket{";
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&format!("operation=\"{operation}\"")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, count)| *count >= total * q)
        .map(|(bound, _)| *bound)
}

fn get(port: u16, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let (Some(wash), Some(operator_bin)) = (args.get(1), args.get(2)) else {
        bail!(
            "usage: operator_bench <wash binary> <runtime-operator binary> [deployments] [replicas]"
        );
    };
    let deployments: usize = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let replicas: usize = args.get(4).map_or(Ok(200), |s| s.parse())?;
    let total = deployments * replicas;

    let nats = Nats::start();
    let registry = Registry::start();
    let image = format!("{}/hello:1", registry.address());
    let hello = test_support::fixture_path("http_hello_world");
    let pushed = Command::new(wash)
        .args(["oci", "push", &image])
        .arg(&hello)
        .arg("--insecure")
        .output()
        .context("run wash oci push")?;
    if !pushed.status.success() {
        bail!("push failed: {}", String::from_utf8_lossy(&pushed.stderr));
    }
    let api = FakeApiServer::start().await;
    let dir = tempfile::tempdir()?;
    let mut hosts = Vec::new();
    for n in 0..HOSTS {
        let cache = dir.path().join(format!("cache-{n}"));
        let port = free_port();
        let child = Command::new(wash)
            .args([
                "host",
                "--host-id",
                &format!("bench-{n}"),
                "--host-name",
                &format!("bench-{n}"),
            ])
            .args(["--scheduler-nats-url", &nats.url()])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .args(["--allow-insecure-registries", &registry.address()])
            .arg("--oci-cache-dir")
            .arg(&cache)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        hosts.push((Killed(child), port));
    }
    let metrics_port = free_port();
    let operator = Killed(
        Command::new(operator_bin)
            .args(["run", "--nats-url", &nats.url(), "--leader-elect=false"])
            .args([
                "--metrics-bind-address",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .args(["--health-probe-bind-address", "0"])
            .env("OPERATOR_NAMESPACE", "wasmcloud")
            .env("KUBECONFIG", api.kubeconfig(dir.path()))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let client = api.client();
    let hosts_api: Api<runtime_operator::crd::Host> = Api::namespaced(client.clone(), "wasmcloud");
    let deadline = Instant::now() + Duration::from_secs(120);
    while hosts_api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|h| runtime_operator::scheduling::is_ready(h))
        .count()
        < HOSTS
    {
        if Instant::now() > deadline {
            bail!("the hosts did not become Ready");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!(
        "{HOSTS} hosts, {deployments} WorkloadDeployments x {replicas} replicas = {total} Workloads"
    );
    let (cpu_before, _) = usage(operator.0.id())?;
    let began = Instant::now();
    let deployments_api: Api<WorkloadDeployment> = Api::namespaced(client.clone(), NAMESPACE);
    for d in 0..deployments {
        let manifest = serde_json::json!({
            "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "WorkloadDeployment",
            "metadata": {"name": format!("d{d}"), "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "template": {"spec": {
                "components": [{"name": "hello", "image": image}],
                "hostInterfaces": [{"namespace": "wasi", "package": "http",
                    "interfaces": ["incoming-handler"], "config": {"host": format!("d{d}.bench")}}]
            }}}
        });
        deployments_api
            .create(&PostParams::default(), &serde_json::from_value(manifest)?)
            .await?;
    }
    let workloads: Api<Workload> = Api::namespaced(client.clone(), NAMESPACE);
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let list = workloads.list(&ListParams::default()).await?.items;
        let ready_count = list.iter().filter(|w| ready(w)).count();
        if ready_count == total && list.len() == total {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {ready_count} of {total} Ready after 30 min");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_ready = began.elapsed();
    let (cpu_after, peak) = usage(operator.0.id())?;
    let metrics = get(metrics_port, "/metrics")?;
    let start_p50 = quantile(&metrics, "workload.start", 0.5).unwrap_or(f64::NAN);
    let start_p99 = quantile(&metrics, "workload.start", 0.99).unwrap_or(f64::NAN);
    println!(
        "all {total} Ready after        {:.1} s",
        all_ready.as_secs_f64()
    );
    println!(
        "start round trip p50, p99     <= {:.0} ms, <= {:.0} ms (histogram bucket bounds)",
        start_p50 * 1000.0,
        start_p99 * 1000.0
    );
    println!(
        "operator CPU time              {:.1} s",
        cpu_after - cpu_before
    );
    println!("operator peak memory           {peak:.0} MiB");

    // kill -9 one host: its workloads Ready elsewhere, and served.
    let (victim, _) = hosts.remove(0);
    let on_victim = workloads
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|w| w.status.as_ref().and_then(|s| s.host_id.as_deref()) == Some("bench-0"))
        .count();
    let killed_at = Instant::now();
    drop(victim);
    loop {
        let list = workloads.list(&ListParams::default()).await?.items;
        let moved = list.iter().all(|w| {
            ready(w) && w.status.as_ref().and_then(|s| s.host_id.as_deref()) != Some("bench-0")
        });
        if moved && list.len() == total {
            break;
        }
        if killed_at.elapsed() > Duration::from_secs(600) {
            bail!("the lost host's workloads did not move within 10 min");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "kill -9 of a host with {on_victim} workloads: all Ready elsewhere after {:.1} s",
        killed_at.elapsed().as_secs_f64()
    );
    drop(operator);
    Ok(())
}
