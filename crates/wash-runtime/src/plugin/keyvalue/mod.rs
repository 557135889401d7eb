//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch) over interchangeable
//! backends: in-memory, filesystem, NATS JetStream KV and Redis.
//!
//! A workload picks backends with `wasi:keyvalue` host interface entries:
//! `backend` (`memory`, `filesystem`, `nats`, `redis`), `url` (NATS and
//! Redis), `path` (filesystem) and optionally `bucket`. An entry with a
//! `name` is a named instance: the guest's `open(name)` reaches it, so two
//! names can go to two backends. Without entries the plugin's default
//! backend serves every bucket.

mod filesystem;
mod memory;
mod nats;
mod redis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use wasmtime::component::Resource;

pub use self::filesystem::FilesystemKeyValue;
pub use self::memory::InMemoryKeyValue;
pub use self::nats::NatsKeyValue;
pub use self::redis::RedisKeyValue;
use super::names::{self, NameOf};
use super::wit::keyvalue::store::{Error as WitError, KeyResponse};
use super::wit::keyvalue::{atomics, batch, store};
use super::wit::{PluginView, Plugins};
use super::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, StoreState, WorkloadBind,
    check_keys,
};
use crate::types::WitInterface;

const ID: &str = "wasi-keyvalue";
/// Keys returned per `list-keys` page.
pub(crate) const PAGE: usize = 1000;

/// What a backend reports; guests see it as `wasi:keyvalue/store.error`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The bucket does not exist and cannot be created.
    #[error("no such store")]
    NoSuchStore,
    /// The backend refused the operation.
    #[error("access denied")]
    AccessDenied,
    /// Anything else, e.g. the backend is unreachable.
    #[error("{0}")]
    Other(String),
}

/// What backend operations return.
pub type KvFuture<'a, T> = BoxFuture<'a, Result<T, KvError>>;

/// A key-value backend: a source of buckets.
pub trait KeyValueBackend: Send + Sync + 'static {
    /// Names the backend in logs and errors, e.g. `redis at redis://...`.
    fn describe(&self) -> String;

    /// Opens (creating if needed) the bucket `name`.
    fn open<'a>(&'a self, name: &'a str) -> KvFuture<'a, Arc<dyn KeyValueBucket>>;
}

/// One bucket of a backend.
pub trait KeyValueBucket: Send + Sync + 'static {
    /// The value at `key`.
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>>;
    /// Sets `key` to `value`.
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()>;
    /// Removes `key` (absent keys are fine).
    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()>;
    /// Whether `key` has a value.
    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool>;
    /// One page of keys and the cursor of the next page, if any.
    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, (Vec<String>, Option<u64>)>;
    /// Atomically adds `delta` to the decimal number at `key` (0 when
    /// absent) and returns the new value.
    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64>;
}

/// The `bucket` resource a guest holds.
pub struct Bucket(Arc<dyn KeyValueBucket>);

/// Parses a stored counter; absent is 0.
pub(crate) fn parse_counter(value: Option<&[u8]>) -> Result<u64, KvError> {
    match value {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| KvError::Other("the value is not a decimal number".into())),
    }
}

/// `old + delta`, or an error instead of wrapping.
pub(crate) fn add(old: u64, delta: u64) -> Result<u64, KvError> {
    old.checked_add(delta)
        .ok_or_else(|| KvError::Other("increment overflows u64".into()))
}

/// Backends a workload chose.
#[derive(Clone)]
struct Choice {
    /// For `open` of any name without a named instance.
    default: Arc<dyn KeyValueBackend>,
    /// Named instances: name -> backend and the bucket it maps to.
    named: HashMap<String, (Arc<dyn KeyValueBackend>, String)>,
}

/// Per-component state of the plugin.
struct KvBinding {
    choice: Choice,
}

/// Provides `wasi:keyvalue`.
pub struct KeyValue {
    default: Arc<dyn KeyValueBackend>,
    /// Backends built from workload config, shared by equal settings.
    backends: tokio::sync::Mutex<HashMap<String, Arc<dyn KeyValueBackend>>>,
    workloads: Mutex<HashMap<String, Choice>>,
}

impl KeyValue {
    /// A plugin whose default backend is `default`.
    pub fn new(default: Arc<dyn KeyValueBackend>) -> Self {
        Self {
            default,
            backends: Default::default(),
            workloads: Default::default(),
        }
    }

    /// A plugin with an in-memory default backend.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(InMemoryKeyValue::default()))
    }

    /// The backend one host interface entry asks for.
    async fn backend_for(
        &self,
        entry: &WitInterface,
    ) -> Result<Arc<dyn KeyValueBackend>, PluginError> {
        check_keys(ID, entry, &["backend", "url", "path", "bucket"])?;
        let config = &entry.config;
        let Some(kind) = config.get("backend") else {
            return Ok(self.default.clone());
        };
        let setting = |key: &str| {
            config.get(key).cloned().ok_or_else(|| {
                PluginError::config(ID, key, format!("required by backend `{kind}`"))
            })
        };
        let key = format!(
            "{kind}|{}|{}",
            config.get("url").map_or("", |s| s),
            config.get("path").map_or("", |s| s)
        );
        let mut backends = self.backends.lock().await;
        if let Some(existing) = backends.get(&key) {
            return Ok(existing.clone());
        }
        let backend: Arc<dyn KeyValueBackend> = match kind.as_str() {
            "memory" => Arc::new(InMemoryKeyValue::default()),
            "filesystem" => Arc::new(
                FilesystemKeyValue::new(setting("path")?)
                    .map_err(|e| PluginError::backend(ID, e.to_string()))?,
            ),
            "nats" => Arc::new(
                NatsKeyValue::connect(&setting("url")?)
                    .await
                    .map_err(|e| PluginError::backend(ID, e.to_string()))?,
            ),
            "redis" => Arc::new(
                RedisKeyValue::connect(&setting("url")?)
                    .await
                    .map_err(|e| PluginError::backend(ID, e.to_string()))?,
            ),
            other => {
                return Err(PluginError::config(
                    ID,
                    "backend",
                    format!("unknown backend `{other}` (known: memory, filesystem, nats, redis)"),
                ));
            }
        };
        backends.insert(key, backend.clone());
        Ok(backend)
    }
}

impl HostPlugin for KeyValue {
    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasi",
            "keyvalue",
            "0.2.0-draft",
            &["store", "atomics", "batch"],
        )]
    }

    fn on_workload_bind<'a>(&'a self, workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        Box::pin(async move {
            let mut choice = Choice {
                default: self.default.clone(),
                named: HashMap::new(),
            };
            for entry in &workload.interfaces {
                let backend = self.backend_for(entry).await?;
                match &entry.name {
                    Some(name) => {
                        let bucket = entry.config.get("bucket").cloned().unwrap_or(name.clone());
                        choice.named.insert(name.clone(), (backend, bucket));
                    }
                    None => choice.default = backend,
                }
            }
            self.workloads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(workload.workload_id.to_string(), choice);
            Ok(())
        })
    }

    fn on_workload_item_bind(&self, item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        let choice = self
            .workloads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(item.workload_id)
            .cloned()
            .unwrap_or_else(|| Choice {
                default: self.default.clone(),
                named: HashMap::new(),
            });
        item.bindings.insert(KvBinding { choice });
        let link = |name: &str, result: wasmtime::Result<()>| {
            result.map_err(|e| PluginError::link(ID, name, e))
        };
        let view = StoreState::plugin_view;
        link(
            "wasi:keyvalue/store",
            store::add_to_linker::<StoreState, Plugins>(item.linker, view),
        )?;
        if item.imports_interface("atomics") {
            link(
                "wasi:keyvalue/atomics",
                atomics::add_to_linker::<StoreState, Plugins>(item.linker, view),
            )?;
        }
        if item.imports_interface("batch") {
            link(
                "wasi:keyvalue/batch",
                batch::add_to_linker::<StoreState, Plugins>(item.linker, view),
            )?;
        }
        Ok(())
    }

    fn on_workload_unbind<'a>(&'a self, workload_id: &'a str) -> PluginFuture<'a, ()> {
        Box::pin(async move {
            self.workloads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(workload_id);
            Ok(())
        })
    }
}

fn to_wit(error: KvError) -> WitError {
    match error {
        KvError::NoSuchStore => WitError::NoSuchStore,
        KvError::AccessDenied => WitError::AccessDenied,
        KvError::Other(message) => WitError::Other(message),
    }
}

impl PluginView<'_> {
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<Arc<dyn KeyValueBucket>> {
        Ok(self.table.get(bucket)?.0.clone())
    }
}

/// A guest's key, refused before any backend sees it when unusable.
fn check_key(key: &str) -> Result<(), WitError> {
    names::check(NameOf::Key, key).map_err(WitError::Other)
}

/// Every key of a batch, as [`check_key`].
fn check_all_keys<'a>(mut all: impl Iterator<Item = &'a String>) -> Result<(), WitError> {
    all.try_for_each(|k| check_key(k))
}

impl store::Host for PluginView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, WitError>> {
        let Some(binding) = self.bindings.get::<KvBinding>() else {
            return Err(wasmtime::format_err!(
                "wasi:keyvalue is not bound for this component"
            ));
        };
        let (backend, bucket) = match binding.choice.named.get(&identifier) {
            Some((backend, bucket)) => (backend.clone(), bucket.clone()),
            None => (binding.choice.default.clone(), identifier),
        };
        if let Err(e) = names::check(NameOf::Bucket, &bucket) {
            return Ok(Err(WitError::Other(e)));
        }
        match backend.open(&bucket).await {
            Ok(opened) => Ok(Ok(self.table.push(Bucket(opened))?)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }
}

impl store::HostBucket for PluginView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, WitError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.bucket(&bucket)?.get(&key).await.map_err(to_wit))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.bucket(&bucket)?.set(&key, value).await.map_err(to_wit))
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.bucket(&bucket)?.delete(&key).await.map_err(to_wit))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, WitError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.bucket(&bucket)?.exists(&key).await.map_err(to_wit))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<KeyResponse, WitError>> {
        Ok(self
            .bucket(&bucket)?
            .list_keys(cursor)
            .await
            .map(|(keys, cursor)| KeyResponse { keys, cursor })
            .map_err(to_wit))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for PluginView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self
            .bucket(&bucket)?
            .increment(&key, delta)
            .await
            .map_err(to_wit))
    }
}

impl batch::Host for PluginView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<(String, Vec<u8>)>>, WitError>> {
        if let Err(e) = check_all_keys(keys.iter()) {
            return Ok(Err(e));
        }
        let bucket = self.bucket(&bucket)?;
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            match bucket.get(&key).await {
                Ok(value) => values.push(value.map(|v| (key, v))),
                Err(e) => return Ok(Err(to_wit(e))),
            }
        }
        Ok(Ok(values))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        if let Err(e) = check_all_keys(key_values.iter().map(|(k, _)| k)) {
            return Ok(Err(e));
        }
        let bucket = self.bucket(&bucket)?;
        for (key, value) in key_values {
            if let Err(e) = bucket.set(&key, value).await {
                return Ok(Err(to_wit(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), WitError>> {
        if let Err(e) = check_all_keys(keys.iter()) {
            return Ok(Err(e));
        }
        let bucket = self.bucket(&bucket)?;
        for key in keys {
            if let Err(e) = bucket.delete(&key).await {
                return Ok(Err(to_wit(e)));
            }
        }
        Ok(Ok(()))
    }
}
