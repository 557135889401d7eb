//! Property tests over what comes from outside: control-plane messages and
//! the router's host and path matching. 10,000 cases each; no input may
//! panic, and what round-trips must come back the same.

use std::collections::BTreeMap;

use proptest::prelude::*;
use wash_runtime::host::http::{DynamicRouter, Router};
use wash_runtime::types::{Component, LocalResources, WitInterface, Workload};
use wash_runtime::washlet::{proto, workload_from_proto, workload_to_proto};

const CASES: u32 = 10_000;

/// Any JSON value, up to a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("workloadId".to_string()),
                    Just("workload".to_string()),
                    Just("components".to_string()),
                    Just("hostInterfaces".to_string()),
                    Just("localResources".to_string()),
                    Just("name".to_string()),
                    Just("image".to_string()),
                    Just("config".to_string()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9.-]{0,10}"
}

fn map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z]{1,6}", ".{0,8}", 0..3)
}

/// Workloads as a control plane could send them.
fn workload() -> impl Strategy<Value = Workload> {
    // Over the wire a component is always an image (bytes are never sent).
    let image = "[a-z0-9./:-]{1,16}".prop_map(Some);
    let component = (text(), image, map(), 0..4i32, 0..4i32).prop_map(
        |(name, image, environment, pool_size, max_concurrency)| Component {
            name,
            image,
            local_resources: LocalResources {
                environment,
                ..Default::default()
            },
            pool_size,
            max_concurrency,
            ..Default::default()
        },
    );
    let interface = (text(), text(), prop::collection::vec(text(), 0..3), map()).prop_map(
        |(namespace, package, interfaces, config)| WitInterface {
            namespace,
            package,
            interfaces,
            config,
            ..Default::default()
        },
    );
    (
        text(),
        text(),
        prop::collection::vec(component, 0..3),
        prop::collection::vec(interface, 0..3),
    )
        .prop_map(|(namespace, name, components, host_interfaces)| Workload {
            namespace,
            name,
            components,
            host_interfaces,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Bytes off the wire never panic the decoder.
    #[test]
    fn control_messages_decode_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<proto::WorkloadStartRequest>(&bytes);
        let _ = serde_json::from_slice::<proto::WorkloadStatusRequest>(&bytes);
    }

    /// Any JSON, shaped or not like a start request, decodes or is refused,
    /// and a decoded workload converts or is refused, without a panic.
    #[test]
    fn control_messages_decode_any_json(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Ok(request) = serde_json::from_slice::<proto::WorkloadStartRequest>(&bytes)
            && let Some(workload) = request.workload
        {
            let _ = workload_from_proto(workload);
        }
    }

    /// A workload sent over the control plane arrives as it was sent.
    #[test]
    fn workloads_round_trip_through_the_wire_format(workload in workload()) {
        let sent = proto::WorkloadStartRequest {
            workload_id: "id".into(),
            workload: Some(workload_to_proto(&workload)),
        };
        let bytes = serde_json::to_vec(&sent).unwrap();
        let received: proto::WorkloadStartRequest = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(&received, &sent);
        let back = workload_from_proto(received.workload.unwrap());
        prop_assert!(back.is_ok(), "{:?}", back.err());
        prop_assert_eq!(back.unwrap(), workload);
    }

    /// Any host and path: routing never panics, and sends a request only to
    /// a workload that says it would serve it.
    #[test]
    fn routing_agrees_with_what_workloads_ask_for(
        routes in prop::collection::vec(("[a-zA-Z0-9.-]{1,12}", "(/[a-z]{0,4}){0,2}"), 1..4),
        host in "[a-zA-Z0-9.:\\[\\]-]{0,16}",
        path in "(/[a-z?%.]{0,5}){0,3}",
    ) {
        let router = DynamicRouter::new();
        let mut workloads = BTreeMap::new();
        for (i, (name, prefix)) in routes.iter().enumerate() {
            let workload = Workload {
                name: format!("w{i}"),
                host_interfaces: vec![WitInterface {
                    namespace: "wasi".into(),
                    package: "http".into(),
                    config: [
                        ("host".to_string(), name.clone()),
                        ("path".to_string(), prefix.clone()),
                    ]
                    .into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            if router.register(&format!("w{i}"), &workload).is_ok() {
                workloads.insert(format!("w{i}"), workload);
            }
        }
        let host = host.split(':').next().unwrap_or_default();
        if let Some(id) = router.route(host, &path) {
            let workload = &workloads[&*id];
            prop_assert!(router.would_route(workload, host, &path), "{} {} {}", id, host, path);
        }
    }
}
