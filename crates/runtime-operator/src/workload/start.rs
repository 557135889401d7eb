//! A Workload object as the start request its host receives: ConfigMaps and
//! Secrets named by `configFrom`/`secretFrom` read into plain maps, pull
//! secrets into credentials. Every reference that cannot be read is an
//! error naming it.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};
use runtime_proto::v2 as proto;

use crate::crd::{
    ConfigLayer, HostInterface, LocalResources, ObjectRef, Workload, WorkloadComponent,
    WorkloadService, WorkloadVolume,
};

/// The Secret type image pull secrets must have.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";

/// A reference that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The ConfigMap does not exist.
    #[error("ConfigMap `{name}` not found in namespace `{namespace}`")]
    MissingConfigMap {
        /// Its name.
        name: String,
        /// The workload's namespace.
        namespace: String,
    },
    /// The Secret does not exist.
    #[error("Secret `{name}` not found in namespace `{namespace}`")]
    MissingSecret {
        /// Its name.
        name: String,
        /// The workload's namespace.
        namespace: String,
    },
    /// A Secret value is not text.
    #[error("key `{key}` of Secret `{name}` is not UTF-8 text")]
    NotText {
        /// The Secret.
        name: String,
        /// The key.
        key: String,
    },
    /// An image pull secret of the wrong type.
    #[error("image pull secret `{name}` has type `{found}`; it must be `{DOCKER_CONFIG_JSON}`")]
    PullSecretType {
        /// The Secret.
        name: String,
        /// Its type.
        found: String,
    },
    /// An image pull secret without usable credentials.
    #[error("image pull secret `{name}`: {reason}")]
    PullSecretUnusable {
        /// The Secret.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The API server failed.
    #[error("cannot read {kind} `{name}`")]
    Api {
        /// ConfigMap or Secret.
        kind: &'static str,
        /// Its name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
}

/// Reads ConfigMaps and Secrets of one namespace.
pub struct Resolver {
    namespace: String,
    config_maps: Api<ConfigMap>,
    secrets: Api<Secret>,
}

impl Resolver {
    /// For objects in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            namespace: namespace.into(),
            config_maps: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client, namespace),
        }
    }

    async fn config_map(&self, name: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        let map = self
            .config_maps
            .get_opt(name)
            .await
            .map_err(|source| ConfigError::Api {
                kind: "ConfigMap",
                name: name.into(),
                source,
            })?
            .ok_or_else(|| ConfigError::MissingConfigMap {
                name: name.into(),
                namespace: self.namespace.clone(),
            })?;
        Ok(map.data.unwrap_or_default())
    }

    async fn secret(&self, name: &str) -> Result<Secret, ConfigError> {
        self.secrets
            .get_opt(name)
            .await
            .map_err(|source| ConfigError::Api {
                kind: "Secret",
                name: name.into(),
                source,
            })?
            .ok_or_else(|| ConfigError::MissingSecret {
                name: name.into(),
                namespace: self.namespace.clone(),
            })
    }

    async fn secret_text(&self, name: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        let secret = self.secret(name).await?;
        let mut values = BTreeMap::new();
        for (key, value) in secret.string_data.unwrap_or_default() {
            values.insert(key, value);
        }
        for (key, bytes) in secret.data.unwrap_or_default() {
            let text = String::from_utf8(bytes.0).map_err(|_| ConfigError::NotText {
                name: name.into(),
                key: key.clone(),
            })?;
            values.insert(key, text);
        }
        Ok(values)
    }

    /// `configFrom`, then `secretFrom`, then `config`: later wins.
    pub async fn layer(
        &self,
        layer: &ConfigLayer,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut values = BTreeMap::new();
        for ObjectRef { name } in &layer.config_from {
            values.extend(self.config_map(name).await?);
        }
        for ObjectRef { name } in &layer.secret_from {
            values.extend(self.secret_text(name).await?);
        }
        values.extend(layer.config.clone());
        Ok(values)
    }

    /// Credentials for `image` from a `kubernetes.io/dockerconfigjson`
    /// Secret: the entry for the image's registry, or the only entry.
    pub async fn pull_secret(
        &self,
        name: &str,
        image: &str,
    ) -> Result<proto::ImagePullSecret, ConfigError> {
        let secret = self.secret(name).await?;
        let found = secret.type_.clone().unwrap_or_default();
        if found != DOCKER_CONFIG_JSON {
            return Err(ConfigError::PullSecretType {
                name: name.into(),
                found,
            });
        }
        let unusable = |reason: String| ConfigError::PullSecretUnusable {
            name: name.into(),
            reason,
        };
        let raw = secret
            .data
            .as_ref()
            .and_then(|d| d.get(".dockerconfigjson"))
            .map(|b| b.0.clone())
            .ok_or_else(|| unusable("no `.dockerconfigjson` key".into()))?;
        let config: serde_json::Value = serde_json::from_slice(&raw)
            .map_err(|e| unusable(format!("`.dockerconfigjson` is not JSON: {e}")))?;
        credentials_for(&config, image).map_err(unusable)
    }
}

/// The registry part of an image reference (`host[:port]`), as Docker reads
/// it: the first path segment when it looks like a host.
fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

/// A `.dockerconfigjson` key (`https://host/v1/`, `host`) as a registry.
fn registry_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    if host == "index.docker.io" {
        "docker.io"
    } else {
        host
    }
}

fn credentials_for(
    config: &serde_json::Value,
    image: &str,
) -> Result<proto::ImagePullSecret, String> {
    let auths = config
        .get("auths")
        .and_then(|a| a.as_object())
        .ok_or("no `auths` in `.dockerconfigjson`")?;
    let registry = registry_of(image);
    let entry = auths
        .iter()
        .find(|(key, _)| registry_key(key) == registry)
        .or_else(|| (auths.len() == 1).then(|| auths.iter().next()).flatten())
        .map(|(_, entry)| entry)
        .ok_or_else(|| format!("no credentials for registry `{registry}`"))?;
    let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).map(str::to_string);
    if let (Some(username), Some(password)) = (field("username"), field("password")) {
        return Ok(proto::ImagePullSecret { username, password });
    }
    let auth = field("auth").ok_or_else(|| {
        format!("the entry for `{registry}` has neither username/password nor auth")
    })?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| format!("the `auth` of `{registry}` is not base64 of user:password"))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| format!("the `auth` of `{registry}` is not user:password"))?;
    Ok(proto::ImagePullSecret {
        username: username.into(),
        password: password.into(),
    })
}

fn pull_policy(policy: Option<&str>) -> i32 {
    let policy = match policy {
        Some("Always") => proto::ImagePullPolicy::Always,
        Some("IfNotPresent") => proto::ImagePullPolicy::IfNotPresent,
        Some("Never") => proto::ImagePullPolicy::Never,
        _ => proto::ImagePullPolicy::Unspecified,
    };
    policy as i32
}

impl Resolver {
    async fn local_resources(
        &self,
        resources: Option<&LocalResources>,
    ) -> Result<Option<proto::LocalResources>, ConfigError> {
        let Some(resources) = resources else {
            return Ok(None);
        };
        let environment = match &resources.environment {
            Some(layer) => self.layer(layer).await?,
            None => BTreeMap::new(),
        };
        Ok(Some(proto::LocalResources {
            config: resources.config.clone(),
            environment,
            volume_mounts: resources
                .volume_mounts
                .iter()
                .map(|m| proto::VolumeMount {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: m.read_only,
                })
                .collect(),
            allowed_hosts: resources.allowed_hosts.clone(),
            allowed_ip_name_lookups: resources.allowed_ip_name_lookups.clone(),
            allowed_host_loopback_ports: resources.allowed_host_loopback_ports.clone(),
            ..Default::default()
        }))
    }

    async fn component(
        &self,
        component: &WorkloadComponent,
    ) -> Result<proto::Component, ConfigError> {
        let image_pull_secret = match &component.image_pull_secret {
            Some(secret) => Some(self.pull_secret(&secret.name, &component.image).await?),
            None => None,
        };
        Ok(proto::Component {
            image: component.image.clone(),
            name: component.name.clone(),
            local_resources: self
                .local_resources(component.local_resources.as_ref())
                .await?,
            pool_size: component.pool_size.unwrap_or(0),
            max_invocations: component.max_invocations.unwrap_or(0),
            max_concurrency: component.max_concurrency.unwrap_or(0),
            image_pull_secret,
            image_pull_policy: pull_policy(component.image_pull_policy.as_deref()),
        })
    }

    async fn service(&self, service: &WorkloadService) -> Result<proto::Service, ConfigError> {
        let image_pull_secret = match &service.image_pull_secret {
            Some(secret) => Some(self.pull_secret(&secret.name, &service.image).await?),
            None => None,
        };
        Ok(proto::Service {
            image: service.image.clone(),
            local_resources: self
                .local_resources(service.local_resources.as_ref())
                .await?,
            max_restarts: service
                .max_restarts
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            image_pull_secret,
            image_pull_policy: pull_policy(service.image_pull_policy.as_deref()),
        })
    }

    async fn host_interface(
        &self,
        interface: &HostInterface,
    ) -> Result<proto::WitInterface, ConfigError> {
        Ok(proto::WitInterface {
            namespace: interface.namespace.clone(),
            package: interface.package.clone(),
            version: interface.version.clone().unwrap_or_default(),
            interfaces: interface.interfaces.clone(),
            config: self.layer(&interface.config).await?,
            name: interface.name.clone().unwrap_or_default(),
        })
    }

    /// The workload as its start request carries it.
    pub async fn workload(&self, workload: &Workload) -> Result<proto::Workload, ConfigError> {
        let spec = &workload.spec;
        let mut components = Vec::with_capacity(spec.components.len());
        for component in &spec.components {
            components.push(self.component(component).await?);
        }
        let mut host_interfaces = Vec::with_capacity(spec.host_interfaces.len());
        for interface in &spec.host_interfaces {
            host_interfaces.push(self.host_interface(interface).await?);
        }
        let service = match &spec.service {
            Some(service) => Some(self.service(service).await?),
            None => None,
        };
        if let Some(name) = spec
            .kubernetes
            .as_ref()
            .and_then(|k| k.service.as_ref())
            .map(|s| &s.name)
        {
            add_service_aliases(&mut host_interfaces, name, &self.namespace);
        }
        Ok(proto::Workload {
            namespace: self.namespace.clone(),
            name: workload.name_any(),
            annotations: workload.annotations().clone(),
            service,
            wit_world: Some(proto::WitWorld {
                components,
                host_interfaces,
            }),
            volumes: spec.volumes.iter().map(volume).collect(),
        })
    }
}

fn volume(volume: &WorkloadVolume) -> proto::Volume {
    let volume_type = match (&volume.host_path, &volume.ephemeral) {
        (Some(path), _) => Some(proto::volume::VolumeType::HostPath(proto::HostPathVolume {
            local_path: path.path.clone(),
        })),
        (None, Some(_)) => Some(proto::volume::VolumeType::EmptyDir(
            proto::EmptyDirVolume {},
        )),
        (None, None) => None,
    };
    proto::Volume {
        name: volume.name.clone(),
        volume_type,
    }
}

/// Traffic for Service `<name>` reaches the workload through its host's
/// router under `<name>.<ns>` and `<name>.<ns>.svc`, as the reference.
fn add_service_aliases(interfaces: &mut [proto::WitInterface], name: &str, namespace: &str) {
    let aliases = format!("{name}.{namespace},{name}.{namespace}.svc");
    for interface in interfaces.iter_mut().filter(|i| {
        i.namespace == "wasi"
            && i.package == "http"
            && i.interfaces.iter().any(|n| n == "incoming-handler")
    }) {
        let merged = match interface.config.get("host-aliases") {
            Some(existing) if !existing.is_empty() => format!("{existing},{aliases}"),
            _ => aliases.clone(),
        };
        interface.config.insert("host-aliases".into(), merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pull_credentials_come_from_the_image_registry_entry() {
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cret");
        let config = json!({"auths": {
            "https://index.docker.io/v1/": {"username": "hub", "password": "x"},
            "registry.example.com:5000": {"auth": auth},
        }});
        let creds = credentials_for(&config, "registry.example.com:5000/team/hello:1.0").unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("robot", "s3cret")
        );
        let hub = credentials_for(&config, "library/hello:1").unwrap();
        assert_eq!(hub.username, "hub");
        let missing = credentials_for(&config, "ghcr.io/a/b:1").unwrap_err();
        assert!(missing.contains("ghcr.io"), "{missing}");
    }

    #[test]
    fn service_traffic_is_routed_by_alias() {
        let mut interfaces = vec![proto::WitInterface {
            namespace: "wasi".into(),
            package: "http".into(),
            interfaces: vec!["incoming-handler".into()],
            config: BTreeMap::from([("host".to_string(), "hello.test".to_string())]),
            ..Default::default()
        }];
        add_service_aliases(&mut interfaces, "hello", "apps");
        assert_eq!(
            interfaces[0].config["host-aliases"],
            "hello.apps,hello.apps.svc"
        );
    }
}
