//! HTTP ingress end to end: real components served over loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{client, fixture, get, host, http_workload};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wash_runtime::host::http::{DevRouter, DynamicRouter};
use wash_runtime::host::{HostApi, HostError};
use wash_runtime::instance::HttpWorld;
use wash_runtime::types::WorkloadState;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world_answers_200_with_body() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    let status = host
        .workload_start(
            "hello",
            http_workload("hello", fixture("http_hello_world"), &[]),
        )
        .await
        .unwrap();
    assert_eq!(status.workload_state, WorkloadState::Running);
    let addr = host.http_addr().unwrap();
    let (status, body) = get(&client(), addr, "localhost", "/").await;
    assert_eq!((status, body.as_str()), (200, "Hello from wash!\n"));
    // The component's own routing still applies under the host's.
    let (status, body) = get(&client(), addr, "localhost", "/nope").await;
    assert_eq!(status, 404);
    assert!(body.contains("/nope"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_host_header_between_two_workloads() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    host.workload_start(
        "p2",
        http_workload("p2", fixture("http_hello_world"), &[("host", "p2.test")]),
    )
    .await
    .unwrap();
    host.workload_start(
        "p3",
        http_workload(
            "p3",
            fixture("http_hello_p3"),
            &[("host", "p3.test"), ("host-aliases", "alias.test")],
        ),
    )
    .await
    .unwrap();
    let addr = host.http_addr().unwrap();
    let client = client();
    assert_eq!(
        get(&client, addr, "p2.test", "/").await,
        (200, "Hello from wash!\n".into())
    );
    // Port and case are ignored; aliases route too.
    let (status, body) = get(&client, addr, "P3.test:8080", "/x").await;
    assert_eq!(status, 200);
    assert_eq!(body, "Hello from a P3 component! path=/x\n");
    let (status, body) = get(&client, addr, "alias.test", "/y").await;
    assert_eq!((status, body.contains("path=/y")), (200, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_longest_path_prefix() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    host.workload_start(
        "root",
        http_workload("root", fixture("http_hello_world"), &[("host", "api.test")]),
    )
    .await
    .unwrap();
    host.workload_start(
        "v1",
        http_workload(
            "v1",
            fixture("http_hello_p3"),
            &[("host", "api.test"), ("path", "/v1")],
        ),
    )
    .await
    .unwrap();
    let addr = host.http_addr().unwrap();
    let client = client();
    let (_, body) = get(&client, addr, "api.test", "/v1/users").await;
    assert_eq!(body, "Hello from a P3 component! path=/v1/users\n");
    let (_, body) = get(&client, addr, "api.test", "/").await;
    assert_eq!(body, "Hello from wash!\n");
    // `/v10` is not under `/v1`.
    let (status, body) = get(&client, addr, "api.test", "/v10").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("/v10"), "served by root's own 404: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_gets_404_with_reason() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    host.workload_start(
        "a",
        http_workload("a", fixture("http_hello_world"), &[("host", "a.test")]),
    )
    .await
    .unwrap();
    let (status, body) = get(&client(), host.http_addr().unwrap(), "nobody.test", "/").await;
    assert_eq!(status, 404);
    assert_eq!(body, "no workload is routed for host `nobody.test`\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_component_is_detected_and_served() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    host.workload_start("p3", http_workload("p3", fixture("http_hello_p3"), &[]))
        .await
        .unwrap();
    let components = host.components("p3").unwrap();
    assert_eq!(components[0].http, Some(HttpWorld::P3));
    let client = client();
    for i in 0..5 {
        let path = format!("/req/{i}");
        let (status, body) = get(&client, host.http_addr().unwrap(), "x", &path).await;
        assert_eq!(status, 200);
        assert_eq!(body, format!("Hello from a P3 component! path={path}\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_http2_with_prior_knowledge() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    host.workload_start(
        "hello",
        http_workload("hello", fixture("http_hello_world"), &[]),
    )
    .await
    .unwrap();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let uri = format!("http://{}/", host.http_addr().unwrap());
    let response = client.get(uri.parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Hello from wash!\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_removes_the_workload_and_leaks_no_instances() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    host.workload_start(
        "gone",
        http_workload(
            "gone",
            fixture("http_hello_world"),
            &[("host", "gone.test")],
        ),
    )
    .await
    .unwrap();
    let addr = host.http_addr().unwrap();
    let client = client();
    for _ in 0..10 {
        assert_eq!(get(&client, addr, "gone.test", "/").await.0, 200);
    }
    assert_eq!(host.components("gone").unwrap()[0].instantiations, 10);

    let stopped = host.workload_stop("gone").await;
    assert_eq!(stopped.workload_state, WorkloadState::Stopping);
    assert_eq!(
        host.workload_status("gone").await.workload_state,
        WorkloadState::NotFound
    );
    assert_eq!(get(&client, addr, "gone.test", "/").await.0, 404);

    // Instances are released once their requests are done.
    let mut stats = host.stats();
    for _ in 0..50 {
        if stats.live_instances == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = host.stats();
    }
    assert_eq!(stats.workloads, 0);
    assert_eq!(stats.live_instances, 0);
    if let Some(pool) = host.engine().wasmtime().pooling_allocator_metrics() {
        assert_eq!(pool.component_instances(), 0, "pool slots released");
    }
    // Stopping again is harmless.
    assert_eq!(
        host.workload_stop("gone").await.workload_state,
        WorkloadState::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_start_is_idempotent_and_conflicts_are_refused() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    let workload = http_workload("w", fixture("http_hello_world"), &[("host", "w.test")]);
    host.workload_start("w", workload.clone()).await.unwrap();
    let again = host.workload_start("w", workload).await.unwrap();
    assert_eq!(again.workload_state, WorkloadState::Running);
    assert_eq!(host.components("w").unwrap()[0].instantiations, 0);

    let other = http_workload("other", fixture("http_hello_p3"), &[("host", "w.test")]);
    let err = host.workload_start("w", other).await.unwrap_err();
    assert!(matches!(err, HostError::WorkloadIdConflict(_)), "{err}");
    // The running workload is untouched.
    assert_eq!(
        get(&client(), host.http_addr().unwrap(), "w.test", "/").await,
        (200, "Hello from wash!\n".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_under_one_host_share_requests() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    for id in ["r1", "r2"] {
        host.workload_start(
            id,
            http_workload("r", fixture("http_hello_world"), &[("host", "r.test")]),
        )
        .await
        .unwrap();
    }
    let client = client();
    for _ in 0..6 {
        assert_eq!(
            get(&client, host.http_addr().unwrap(), "r.test", "/")
                .await
                .0,
            200
        );
    }
    let r1 = host.components("r1").unwrap()[0].instantiations;
    let r2 = host.components("r2").unwrap()[0].instantiations;
    assert_eq!((r1, r2), (3, 3));
}

/// Sends `GET path` and returns the response with its body unread.
async fn response_head(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    addr: std::net::SocketAddr,
    path: &str,
) -> http::Response<hyper::body::Incoming> {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap();
    client.request(request).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bodies_go_out_whole_with_a_content_length() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    for (name, fixture_name) in [("p2", "http_hello_world"), ("p3", "http_hello_p3")] {
        let host_name = format!("{name}.test");
        host.workload_start(
            name,
            http_workload(name, fixture(fixture_name), &[("host", &host_name)]),
        )
        .await
        .unwrap();
        let request = http::Request::get(format!("http://{}/", host.http_addr().unwrap()))
            .header(http::header::HOST, &host_name)
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = client().request(request).await.unwrap();
        let length = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .cloned();
        if name == "p2" {
            // The example says what it sends.
            assert_eq!(
                response.headers()[http::header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
        }
        assert!(
            !response
                .headers()
                .contains_key(http::header::TRANSFER_ENCODING),
            "{name}: {:?}",
            response.headers()
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            length.as_ref().map(|l| l.to_str().unwrap()),
            Some(body.len().to_string().as_str()),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_streams_its_first_part_without_waiting_for_the_rest() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    host.workload_start(
        "stream",
        http_workload("stream", fixture("http_instance_state_p3"), &[]),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let response = response_head(&client(), host.http_addr().unwrap(), "/stream/1500").await;
    assert_eq!(response.status(), 200);
    assert!(
        !response
            .headers()
            .contains_key(http::header::CONTENT_LENGTH)
    );
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first\n");
    let first_after = started.elapsed();
    assert!(
        first_after < Duration::from_millis(1000),
        "the first part took {first_after:?}"
    );
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second\n");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}
