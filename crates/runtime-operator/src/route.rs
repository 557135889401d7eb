//! Service routing through EndpointSlices: for each Service that Ready
//! Workloads name (`spec.kubernetes.service.name`), one IPv4 EndpointSlice,
//! owned by the Service, listing each Ready host that runs one of them once,
//! on the hosts' HTTP port. The hosts' routers answer the Service's names
//! (`<svc>.<ns>`, `<svc>.<ns>.svc`), which the Workload controller injects
//! as host aliases.
//!
//! A host's address is its reported hostname when that is an IPv4 address;
//! otherwise the IP of its pod (a pod labelled `wasmcloud.com/hostgroup`
//! whose `spec.hostname` or name is that hostname), the wasmCloud 2.2 fix.
//! An IPv6 address never goes into the IPv4 slice. Slices follow Workload,
//! Host, Service and Pod changes, so a host that goes away or a pod IP that
//! changes is reflected at once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::crd::{ConditionStatus, Host, Workload};
use crate::metrics::Metrics;
use crate::scheduling::is_ready;

/// The controller's name in metrics.
pub const CONTROLLER: &str = "workload-route";
/// The label key host pods carry.
pub const HOSTGROUP_LABEL: &str = "wasmcloud.com/hostgroup";
/// The `endpointslice.kubernetes.io/managed-by` value of our slices.
pub const MANAGED_BY: &str = "runtime.wasmcloud.dev/runtime-operator";

/// The slice of Service `service`: its name cut to 54 characters, then the
/// FNV-1a hash of the whole name, as the reference names it.
pub fn slice_name(service: &str) -> String {
    let hash = service.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let short: String = service.chars().take(54).collect();
    format!("{short}-{hash:08x}")
}

/// Why a host has no address in an IPv4 slice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The host reports an IPv6 address.
    #[error("hostname `{0}` is an IPv6 address; the slice is IPv4")]
    Ipv6(String),
    /// No host pod has that hostname or name.
    #[error("no pod labelled {HOSTGROUP_LABEL} has hostname or name `{0}`")]
    NoPod(String),
    /// The pod has no IPv4 address (yet).
    #[error("pod `{pod}` has no IPv4 address (podIP {ip:?})")]
    NoPodIp {
        /// The pod.
        pod: String,
        /// What it reports.
        ip: Option<String>,
    },
}

/// The IPv4 address Service traffic for a host reporting `hostname` goes to.
pub fn host_address(hostname: &str, pods: &[Arc<Pod>]) -> Result<Ipv4Addr, AddressError> {
    match hostname.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => return Ok(ip),
        Ok(IpAddr::V6(_)) => return Err(AddressError::Ipv6(hostname.into())),
        Err(_) => {}
    }
    let pod = pods
        .iter()
        .filter(|p| p.labels().contains_key(HOSTGROUP_LABEL))
        .find(|p| {
            p.spec.as_ref().and_then(|s| s.hostname.as_deref()) == Some(hostname)
                || p.name_any() == hostname
        })
        .ok_or_else(|| AddressError::NoPod(hostname.into()))?;
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    ip.as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .ok_or(AddressError::NoPodIp {
            pod: pod.name_any(),
            ip,
        })
}

/// What a reconcile needs.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Workloads (the watched namespaces), for finding the Services a
    /// change concerns.
    pub workloads: Store<Workload>,
    /// Hosts (operator namespace).
    pub hosts: Api<Host>,
    /// Host pods, one per namespace hosts run in.
    pub pods: Vec<Api<Pod>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReconcileError(#[from] kube::Error);

fn workload_ready(workload: &Workload) -> bool {
    workload.metadata.deletion_timestamp.is_none()
        && workload.status.as_ref().is_some_and(|s| {
            s.host_id.is_some()
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
        })
}

fn service_of(workload: &Workload) -> Option<&str> {
    workload
        .spec
        .kubernetes
        .as_ref()?
        .service
        .as_ref()
        .map(|s| s.name.as_str())
}

/// The endpoints of Service `name` in `namespace`: address -> HTTP port.
///
/// Read from the API, not from caches: a reconcile woken by a change must
/// see that change, and the caches may not have it yet.
async fn endpoints(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<Ipv4Addr, u16>, kube::Error> {
    let list = ListParams::default();
    let mut pods: Vec<Arc<Pod>> = Vec::new();
    for api in &ctx.pods {
        let selected = api.list(&list.clone().labels(HOSTGROUP_LABEL)).await?;
        pods.extend(selected.items.into_iter().map(Arc::new));
    }
    let hosts = ctx.hosts.list(&list).await?.items;
    let workloads: Api<Workload> = Api::namespaced(ctx.client.clone(), namespace);
    let mut endpoints = BTreeMap::new();
    let serving_hosts: BTreeSet<String> = workloads
        .list(&list)
        .await?
        .items
        .iter()
        .filter(|w| w.namespace().as_deref() == Some(namespace) && service_of(w) == Some(name))
        .filter(|w| workload_ready(w))
        .filter_map(|w| w.status.as_ref()?.host_id.clone())
        .collect();
    for host_id in serving_hosts {
        let Some(host) = hosts.iter().find(|h| h.fields.host_id == host_id) else {
            continue;
        };
        let port = host.fields.http_port.and_then(|p| u16::try_from(p).ok());
        let hostname = host.fields.hostname.as_str();
        let (Some(port), false) = (port.filter(|p| *p != 0), hostname.is_empty()) else {
            continue;
        };
        if !is_ready(host) {
            continue;
        }
        match host_address(hostname, &pods) {
            Ok(ip) => {
                endpoints.insert(ip, port);
            }
            Err(e) => tracing::info!(host = %host_id, service = %name, "not routed: {e}"),
        }
    }
    Ok(endpoints)
}

fn desired_slice(service: &Service, endpoints: &BTreeMap<Ipv4Addr, u16>) -> Option<EndpointSlice> {
    // One port per slice: the one most hosts use (hosts of one group share
    // it); hosts on another port are left out, with a log line.
    let mut ports: BTreeMap<u16, usize> = BTreeMap::new();
    for port in endpoints.values() {
        *ports.entry(*port).or_default() += 1;
    }
    let port = ports
        .iter()
        .max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))?
        .0;
    let name = service.name_any();
    let mut addresses = Vec::new();
    for (ip, p) in endpoints {
        if p == port {
            addresses.push(Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: None,
                }),
                ..Default::default()
            });
        } else {
            tracing::warn!(service = %name, %ip, port = p, "host on another HTTP port than the slice's {port}; left out");
        }
    }
    Some(EndpointSlice {
        metadata: ObjectMeta {
            name: Some(slice_name(&name)),
            namespace: service.namespace(),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/service-name".to_string(), name.clone()),
                (
                    "endpointslice.kubernetes.io/managed-by".to_string(),
                    MANAGED_BY.to_string(),
                ),
                (
                    "wasmcloud.dev/route-manager".to_string(),
                    "true".to_string(),
                ),
            ])),
            owner_references: service.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: addresses,
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(i32::from(*port)),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
    })
}

fn same_routing(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    a.metadata.labels == b.metadata.labels
        && a.address_type == b.address_type
        && a.ports == b.ports
        && a.endpoints == b.endpoints
        && a.metadata.owner_references == b.metadata.owner_references
}

async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let key = format!("{namespace}/{name}");
    ctx.metrics.reconcile_started(CONTROLLER, &key);
    if service.metadata.deletion_timestamp.is_some() {
        ctx.metrics.forgotten(CONTROLLER, &key);
        return Ok(Action::await_change());
    }
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &namespace);
    let slice_name = slice_name(&name);
    let endpoints = endpoints(&ctx, &namespace, &name).await?;
    let existing = slices.get_opt(&slice_name).await?;
    match (desired_slice(&service, &endpoints), existing) {
        (None, Some(_)) => match slices.delete(&slice_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        },
        (None, None) => {}
        (Some(desired), None) => {
            slices.create(&PostParams::default(), &desired).await?;
        }
        (Some(mut desired), Some(existing)) if !same_routing(&desired, &existing) => {
            desired.metadata.resource_version = existing.metadata.resource_version;
            slices
                .replace(&slice_name, &PostParams::default(), &desired)
                .await?;
        }
        (Some(_), Some(_)) => {}
    }
    ctx.metrics.requeued(CONTROLLER, &key);
    Ok(Action::requeue(Duration::from_secs(60)))
}

fn error_policy(service: Arc<Service>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(service = %service.name_any(), error = %crate::error_chain(error), "reconcile failed; retrying");
    ctx.metrics.reconcile_failed(CONTROLLER, "api");
    Action::requeue(Duration::from_secs(2))
}

/// What routing reads of a Host: readiness, hostname, HTTP port.
type RoutingView = (bool, String, Option<i32>);

/// Every Service some Workload names.
fn named_services(workloads: &Store<Workload>) -> Vec<ObjectRef<Service>> {
    let named: BTreeSet<(String, String)> = workloads
        .state()
        .iter()
        .filter_map(|w| Some((w.namespace()?, service_of(w)?.to_string())))
        .collect();
    named
        .into_iter()
        .map(|(namespace, name)| ObjectRef::new(&name).within(&namespace))
        .collect()
}

/// Runs the controller over `services` until the process ends: woken by
/// their slices, by Workloads naming them, and by any Host or host Pod
/// change.
pub async fn run(
    services: Api<Service>,
    slices: Api<EndpointSlice>,
    workloads: Api<Workload>,
    hosts: Api<Host>,
    pods: Vec<Api<Pod>>,
    ctx: Arc<Context>,
) {
    let for_hosts = ctx.workloads.clone();
    // Heartbeats change a Host every few seconds; only what routing reads
    // (readiness, address, port) wakes the Services.
    let seen: std::sync::Mutex<BTreeMap<String, RoutingView>> = std::sync::Mutex::default();
    let mut controller = Controller::new(services, watcher::Config::default())
        .owns(slices, watcher::Config::default())
        .watches(
            workloads,
            watcher::Config::default(),
            |workload: Workload| {
                let namespace = workload.namespace()?;
                Some(ObjectRef::new(service_of(&workload)?).within(&namespace))
            },
        )
        .watches(hosts, watcher::Config::default(), move |host: Host| {
            let view = (
                is_ready(&host),
                host.fields.hostname.clone(),
                host.fields.http_port,
            );
            let changed = seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(host.fields.host_id.clone(), view.clone())
                != Some(view);
            if changed {
                named_services(&for_hosts)
            } else {
                Vec::new()
            }
        });
    for pods in pods {
        let for_pods = ctx.workloads.clone();
        controller = controller.watches(
            pods,
            watcher::Config::default().labels(HOSTGROUP_LABEL),
            move |_: Pod| named_services(&for_pods),
        );
    }
    controller
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "route controller");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(name: &str, hostname: Option<&str>, ip: Option<&str>, labelled: bool) -> Arc<Pod> {
        let mut pod = Pod {
            spec: Some(PodSpec {
                hostname: hostname.map(str::to_string),
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: ip.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        };
        pod.metadata.name = Some(name.into());
        if labelled {
            pod.metadata.labels = Some(BTreeMap::from([(
                HOSTGROUP_LABEL.to_string(),
                "default".to_string(),
            )]));
        }
        Arc::new(pod)
    }

    #[test]
    fn a_host_address_is_its_ipv4_hostname_or_its_pods_ip() {
        let pods = [
            pod("unlabelled", None, Some("10.0.0.9"), false),
            pod("host-abc", None, Some("10.0.0.5"), true),
            pod("other", Some("custom-host"), Some("10.0.0.6"), true),
            pod("pending", None, None, true),
            pod("v6", None, Some("fd00::5"), true),
        ];
        assert_eq!(
            host_address("10.1.2.3", &pods),
            Ok("10.1.2.3".parse().unwrap())
        );
        assert_eq!(
            host_address("host-abc", &pods),
            Ok("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            host_address("custom-host", &pods),
            Ok("10.0.0.6".parse().unwrap())
        );
        assert_eq!(
            host_address("fd00::1", &pods),
            Err(AddressError::Ipv6("fd00::1".into()))
        );
        assert_eq!(
            host_address("unlabelled", &pods),
            Err(AddressError::NoPod("unlabelled".into()))
        );
        assert!(matches!(
            host_address("pending", &pods),
            Err(AddressError::NoPodIp { .. })
        ));
        // A pod with only an IPv6 address is not put in an IPv4 slice either.
        assert!(matches!(
            host_address("v6", &pods),
            Err(AddressError::NoPodIp { .. })
        ));
    }

    #[test]
    fn slice_names_are_bounded_and_stable() {
        assert_eq!(slice_name("web"), slice_name("web"));
        assert!(slice_name("web").starts_with("web-"));
        let long = "s".repeat(80);
        let name = slice_name(&long);
        assert_eq!(name.len(), 54 + 1 + 8);
        assert_ne!(slice_name("web"), slice_name("web2"));
    }
}
