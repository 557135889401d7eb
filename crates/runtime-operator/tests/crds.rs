//! The CRDs: the checked-in YAML is what the Rust types generate, the five
//! kinds have the reference's shape, and a manifest written for the
//! reference applies unchanged.

use std::path::PathBuf;

use kube::CustomResourceExt;
use runtime_operator::crd::{self, Workload, WorkloadDeployment};

const CHECKED_IN: &str = "crds/runtime.wasmcloud.dev.yaml";

#[test]
fn the_checked_in_crds_are_what_the_types_generate() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(CHECKED_IN);
    let checked_in = std::fs::read_to_string(&path).expect("the checked-in CRDs");
    let generated = crd::yaml().expect("CRDs");
    assert!(
        checked_in == generated,
        "{} is out of date: regenerate it with \
         `cargo run -p runtime-operator -- crds > crates/runtime-operator/{CHECKED_IN}`",
        path.display()
    );
}

#[test]
fn five_namespaced_kinds_with_status_and_scale_on_deployments_only() {
    let crds = crd::all().expect("CRDs");
    let names: Vec<_> = crds.iter().map(|c| c.spec.names.kind.as_str()).collect();
    assert_eq!(
        names,
        [
            "Artifact",
            "Host",
            "Workload",
            "WorkloadDeployment",
            "WorkloadReplicaSet"
        ]
    );
    for crd in &crds {
        assert_eq!(crd.spec.group, "runtime.wasmcloud.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        let subresources = version.subresources.as_ref().expect("subresources");
        assert!(
            subresources.status.is_some(),
            "{} has status",
            crd.spec.names.kind
        );
        assert_eq!(
            subresources.scale.is_some(),
            crd.spec.names.kind == "WorkloadDeployment",
            "only WorkloadDeployment scales"
        );
    }
    let scale = WorkloadDeployment::crd().spec.versions[0]
        .subresources
        .clone()
        .and_then(|s| s.scale)
        .expect("scale");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.currentReplicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
}

#[test]
fn a_host_has_no_spec_and_requires_its_id() {
    let crds = crd::all().expect("CRDs");
    let host = crds.iter().find(|c| c.spec.names.kind == "Host").unwrap();
    let schema = serde_json::to_value(&host.spec.versions[0].schema).unwrap();
    let root = &schema["openAPIV3Schema"];
    assert!(root["properties"]["spec"].is_null(), "Host has no .spec");
    assert_eq!(root["properties"]["hostId"]["type"], "string");
    assert!(
        root["required"]
            .as_array()
            .unwrap()
            .contains(&"hostId".into())
    );
    let status_required = root["properties"]["status"]["required"].as_array().unwrap();
    for field in [
        "version",
        "osName",
        "osArch",
        "osKernel",
        "systemCPUUsage",
        "systemMemoryTotal",
        "systemMemoryFree",
    ] {
        assert!(
            status_required.contains(&field.into()),
            "status.{field} is required"
        );
    }
    let columns: Vec<_> = host.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        ["HOSTID", "HOSTGROUP", "ENVIRONMENT", "READY", "AGE"]
    );
}

#[test]
fn workloads_are_ww_with_the_reference_columns() {
    let workload = Workload::crd();
    assert_eq!(
        workload.spec.names.short_names.as_deref(),
        Some(&["ww".to_string()][..])
    );
    let columns: Vec<_> = workload.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| (c.name.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("HOSTID", ".status.hostId"),
            ("ENVIRONMENT", ".status.environment"),
            ("READY", r#".status.conditions[?(@.type=="Ready")].status"#),
            ("AGE", ".metadata.creationTimestamp"),
        ]
    );
}

/// A Workload as a user of the reference writes it.
const REFERENCE_WORKLOAD: &str = r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata:
  name: hello
  namespace: default
spec:
  hostSelector:
    hostgroup: default
  components:
    - name: http-component
      image: ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0
      poolSize: 2
      imagePullSecret:
        name: registry-creds
      localResources:
        allowedHosts: ["api.example.com"]
        environment:
          configFrom:
            - name: hello-env
          config:
            GREETING: hi
        volumeMounts:
          - name: scratch
            mountPath: /tmp
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config:
        host: hello.example.com
    - namespace: wasi
      package: keyvalue
      interfaces: [store, atomics]
      name: cache
      secretFrom:
        - name: redis-url
  volumes:
    - name: scratch
      ephemeral: {}
  kubernetes:
    service:
      name: hello
"#;

#[test]
fn a_workload_written_for_the_reference_applies_unchanged() {
    let value: serde_json::Value = serde_norway::from_str(REFERENCE_WORKLOAD).unwrap();
    let workload: Workload = serde_json::from_value(value.clone()).unwrap();
    let spec = &workload.spec;
    assert_eq!(spec.components[0].pool_size, Some(2));
    assert_eq!(spec.host_interfaces[1].name.as_deref(), Some("cache"));
    assert_eq!(
        spec.host_interfaces[1].config.secret_from[0].name,
        "redis-url"
    );
    assert_eq!(
        spec.host_interfaces[0].config.config["host"],
        "hello.example.com"
    );
    assert!(spec.volumes[0].ephemeral.is_some());
    // Nothing is lost or added on the way back.
    let back = serde_json::to_value(&workload).unwrap();
    assert_eq!(back["spec"], value["spec"]);
}
