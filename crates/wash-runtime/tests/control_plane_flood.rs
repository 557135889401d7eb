//! A flood of control-plane messages: commands are bounded (the excess is
//! told the host is busy), messages nobody waits for are dropped cheaply,
//! heartbeats stay on time, and memory comes back down. One test per
//! binary: it measures the process's memory.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::servers::Nats;
use futures::StreamExt;
use wash_runtime::host::HostBuilder;
use wash_runtime::washlet::proto::WorkloadStartResponse;
use wash_runtime::washlet::{DEFAULT_MAX_REQUEST, Washlet, WashletConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HEARTBEAT: Duration = Duration::from_millis(200);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_5000_messages_is_bounded_and_heartbeats_stay_on_time() {
    let nats = Nats::start();
    let host = HostBuilder::new()
        .with_engine(common::engine())
        .start()
        .await
        .unwrap();
    let washlet = Washlet::start(
        host,
        async_nats::connect(nats.url()).await.unwrap(),
        WashletConfig {
            host_id: "flooded".into(),
            friendly_name: "flooded".into(),
            hostname: "localhost".into(),
            environment: String::new(),
            host_group: "default".into(),
            labels: BTreeMap::new(),
            heartbeat_interval: HEARTBEAT,
            max_request: DEFAULT_MAX_REQUEST,
            max_in_flight: 64,
        },
    )
    .await
    .unwrap();
    let operator = async_nats::connect(nats.url()).await.unwrap();
    let beats = Arc::new(Mutex::new(Vec::new()));
    let mut heartbeats = operator
        .subscribe("runtime.operator.heartbeat.flooded")
        .await
        .unwrap();
    tokio::spawn({
        let beats = beats.clone();
        async move {
            while heartbeats.next().await.is_some() {
                beats.lock().unwrap().push(Instant::now());
            }
        }
    });
    operator.flush().await.unwrap();
    let before = rss_kib();
    let peak = burst(&operator, &beats).await;
    // What a burst took is freed when it is over: the allocator keeps the
    // pages for the next burst (mimalloc hands them back to the system
    // lazily, glibc not at all), so memory does not grow burst after burst.
    let first = rss_kib();
    // More bursts take no more: what stays is capacity kept for the next
    // one (connection buffers, allocator pages), not a leak.
    // (A leak of what each burst carries, 80 MB, would be plain by the
    // fifth; the allocator's timing moves a peak by a few tens of MB.)
    let mut peaks = vec![peak];
    for _ in 0..4 {
        peaks.push(burst(&operator, &beats).await);
    }
    println!("RSS: {before} KiB before, peaks {peaks:?} KiB, {first} KiB after the first burst");
    let early = peaks[..2].iter().max().copied().unwrap_or_default();
    let late = peaks[2..].iter().max().copied().unwrap_or_default();
    assert!(
        late <= early + early / 2,
        "memory grows burst after burst: peaks {peaks:?} KiB"
    );
    washlet.stop();
}

/// 4,000 requests with 16 KiB of JSON each, and 1,000 messages nobody waits
/// for, all at once. The RSS right after.
async fn burst(operator: &async_nats::Client, beats: &Arc<Mutex<Vec<Instant>>>) -> u64 {
    let heavy = serde_json::json!({
        "workloadId": "x",
        "padding": (0..1000).map(|i| format!("entry-{i:08}")).collect::<Vec<_>>(),
    })
    .to_string();
    let burst_started = Instant::now();
    for _ in 0..1000 {
        operator
            .publish("runtime.host.flooded.workload.start", heavy.clone().into())
            .await
            .unwrap();
    }
    let requests = (0..4000).map(|_| {
        let operator = operator.clone();
        let heavy = heavy.clone();
        async move {
            let reply = tokio::time::timeout(
                Duration::from_secs(30),
                operator.request("runtime.host.flooded.workload.start", heavy.into()),
            )
            .await
            .expect("a reply in time")
            .expect("a reply");
            let response: WorkloadStartResponse = serde_json::from_slice(&reply.payload).unwrap();
            response.workload_status.unwrap().message
        }
    });
    let messages = futures::future::join_all(requests).await;
    let took = burst_started.elapsed();
    let busy = messages
        .iter()
        .filter(|m| m.contains("host is busy"))
        .count();
    let handled = messages
        .iter()
        .filter(|m| m.contains("without a workload"))
        .count();
    let peak = rss_kib();
    println!("5,000 messages in {took:?}: {handled} handled, {busy} told busy");
    assert_eq!(handled + busy, 4000, "every request got an answer");
    assert!(handled >= 64, "at least a full set of commands ran");

    // Heartbeats kept coming: wait for two more, then look at the gaps.
    let seen = beats.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while beats.lock().unwrap().len() < seen + 2 {
        assert!(Instant::now() < deadline, "heartbeats stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gaps: Vec<_> = beats
        .lock()
        .unwrap()
        .windows(2)
        .filter(|pair| pair[1] > burst_started)
        .map(|pair| pair[1] - pair[0])
        .collect();
    let worst = gaps.iter().max().copied().unwrap_or_default();
    println!(
        "heartbeats: worst gap {worst:?} over {} during and after",
        gaps.len()
    );
    assert!(worst < HEARTBEAT * 5, "a heartbeat gap of {worst:?}");
    peak
}
