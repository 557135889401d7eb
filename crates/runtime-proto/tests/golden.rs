//! Golden vectors: each message's JSON exactly as the reference's
//! protobuf-JSON encoder writes it, and back.

use runtime_proto::v2::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
    value: &T,
    golden: Value,
) {
    assert_eq!(serde_json::to_value(value).unwrap(), golden);
    let back: T = serde_json::from_value(golden).unwrap();
    assert_eq!(&back, value);
}

fn wit(namespace: &str, package: &str, interfaces: &[&str]) -> WitInterface {
    WitInterface {
        namespace: namespace.into(),
        package: package.into(),
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn host_heartbeat() {
    let heartbeat = HostHeartbeat {
        id: "host-1".into(),
        hostname: "node-a".into(),
        friendly_name: "brave-otter".into(),
        version: "0.1.0".into(),
        labels: [("hostgroup".to_string(), "default".to_string())].into(),
        started_at: Some(runtime_proto::Timestamp {
            seconds: 1_764_000_000,
            nanos: 500_000_000,
        }),
        os_arch: "x86_64".into(),
        os_name: "linux".into(),
        os_kernel: "6.1.0".into(),
        system_cpu_usage: 12.5,
        system_memory_total: 25_769_803_776,
        system_memory_free: 1_073_741_824,
        component_count: 3,
        workload_count: 2,
        imports: vec![wit("wasi", "keyvalue", &["store", "atomics"])],
        exports: vec![wit("wasi", "http", &["incoming-handler"])],
        http_port: 8080,
        environment: String::new(),
    };
    round_trip(
        &heartbeat,
        json!({
            "id": "host-1",
            "hostname": "node-a",
            "friendlyName": "brave-otter",
            "version": "0.1.0",
            "labels": {"hostgroup": "default"},
            "startedAt": "2025-11-24T16:00:00.500Z",
            "osArch": "x86_64",
            "osName": "linux",
            "osKernel": "6.1.0",
            "systemCpuUsage": 12.5,
            "systemMemoryTotal": "25769803776",
            "systemMemoryFree": "1073741824",
            "componentCount": "3",
            "workloadCount": "2",
            "imports": [{"namespace": "wasi", "package": "keyvalue", "interfaces": ["store", "atomics"]}],
            "exports": [{"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"]}],
            "httpPort": 8080
        }),
    );
    round_trip(
        &HostHeartbeatRequest {
            heartbeat: Some(HostHeartbeat {
                id: "h".into(),
                ..Default::default()
            }),
        },
        json!({"heartbeat": {"id": "h"}}),
    );
}

#[test]
fn workload_start_request() {
    let request = WorkloadStartRequest {
        workload_id: "wl-1".into(),
        workload: Some(Workload {
            namespace: "default".into(),
            name: "hello".into(),
            annotations: [("team".to_string(), "web".to_string())].into(),
            service: None,
            wit_world: Some(WitWorld {
                components: vec![Component {
                    image: "registry.local/hello:1".into(),
                    local_resources: Some(LocalResources {
                        memory_limit_mb: 64,
                        allowed_hosts: vec!["api.example.com".into()],
                        volume_mounts: vec![VolumeMount {
                            name: "data".into(),
                            mount_path: "/data".into(),
                            read_only: true,
                        }],
                        ..Default::default()
                    }),
                    pool_size: 2,
                    image_pull_secret: Some(ImagePullSecret {
                        username: "u".into(),
                        password: "p".into(),
                    }),
                    name: "web".into(),
                    image_pull_policy: ImagePullPolicy::IfNotPresent.into(),
                    ..Default::default()
                }],
                host_interfaces: vec![WitInterface {
                    config: [("host".to_string(), "hello.example.com".to_string())].into(),
                    ..wit("wasi", "http", &["incoming-handler"])
                }],
            }),
            volumes: vec![
                Volume {
                    name: "data".into(),
                    volume_type: Some(volume::VolumeType::HostPath(HostPathVolume {
                        local_path: "/srv".into(),
                    })),
                },
                Volume {
                    name: "tmp".into(),
                    volume_type: Some(volume::VolumeType::EmptyDir(EmptyDirVolume {})),
                },
            ],
        }),
    };
    round_trip(
        &request,
        json!({
            "workload": {
                "namespace": "default",
                "name": "hello",
                "annotations": {"team": "web"},
                "witWorld": {
                    "components": [{
                        "image": "registry.local/hello:1",
                        "localResources": {
                            "memoryLimitMb": 64,
                            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                            "allowedHosts": ["api.example.com"]
                        },
                        "poolSize": 2,
                        "imagePullSecret": {"username": "u", "password": "p"},
                        "name": "web",
                        "imagePullPolicy": "IMAGE_PULL_POLICY_IF_NOT_PRESENT"
                    }],
                    "hostInterfaces": [{
                        "namespace": "wasi", "package": "http",
                        "interfaces": ["incoming-handler"],
                        "config": {"host": "hello.example.com"}
                    }]
                },
                "volumes": [
                    {"name": "data", "hostPath": {"localPath": "/srv"}},
                    {"name": "tmp", "emptyDir": {}}
                ]
            },
            "workloadId": "wl-1"
        }),
    );
}

#[test]
fn workload_status_messages() {
    round_trip(
        &WorkloadStatusRequest {
            workload_id: "wl-1".into(),
        },
        json!({"workloadId": "wl-1"}),
    );
    round_trip(
        &WorkloadStopRequest {
            workload_id: "wl-1".into(),
        },
        json!({"workloadId": "wl-1"}),
    );
    let running = WorkloadStartResponse {
        workload_status: Some(WorkloadStatus {
            workload_id: "wl-1".into(),
            workload_state: WorkloadState::Running.into(),
            message: String::new(),
        }),
    };
    round_trip(
        &running,
        json!({"workloadStatus": {"workloadId": "wl-1", "workloadState": "WORKLOAD_STATE_RUNNING"}}),
    );
    let failed = WorkloadStatusResponse {
        workload_status: Some(WorkloadStatus {
            workload_id: "wl-2".into(),
            workload_state: WorkloadState::Error.into(),
            message: "boom".into(),
        }),
    };
    round_trip(
        &failed,
        json!({"workloadStatus": {"workloadId": "wl-2", "workloadState": "WORKLOAD_STATE_ERROR", "message": "boom"}}),
    );
}

#[test]
fn parsers_accept_snake_case_names_numbers_and_number_strings() {
    let status: WorkloadStatus =
        serde_json::from_value(json!({"workload_id": "x", "workload_state": 6})).unwrap();
    assert_eq!(status.workload_state(), WorkloadState::NotFound);
    let heartbeat: HostHeartbeat =
        serde_json::from_value(json!({"workload_count": 4, "systemMemoryFree": "9"})).unwrap();
    assert_eq!(
        (heartbeat.workload_count, heartbeat.system_memory_free),
        (4, 9)
    );
    let bad =
        serde_json::from_value::<WorkloadStatus>(json!({"workloadState": "WORKLOAD_STATE_SLEEPY"}));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("WORKLOAD_STATE_SLEEPY")
    );
}

#[test]
fn fields_a_newer_peer_adds_are_skipped() {
    let status: WorkloadStatus = serde_json::from_value(
        json!({"workloadId": "x", "workloadState": "WORKLOAD_STATE_RUNNING", "shinyNewField": [1]}),
    )
    .unwrap();
    assert_eq!(status.workload_id, "x");
    assert_eq!(status.workload_state(), WorkloadState::Running);
}

#[test]
fn pull_secrets_do_not_print() {
    let secret = ImagePullSecret {
        username: "u".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{secret:?}").contains("hunter2"));
}
