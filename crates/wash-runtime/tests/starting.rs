//! Requests that arrive while the workload that will serve them is still
//! starting wait for it (up to the request deadline) or get a 503 with
//! `Retry-After`; never a 404 saying nothing is there.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Gate, fixture, http_workload};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};
use wash_runtime::types::WorkloadState;

async fn gated_host(request_timeout: Duration) -> (Host, Arc<Semaphore>) {
    let gate = Arc::new(Semaphore::new(0));
    let host = HostBuilder::new()
        .with_engine(common::engine())
        .with_request_timeout(request_timeout)
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new())),
        )
        .with_plugin(Gate(gate.clone()))
        .unwrap()
        .start()
        .await
        .unwrap();
    (host, gate)
}

/// Starts a gated hello workload at `host_name` in the background and
/// returns once it is `Starting`.
async fn start_gated(host: &Host, id: &str, host_name: &str) -> tokio::task::JoinHandle<()> {
    let mut workload = http_workload(id, fixture("http_hello_world"), &[("host", host_name)]);
    workload
        .host_interfaces
        .push(common::interface("example", "gate", &[]));
    let starting = tokio::spawn({
        let (host, id) = (host.clone(), id.to_string());
        async move {
            host.workload_start(&id, workload).await.expect("starts");
        }
    });
    let changed = async {
        while host.workload_status(id).await.workload_state != WorkloadState::Starting {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), changed)
        .await
        .expect("the workload is starting");
    starting
}

/// Status, `Retry-After` and body of a GET to `host_name`.
async fn get(host: &Host, host_name: &str) -> (u16, Option<String>, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::get(format!("http://{}/", host.http_addr().unwrap()))
        .header(http::header::HOST, host_name)
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.expect("request sent");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_for_its_starting_workload() {
    let (host, gate) = gated_host(Duration::from_secs(20)).await;
    let starting = start_gated(&host, "slow", "slow.test").await;

    // Sent while the workload starts: it is held, not refused.
    let request = tokio::spawn({
        let host = host.clone();
        async move { get(&host, "slow.test").await }
    });
    let held = async {
        while host.stats().held_requests == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the request is held");
    // A request for a host nothing serves is not held.
    let (status, _, body) = get(&host, "other.test").await;
    assert_eq!(status, 404, "{body}");
    assert!(!request.is_finished(), "held while the workload starts");

    gate.add_permits(1);
    starting.await.unwrap();
    let (status, _, body) = request.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "Hello from wash!\n"));
    assert_eq!(host.stats().held_requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_longer_than_the_deadline_gets_503_with_retry_after() {
    let (host, gate) = gated_host(Duration::from_millis(300)).await;
    let starting = start_gated(&host, "slower", "slower.test").await;
    let (status, retry_after, body) = get(&host, "slower.test").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(
        body.contains("`slower` is starting"),
        "the body says why: {body}"
    );

    gate.add_permits(1);
    starting.await.unwrap();
    let (status, _, body) = get(&host, "slower.test").await;
    assert_eq!((status, body.as_str()), (200, "Hello from wash!\n"));
}
