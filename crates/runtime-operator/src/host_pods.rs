//! The host-pod fast path: when a host's pod is being deleted, its Host is
//! marked not Ready (so its workloads move at once) and removed, whatever
//! the host reports as hostname (pod IP, pod name or `spec.hostname`). The
//! process may keep heartbeating while it terminates; its heartbeats are
//! ignored for a while so the Host does not come back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::DeleteParams;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};

use crate::crd::{ConditionStatus, Host};
use crate::host_status::{conditions_of, set_condition, write_conditions};
use crate::route::HOSTGROUP_LABEL;

/// How long a retired host's heartbeats are ignored.
pub const RETIREMENT: Duration = Duration::from_secs(600);

/// Host ids whose pods are going away.
#[derive(Debug, Clone, Default)]
pub struct Retired(Arc<Mutex<HashMap<String, Instant>>>);

impl Retired {
    /// Ignores `host_id` from now on, for [`RETIREMENT`].
    pub fn retire(&self, host_id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, since| since.elapsed() < RETIREMENT);
        map.insert(host_id.into(), Instant::now());
    }

    /// Whether `host_id` was retired recently.
    pub fn contains(&self, host_id: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(host_id)
            .is_some_and(|since| since.elapsed() < RETIREMENT)
    }
}

/// Whether the Host runs in `pod`: its hostname is the pod's IP, name or
/// `spec.hostname`.
pub fn runs_in(host: &Host, pod: &Pod) -> bool {
    let hostname = host.fields.hostname.as_str();
    if hostname.is_empty() {
        return false;
    }
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
    let spec_hostname = pod.spec.as_ref().and_then(|s| s.hostname.as_deref());
    ip == Some(hostname) || spec_hostname == Some(hostname) || pod.name_any() == hostname
}

async fn retire_hosts_of(pod: &Pod, hosts_api: &Api<Host>, hosts: &Store<Host>, retired: &Retired) {
    for host in hosts.state().iter().filter(|h| runs_in(h, pod)) {
        let name = host.name_any();
        retired.retire(&host.fields.host_id);
        tracing::info!(host = %name, pod = %pod.name_any(), "host pod is going away; moving its workloads");
        let mut conditions = conditions_of(host);
        let now = Timestamp::now().to_string();
        set_condition(
            &mut conditions,
            "Ready",
            ConditionStatus::False,
            "PodDeleted",
            &format!("pod `{}` is being deleted", pod.name_any()),
            &now,
        );
        if let Err(e) = write_conditions(hosts_api, &name, &conditions).await {
            tracing::warn!(host = %name, error = %e, "cannot mark the Host not Ready");
        }
        match hosts_api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(host = %name, error = %e, "cannot remove the Host"),
        }
    }
}

/// Watches host pods (label `wasmcloud.com/hostgroup`) in `pods` until the
/// process ends, retiring the hosts of those being deleted.
pub async fn run(pods: Api<Pod>, hosts_api: Api<Host>, hosts: Store<Host>, retired: Retired) {
    let events =
        watcher(pods, watcher::Config::default().labels(HOSTGROUP_LABEL)).default_backoff();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(pod)) if pod.metadata.deletion_timestamp.is_some() => pod,
            Ok(watcher::Event::Delete(pod)) => pod,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "host pod watch");
                continue;
            }
        };
        retire_hosts_of(&pod, &hosts_api, &hosts, &retired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::HostFields;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(name: &str, hostname: Option<&str>, ip: &str) -> Pod {
        let mut pod = Pod {
            spec: Some(PodSpec {
                hostname: hostname.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        pod.metadata.name = Some(name.into());
        pod
    }

    fn host(hostname: &str) -> Host {
        Host::new(
            "h",
            HostFields {
                host_id: "h".into(),
                hostname: hostname.into(),
                ..Default::default()
            },
        )
    }

    #[test]
    fn a_host_runs_in_the_pod_its_hostname_names_in_any_form() {
        let p = pod("hostgroup-web-abc", Some("web-0"), "10.0.0.5");
        assert!(runs_in(&host("10.0.0.5"), &p));
        assert!(runs_in(&host("hostgroup-web-abc"), &p));
        assert!(runs_in(&host("web-0"), &p));
        assert!(!runs_in(&host("10.0.0.6"), &p));
        assert!(!runs_in(&host(""), &p));
    }

    #[test]
    fn retired_hosts_are_remembered() {
        let retired = Retired::default();
        assert!(!retired.contains("a"));
        retired.retire("a");
        assert!(retired.contains("a"));
        assert!(!retired.contains("b"));
    }
}
