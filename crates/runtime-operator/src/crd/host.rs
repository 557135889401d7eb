//! `Host`: a `wash host` process as the operator sees it, made from its
//! heartbeats. As in the reference it has no `.spec`: its fields sit at the
//! top level of the object, so `kube`'s derive (which needs a spec) does not
//! apply and the resource and its CRD are written out here.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::schema::{OptionalEnum, StructuralSchemaRewriter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::{GROUP, VERSION};

const KIND: &str = "Host";
const PLURAL: &str = "hosts";

/// A host: its identity at the top level, what it reports in `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// `runtime.wasmcloud.dev/v1alpha1`.
    pub api_version: String,
    /// `Host`.
    pub kind: String,
    /// Object metadata; the labels are the host's.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the host says of itself.
    #[serde(flatten)]
    pub fields: HostFields,
}

/// The fields of a Host object besides its metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostFields {
    /// The host's id on the control plane.
    pub host_id: String,
    /// The host's name or address (the pod IP when deployed by the chart).
    #[serde(default)]
    pub hostname: String,
    /// The port its HTTP ingress listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub http_port: Option<i32>,
    /// The environment it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// What it last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HostStatus>,
}

/// What a host last reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// `Reporting`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The host's version.
    pub version: String,
    /// Operating system.
    pub os_name: String,
    /// CPU architecture.
    pub os_arch: String,
    /// Kernel version.
    pub os_kernel: String,
    /// CPU usage, as text.
    #[serde(rename = "systemCPUUsage")]
    pub system_cpu_usage: String,
    /// Memory, bytes.
    pub system_memory_total: i64,
    /// Free memory, bytes.
    pub system_memory_free: i64,
    /// Components running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_count: Option<i64>,
    /// Workloads running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_count: Option<i64>,
    /// When it was last heard from (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_seen: Option<String>,
}

impl Host {
    /// A Host object named `name` with these fields.
    pub fn new(name: &str, fields: HostFields) -> Self {
        Self {
            api_version: format!("{GROUP}/{VERSION}"),
            kind: KIND.into(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            fields,
        }
    }
}

impl kube::Resource for Host {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The Host CRD: the schema of [`HostFields`], made the way `kube`'s derive
/// makes the others (structural, no `$ref`s).
pub(super) fn crd() -> Result<CustomResourceDefinition, serde_json::Error> {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(StructuralSchemaRewriter)
        .with_transform(OptionalEnum)
        .into_generator();
    let schema = generator.into_root_schema_for::<HostFields>();
    let ready = r#".status.conditions[?(@.type=="Ready")].status"#;
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{PLURAL}.{GROUP}") },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": "HostList",
                "plural": PLURAL,
                "singular": "host"
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": schema },
                "subresources": { "status": {} },
                "additionalPrinterColumns": [
                    { "name": "HOSTID", "type": "string", "jsonPath": ".hostId" },
                    { "name": "HOSTGROUP", "type": "string", "jsonPath": ".metadata.labels.hostgroup" },
                    { "name": "ENVIRONMENT", "type": "string", "jsonPath": ".environment" },
                    { "name": "READY", "type": "string", "jsonPath": ready },
                    { "name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp" }
                ]
            }]
        }
    });
    serde_json::from_value(crd)
}
