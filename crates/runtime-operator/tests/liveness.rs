//! Probing hosts over a real nats-server.

use std::time::Duration;

use futures::StreamExt;
use runtime_operator::liveness::{Probe, probe};
use test_support::servers::Nats;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_host_answers_a_dead_one_has_no_responders_a_stuck_one_times_out() {
    let nats = Nats::start();
    let operator = async_nats::connect(nats.url()).await.unwrap();
    let hosts = async_nats::connect(nats.url()).await.unwrap();

    // A live host answers its heartbeat subject.
    let mut live = hosts
        .subscribe("runtime.host.live.heartbeat")
        .await
        .unwrap();
    let answering = hosts.clone();
    tokio::spawn(async move {
        while let Some(request) = live.next().await {
            if let Some(reply) = request.reply {
                let _ = answering.publish(reply, "{}".into()).await;
            }
        }
    });
    // A stuck host listens but never answers.
    let _stuck = hosts
        .subscribe("runtime.host.stuck.heartbeat")
        .await
        .unwrap();
    // The subscriptions are registered once a round trip on their
    // connection comes back.
    hosts.flush().await.unwrap();
    let inbox = hosts.new_inbox();
    let mut echo = hosts.subscribe(inbox.clone()).await.unwrap();
    hosts.publish(inbox, "".into()).await.unwrap();
    echo.next().await.unwrap();

    // Generous where an answer is expected, short where none can come.
    let patient = Duration::from_secs(10);
    assert_eq!(probe(&operator, "live", patient).await, Probe::Answered);
    assert_eq!(probe(&operator, "gone", patient).await, Probe::NoResponders);
    let stuck = probe(&operator, "stuck", Duration::from_millis(300)).await;
    assert_eq!(stuck, Probe::TimedOut);
}
