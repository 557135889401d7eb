//! Hostile guests: each gets its error status and one log line, while a
//! concurrent stream of requests to a well-behaved workload all succeed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{client, fixture, get, host, http_workload, logs};
use wash_runtime::host::http::DynamicRouter;
use wash_runtime::host::{Host, HostApi};

/// Short, so the loop test is quick; the hostile fixtures override nothing.
const DEADLINE: Duration = Duration::from_secs(2);

async fn hostile_host() -> Host {
    logs::capture();
    let host = host(Arc::new(DynamicRouter::new()), DEADLINE).await;
    host.workload_start(
        "hello",
        http_workload(
            "hello",
            fixture("http_hello_world"),
            &[("host", "hello.test")],
        ),
    )
    .await
    .unwrap();
    host
}

/// Sends `hostile_path` to `hostile_host` while four clients hammer hello;
/// returns the hostile status and body, and how many hello requests succeeded.
async fn attack(host: &Host, hostile_host: &str) -> (u16, String, usize) {
    let addr = host.http_addr().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut streams = Vec::new();
    for _ in 0..4 {
        let (done, ok) = (done.clone(), ok.clone());
        streams.push(tokio::spawn(async move {
            let client = client();
            let mut failures = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (status, body) = get(&client, addr, "hello.test", "/").await;
                if status == 200 && body == "Hello from wash!\n" {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push((status, body));
                }
                // A bystander request must never wait on the hostile one.
                assert!(
                    started.elapsed() < Duration::from_secs(1),
                    "hello took {:?}",
                    started.elapsed()
                );
            }
            failures
        }));
    }
    // Let the stream get going first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = get(&client(), addr, hostile_host, "/").await;
    // And keep it going a little after.
    tokio::time::sleep(Duration::from_millis(100)).await;
    done.store(true, Ordering::Relaxed);
    for stream in streams {
        let failures = stream.await.unwrap();
        assert!(
            failures.is_empty(),
            "hello failed during attack: {failures:?}"
        );
    }
    (status, body, ok.load(Ordering::Relaxed))
}

async fn start_hostile(host: &Host, id: &str, fixture_name: &str, memory_mb: i32) {
    let mut workload = http_workload(
        id,
        fixture(fixture_name),
        &[("host", &format!("{id}.test"))],
    );
    workload.components[0].local_resources.memory_limit_mb = memory_mb;
    host.workload_start(id, workload).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_hits_the_deadline_with_504() {
    let host = hostile_host().await;
    start_hostile(&host, "spin", "loop_forever", 0).await;
    let started = Instant::now();
    let (status, body, ok) = attack(&host, "spin.test").await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body, "request deadline of 2s exceeded\n");
    assert!(started.elapsed() < DEADLINE + Duration::from_secs(2));
    assert!(ok > 10, "only {ok} hello requests during the attack");
    let lines = logs::lines_with(&["workload=spin", "component=spin", "deadline"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_limit_with_500() {
    let host = hostile_host().await;
    start_hostile(&host, "bomb", "memory_bomb", 64).await;
    let (status, body, ok) = attack(&host, "bomb.test").await;
    assert_eq!(status, 500);
    assert_eq!(body, "the component exceeded its memory limit\n");
    assert!(ok > 0);
    let lines = logs::lines_with(&[
        "workload=bomb",
        "component=bomb",
        "memory limit of 64 MiB exceeded",
    ]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_gives_500() {
    let host = hostile_host().await;
    start_hostile(&host, "trap", "trap", 0).await;
    let (status, body, ok) = attack(&host, "trap.test").await;
    assert_eq!(status, 500);
    assert_eq!(body, "the component trapped\n");
    assert!(ok > 0);
    let lines = logs::lines_with(&["WARN", "workload=trap", "component=trap", "wasm trap"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    // The guest's own panic message reaches the log, attributed to it.
    assert!(!logs::lines_with(&["workload=trap", "deliberate panic"]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_overflow_gives_500() {
    let host = hostile_host().await;
    start_hostile(&host, "deep", "stack_overflow", 0).await;
    let (status, body, ok) = attack(&host, "deep.test").await;
    assert_eq!(status, 500);
    assert_eq!(body, "the component trapped\n");
    assert!(ok > 0);
    let lines = logs::lines_with(&["workload=deep", "component=deep", "stack"]);
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_workloads_leave_the_host_healthy() {
    let host = hostile_host().await;
    start_hostile(&host, "spin2", "loop_forever", 0).await;
    start_hostile(&host, "bomb2", "memory_bomb", 32).await;
    let addr = host.http_addr().unwrap();
    // All at once, several times over.
    let mut attacks = Vec::new();
    for target in ["spin2.test", "bomb2.test", "spin2.test", "bomb2.test"] {
        attacks.push(tokio::spawn(async move {
            get(&client(), addr, target, "/").await.0
        }));
    }
    for attack in attacks {
        assert!(matches!(attack.await.unwrap(), 500 | 504));
    }
    assert_eq!(
        get(&client(), addr, "hello.test", "/").await,
        (200, "Hello from wash!\n".into())
    );
    // Every hostile instance was torn down.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(host.stats().live_instances, 0);
}
