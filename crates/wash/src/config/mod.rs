//! wash's configuration: the project file `.wash/config.{yaml,yml,json,toml}`
//! merged over the user file (`~/.config/wash/config.*`, or
//! `--user-config`). `files` reads and writes the formats, `merge` combines
//! them and remembers where each value came from, `validate` checks the
//! result, `example` holds what `wash config init` writes.

pub mod example;
pub mod files;
pub mod keys;
pub mod merge;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

pub use files::Format;

/// File names tried, in order, inside a project's `.wash/` directory and
/// the user's config directory.
pub const CONFIG_FILES: [&str; 4] = ["config.yaml", "config.yml", "config.json", "config.toml"];

/// The whole configuration. Every section is optional; unknown keys are
/// reported as warnings by the loader.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// Version of the file's layout.
    #[serde(
        deserialize_with = "string_or_number",
        serialize_with = "number_if_whole",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub build: BuildConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub new: NewConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub wit: WitConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub workload: WorkloadConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub host: HostConfig,
    #[serde(skip_serializing_if = "is_default")]
    pub dev: DevConfig,
}

/// How to build the project's component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct BuildConfig {
    /// A shell command that builds the component (instead of cargo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Environment for the build command.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Where the built component lands, relative to the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_path: Option<PathBuf>,
}

/// What `wash new` runs in a freshly created project.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct NewConfig {
    /// A shell command run in the new project's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// Where WIT dependencies come from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct WitConfig {
    /// Registries WIT packages are fetched from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<WitRegistry>,
    /// Never fetch; use what is on disk.
    #[serde(skip_serializing_if = "is_default")]
    pub skip_fetch: bool,
    /// The project's WIT directory (default `wit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wit_dir: Option<PathBuf>,
    /// Package name -> source: a local path, or an `https://`, `git+` or
    /// `oci://` location.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
}

/// One WIT registry: where the packages of a namespace (or of every
/// namespace no other entry names) are published and fetched.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct WitRegistry {
    /// The OCI registry, with an optional path prefix: `oci://ghcr.io/acme`
    /// or `https://...` (TLS), `http://...` (plain HTTP, for local
    /// registries).
    pub url: String,
    /// The WIT namespace it serves (`wasmcloud`); none means every namespace
    /// that no other entry names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The repository of a package under the URL, with `{namespace}` and
    /// `{name}` filled in (default `{namespace}/interfaces/{name}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// Settings of the workload `wash dev` runs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct WorkloadConfig {
    /// Values for `wasi:config/store`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Hosts outbound HTTP and sockets may reach (`host`, `*.suffix`,
    /// `host:port`).
    #[serde(
        rename = "allowedHosts",
        alias = "allowed_hosts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_hosts: Vec<String>,
    /// Loopback ports the component may reach; a host name resolving to
    /// loopback (`localhost`) reaches only these.
    #[serde(
        rename = "allowedHostLoopbackPorts",
        alias = "allowed_host_loopback_ports",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_host_loopback_ports: Vec<u16>,
    /// Host names the component may resolve through `wasi:sockets`.
    #[serde(
        rename = "allowedIpNameLookups",
        alias = "allowed_ip_name_lookups",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_ip_name_lookups: Vec<String>,
    /// Environment variables of the component.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// `wasmcloud:secrets` by name: where each value comes from
    /// (`env:VAR` or `file:path`); values are read at start, never logged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// A component plugin: a capability written as a component, loaded by the
/// host (`wash host --host-plugin`, `host.plugins`, `dev.host_plugins`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct PluginEntry {
    /// Its id; it runs as the workload `plugin:<id>`.
    pub id: String,
    /// A component file...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// ...or an OCI image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `sha256:<hex>` the component must have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Restarts after failures before it is marked failed (default 3).
    #[serde(
        rename = "max-restarts",
        alias = "max_restarts",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_restarts: Option<u32>,
    /// Instances that may serve calls at once (default 1). Each has its
    /// own memory, so state every call must see belongs in a backing store
    /// when this is above 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Its own `wasi:config` values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Its own secrets (`wasmcloud:secrets`): name to `env:VAR` or
    /// `file:PATH`, as a workload's.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Hosts its outbound HTTP and sockets may reach.
    #[serde(
        rename = "allowedHosts",
        alias = "allowed_hosts",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_hosts: Vec<String>,
    /// Its memory limit in MiB (default 256).
    #[serde(
        rename = "memory-limit-mb",
        alias = "memory_limit_mb",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_limit_mb: Option<u32>,
    /// How long one call into it may take, in milliseconds (default: the
    /// host's request deadline).
    #[serde(
        rename = "timeout-ms",
        alias = "timeout_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_ms: Option<u64>,
}

impl PluginEntry {
    /// Parses `id=NAME,file=PATH` or `id=NAME,image=REF[,digest=sha256:...]`,
    /// with optional `max-restarts=N`, `instances=N`, `memory-limit-mb=N`, `timeout-ms=N`,
    /// `config.KEY=VALUE`, `secret.NAME=env:VAR|file:PATH` and
    /// `allow-host=HOST` (all repeatable).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let number = |key: &str, value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| format!("{key} `{value}` in `{raw}` is not a number"))
        };
        let mut entry = PluginEntry::default();
        for part in raw.split(',').filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("`{part}` in `{raw}` is not KEY=VALUE"));
            };
            match key.trim() {
                "id" => entry.id = value.to_string(),
                "file" => entry.file = Some(value.into()),
                "image" => entry.image = Some(value.to_string()),
                "digest" => entry.digest = Some(value.to_string()),
                "max-restarts" | "max_restarts" => {
                    entry.max_restarts = Some(number(key, value)?.min(u32::MAX as u64) as u32)
                }
                "instances" => {
                    entry.instances = Some(number(key, value)?.clamp(1, u32::MAX as u64) as u32)
                }
                "memory-limit-mb" | "memory_limit_mb" => {
                    entry.memory_limit_mb = Some(number(key, value)?.min(u32::MAX as u64) as u32)
                }
                "timeout-ms" | "timeout_ms" => entry.timeout_ms = Some(number(key, value)?),
                "allow-host" | "allowed-host" => entry.allowed_hosts.push(value.to_string()),
                other => match (other.strip_prefix("config."), other.strip_prefix("secret.")) {
                    (Some(name), _) if !name.is_empty() => {
                        entry.config.insert(name.to_string(), value.to_string());
                    }
                    (_, Some(name)) if !name.is_empty() => {
                        entry.secrets.insert(name.to_string(), value.to_string());
                    }
                    _ => {
                        return Err(format!(
                            "unknown key `{other}` in `{raw}` (expected id, file, image, \
                             digest, max-restarts, instances, memory-limit-mb, timeout-ms, \
                             allow-host, config.KEY, secret.NAME)"
                        ));
                    }
                },
            }
        }
        entry.check().map(|()| entry)
    }

    /// An id, and exactly one of file and image.
    pub fn check(&self) -> Result<(), String> {
        if self.id.is_empty() {
            return Err("a host plugin needs an id (`id=NAME`)".into());
        }
        match (&self.file, &self.image) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(format!(
                "host plugin `{}` needs one of `file=PATH` or `image=REF`",
                self.id
            )),
        }
    }
}

/// Defaults for `wash host` (its flags win).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct HostConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_nats_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_nats_url: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci_cache_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_insecure_registries: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_path: Option<PathBuf>,
    /// Per-host certificates by SNI: `<dir>/<host>/tls.crt` and `tls.key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_sni_dir: Option<PathBuf>,
    /// Component plugins the host loads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginEntry>,
}

/// `wash dev` settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct DevConfig {
    /// Address to serve on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Extra prebuilt components served beside the project's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<DevComponent>,
    /// Host directories mounted into the component.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<DevVolume>,
    /// Component plugins the dev host loads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_plugins: Vec<PluginEntry>,
    /// Serve HTTPS with this certificate (PEM)...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_path: Option<PathBuf>,
    /// ...and this key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_path: Option<PathBuf>,
    /// Extra CA (PEM) trusted for the component's outbound HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_path: Option<PathBuf>,
    /// Key-value in Redis at this URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasi_keyvalue_redis_url: Option<String>,
    /// Key-value in NATS JetStream KV at this URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasi_keyvalue_nats_url: Option<String>,
    /// Key-value in files under this directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasi_keyvalue_path: Option<PathBuf>,
    /// Blobs in files under this directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasi_blobstore_path: Option<PathBuf>,
    /// Messaging (and NATS defaults) at this URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_nats_url: Option<String>,
    /// A PostgreSQL database for components that use one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_url: Option<String>,
    /// Give components `wasi:webgpu`.
    #[serde(skip_serializing_if = "is_default")]
    pub wasi_webgpu: bool,
}

/// A prebuilt component `wash dev` serves beside the project's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct DevComponent {
    pub name: String,
    /// A `.wasm` file, relative to the project.
    pub path: PathBuf,
}

/// A host directory mounted into components.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct DevVolume {
    pub host_path: PathBuf,
    pub guest_path: String,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// `version: 1` and `version: "1"` mean the same.
fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(
        Option::<Version>::deserialize(deserializer)?.map(|v| match v {
            Version::Text(text) => text,
            Version::Number(number) => number.to_string(),
        }),
    )
}

/// `1` is written as the number it is, not the string `"1"`; text that only
/// parses as a number (`"00"`, `"+1"`) stays text, so it reads back the same.
fn number_if_whole<S: serde::Serializer>(
    version: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match version.as_deref().map(|v| (v, v.parse::<u64>())) {
        Some((text, Ok(number))) if number.to_string() == text => serializer.serialize_u64(number),
        Some((text, _)) => serializer.serialize_str(text),
        None => serializer.serialize_none(),
    }
}

/// Where the configuration files are.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The project directory (holds `.wash/`).
    pub project: PathBuf,
    /// `--user-config`, if given: then it must exist.
    pub user_override: Option<PathBuf>,
    /// A file to use instead of the project's (`wash config validate --file`).
    pub project_override: Option<PathBuf>,
}

impl Locations {
    pub fn new(project: impl Into<PathBuf>, user_override: Option<PathBuf>) -> Self {
        Self {
            project: project.into(),
            user_override,
            project_override: None,
        }
    }

    /// The user file: `--user-config`, else the first of `config.*` in the
    /// user's config directory (`$XDG_CONFIG_HOME/wash`, `~/.config/wash`).
    pub fn user_file(&self) -> Option<PathBuf> {
        if let Some(path) = &self.user_override {
            return Some(path.clone());
        }
        let dir = user_config_dir()?;
        CONFIG_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    }

    /// The project file: the override, else the first of `.wash/config.*`.
    pub fn project_file(&self) -> Option<PathBuf> {
        if let Some(path) = &self.project_override {
            return Some(path.clone());
        }
        project_files(&self.project).into_iter().next()
    }
}

/// The user's wash config directory.
pub fn user_config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("wash"))
}

/// Every `.wash/config.*` file of the project, in the order they are tried.
pub fn project_files(project: &Path) -> Vec<PathBuf> {
    CONFIG_FILES
        .iter()
        .map(|name| project.join(".wash").join(name))
        .filter(|path| path.is_file())
        .collect()
}

/// A problem with a configuration file, located as precisely as known.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: Option<PathBuf>,
    /// Dotted key path (`dev.address`, `wit.registries.0.url`).
    pub key: Option<String>,
    /// 1-based line and column, for syntax errors.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some((line, column)) = self.position {
                write!(f, ":{line}:{column}")?;
            }
            write!(f, ": ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// The merged configuration and what was learnt loading it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Config,
    /// The files read, user file first.
    pub files: Vec<PathBuf>,
    /// Leaf key path -> the file its value came from.
    pub origins: BTreeMap<String, PathBuf>,
    /// The merged document, as read (for `wash config show`).
    pub document: serde_json::Value,
    /// Unknown keys and other things worth a look; loading went on.
    pub warnings: Vec<String>,
    /// Files that cannot be read or parsed, and values of the wrong type
    /// (left at their defaults in `config`), each with file and key.
    pub problems: Vec<Problem>,
    /// The project directory relative paths are resolved against.
    pub project: PathBuf,
}

impl Loaded {
    /// The file `key` came from: the file of its value, of a value under
    /// it, or (for a key that is missing) of its section.
    pub fn origin_of(&self, key: &str) -> Option<&PathBuf> {
        let mut key = key;
        loop {
            if let Some(file) = self.origins.get(key) {
                return Some(file);
            }
            let prefix = format!("{key}.");
            if let Some((_, file)) = self.origins.iter().find(|(k, _)| k.starts_with(&prefix)) {
                return Some(file);
            }
            key = key.rsplit_once('.')?.0;
        }
    }

    /// A path from the config, relative to the project directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.project.join(path)
        }
    }
}

/// Reads and merges the configuration. Every problem found is reported at
/// once, not only the first: a file that cannot be parsed is left out, a
/// value of the wrong type is left at its default, and the rest is loaded.
pub fn load_all(locations: &Locations) -> Loaded {
    let mut layers = Vec::new();
    if let Some(user) = locations.user_file() {
        layers.push(user);
    }
    if let Some(project) = locations.project_file() {
        layers.push(project);
    }
    let mut loaded = Loaded {
        project: locations.project.clone(),
        ..Default::default()
    };
    let others = project_files(&locations.project);
    if locations.project_override.is_none() && others.len() > 1 {
        loaded.warnings.push(format!(
            "{} is used; {} ignored (keep one config file in .wash/)",
            others[0].display(),
            others[1..]
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut merged = merge::Merged::default();
    for file in layers {
        let document = match files::read_document(&file) {
            Ok(document) => document,
            Err(problem) => {
                loaded.problems.push(problem);
                continue;
            }
        };
        let typed = files::typed(&document);
        for key in typed.unknown {
            let hint = keys::did_you_mean(&key)
                .map(|known| format!("; did you mean `{known}`?"))
                .unwrap_or_default();
            loaded.warnings.push(format!(
                "unknown key `{key}` in {} (ignored{hint})",
                file.display()
            ));
        }
        for (key, message) in typed.errors {
            loaded.problems.push(Problem {
                file: Some(file.clone()),
                key,
                position: None,
                message,
            });
        }
        merged.layer(typed.document, &file);
        loaded.files.push(file);
    }
    loaded.document = merged.document;
    loaded.origins = merged.origins;
    let typed = files::typed(&loaded.document);
    // Each layer was typed alone and its bad values taken out; the merge of
    // such layers types too, but say so rather than lose it if that breaks.
    for (key, message) in typed.errors {
        loaded.problems.push(Problem {
            file: None,
            key,
            position: None,
            message: format!("merged configuration: {message}"),
        });
    }
    loaded.config = typed.config;
    loaded
}

/// [`load_all`] for commands that just need the configuration: warnings go
/// to stderr, problems become one error listing them all.
pub fn load(locations: &Locations) -> anyhow::Result<Loaded> {
    let loaded = load_all(locations);
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    if loaded.problems.is_empty() {
        return Ok(loaded);
    }
    Err(anyhow::anyhow!(
        "invalid configuration (`wash config validate` checks it all):\n  {}",
        loaded
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    ))
}

#[cfg(test)]
mod plugin_entry_tests {
    use super::PluginEntry;

    #[test]
    fn host_plugin_specs_parse_and_bad_ones_say_what_is_wrong() {
        let entry = PluginEntry::parse(
            "id=kv,image=reg/kv:1,digest=sha256:ab,max-restarts=2,instances=4,config.mode=fast,\
             secret.token=env:KV_TOKEN,\
             allow-host=a.example.com,allow-host=b.example.com,memory-limit-mb=64,timeout-ms=500",
        )
        .unwrap();
        assert_eq!(entry.id, "kv");
        assert_eq!(entry.image.as_deref(), Some("reg/kv:1"));
        assert_eq!(entry.digest.as_deref(), Some("sha256:ab"));
        assert_eq!(entry.max_restarts, Some(2));
        assert_eq!(entry.instances, Some(4));
        assert_eq!(entry.config.get("mode").map(String::as_str), Some("fast"));
        assert_eq!(
            entry.secrets.get("token").map(String::as_str),
            Some("env:KV_TOKEN")
        );
        assert_eq!(entry.allowed_hosts, ["a.example.com", "b.example.com"]);
        assert_eq!(
            (entry.memory_limit_mb, entry.timeout_ms),
            (Some(64), Some(500))
        );

        for (bad, says) in [
            ("file=a.wasm", "needs an id"),
            ("id=x", "one of `file=PATH` or `image=REF`"),
            ("id=x,file=a,image=b", "one of `file=PATH` or `image=REF`"),
            ("id=x,file=a,path=b", "unknown key `path`"),
            ("id=x,file=a,max-restarts=many", "is not a number"),
            ("id=x,file", "is not KEY=VALUE"),
        ] {
            let err = PluginEntry::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
