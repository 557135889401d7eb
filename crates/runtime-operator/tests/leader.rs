//! Leader election over a Lease in the test API server: one leader at a
//! time, a released lease taken over at once, a dead leader's lease only
//! once it has expired.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use runtime_operator::leader::{LeaseSettings, lead};
use test_support::kube_api::FakeApiServer;

fn settings(identity: &str) -> LeaseSettings {
    let mut settings = LeaseSettings::new(identity);
    settings.lease_duration = Duration::from_secs(2);
    settings.renew_deadline = Duration::from_millis(1500);
    settings.retry_period = Duration::from_millis(200);
    settings
}

async fn holder(leases: &Api<Lease>) -> (Option<String>, Option<i32>) {
    let lease = leases.get(&settings("x").name).await.unwrap();
    let spec = lease.spec.unwrap_or_default();
    (spec.holder_identity, spec.lease_transitions)
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_dead_one_is_replaced_after_its_lease() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let server = FakeApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client(), "wasmcloud");

    let first = lead(leases.clone(), settings("first")).await;
    assert_eq!(holder(&leases).await, (Some("first".into()), Some(0)));

    // A standby waits while the leader renews.
    let standby = tokio::spawn(lead(leases.clone(), settings("second")));
    let mut renewals = 0;
    let mut last = None;
    while renewals < 5 {
        let lease = leases.get(&settings("x").name).await.unwrap();
        let renewed = lease.spec.and_then(|s| s.renew_time);
        if renewed != last {
            renewals += 1;
            last = renewed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!standby.is_finished(), "the standby took a held lease");
    assert_eq!(holder(&leases).await.0.as_deref(), Some("first"));

    // Released: the standby takes over within its retry period.
    first.release().await;
    let second = tokio::time::timeout(Duration::from_secs(5), standby)
        .await
        .expect("the standby leads once the lease is released")
        .unwrap();
    assert_eq!(holder(&leases).await, (Some("second".into()), Some(1)));

    // The leader dies without releasing: the next one waits the lease out.
    drop(second);
    let began = Instant::now();
    let third = lead(leases.clone(), settings("third")).await;
    assert!(
        began.elapsed() >= Duration::from_secs(2),
        "took a lease that had not expired ({:?})",
        began.elapsed()
    );
    assert_eq!(holder(&leases).await, (Some("third".into()), Some(2)));
    third.release().await;
    assert_eq!(holder(&leases).await.0, None);
}
