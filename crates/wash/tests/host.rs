//! `wash host` processes on one control plane: real `nats-server`, Debian's
//! `docker-registry`, components pushed with `wash oci push` and started
//! through the protocol.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hosts::{HostProc, get_host, push_hello, start_host};
use common::servers::{Nats, Registry};
use common::{fixture, run};
use futures::StreamExt;
use serde_json::{Value, json};

/// Hosts here get 10 s to drain.
const DRAIN: &[&str] = &["--drain-timeout", "10s"];

fn workload_file(dir: &std::path::Path, image: &str, component: &str) -> std::path::PathBuf {
    let path = dir.join("workload.yaml");
    std::fs::write(
        &path,
        format!(
            "name: {component}\nnamespace: default\ncomponents:\n  - name: {component}\n    image: {image}\nhostInterfaces:\n  - namespace: wasi\n    package: http\n    interfaces: [incoming-handler]\n    config:\n      host: hello.test\n"
        ),
    )
    .unwrap();
    path
}

/// Sends a raw control message and parses the JSON reply.
async fn control(
    client: &async_nats::Client,
    host: &str,
    operation: &str,
    payload: impl Into<bytes::Bytes>,
) -> Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        client.request(format!("runtime.host.{host}.{operation}"), payload.into()),
    )
    .await
    .expect("a reply in time")
    .expect("a reply");
    serde_json::from_slice(&reply.payload).expect("JSON")
}

fn state(reply: &Value) -> &str {
    reply["workloadStatus"]["workloadState"]
        .as_str()
        .unwrap_or("")
}

/// Every heartbeat seen: host id and when it arrived.
type Beats = Arc<Mutex<Vec<(String, Instant, Value)>>>;

async fn watch_heartbeats(client: &async_nats::Client) -> Beats {
    let beats: Beats = Arc::default();
    let mut subscriber = client
        .subscribe("runtime.operator.heartbeat.*")
        .await
        .unwrap();
    client.flush().await.unwrap();
    let sink = beats.clone();
    tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let id = message
                .subject
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string();
            let body: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            sink.lock().unwrap().push((id, Instant::now(), body));
        }
    });
    beats
}

fn beats_of(beats: &Beats, id: &str) -> Vec<(Instant, Value)> {
    beats
        .lock()
        .unwrap()
        .iter()
        .filter(|(h, _, _)| h == id)
        .map(|(_, at, body)| (*at, body.clone()))
        .collect()
}

/// `wash workload start` of `file` on `host`.
async fn start_workload(nats: &str, host: &str, file: &std::path::Path) -> common::Finished {
    let file = file.to_str().unwrap();
    run(
        &[
            "workload",
            "start",
            "--host",
            host,
            "--scheduler-nats-url",
            nats,
            "-f",
            file,
        ],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_one_control_plane() {
    let mut nats = Nats::start();
    let registry = Registry::start();
    let image = push_hello(&registry).await;

    // What was pushed pulls back byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let pulled = dir.path().join("pulled.wasm");
    let done = run(
        &[
            "oci",
            "pull",
            &image,
            pulled.to_str().unwrap(),
            "--insecure",
        ],
        None,
    )
    .await;
    assert!(done.success, "{}", done.stderr);
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(fixture("http_hello_world")).unwrap()
    );

    let hosts: Vec<HostProc> = ["h1", "h2", "h3"]
        .iter()
        .map(|id| start_host(id, &nats.url(), &registry.address(), DRAIN))
        .collect();
    for host in &hosts {
        host.ready().await;
    }
    let client = async_nats::connect(nats.url()).await.unwrap();
    let beats = watch_heartbeats(&client).await;

    // Start on two hosts through the protocol.
    let file = workload_file(dir.path(), &image, "hello");
    for host in &hosts[..2] {
        let started = start_workload(&nats.url(), &host.id, &file).await;
        assert!(started.success, "{}", started.stderr);
        assert_eq!(
            started.stdout.trim(),
            format!("hello on {}: running", host.id)
        );
    }
    for host in &hosts[..2] {
        assert_eq!(
            get_host(&host.url("/"), "hello.test").await,
            (200, "Hello from wash!\n".into())
        );
    }
    assert_eq!(
        get_host(&hosts[2].url("/"), "hello.test").await.0,
        404,
        "h3 runs nothing"
    );

    // Stop on one: gone there, still served by the other.
    let stopped = control(&client, "h1", "workload.stop", r#"{"workloadId":"hello"}"#).await;
    assert_eq!(state(&stopped), "WORKLOAD_STATE_STOPPING");
    let status = control(
        &client,
        "h1",
        "workload.status",
        r#"{"workloadId":"hello"}"#,
    )
    .await;
    assert_eq!(state(&status), "WORKLOAD_STATE_NOT_FOUND");
    assert_eq!(get_host(&hosts[0].url("/"), "hello.test").await.0, 404);
    assert_eq!(get_host(&hosts[1].url("/"), "hello.test").await.0, 200);

    // Heartbeats carry what the hosts run.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h2 = beats_of(&beats, "h2");
        if h2
            .last()
            .is_some_and(|(_, last)| last["workloadCount"] == "1")
        {
            let (_, last) = h2.last().unwrap();
            assert_eq!(last["httpPort"], hosts[1].http);
            assert_eq!(last["labels"]["hostgroup"], "default");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat counts h2's workload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // kill -9 a host that runs a workload: its heartbeats stop, the
    // others' go on.
    let started = start_workload(&nats.url(), &hosts[2].id, &file).await;
    assert!(started.success, "{}", started.stderr);
    assert_eq!(get_host(&hosts[2].url("/"), "hello.test").await.0, 200);
    hosts[2].process.signal(libc::SIGKILL);
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(10);
    // Three heartbeats of h1 after the kill (500 ms apart) and none of h3's.
    while beats_of(&beats, "h1")
        .iter()
        .filter(|(at, _)| *at > killed + Duration::from_millis(100))
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "live hosts keep heartbeating");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !beats_of(&beats, "h3")
            .iter()
            .any(|(at, _)| *at > killed + Duration::from_millis(100)),
        "a killed host sends no heartbeat"
    );

    // Restart nats-server: hosts reconnect, keep serving, and take new work.
    nats.restart();
    let restarted = Instant::now();
    let deadline = restarted + Duration::from_secs(20);
    loop {
        let fresh = |id: &str| beats_of(&beats, id).iter().any(|(at, _)| *at > restarted);
        if fresh("h1") && fresh("h2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hosts did not heartbeat after the NATS restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = control(
        &client,
        "h2",
        "workload.status",
        r#"{"workloadId":"hello"}"#,
    )
    .await;
    assert_eq!(state(&status), "WORKLOAD_STATE_RUNNING");
    assert_eq!(get_host(&hosts[1].url("/"), "hello.test").await.0, 200);
    let after = workload_file(dir.path(), &image, "after-restart");
    for host in &hosts[..2] {
        let started = start_workload(&nats.url(), &host.id, &after).await;
        assert!(started.success, "{}: {}", host.id, started.stderr);
        assert!(started.stdout.contains("running"), "{}", started.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_messages_get_error_replies() {
    let nats = Nats::start();
    let host = start_host("hx", &nats.url(), "127.0.0.1:1", DRAIN);
    host.ready().await;
    let client = async_nats::connect(nats.url()).await.unwrap();

    let reply = control(&client, "hx", "workload.start", "{not json").await;
    assert_eq!(state(&reply), "WORKLOAD_STATE_ERROR");
    assert!(
        reply["workloadStatus"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed workload.start request"),
        "{reply}"
    );

    let reply = control(
        &client,
        "hx",
        "workload.start",
        r#"{"workload":{"name":"x"}}"#,
    )
    .await;
    assert!(
        reply["workloadStatus"]["message"]
            .as_str()
            .unwrap()
            .contains("without a workloadId"),
        "{reply}"
    );

    let reply = control(&client, "hx", "workload.status", r#"{"workloadId": 7}"#).await;
    assert_eq!(state(&reply), "WORKLOAD_STATE_ERROR", "{reply}");

    let huge = format!(
        r#"{{"workloadId":"big","pad":"{}"}}"#,
        "x".repeat(600 * 1024)
    );
    let reply = control(&client, "hx", "workload.start", huge).await;
    assert!(
        reply["workloadStatus"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeds the 524288-byte limit"),
        "{reply}"
    );

    let reply = control(&client, "hx", "workload.restart", "{}").await;
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("unknown operation `workload.restart`"),
        "{reply}"
    );

    // A workload that cannot start: an error reply naming why.
    let start = json!({"workloadId": "w", "workload": {"name": "w", "witWorld": {"components": [{"name": "c", "image": "127.0.0.1:1/nothing:1"}]}}});
    let reply = control(&client, "hx", "workload.start", start.to_string()).await;
    assert_eq!(state(&reply), "WORKLOAD_STATE_ERROR");
    assert!(
        reply["workloadStatus"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1/nothing:1"),
        "{reply}"
    );

    // And the host is still fine.
    let heartbeat = control(&client, "hx", "heartbeat", "").await;
    assert_eq!(heartbeat["id"], "hx");
}

/// A TCP proxy that holds each request back for `delay`: a slow registry,
/// even over one kept-alive connection.
async fn slow_proxy(target: u16, delay: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    loop {
                        match client_read.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                tokio::time::sleep(delay).await;
                                if server_write.write_all(&buffer[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pull_delays_neither_heartbeats_nor_other_commands() {
    let nats = Nats::start();
    let registry = Registry::start();
    push_hello(&registry).await;
    let proxy = slow_proxy(registry.port, Duration::from_secs(1)).await;
    let slow_registry = format!("127.0.0.1:{proxy}");
    let host = start_host("hs", &nats.url(), &slow_registry, DRAIN);
    host.ready().await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let beats = watch_heartbeats(&client).await;

    let start = json!({
        "workloadId": "hello",
        "workload": {"name": "hello", "witWorld": {
            "components": [{"name": "hello", "image": format!("{slow_registry}/hello:1")}],
            "hostInterfaces": [{"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": {"host": "hello.test"}}]
        }}
    });
    let started_at = Instant::now();
    let pulling = {
        let client = client.clone();
        tokio::spawn(
            async move { control(&client, "hs", "workload.start", start.to_string()).await },
        )
    };
    // While the pull crawls, other commands are answered at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let asked = Instant::now();
        let reply = control(
            &client,
            "hs",
            "workload.status",
            r#"{"workloadId":"other"}"#,
        )
        .await;
        assert_eq!(state(&reply), "WORKLOAD_STATE_NOT_FOUND");
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "status took {:?}",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let reply = pulling.await.unwrap();
    let pull_took = started_at.elapsed();
    assert_eq!(state(&reply), "WORKLOAD_STATE_RUNNING", "{reply}");
    assert!(
        pull_took > Duration::from_secs(2),
        "the registry was slow ({pull_took:?})"
    );

    // Heartbeats kept their 500 ms rhythm during the pull.
    let during: Vec<Instant> = beats_of(&beats, "hs")
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at >= started_at && *at <= started_at + pull_took)
        .collect();
    assert!(
        during.len() >= 3,
        "{} heartbeats during a {pull_took:?} pull",
        during.len()
    );
    let worst = during.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        worst < Duration::from_millis(1200),
        "a heartbeat gap of {worst:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_request_in_flight() {
    let nats = Nats::start();
    let registry = Registry::start();
    let image = format!("{}/slow:1", registry.address());
    let file = fixture("http_slow");
    assert!(
        run(
            &["oci", "push", &image, file.to_str().unwrap(), "--insecure"],
            None
        )
        .await
        .success
    );
    let host = start_host("ht", &nats.url(), &registry.address(), DRAIN);
    host.ready().await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let beats = watch_heartbeats(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let workload = workload_file(dir.path(), &image, "slow");
    let started = start_workload(&nats.url(), "ht", &workload).await;
    assert!(started.success, "{}", started.stderr);

    // Eight clients, each with requests that take 400 ms.
    let url = host.url("/400");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (url, stop) = (url.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, body) = get_host(&url, "hello.test").await;
                let key = match status {
                    200 => "ok".to_string(),
                    0 if body.contains("ConnectError") || body.contains("Connect") => {
                        // Not accepted: the listener was already closed.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        "refused".to_string()
                    }
                    other => format!("failed {other}: {body}"),
                };
                *outcomes.entry(key).or_default() += 1;
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let HostProc { process, .. } = host;
    let terminated = tokio::spawn(process.terminate());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for client in clients {
        for (key, n) in client.await.unwrap() {
            *totals.entry(key).or_default() += n;
        }
    }
    assert!(terminated.await.unwrap(), "the host exits cleanly");
    let failed: Vec<_> = totals.keys().filter(|k| k.starts_with("failed")).collect();
    assert!(failed.is_empty(), "requests failed: {totals:?}");
    assert!(totals.get("ok").copied().unwrap_or(0) >= 16, "{totals:?}");

    // The final heartbeat reports the workloads gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, last) = beats_of(&beats, "ht").pop().expect("heartbeats");
    assert!(
        last.get("workloadCount").is_none(),
        "final heartbeat: {last}"
    );
}
