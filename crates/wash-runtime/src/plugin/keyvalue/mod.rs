//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch) over interchangeable
//! backends: in-memory, filesystem, NATS JetStream KV and Redis.
//!
//! A workload picks backends with `wasi:keyvalue` host interface entries:
//! `backend` (`memory`, `filesystem`, `nats`, `redis`), `url` (NATS and
//! Redis), `path` (filesystem) and optionally `bucket`. An entry with a
//! `name` is a named instance: the guest's `open(name)` reaches it, so two
//! names can go to two backends. Without entries the plugin's default
//! backend serves every bucket.

mod bindings;
mod filesystem;
mod memory;
mod nats;
mod redis;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::component::Resource;

use self::bindings::store::{Error as WitError, KeyResponse};
use self::bindings::{atomics, batch, store};
pub use self::filesystem::FilesystemKeyValue;
pub use self::memory::InMemoryKeyValue;
pub use self::nats::NatsKeyValue;
pub use self::redis::RedisKeyValue;
use super::backends::{BackendSet, in_directory};
use super::names::{self, NameOf};
use super::{
    BackendChoice, BackendError, Backends, HostPlugin, ItemBind, PluginError, PluginFuture,
    ProvidedInterface, StoreState, WorkloadBind,
};
use crate::instance::{PluginView, Plugins};

const ID: &str = "wasi-keyvalue";
/// Backends a workload may choose.
const KINDS: &[&str] = &["memory", "filesystem", "nats", "redis"];
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
///
/// ```
/// # async fn demo() -> Result<(), wash_runtime::plugin::keyvalue::KvError> {
/// use std::sync::Arc;
/// use wash_runtime::plugin::keyvalue::{InMemoryKeyValue, KeyValue, KeyValueBackend};
///
/// let backend = Arc::new(InMemoryKeyValue::default());
/// let carts = backend.open("carts").await?;
/// carts.set("alice", b"3 apples".to_vec()).await?;
/// assert_eq!(carts.get("alice").await?, Some(b"3 apples".to_vec()));
/// assert_eq!(carts.increment("visits", 2).await?, 2);
///
/// // Serve it to guests as the default backend of `wasi:keyvalue`.
/// let plugin = KeyValue::new(backend);
/// # drop(plugin);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
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

/// Backends a workload chose: the plugin's state for it.
#[derive(Clone)]
pub struct Choice {
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
    backends: BackendSet<dyn KeyValueBackend>,
}

impl KeyValue {
    /// A plugin whose default backend is `default`.
    pub fn new(default: Arc<dyn KeyValueBackend>) -> Self {
        Self {
            backends: BackendSet::new(default),
        }
    }

    /// A plugin with an in-memory default backend.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(InMemoryKeyValue::default()))
    }

    /// Keeps backends built from workload config in `backends` (shared with
    /// other plugins) instead of a cache of its own.
    pub fn with_backends(mut self, backends: Backends) -> Self {
        self.backends.share(backends);
        self
    }
}

/// Builds the backend a workload chose.
async fn make(choice: BackendChoice) -> Result<Arc<dyn KeyValueBackend>, BackendError> {
    Ok(match choice {
        BackendChoice::Filesystem { path } => {
            Arc::new(in_directory(path, FilesystemKeyValue::new)?)
        }
        BackendChoice::Nats { url } => Arc::new(NatsKeyValue::connect(&url).await?),
        BackendChoice::Redis { url } => Arc::new(RedisKeyValue::connect(&url).await?),
        _ => Arc::new(InMemoryKeyValue::default()),
    })
}

impl HostPlugin for KeyValue {
    type WorkloadState = Choice;

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

    fn on_workload_bind<'a>(&'a self, workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, Choice> {
        Box::pin(async move {
            let mut choice = Choice {
                default: self.backends.default_backend(),
                named: HashMap::new(),
            };
            for entry in &workload.interfaces {
                let configured = BackendChoice::parse(ID, entry, KINDS, &["bucket"])?;
                let backend = self.backends.choose(ID, configured, make).await?;
                match &entry.name {
                    Some(name) => {
                        let bucket = entry.config.get("bucket").cloned().unwrap_or(name.clone());
                        choice.named.insert(name.clone(), (backend, bucket));
                    }
                    None => choice.default = backend,
                }
            }
            Ok(choice)
        })
    }

    fn on_workload_item_bind(
        &self,
        choice: &Choice,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        item.bindings.insert(KvBinding {
            choice: choice.clone(),
        });
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
