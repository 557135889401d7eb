//! Workloads for tests, built in a line or two.

use bytes::Bytes;
use wash_runtime::types::{Component, WitInterface, Workload};

/// A host interface entry with config pairs.
pub fn interface(namespace: &str, package: &str, config: &[(&str, &str)]) -> WitInterface {
    WitInterface {
        namespace: namespace.into(),
        package: package.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// A one-component HTTP workload with the given `wasi:http` config (for
/// example `[("host", "hello.test")]`), in namespace `test`.
pub fn http_workload(name: &str, bytes: Bytes, http_config: &[(&str, &str)]) -> Workload {
    WorkloadBuilder::new(name)
        .component(name, bytes)
        .http(http_config)
        .build()
}

/// Builds a [`Workload`] step by step.
///
/// ```
/// use test_support::WorkloadBuilder;
///
/// let workload = WorkloadBuilder::new("shop")
///     .component("web", bytes::Bytes::from_static(b"\0asm"))
///     .http(&[("host", "shop.test")])
///     .interface("wasi", "keyvalue", &[("backend", "memory")])
///     .build();
/// assert_eq!(workload.components[0].name, "web");
/// assert_eq!(workload.host_interfaces.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct WorkloadBuilder {
    workload: Workload,
}

impl WorkloadBuilder {
    /// An empty workload `name` in namespace `test`.
    pub fn new(name: &str) -> Self {
        Self {
            workload: Workload {
                namespace: "test".into(),
                name: name.into(),
                ..Default::default()
            },
        }
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.workload.namespace = namespace.into();
        self
    }

    /// Adds a component from its bytes.
    pub fn component(mut self, name: &str, bytes: Bytes) -> Self {
        self.workload.components.push(Component {
            name: name.into(),
            bytes: Some(bytes),
            ..Default::default()
        });
        self
    }

    /// Serves HTTP with this `wasi:http` config.
    pub fn http(mut self, config: &[(&str, &str)]) -> Self {
        let mut http = interface("wasi", "http", config);
        http.interfaces = vec!["incoming-handler".into()];
        self.workload.host_interfaces.push(http);
        self
    }

    /// Adds a host interface entry.
    pub fn interface(mut self, namespace: &str, package: &str, config: &[(&str, &str)]) -> Self {
        self.workload
            .host_interfaces
            .push(interface(namespace, package, config));
        self
    }

    /// The workload.
    pub fn build(self) -> Workload {
        self.workload
    }
}
