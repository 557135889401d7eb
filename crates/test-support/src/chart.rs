//! Renders a Helm chart's templates for tests, as `helm template` would for
//! the part of the template language our chart keeps to (values, release,
//! `if`/`range`/`not`/`eq`, trim markers); no helm binary can be installed
//! here. And evaluates the RBAC it renders for a service account.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::kube_api::ApiRequest;

fn to_template_value(value: &Value) -> gtmpl_value::Value {
    match value {
        Value::Null => gtmpl_value::Value::Nil,
        Value::Bool(b) => gtmpl_value::Value::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => gtmpl_value::Value::from(i),
            None => gtmpl_value::Value::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => gtmpl_value::Value::from(s.as_str()),
        Value::Array(items) => {
            gtmpl_value::Value::Array(items.iter().map(to_template_value).collect())
        }
        Value::Object(map) => gtmpl_value::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), to_template_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Values as Helm merges them: maps deeply, anything else replaced.
fn merge(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, overrides) => *base = overrides.clone(),
    }
}

/// Every document the chart's `templates/` render to, with `values.yaml`
/// merged with `overrides`, for release `release` in `namespace`.
pub fn render(
    chart: &Path,
    overrides: &Value,
    release: &str,
    namespace: &str,
) -> Result<Vec<Value>, String> {
    let read =
        |path: &Path| std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()));
    let mut values: Value = serde_norway::from_str(&read(&chart.join("values.yaml"))?)
        .map_err(|e| format!("values.yaml: {e}"))?;
    merge(&mut values, overrides);
    let chart_meta: Value = serde_norway::from_str(&read(&chart.join("Chart.yaml"))?)
        .map_err(|e| format!("Chart.yaml: {e}"))?;
    let context = serde_json::json!({
        "Values": values,
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {"Name": chart_meta["name"], "Version": chart_meta["version"], "AppVersion": chart_meta["appVersion"]},
    });
    let context = gtmpl::Context::from(to_template_value(&context));
    let mut templates: Vec<_> = std::fs::read_dir(chart.join("templates"))
        .map_err(|e| format!("templates: {e}"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    templates.sort();
    let mut documents = Vec::new();
    for path in templates {
        let mut template = gtmpl::Template::default();
        template
            .parse(read(&path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let text = template
            .render(&context)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for document in text.split("\n---") {
            let document = document.trim_start_matches("---");
            if document.trim().is_empty() {
                continue;
            }
            let value: Value = serde_norway::from_str(document)
                .map_err(|e| format!("{} renders invalid YAML: {e}\n{document}", path.display()))?;
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The rendered objects of `kind`.
pub fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

fn rule_allows(rule: &Value, request: &ApiRequest) -> bool {
    let has = |field: &str, wanted: &str| {
        rule[field]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i == wanted || i == "*"))
    };
    has("apiGroups", &request.group)
        && has("resources", &request.resource)
        && has("verbs", &request.verb)
}

/// Whether the rendered RBAC lets service account `account` of `namespace`
/// make `request`.
pub fn allows(documents: &[Value], namespace: &str, account: &str, request: &ApiRequest) -> bool {
    let bound = |binding: &Value| {
        binding["subjects"].as_array().is_some_and(|subjects| {
            subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == namespace
            })
        })
    };
    let rules_of = |kind: &str, name: &Value, role_namespace: Option<&Value>| -> Vec<Value> {
        documents
            .iter()
            .filter(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"] == *name
                    && role_namespace.is_none_or(|ns| d["metadata"]["namespace"] == *ns)
            })
            .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let cluster_wide = of_kind(documents, "ClusterRoleBinding")
        .into_iter()
        .filter(|b| bound(b))
        .flat_map(|b| rules_of("ClusterRole", &b["roleRef"]["name"], None));
    let here = of_kind(documents, "RoleBinding")
        .into_iter()
        .filter(|b| bound(b) && b["metadata"]["namespace"] == request.namespace.as_str())
        .flat_map(|b| {
            let kind = b["roleRef"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let scope = (kind == "Role").then_some(&b["metadata"]["namespace"]);
            rules_of(&kind, &b["roleRef"]["name"], scope)
        });
    cluster_wide
        .chain(here)
        .any(|rule| rule_allows(&rule, request))
}
