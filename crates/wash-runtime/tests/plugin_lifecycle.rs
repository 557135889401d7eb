//! Plugins are unbound on every path a workload ends by (stopped while
//! starting, a refused route), and one slow backend does not hold up the
//! starts of workloads on other backends.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Gate, fixture, http_workload, interface, plugin_host};
use tokio::sync::Semaphore;
use wash_runtime::host::http::{HttpServerBuilder, RouteError, Router};
use wash_runtime::host::{HostApi, HostBuilder, HostError};
use wash_runtime::plugin::Plugin;
use wash_runtime::plugin::messaging::{InMemoryMessaging, Messaging, MessagingBackend};
use wash_runtime::types::{Component, Workload, WorkloadState};

/// A router that refuses every workload.
struct Refusing;

impl Router for Refusing {
    fn register(&self, _workload_id: &str, workload: &Workload) -> Result<(), RouteError> {
        Err(RouteError::MissingHost {
            workload: workload.name.clone(),
        })
    }

    fn unregister(&self, _workload_id: &str) {}

    fn route(&self, _host: &str, _path: &str) -> Option<Arc<str>> {
        None
    }
}

/// The echo handler subscribed to `subject`, plus whatever else is given.
fn echo_workload(name: &str, subject: &str, mut extra: Vec<Component>) -> Workload {
    let mut components = vec![Component {
        name: "echo".into(),
        bytes: Some(fixture("messaging_echo")),
        ..Default::default()
    }];
    components.append(&mut extra);
    Workload {
        namespace: "test".into(),
        name: name.into(),
        components,
        host_interfaces: vec![interface(
            "wasmcloud",
            "messaging",
            &[("subscriptions", subject)],
        )],
        ..Default::default()
    }
}

/// Nobody answers on `subject` any more.
async fn nobody_answers(bus: &InMemoryMessaging, subject: &str) {
    let error = bus
        .request(subject.into(), Bytes::from("ping"), Duration::from_secs(5))
        .await
        .expect_err("a stopped workload must not answer");
    assert!(
        error.to_string().contains("no responders"),
        "the message was not delivered: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_stopped_while_starting_leaves_no_plugin_behind() {
    common::logs::capture();
    let bus = Arc::new(InMemoryMessaging::default());
    let messaging = Arc::new(Messaging::new(bus.clone()));
    let gate = Arc::new(Semaphore::new(0));
    let host = HostBuilder::new()
        .with_engine(common::engine())
        .with_plugin(Gate(gate.clone()))
        .unwrap()
        .with_plugin(messaging.clone())
        .unwrap()
        .start()
        .await
        .unwrap();

    let mut workload = echo_workload("early", "early.>", Vec::new());
    workload
        .host_interfaces
        .push(interface("example", "gate", &[]));
    let start = tokio::spawn({
        let host = host.clone();
        async move { host.workload_start("early", workload).await }
    });
    // Stop it while the gate holds its start, then let the start finish:
    // it binds messaging, which subscribes, and only then finds it stopped.
    while host.workload_status("early").await.workload_state != WorkloadState::Starting {
        tokio::task::yield_now().await;
    }
    host.workload_stop("early").await;
    gate.add_permits(1);
    match start.await.unwrap() {
        Err(HostError::StoppedWhileStarting(id)) => assert_eq!(id, "early"),
        other => panic!("expected StoppedWhileStarting, got {other:?}"),
    }

    nobody_answers(&bus, "early.hello").await;
    assert_eq!(messaging.dispatchers(), 0, "no dispatch task is left");
    assert_eq!(
        host.stats().plugin_bindings,
        0,
        "no plugin keeps the workload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_route_unbinds_the_plugins() {
    common::logs::capture();
    let bus = Arc::new(InMemoryMessaging::default());
    let messaging = Arc::new(Messaging::new(bus.clone()));
    let host = HostBuilder::new()
        .with_engine(common::engine())
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap()).router(Arc::new(Refusing)),
        )
        .with_plugin(messaging.clone())
        .unwrap()
        .start()
        .await
        .unwrap();

    // An HTTP component (so the router is asked) and a message handler.
    let http = http_workload("web", fixture("http_hello_world"), &[("host", "web.test")]);
    let mut workload = echo_workload("refused", "refused.>", http.components);
    workload.host_interfaces.extend(http.host_interfaces);
    let error = host.workload_start("refused", workload).await.unwrap_err();
    assert!(matches!(error, HostError::Route(_)), "{error}");

    nobody_answers(&bus, "refused.hello").await;
    assert_eq!(messaging.dispatchers(), 0, "no dispatch task is left");
    assert_eq!(
        host.stats().plugin_bindings,
        0,
        "no plugin keeps the workload"
    );
    assert_eq!(
        host.workload_status("refused").await.workload_state,
        WorkloadState::Error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_backend_does_not_delay_starts_on_other_backends() {
    common::logs::capture();
    // A "NATS server" that accepts connections and never says a word: a
    // client connecting to it waits for the server's greeting.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("nats://{}", silent.local_addr().unwrap());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
            let _ = accepted_tx.send(());
        }
    });

    let host = plugin_host(wash_runtime::plugin::builtin()).await;
    let mut stalled = http_workload(
        "stalled",
        fixture("http_kv_counter"),
        &[("host", "stalled.test")],
    );
    stalled.host_interfaces.push(interface(
        "wasi",
        "keyvalue",
        &[("backend", "nats"), ("url", &silent_url)],
    ));
    let stalled = tokio::spawn({
        let host = host.clone();
        async move { host.workload_start("stalled", stalled).await }
    });
    // The first start is inside its connect once the server has accepted.
    accepted
        .recv()
        .await
        .expect("the connect reached the server");

    let mut healthy = http_workload(
        "healthy",
        fixture("http_kv_counter"),
        &[("host", "healthy.test")],
    );
    healthy
        .host_interfaces
        .push(interface("wasi", "keyvalue", &[("backend", "memory")]));
    let status = host.workload_start("healthy", healthy).await.unwrap();
    assert_eq!(status.workload_state, WorkloadState::Running);
    assert!(
        !stalled.is_finished(),
        "the healthy start finished while the other was still connecting"
    );
    let stalled = stalled.await.unwrap();
    assert!(
        stalled.is_err(),
        "a silent server fails the start: {stalled:?}"
    );
    server.abort();
}

/// The erased plugin handle keeps the plugin's id and world.
#[test]
fn a_plugin_handle_reports_its_plugin() {
    let plugin = Plugin::new(Gate(Arc::new(Semaphore::new(0))));
    assert_eq!(plugin.id(), "gate");
    assert_eq!(plugin.world()[0].package, "gate");
}
