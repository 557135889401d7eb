//! `wasmcloud:messaging`: the backend suite against the in-process bus and a
//! real NATS server, and the `messaging-echo` component handling requests,
//! sharing a queue group, and failing under JetStream (redelivered).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::servers::Nats;
use common::{fixture, interface, logs, plugin_host};
use futures::StreamExt;
use wash_runtime::host::{Host, HostApi};
use wash_runtime::plugin::Plugin;
use wash_runtime::plugin::messaging::{
    InMemoryMessaging, Message, Messaging, MessagingBackend, NatsMessaging, Subscription,
};
use wash_runtime::types::{Component, Workload};

async fn next(deliveries: &mut wash_runtime::plugin::messaging::Deliveries) -> Message {
    tokio::time::timeout(Duration::from_secs(5), deliveries.next())
        .await
        .expect("a delivery in time")
        .expect("stream open")
        .message
}

fn message(subject: &str, body: &str) -> Message {
    Message {
        subject: subject.into(),
        body: Bytes::from(body.to_string()),
        reply_to: None,
    }
}

async fn backend_suite(bus: Arc<dyn MessagingBackend>, name: &str) {
    // Wildcards: `*` one token, `>` the rest.
    let mut star = bus
        .subscribe(Subscription {
            subjects: vec!["orders.*".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let mut tail = bus
        .subscribe(Subscription {
            subjects: vec!["orders.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    // A subscription is in place when `subscribe` returns: publish at once.
    bus.publish(message("orders.new", "1")).await.unwrap();
    bus.publish(message("orders.eu.new", "2")).await.unwrap();
    assert_eq!(next(&mut star).await.body, "1", "{name}");
    assert_eq!(next(&mut tail).await.body, "1", "{name}");
    assert_eq!(next(&mut tail).await.body, "2", "{name}");

    // Queue groups share the messages.
    let group = || Subscription {
        subjects: vec!["jobs".into()],
        queue_group: Some("workers".into()),
        durable: None,
    };
    let (mut a, mut b) = (
        bus.subscribe(group()).await.unwrap(),
        bus.subscribe(group()).await.unwrap(),
    );
    for i in 0..40 {
        bus.publish(message("jobs", &i.to_string())).await.unwrap();
    }
    let (mut na, mut nb) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while na + nb < 40 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            Some(_) = a.next() => na += 1,
            Some(_) = b.next() => nb += 1,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert_eq!(na + nb, 40, "{name}: each message to exactly one member");
    assert!(
        na > 0 && nb > 0,
        "{name}: both members got some ({na}/{nb})"
    );

    // Request / reply, and a request nobody answers.
    let mut responder = bus
        .subscribe(Subscription {
            subjects: vec!["rpc.upper".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let answering = bus.clone();
    tokio::spawn(async move {
        while let Some(delivery) = responder.next().await {
            let reply_to = delivery.message.reply_to.expect("a reply subject");
            let body = String::from_utf8_lossy(&delivery.message.body).to_uppercase();
            answering.publish(message(&reply_to, &body)).await.unwrap();
        }
    });
    let reply = bus
        .request(
            "rpc.upper".into(),
            Bytes::from("shout"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(reply.body, "SHOUT", "{name}");
    let error = bus
        .request(
            "rpc.nobody".into(),
            Bytes::new(),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("rpc.nobody"), "{name}: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_suite_on_every_backend() {
    backend_suite(Arc::new(InMemoryMessaging::default()), "memory").await;
    let nats = Nats::start();
    backend_suite(
        Arc::new(NatsMessaging::connect(&nats.url()).await.unwrap()),
        "nats",
    )
    .await;
}

/// A workload running `messaging-echo`, subscribed per `config`.
fn echo_workload(name: &str, config: &[(&str, &str)], env: &[(&str, &str)]) -> Workload {
    Workload {
        namespace: "test".into(),
        name: name.into(),
        components: vec![Component {
            name: "echo".into(),
            bytes: Some(fixture("messaging_echo")),
            local_resources: wash_runtime::types::LocalResources {
                environment: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                ..Default::default()
            },
            ..Default::default()
        }],
        host_interfaces: vec![interface("wasmcloud", "messaging", config)],
        ..Default::default()
    }
}

async fn host_with_messaging(backend: Arc<dyn MessagingBackend>) -> Host {
    logs::capture();
    let mut plugins: Vec<Plugin> = wash_runtime::plugin::builtin()
        .into_iter()
        .filter(|p| p.id() != "wasmcloud-messaging")
        .collect();
    plugins.push(Plugin::new(Messaging::new(backend)));
    plugin_host(plugins).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers_requests_on_every_backend() {
    // In-process: the test talks through the same bus.
    let bus = Arc::new(InMemoryMessaging::default());
    let host = host_with_messaging(bus.clone()).await;
    host.workload_start(
        "echo-mem",
        echo_workload("echo-mem", &[("subscriptions", "echo.>")], &[]),
    )
    .await
    .unwrap();
    let reply = bus
        .request(
            "echo.hi".into(),
            Bytes::from("ping"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(reply.body, "ping");

    // Over NATS, from a plain NATS client.
    let nats = Nats::start();
    let url = nats.url();
    let host = host_with_messaging(Arc::new(InMemoryMessaging::default())).await;
    host.workload_start(
        "echo-nats",
        echo_workload(
            "echo-nats",
            &[
                ("backend", "nats"),
                ("url", &url),
                ("subscriptions", "echo.>"),
            ],
            &[],
        ),
    )
    .await
    .unwrap();
    let client = async_nats::connect(&url).await.unwrap();
    for i in 0..5 {
        let body = format!("ping {i}");
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            client.request("echo.deep.subject", body.clone().into()),
        )
        .await
        .expect("in time")
        .expect("a reply");
        assert_eq!(reply.payload, body);
    }
}

/// A control plane starts a workload and sends to it at once: the start
/// reports success only once the NATS server routes the workload's
/// subjects, so not one of the first messages is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_workload_answers_its_very_first_message() {
    let nats = Nats::start();
    let url = nats.url();
    let host = host_with_messaging(Arc::new(InMemoryMessaging::default())).await;
    let client = async_nats::connect(&url).await.unwrap();
    for i in 0..50 {
        let id = format!("first-{i}");
        let subjects = format!("first.{i}.>");
        let config = [
            ("backend", "nats"),
            ("url", url.as_str()),
            ("subscriptions", subjects.as_str()),
        ];
        host.workload_start(&id, echo_workload(&id, &config, &[]))
            .await
            .unwrap();
        let body = format!("ping {i}");
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            client.request(format!("first.{i}.now"), body.clone().into()),
        )
        .await
        .expect("in time")
        .unwrap_or_else(|e| panic!("start {i}: the first request got no answer: {e}"));
        assert_eq!(reply.payload, body);
        host.workload_stop(&id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_spreads_messages_over_replicas() {
    let nats = Nats::start();
    let url = nats.url();
    let host = host_with_messaging(Arc::new(InMemoryMessaging::default())).await;
    for replica in ["r1", "r2"] {
        let config = [
            ("backend", "nats"),
            ("url", url.as_str()),
            ("subscriptions", "work"),
            ("queue-group", "workers"),
        ];
        let env = [("FORWARD_TO", "results"), ("REPLICA", replica)];
        host.workload_start(replica, echo_workload("workers", &config, &env))
            .await
            .unwrap();
    }
    let client = async_nats::connect(&url).await.unwrap();
    let mut results = client.subscribe("results").await.unwrap();
    client.flush().await.unwrap();
    for i in 0..20 {
        client
            .publish("work", format!("job-{i}").into())
            .await
            .unwrap();
    }
    let mut by_replica: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..20 {
        let result = tokio::time::timeout(Duration::from_secs(10), results.next())
            .await
            .expect("all results in time")
            .unwrap();
        let text = String::from_utf8_lossy(&result.payload).into_owned();
        let (replica, _) = text.split_once(':').unwrap();
        *by_replica.entry(replica.to_string()).or_default() += 1;
    }
    assert_eq!(by_replica.values().sum::<usize>(), 20);
    assert_eq!(
        by_replica.len(),
        2,
        "both replicas handled some: {by_replica:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_handler_loses_no_jetstream_message() {
    let nats = Nats::start();
    let url = nats.url();
    let host = host_with_messaging(Arc::new(InMemoryMessaging::default())).await;
    let config = [
        ("backend", "nats"),
        ("url", url.as_str()),
        ("subscriptions", "jobs.>"),
        ("stream", "JOBS"),
        ("durable", "job-workers"),
    ];
    // This version traps on every job.
    host.workload_start(
        "failing",
        echo_workload(
            "jobs",
            &config,
            &[
                ("PANIC_ON", "job"),
                ("FORWARD_TO", "done"),
                ("REPLICA", "failing"),
            ],
        ),
    )
    .await
    .unwrap();
    let client = async_nats::connect(&url).await.unwrap();
    let mut done = client.subscribe("done").await.unwrap();
    client.flush().await.unwrap();
    let jetstream = async_nats::jetstream::new(client.clone());
    jetstream
        .publish("jobs.1", "job-1".into())
        .await
        .unwrap()
        .await
        .expect("stored by JetStream");

    // It is tried (and fails) more than once: JetStream redelivers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while logs::lines_with(&["workload=failing", "message not handled", "delivered again"]).len()
        < 2
    {
        assert!(tokio::time::Instant::now() < deadline, "no redelivery seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A fixed version takes over the same durable consumer and gets it.
    host.workload_stop("failing").await;
    host.workload_start(
        "fixed",
        echo_workload(
            "jobs",
            &config,
            &[("FORWARD_TO", "done"), ("REPLICA", "fixed")],
        ),
    )
    .await
    .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), done.next())
        .await
        .expect("the job is delivered to the fixed version")
        .unwrap();
    assert_eq!(result.payload, "fixed:job-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_on_a_core_subject_is_logged() {
    let bus = Arc::new(InMemoryMessaging::default());
    let host = host_with_messaging(bus.clone()).await;
    host.workload_start(
        "core-fail",
        echo_workload(
            "core-fail",
            &[("subscriptions", "events")],
            &[("PANIC_ON", "boom")],
        ),
    )
    .await
    .unwrap();
    bus.publish(message("events", "boom")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines = logs::lines_with(&[
            "workload=core-fail",
            "message not handled",
            "subject=events",
        ]);
        if let Some(line) = lines.first() {
            assert!(
                !line.contains("delivered again"),
                "core NATS does not redeliver: {line}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line for the failure"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
