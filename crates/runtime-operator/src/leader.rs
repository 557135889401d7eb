//! Leader election over a `coordination.k8s.io/v1` Lease, as client-go
//! does it: the holder renews the lease; another replica takes it over only
//! once it has seen the lease unchanged for a whole lease duration (its own
//! clock, so clock skew between replicas does not matter).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

/// The lease's name, as the reference (`LeaderElectionID`).
pub const LEASE_NAME: &str = "d34db3ef.wasmcloud.dev";

/// Timings and identity.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Lease name.
    pub name: String,
    /// This replica (pod name).
    pub identity: String,
    /// How long a lease nobody renews stays held.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to try.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// controller-runtime's defaults: 15 s, 10 s, 2 s.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            name: LEASE_NAME.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One replica's view of the lease.
struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The lease as last seen (holder, renew time, resource version) and
    /// when it was first seen like that.
    observed: Option<(String, Instant)>,
}

fn fingerprint(lease: &Lease) -> String {
    let spec = lease.spec.clone().unwrap_or_default();
    format!(
        "{:?}/{:?}/{:?}",
        spec.holder_identity, spec.renew_time, lease.metadata.resource_version
    )
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl Elector {
    /// Takes or renews the lease; whether this replica holds it now.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(seconds(self.settings.lease_duration)),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let seen = fingerprint(&lease);
        if self.observed.as_ref().is_none_or(|(last, _)| *last != seen) {
            self.observed = Some((seen, Instant::now()));
        }
        let mut spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.settings.identity;
        let unchanged_for = self.observed.as_ref().map(|(_, at)| at.elapsed());
        let expired = unchanged_for.is_some_and(|age| age >= self.settings.lease_duration);
        if !holder.is_empty() && !mine && !expired {
            return Ok(false);
        }
        if !mine {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            spec.holder_identity = Some(self.settings.identity.clone());
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds(self.settings.lease_duration));
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observed = Some((fingerprint(&written), Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up so another replica takes over at once.
    async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(&self.settings.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
            .map(drop)
    }
}

/// Leadership once won: renewed in the background until lost or released.
pub struct Leader {
    lost: watch::Receiver<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Waits until this replica holds the lease `settings.name` in the
/// namespace of `api`, then keeps renewing it.
pub async fn lead(api: Api<Lease>, settings: LeaseSettings) -> Leader {
    let mut elector = Elector {
        api,
        settings,
        observed: None,
    };
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read or take the leader lease"),
        }
        tokio::time::sleep(elector.settings.retry_period).await;
    }
    tracing::info!(
        identity = %elector.settings.identity,
        lease = %elector.settings.name,
        "became the leader"
    );
    let (lost_tx, lost) = watch::channel(false);
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = &mut stopped => {
                    if let Err(e) = elector.release().await {
                        tracing::warn!(error = %e, "cannot release the leader lease");
                    }
                    return;
                }
                () = tokio::time::sleep(elector.settings.retry_period) => {}
            }
            // A request that hangs must not outlive the renew deadline:
            // by then a standby may take over.
            let left = elector
                .settings
                .renew_deadline
                .saturating_sub(renewed.elapsed());
            let attempt = tokio::time::timeout(left, elector.try_acquire_or_renew()).await;
            let Ok(attempt) = attempt else {
                tracing::error!("renewing the leader lease hung past the renew deadline");
                let _ = lost_tx.send(true);
                return;
            };
            match attempt {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::error!("another replica took the leader lease");
                    let _ = lost_tx.send(true);
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the leader lease"),
            }
            if renewed.elapsed() > elector.settings.renew_deadline {
                tracing::error!("the leader lease was not renewed in time");
                let _ = lost_tx.send(true);
                return;
            }
        }
    });
    Leader {
        lost,
        stop: Some(stop),
        task,
    }
}

impl Drop for Leader {
    /// A dropped leader stops renewing (without releasing): the lease
    /// expires and a standby takes over, as when a process dies.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Leader {
    /// Resolves when leadership is lost; the replica must stop acting.
    pub async fn lost(&mut self) {
        // An error means the renewing task ended: leadership is over too.
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// Gives leadership up, so a standby takes over without waiting for
    /// the lease to expire.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
