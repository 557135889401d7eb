//! Warm instances (`pool_size` > 0): reuse, its limits, and what ends an
//! instance. Behaviour only; timing is for `bench/`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client, engine, fixture, get, http_workload};
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};

const TIMEOUT: Duration = Duration::from_secs(2);

async fn reuse_host(idle_timeout: Duration) -> Host {
    HostBuilder::new()
        .with_engine(engine())
        .with_request_timeout(TIMEOUT)
        .with_idle_timeout(idle_timeout)
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new())),
        )
        .start()
        .await
        .expect("host starts")
}

/// Starts `fixture` as workload `id` (routed at `<id>.test`) with the given
/// pool size, invocation and concurrency limits.
async fn start(host: &Host, id: &str, fixture_name: &str, limits: (i32, i32, i32)) {
    let host_name = format!("{id}.test");
    let mut workload = http_workload(id, fixture(fixture_name), &[("host", host_name.as_str())]);
    let component = &mut workload.components[0];
    (
        component.pool_size,
        component.max_invocations,
        component.max_concurrency,
    ) = limits;
    host.workload_start(id, workload).await.expect("starts");
}

fn instantiations(host: &Host, id: &str) -> u64 {
    host.components(id).unwrap()[0].instantiations
}

/// The per-instance request counts the P2 fixture answers with, one
/// request after another.
async fn served(host: &Host, id: &str, paths: &[&str]) -> Vec<String> {
    let client = client();
    let addr = host.http_addr().unwrap();
    let mut bodies = Vec::new();
    for path in paths {
        // An instance offers itself for the next request once its call has
        // returned, a moment after the client has the whole response; a
        // request sent in that moment gets a new instance. Leave it time.
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (status, body) = get(&client, addr, &format!("{id}.test"), path).await;
        bodies.push(format!("{status} {}", body.trim()));
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_mode_never_shares_an_instance() {
    let host = reuse_host(Duration::from_secs(30)).await;
    start(&host, "fresh", "http_instance_state", (0, 0, 0)).await;
    let bodies = served(&host, "fresh", &["/"; 6]).await;
    assert_eq!(
        bodies,
        vec!["200 1"; 6],
        "every request sees a new instance"
    );
    assert_eq!(instantiations(&host, "fresh"), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_instance_serves_request_after_request() {
    let host = reuse_host(Duration::from_secs(30)).await;
    start(&host, "warm", "http_instance_state", (1, 0, 0)).await;
    let bodies = served(&host, "warm", &["/"; 6]).await;
    assert_eq!(
        bodies,
        ["200 1", "200 2", "200 3", "200 4", "200 5", "200 6"]
    );
    assert_eq!(instantiations(&host, "warm"), 1);
    // It stays alive between requests.
    assert_eq!(host.stats().live_instances, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_invocations_replaces_an_instance_after_that_many_requests() {
    let host = reuse_host(Duration::from_secs(30)).await;
    start(&host, "capped", "http_instance_state", (1, 3, 0)).await;
    let bodies = served(&host, "capped", &["/"; 7]).await;
    assert_eq!(
        bodies,
        [
            "200 1", "200 2", "200 3", "200 1", "200 2", "200 3", "200 1"
        ]
    );
    assert_eq!(instantiations(&host, "capped"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_or_a_deadline_discards_the_instance() {
    let host = reuse_host(Duration::from_secs(30)).await;
    start(&host, "fragile", "http_instance_state", (1, 0, 0)).await;
    let bodies = served(
        &host,
        "fragile",
        &["/", "/", "/trap", "/", "/", "/spin", "/"],
    )
    .await;
    assert_eq!(
        bodies,
        [
            "200 1",
            "200 2",
            "500 the component trapped",
            "200 1",
            "200 2",
            "504 request deadline of 2s exceeded",
            "200 1"
        ]
    );
    assert_eq!(instantiations(&host, "fragile"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_reclaimed_and_the_pool_keeps_only_pool_size() {
    let host = reuse_host(Duration::from_millis(300)).await;
    start(&host, "idle", "http_instance_state", (2, 0, 0)).await;
    // Six at once: P2 instances take one request each, so a burst needs
    // several; afterwards at most two stay warm.
    let addr = host.http_addr().unwrap();
    let burst: Vec<_> = (0..6)
        .map(|_| tokio::spawn(async move { get(&client(), addr, "idle.test", "/sleep/200").await }))
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let burst_instances = instantiations(&host, "idle");
    assert!(
        burst_instances >= 2,
        "a burst of six used {burst_instances} instance(s)"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while host.stats().live_instances > 2 {
        assert!(
            Instant::now() < deadline,
            "more than pool_size instances stayed warm"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Past the idle timeout, none are left...
    let deadline = Instant::now() + Duration::from_secs(5);
    while host.stats().live_instances > 0 {
        assert!(
            Instant::now() < deadline,
            "idle instances were not reclaimed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and the next request starts afresh.
    assert_eq!(served(&host, "idle", &["/"]).await, ["200 1"]);
    assert_eq!(instantiations(&host, "idle"), burst_instances + 1);
}

/// `<served> <most in flight>` from the P3 fixture, for `n` requests at once.
async fn p3_burst(host: &Host, id: &str, n: usize) -> Vec<(u64, u64)> {
    let addr = host.http_addr().unwrap();
    let host_name = format!("{id}.test");
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let host_name = host_name.clone();
            tokio::spawn(async move { get(&client(), addr, &host_name, "/300").await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let mut fields = body.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        answers.push((fields.next().unwrap(), fields.next().unwrap()));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_instances_serve_concurrently_up_to_max_concurrency() {
    let host = reuse_host(Duration::from_secs(30)).await;
    start(&host, "wide", "http_instance_state_p3", (1, 0, 4)).await;
    let answers = p3_burst(&host, "wide", 8).await;
    let most = answers.iter().map(|(_, m)| *m).max().unwrap();
    assert!(
        most <= 4,
        "an instance ran {most} requests at once; the limit is 4"
    );
    assert!(
        most >= 2,
        "no instance served requests concurrently: {answers:?}"
    );
    let used = instantiations(&host, "wide");
    assert!(
        (2..8).contains(&used),
        "8 requests, at most 4 per instance, took {used} instances"
    );

    // Fresh P3: one request per instance.
    start(&host, "narrow", "http_instance_state_p3", (0, 0, 0)).await;
    let answers = p3_burst(&host, "narrow", 4).await;
    assert!(answers.iter().all(|a| *a == (1, 1)), "{answers:?}");
    assert_eq!(instantiations(&host, "narrow"), 4);
}

/// A guest that can serve only one request per instance (as componentize-js
/// guests are): with a pool, the first reused instance fails its request,
/// a fresh instance serves it instead, and reuse is switched off for the
/// component with one warning. No client ever sees a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_serves_once_per_instance_gets_fresh_instances() {
    common::logs::capture();
    let host = reuse_host(Duration::from_secs(30)).await;
    start(&host, "once", "http_one_shot", (16, 0, 0)).await;
    let client = client();
    let addr = host.http_addr().unwrap();
    let warnings = || common::logs::lines_with(&["workload=once", "instance reuse is now off"]);
    // Requests one after another on a keep-alive connection land on the
    // warm instance as soon as it is idle again.
    let mut sent = 0;
    while warnings().is_empty() {
        assert!(
            sent < 500,
            "no request was ever served by a reused instance"
        );
        let (status, body) = get(&client, addr, "once.test", "/").await;
        assert_eq!((status, body.as_str()), (200, "served\n"), "request {sent}");
        sent += 1;
    }
    // From now on every request gets a fresh instance, concurrently too.
    let before = instantiations(&host, "once");
    let requests = (0..40).map(|_| {
        let client = client.clone();
        async move { get(&client, addr, "once.test", "/").await }
    });
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!((status, body.as_str()), (200, "served\n"));
    }
    assert_eq!(
        instantiations(&host, "once") - before,
        40,
        "one instance each"
    );
    assert_eq!(warnings().len(), 1, "the switch is logged once");
    let failures = common::logs::lines_with(&["workload=once", "request failed"]);
    assert!(failures.is_empty(), "no request failed: {failures:?}");
}
