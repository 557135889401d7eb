//! Many starts of one component at once, as a control plane placing a
//! replica set does: the component is loaded once, its code shared by every
//! workload, and its image pulled once. One test per binary: it measures
//! the process's memory.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::servers::{Nats, Registry};
use common::{fixture, http_workload};
use wash_runtime::engine::EngineBuilder;
use wash_runtime::host::{Host, HostApi, HostBuilder};
use wash_runtime::oci::{OciClient, OciConfig};
use wash_runtime::types::{Component, Workload, WorkloadState};
use wash_runtime::washlet::proto::WorkloadStartResponse;
use wash_runtime::washlet::{DEFAULT_MAX_REQUEST, Washlet, WashletConfig};

const BURST: usize = 100;

// The allocator `wash` ships with: how memory is spread over threads is
// part of what this test measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The hello component's bytes, read once: a host pulling one image gets
/// the same bytes for every start, and per-workload copies made by the test
/// would be measured as the host's.
fn hello_bytes() -> bytes::Bytes {
    static BYTES: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| fixture("http_hello_world")).clone()
}

fn hello(id: &str) -> Workload {
    http_workload(id, hello_bytes(), &[("host", "hello.test")])
}

async fn start_all(host: &Host, ids: impl Iterator<Item = String>) {
    let starts = ids.map(|id| {
        let host = host.clone();
        async move {
            let status = host.workload_start(&id, hello(&id)).await.expect("starts");
            assert_eq!(status.workload_state, WorkloadState::Running);
        }
    });
    futures::future::join_all(starts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_load_once_share_the_code_and_pull_once() {
    let cache = tempfile::tempdir().unwrap();
    let engine = EngineBuilder::new()
        .with_max_instances(64)
        .with_compile_cache(cache.path())
        .build()
        .unwrap();
    let host = HostBuilder::new()
        .with_engine(engine)
        .start()
        .await
        .unwrap();

    // Warm-up: a first burst brings up the blocking threads and allocator
    // arenas that any burst needs, then goes away again.
    start_all(&host, (0..BURST).map(|i| format!("warm-{i}"))).await;
    assert_eq!(host.engine().loads(), 1, "the warm-up burst loads once");
    for i in 0..BURST {
        host.workload_stop(&format!("warm-{i}")).await;
    }

    // A burst of concurrent starts: one load, shared by all.
    let loads = host.engine().loads();
    let before = rss_kib();
    start_all(&host, (0..BURST).map(|i| format!("burst-{i}"))).await;
    let burst_kib = rss_kib().saturating_sub(before) as f64 / BURST as f64;
    println!("concurrent starts: {burst_kib:.1} KiB per workload");
    assert_eq!(
        host.engine().loads() - loads,
        1,
        "one load for the whole burst"
    );
    assert_eq!(host.engine().loaded_components(), 1);
    assert!(burst_kib <= 64.0, "{burst_kib:.1} KiB per workload");

    // Starts one after another after the burst share the same code.
    let before = rss_kib();
    for i in 0..BURST {
        let id = format!("after-{i}");
        host.workload_start(&id, hello(&id)).await.unwrap();
    }
    let after_kib = rss_kib().saturating_sub(before) as f64 / BURST as f64;
    println!("sequential starts after the burst: {after_kib:.1} KiB per workload");
    assert_eq!(host.engine().loads() - loads, 1, "nothing loaded again");
    assert_eq!(host.engine().loaded_components(), 1);
    assert!(after_kib <= 64.0, "{after_kib:.1} KiB per workload");

    // Over the control plane: a burst of starts of one image, one pull.
    let registry = Registry::start();
    let nats = Nats::start();
    let oci_cache = tempfile::tempdir().unwrap();
    let oci = || {
        let mut config = OciConfig::new(oci_cache.path());
        config.insecure_registries = vec![registry.address()];
        OciClient::new(config).unwrap()
    };
    let image = format!("{}/hello:1", registry.address());
    oci()
        .push(&image, fixture("http_hello_world"), None)
        .await
        .unwrap();
    let pulling = HostBuilder::new()
        .with_engine(common::engine())
        .with_oci(oci())
        .start()
        .await
        .unwrap();
    let washlet = Washlet::start(
        pulling.clone(),
        async_nats::connect(nats.url()).await.unwrap(),
        WashletConfig {
            host_id: "puller".into(),
            friendly_name: "puller".into(),
            hostname: "localhost".into(),
            environment: String::new(),
            host_group: "default".into(),
            labels: BTreeMap::new(),
            heartbeat_interval: Duration::from_secs(60),
            max_request: DEFAULT_MAX_REQUEST,
            max_in_flight: wash_runtime::washlet::DEFAULT_MAX_IN_FLIGHT,
        },
    )
    .await
    .unwrap();
    let operator = async_nats::connect(nats.url()).await.unwrap();
    let requests = (0..BURST).map(|i| start_over_nats(&operator, &image, format!("pulled-{i}")));
    futures::future::join_all(requests).await;
    assert_eq!(pulling.oci().unwrap().registry_pulls(), 1, "one pull");
    assert_eq!(pulling.engine().loads(), 1, "one load");

    // Then one after another: each start reads the image from the OCI
    // cache; none of those bytes stays with the workload.
    let before = rss_kib();
    for i in 0..BURST {
        start_over_nats(&operator, &image, format!("pulled-after-{i}")).await;
    }
    let pulled_kib = rss_kib().saturating_sub(before) as f64 / BURST as f64;
    println!("sequential starts from the OCI cache: {pulled_kib:.1} KiB per workload");
    assert!(pulled_kib <= 64.0, "{pulled_kib:.1} KiB per workload");
    assert_eq!(pulling.engine().loads(), 1, "still one load");
    washlet.stop();
}

/// Starts `id` (the image at `image`) through the control plane.
async fn start_over_nats(operator: &async_nats::Client, image: &str, id: String) {
    let workload = Workload {
        components: vec![Component {
            name: "hello".into(),
            image: Some(image.to_string()),
            ..Default::default()
        }],
        ..hello(&id)
    };
    let request = serde_json::json!({
        "workloadId": id,
        "workload": wash_runtime::washlet::workload_to_proto(&workload),
    });
    let reply = operator
        .request(
            "runtime.host.puller.workload.start",
            serde_json::to_vec(&request).unwrap().into(),
        )
        .await
        .expect("a reply");
    let response: WorkloadStartResponse = serde_json::from_slice(&reply.payload).unwrap();
    let status = response.workload_status.expect("a status");
    assert_eq!(
        status.workload_state(),
        wash_runtime::washlet::proto::WorkloadState::Running,
        "{}",
        status.message
    );
}
