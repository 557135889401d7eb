//! The washlet on a real NATS server: a host reported ready answers the
//! control plane's first request.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::servers::Nats;
use wash_runtime::host::HostBuilder;
use wash_runtime::washlet::proto::HostHeartbeat;
use wash_runtime::washlet::{DEFAULT_MAX_REQUEST, Washlet, WashletConfig};

/// An operator asks a host for its heartbeat the moment the host says it
/// listens: the subscription must already be registered with the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_washlet_answers_the_first_request() {
    let nats = Nats::start();
    let host = HostBuilder::new()
        .with_engine(common::engine())
        .start()
        .await
        .expect("host");
    let operator = async_nats::connect(nats.url()).await.unwrap();
    for i in 0..50 {
        let host_id = format!("host-{i}");
        let client = async_nats::connect(nats.url()).await.unwrap();
        let washlet = Washlet::start(
            host.clone(),
            client,
            WashletConfig {
                host_id: host_id.clone(),
                friendly_name: host_id.clone(),
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
        .expect("washlet starts");
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            operator.request(format!("runtime.host.{host_id}.heartbeat"), "".into()),
        )
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("start {i}: the first request got no answer: {e}"));
        let heartbeat: HostHeartbeat = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(heartbeat.id, host_id);
        washlet.stop();
    }
}

/// Two starts of the same workload at once (a control plane retrying, or
/// two operators): one workload, and both learn how its start ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_of_one_id_make_one_workload() {
    use wash_runtime::host::HostApi;
    let host = HostBuilder::new()
        .with_engine(common::engine())
        .start()
        .await
        .expect("host");
    let workload = common::http_workload("twice", common::fixture("http_hello_world"), &[]);
    let (a, b) = tokio::join!(
        host.workload_start("twice", workload.clone()),
        host.workload_start("twice", workload.clone()),
    );
    let running = wash_runtime::types::WorkloadState::Running;
    assert_eq!(a.unwrap().workload_state, running);
    assert_eq!(b.unwrap().workload_state, running);
    assert_eq!(host.stats().workloads, 1);
    assert_eq!(host.engine().loads(), 1);
}
