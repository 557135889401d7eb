//! What `wash dev` and `wash host` set up alike: the engine with its
//! compile cache, outbound HTTP trusting the configured CAs, the capability
//! plugins with their default backends (made from config in one place), and
//! a host whose start-up errors say what to do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use wash_runtime::egress::DefaultOutgoingHandler;
use wash_runtime::engine::EngineBuilder;
use wash_runtime::host::http::{HttpServerBuilder, Router, TlsSettings};
use wash_runtime::host::{Host, HostBuilder, HostError};
use wash_runtime::oci::OciClient;
use wash_runtime::plugin::blobstore::{
    Blobstore, BlobstoreBackend, FilesystemBlobstore, InMemoryBlobstore, NatsBlobstore,
};
use wash_runtime::plugin::component::{ComponentPluginSource, ComponentPluginSpec};
use wash_runtime::plugin::config::Config;
use wash_runtime::plugin::keyvalue::{
    FilesystemKeyValue, InMemoryKeyValue, KeyValue, KeyValueBackend, NatsKeyValue, RedisKeyValue,
};
use wash_runtime::plugin::logging::Logging;
use wash_runtime::plugin::messaging::{
    InMemoryMessaging, Messaging, MessagingBackend, NatsMessaging,
};
use wash_runtime::plugin::secrets::Secrets;
use wash_runtime::plugin::{Backends, Plugin};
use wash_runtime::tls::TrustRoots;

use crate::config::DevConfig;
use crate::paths;

/// The backends that serve workloads which do not choose their own.
pub struct DefaultBackends {
    keyvalue: Arc<dyn KeyValueBackend>,
    blobstore: Arc<dyn BlobstoreBackend>,
    messaging: Arc<dyn MessagingBackend>,
}

impl DefaultBackends {
    /// Everything in process: nothing to run beside the host.
    pub fn in_memory() -> Self {
        Self {
            keyvalue: Arc::new(InMemoryKeyValue::default()),
            blobstore: Arc::new(InMemoryBlobstore::default()),
            messaging: Arc::new(InMemoryMessaging::default()),
        }
    }

    /// Key-value, blobs and messaging on one NATS connection.
    pub fn on_nats(url: &str, client: async_nats::Client) -> Self {
        Self {
            keyvalue: Arc::new(NatsKeyValue::with_client(url, client.clone())),
            blobstore: Arc::new(NatsBlobstore::with_client(url, client.clone())),
            messaging: Arc::new(NatsMessaging::with_client(url, client)),
        }
    }

    /// As the `dev` config section says: in process unless told otherwise.
    pub async fn from_dev_config(dev: &DevConfig) -> Result<Self> {
        let keyvalue: Arc<dyn KeyValueBackend> = match (
            &dev.wasi_keyvalue_redis_url,
            &dev.wasi_keyvalue_nats_url,
            &dev.wasi_keyvalue_path,
        ) {
            (Some(url), None, None) => Arc::new(RedisKeyValue::connect(url).await?),
            (None, Some(url), None) => Arc::new(NatsKeyValue::connect(url).await?),
            (None, None, Some(path)) => {
                Arc::new(FilesystemKeyValue::new(path).context("dev.wasi_keyvalue_path")?)
            }
            (None, None, None) => Arc::new(InMemoryKeyValue::default()),
            _ => anyhow::bail!(
                "set at most one of dev.wasi_keyvalue_redis_url, dev.wasi_keyvalue_nats_url and \
                 dev.wasi_keyvalue_path"
            ),
        };
        let blobstore: Arc<dyn BlobstoreBackend> = match &dev.wasi_blobstore_path {
            Some(path) => {
                Arc::new(FilesystemBlobstore::new(path).context("dev.wasi_blobstore_path")?)
            }
            None => Arc::new(InMemoryBlobstore::default()),
        };
        let messaging: Arc<dyn MessagingBackend> = match &dev.data_nats_url {
            Some(url) => Arc::new(
                NatsMessaging::connect(url)
                    .await
                    .context("dev.data_nats_url")?,
            ),
            None => Arc::new(InMemoryMessaging::default()),
        };
        Ok(Self {
            keyvalue,
            blobstore,
            messaging,
        })
    }

    /// One line naming each backend.
    pub fn describe(&self) -> String {
        format!(
            "Key-value: {}; blobs: {}; messaging: {}",
            self.keyvalue.describe(),
            self.blobstore.describe(),
            self.messaging.describe()
        )
    }

    /// The built-in plugins on these backends; backends that workloads
    /// configure themselves share one cache.
    pub fn plugins(self) -> Vec<Plugin> {
        let backends = Backends::new();
        vec![
            Plugin::new(Config),
            Plugin::new(Logging),
            Plugin::new(KeyValue::new(self.keyvalue).with_backends(backends.clone())),
            Plugin::new(Blobstore::new(self.blobstore).with_backends(backends.clone())),
            Plugin::new(Messaging::new(self.messaging).with_backends(backends)),
            Plugin::new(Secrets::new()),
        ]
    }
}

/// How one command's host is set up.
pub struct HostSetup {
    /// Where HTTP is served.
    pub address: SocketAddr,
    /// What `--flag` (or config key) picks another address, for the error.
    pub address_flag: &'static str,
    /// Routes requests to workloads.
    pub router: Arc<dyn Router>,
    /// Extra CAs that outbound HTTPS and guests' `wasi:tls` connections
    /// trust, besides the web's roots.
    pub ca_paths: Vec<PathBuf>,
    /// Capability plugins.
    pub plugins: Vec<Plugin>,
    /// Pulls images, when the host runs components from registries.
    pub oci: Option<OciClient>,
    /// The default request deadline, if not the runtime's.
    pub request_timeout: Option<Duration>,
    /// HTTPS instead of plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Component plugins.
    pub component_plugins: Vec<crate::config::PluginEntry>,
}

/// What the runtime loads for a plugin entry.
fn component_plugin(entry: &crate::config::PluginEntry) -> Result<ComponentPluginSpec> {
    entry.check().map_err(anyhow::Error::msg)?;
    let source = match (&entry.file, &entry.image) {
        (Some(file), _) => ComponentPluginSource::File(file.clone()),
        (None, Some(image)) => ComponentPluginSource::Image(image.clone()),
        (None, None) => anyhow::bail!("host plugin `{}` has no file or image", entry.id),
    };
    let mut spec = ComponentPluginSpec::new(&entry.id, source);
    spec.digest = entry.digest.clone();
    if let Some(max) = entry.max_restarts {
        spec.max_restarts = max;
    }
    if let Some(instances) = entry.instances {
        spec.instances = instances;
    }
    if !entry.secrets.is_empty() {
        spec.host_interfaces
            .push(wash_runtime::types::WitInterface {
                namespace: "wasmcloud".into(),
                package: "secrets".into(),
                config: entry.secrets.clone(),
                ..Default::default()
            });
    }
    let resources = &mut spec.local_resources;
    resources.config = entry.config.clone();
    resources.allowed_hosts = entry.allowed_hosts.clone();
    resources.memory_limit_mb = entry
        .memory_limit_mb
        .map_or(0, |m| m.min(i32::MAX as u32) as i32);
    resources.request_timeout_ms = entry.timeout_ms.unwrap_or(0);
    Ok(spec)
}

/// Builds and starts the host.
pub async fn start(setup: HostSetup) -> Result<Host> {
    let trust = setup
        .ca_paths
        .iter()
        .fold(TrustRoots::webpki(), |roots, path| roots.with_ca_file(path));
    let engine = EngineBuilder::new().with_compile_cache(paths::compile_cache_dir());
    // Guests' own TLS (wasi:tls) trusts what outbound HTTPS trusts.
    #[cfg(feature = "wasi-tls")]
    let engine = engine.with_tls_provider(Arc::new(
        wash_runtime::tls::wasi::RustlsTlsProvider::builder()
            .trust(trust.clone())
            .build()
            .context("cannot set up wasi:tls (check --http-client-ca-path)")?,
    ));
    let engine = engine
        .build()
        .context("cannot set up the WebAssembly engine")?;
    let outgoing = DefaultOutgoingHandler::builder()
        .trust(trust)
        .build()
        .context("cannot set up outbound HTTP (check --http-client-ca-path)")?;
    let mut http = HttpServerBuilder::new(setup.address)
        .router(setup.router)
        .outgoing_handler(Arc::new(outgoing));
    if let Some(tls) = setup.tls {
        http = http.tls(tls);
    }
    let mut builder = HostBuilder::new().with_engine(engine).with_http(http);
    if let Some(oci) = setup.oci {
        builder = builder.with_oci(oci);
    }
    if let Some(timeout) = setup.request_timeout {
        builder = builder.with_request_timeout(timeout);
    }
    for plugin in setup.plugins {
        builder = builder.with_plugin(plugin)?;
    }
    for entry in &setup.component_plugins {
        builder = builder.with_component_plugin(component_plugin(entry)?)?;
    }
    builder.start().await.map_err(|e| match e {
        HostError::Bind { addr, source } => anyhow::anyhow!(
            "cannot listen for HTTP on {addr}: {source} (is another wash running there? pick \
             another address with {})",
            setup.address_flag
        ),
        other => other.into(),
    })
}
