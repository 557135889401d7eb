//! Hosts from heartbeats, over a real nats-server and the test API server.

use std::collections::BTreeMap;

use futures::StreamExt;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use runtime_operator::crd::Host;
use runtime_proto::v2::HostHeartbeat;
use test_support::kube_api::FakeApiServer;
use test_support::servers::Nats;

fn heartbeat(labels: &[(&str, &str)], workloads: u64) -> HostHeartbeat {
    HostHeartbeat {
        id: "host-1".into(),
        hostname: "10.0.0.7".into(),
        friendly_name: "brave-otter".into(),
        version: "0.1.0".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        os_name: "linux".into(),
        workload_count: workloads,
        http_port: 9191,
        ..Default::default()
    }
}

/// Waits until the Host named `name` satisfies `done`.
async fn host_where(hosts: &Api<Host>, name: &str, done: impl Fn(&Host) -> bool) -> Host {
    let mut changes = watcher(hosts.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    while let Some(host) = changes.next().await {
        let host = host.expect("watch");
        if host.metadata.name.as_deref() == Some(name) && done(&host) {
            return host;
        }
    }
    panic!("the watch ended before Host {name} was as expected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_make_and_update_hosts_and_bad_ones_are_skipped() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let nats = Nats::start();
    let api = FakeApiServer::start().await;
    let hosts: Api<Host> = Api::namespaced(api.client(), "wasmcloud-system");
    let client = async_nats::connect(nats.url()).await.unwrap();
    // One connection for the subscription and the publishes: the server
    // handles them in order.
    let subscriber = client
        .subscribe(runtime_proto::subjects::HEARTBEATS)
        .await
        .unwrap();
    tokio::spawn(runtime_operator::hosts::run(
        hosts.clone(),
        subscriber,
        || "2026-12-01T10:00:00Z".to_string(),
        runtime_operator::host_pods::Retired::default(),
    ));

    let subject = runtime_proto::subjects::heartbeat("host-1");
    client
        .publish(subject.clone(), "{not a heartbeat".into())
        .await
        .unwrap();
    let first = heartbeat(&[("hostgroup", "default"), ("zone", "a")], 1);
    client
        .publish(subject.clone(), serde_json::to_vec(&first).unwrap().into())
        .await
        .unwrap();
    let host = host_where(&hosts, "brave-otter", |h| h.fields.status.is_some()).await;
    assert_eq!(host.fields.host_id, "host-1");
    assert_eq!(host.fields.http_port, Some(9191));
    let status = host.fields.status.unwrap();
    assert_eq!(status.workload_count, Some(1));
    assert_eq!(status.last_seen.as_deref(), Some("2026-12-01T10:00:00Z"));

    // The next heartbeat's labels replace the old ones; the status follows.
    let second = heartbeat(&[("hostgroup", "gpu")], 4);
    client
        .publish(subject, serde_json::to_vec(&second).unwrap().into())
        .await
        .unwrap();
    let host = host_where(&hosts, "brave-otter", |h| {
        h.fields.status.as_ref().and_then(|s| s.workload_count) == Some(4)
    })
    .await;
    let expected: BTreeMap<String, String> = [("hostgroup".to_string(), "gpu".to_string())].into();
    assert_eq!(host.metadata.labels, Some(expected));
}
