//! Host conditions from asking the host, over a real nats-server and the
//! test API server.

use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use runtime_operator::crd::{ConditionStatus, Host};
use runtime_operator::host_status::refresh;
use runtime_proto::v2::HostHeartbeat;
use test_support::kube_api::FakeApiServer;
use test_support::servers::Nats;

/// Returns once the server has handled everything `client` sent before.
async fn settled(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut echo = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "".into()).await.unwrap();
    echo.next().await.unwrap();
}

fn ready_of(host: &Host) -> Option<ConditionStatus> {
    host.fields
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_ready_while_it_answers_and_not_ready_once_it_is_gone() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let nats = Nats::start();
    let api = FakeApiServer::start().await;
    let hosts: Api<Host> = Api::namespaced(api.client(), "wasmcloud-system");
    let heartbeat = HostHeartbeat {
        id: "host-1".into(),
        friendly_name: "brave-otter".into(),
        ..Default::default()
    };
    runtime_operator::hosts::record(&hosts, &heartbeat, "t0")
        .await
        .unwrap();

    // The host answers on its control subject.
    let host_side = async_nats::connect(nats.url()).await.unwrap();
    let mut subject = host_side
        .subscribe("runtime.host.host-1.heartbeat")
        .await
        .unwrap();
    let answering = host_side.clone();
    let responder = tokio::spawn(async move {
        while let Some(request) = subject.next().await {
            if let Some(reply) = request.reply {
                let _ = answering.publish(reply, "{}".into()).await;
            }
        }
    });
    settled(&host_side).await;

    let operator = async_nats::connect(nats.url()).await.unwrap();
    let settle = Duration::from_secs(5);
    let up = Some(Duration::from_secs(60));
    let host = hosts.get("brave-otter").await.unwrap();
    let ready = refresh(&hosts, &operator, &host, up, settle, "t1")
        .await
        .unwrap();
    assert_eq!(ready, ConditionStatus::True);
    assert_eq!(
        ready_of(&hosts.get("brave-otter").await.unwrap()),
        Some(ConditionStatus::True)
    );

    // The host process dies: its connection closes.
    responder.abort();
    drop(host_side);
    // Wait until NATS knows (a probe answers "no responders").
    while runtime_operator::liveness::probe(&operator, "host-1", Duration::from_secs(5)).await
        != runtime_operator::liveness::Probe::NoResponders
    {
        tokio::task::yield_now().await;
    }

    // Just reconnected: nothing is concluded.
    let host = hosts.get("brave-otter").await.unwrap();
    let ready = refresh(
        &hosts,
        &operator,
        &host,
        Some(Duration::from_secs(1)),
        settle,
        "t2",
    )
    .await
    .unwrap();
    assert_eq!(ready, ConditionStatus::Unknown);
    // Settled: the host is gone.
    let host = hosts.get("brave-otter").await.unwrap();
    let ready = refresh(&hosts, &operator, &host, up, settle, "t3")
        .await
        .unwrap();
    assert_eq!(ready, ConditionStatus::False);
    let stored = hosts.get("brave-otter").await.unwrap();
    assert_eq!(ready_of(&stored), Some(ConditionStatus::False));
    let reporting = stored.fields.status.unwrap().conditions;
    let reporting = reporting.iter().find(|c| c.type_ == "Reporting").unwrap();
    assert_eq!(reporting.reason.as_deref(), Some("NoResponders"));
}
