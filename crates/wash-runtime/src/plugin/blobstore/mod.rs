//! `wasi:blobstore@0.2.0-draft` over interchangeable backends: in-memory,
//! filesystem and NATS object store.
//!
//! A workload picks its backend with a `wasi:blobstore` host interface
//! entry: `backend` (`memory`, `filesystem`, `nats`), `path` (filesystem)
//! or `url` (NATS). Without one, the plugin's default backend serves it.
//! Values are written through a `wasi:io` output stream and stored when
//! the guest calls `finish`; a value dropped unfinished is discarded.

mod bindings;
mod filesystem;
mod memory;
mod nats;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use self::bindings::types::{ContainerMetadata, ObjectId, ObjectMetadata};
use self::bindings::{blobstore, container, types};
pub use self::filesystem::FilesystemBlobstore;
pub use self::memory::InMemoryBlobstore;
pub use self::nats::NatsBlobstore;
use super::backends::{BackendSet, ForGuest, in_directory};
use super::names::{self, NameOf};
use super::{
    BackendChoice, BackendError, Backends, HostPlugin, ItemBind, PluginError, PluginFuture,
    ProvidedInterface, StoreState, WorkloadBind,
};
use crate::instance::{PluginView, Plugins};

const ID: &str = "wasi-blobstore";
/// Largest value a guest may write in one object.
const MAX_VALUE: usize = 64 << 20;

/// What backend operations return; errors are messages for the guest.
pub type BlobFuture<'a, T> = BoxFuture<'a, Result<T, BackendError>>;

/// Size and age of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bytes.
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
}

/// A blob storage backend.
///
/// ```
/// # async fn demo() -> Result<(), wash_runtime::plugin::BackendError> {
/// use std::sync::Arc;
/// use wash_runtime::plugin::blobstore::{Blobstore, BlobstoreBackend, InMemoryBlobstore};
///
/// let backend = Arc::new(InMemoryBlobstore::default());
/// backend.create_container("photos").await?;
/// backend.put("photos", "cat.jpg", bytes::Bytes::from_static(b"meow")).await?;
/// assert_eq!(backend.list("photos").await?, ["cat.jpg"]);
///
/// // Serve it to guests as the default backend of `wasi:blobstore`.
/// let plugin = Blobstore::new(backend);
/// # drop(plugin);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
pub trait BlobstoreBackend: Send + Sync + 'static {
    /// Names the backend in logs and errors.
    fn describe(&self) -> String;
    /// Creates an empty container; an error if it exists.
    fn create_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()>;
    /// Whether the container exists.
    fn container_exists<'a>(&'a self, name: &'a str) -> BlobFuture<'a, bool>;
    /// Deletes a container and everything in it.
    fn delete_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()>;
    /// When the container was created (seconds since the epoch).
    fn container_created<'a>(&'a self, name: &'a str) -> BlobFuture<'a, u64>;
    /// Stores an object, replacing any of the same name.
    fn put<'a>(&'a self, container: &'a str, name: &'a str, data: Bytes) -> BlobFuture<'a, ()>;
    /// An object's bytes, if it exists.
    fn get<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<Bytes>>;
    /// Removes an object (absent objects are fine).
    fn delete<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, ()>;
    /// An object's size and age, if it exists.
    fn info<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<ObjectInfo>>;
    /// Names of all objects in a container.
    fn list<'a>(&'a self, container: &'a str) -> BlobFuture<'a, Vec<String>>;
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The `container` resource.
pub struct Container {
    backend: Arc<dyn BlobstoreBackend>,
    name: String,
}

/// The `stream-object-names` resource.
pub struct ObjectNames {
    names: Vec<String>,
    position: usize,
}

/// The `outgoing-value` resource: the body the guest writes, and where it
/// goes on `finish`.
pub struct OutgoingValue {
    body: MemoryOutputPipe,
    body_taken: bool,
    target: Option<(Arc<dyn BlobstoreBackend>, String, String)>,
}

/// The `incoming-value` resource.
pub struct IncomingValue {
    data: Bytes,
}

struct BlobBinding {
    backend: Arc<dyn BlobstoreBackend>,
}

/// Provides `wasi:blobstore`.
pub struct Blobstore {
    backends: BackendSet<dyn BlobstoreBackend>,
}

impl Blobstore {
    /// A plugin whose default backend is `default`.
    pub fn new(default: Arc<dyn BlobstoreBackend>) -> Self {
        Self {
            backends: BackendSet::new(default),
        }
    }

    /// A plugin with an in-memory default backend.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(InMemoryBlobstore::default()))
    }

    /// Keeps backends built from workload config in `backends` (shared with
    /// other plugins) instead of a cache of its own.
    pub fn with_backends(mut self, backends: Backends) -> Self {
        self.backends.share(backends);
        self
    }
}

/// Builds the backend a workload chose.
async fn make(choice: BackendChoice) -> Result<Arc<dyn BlobstoreBackend>, BackendError> {
    Ok(match choice {
        BackendChoice::Filesystem { path } => {
            Arc::new(in_directory(path, FilesystemBlobstore::new)?)
        }
        BackendChoice::Nats { url } => Arc::new(NatsBlobstore::connect(&url).await?),
        _ => Arc::new(InMemoryBlobstore::default()),
    })
}

impl HostPlugin for Blobstore {
    /// The backend the workload's components use.
    type WorkloadState = Arc<dyn BlobstoreBackend>;

    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasi",
            "blobstore",
            "0.2.0-draft",
            &["blobstore", "container", "types"],
        )]
    }

    fn on_workload_bind<'a>(
        &'a self,
        workload: &'a WorkloadBind<'a>,
    ) -> PluginFuture<'a, Arc<dyn BlobstoreBackend>> {
        Box::pin(async move {
            let mut chosen = self.backends.default_backend();
            for entry in &workload.interfaces {
                let choice =
                    BackendChoice::parse(ID, entry, &["memory", "filesystem", "nats"], &[])?;
                if choice != BackendChoice::Default {
                    chosen = self.backends.choose(ID, choice, make).await?;
                }
            }
            Ok(chosen)
        })
    }

    fn on_workload_item_bind(
        &self,
        backend: &Arc<dyn BlobstoreBackend>,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        item.bindings.insert(BlobBinding {
            backend: backend.clone(),
        });
        let view = StoreState::plugin_view;
        types::add_to_linker::<StoreState, Plugins>(item.linker, view)
            .map_err(|e| PluginError::link(ID, "wasi:blobstore/types", e))?;
        container::add_to_linker::<StoreState, Plugins>(item.linker, view)
            .map_err(|e| PluginError::link(ID, "wasi:blobstore/container", e))?;
        blobstore::add_to_linker::<StoreState, Plugins>(item.linker, view)
            .map_err(|e| PluginError::link(ID, "wasi:blobstore/blobstore", e))
    }
}

impl PluginView<'_> {
    fn blob_backend(&self) -> wasmtime::Result<Arc<dyn BlobstoreBackend>> {
        self.bindings
            .get::<BlobBinding>()
            .map(|b| b.backend.clone())
            .ok_or_else(|| wasmtime::format_err!("wasi:blobstore is not bound for this component"))
    }

    fn container(
        &self,
        container: &Resource<Container>,
    ) -> wasmtime::Result<(Arc<dyn BlobstoreBackend>, String)> {
        let container = self.table.get(container)?;
        Ok((container.backend.clone(), container.name.clone()))
    }
}

/// A guest's container name, refused before any backend sees it when
/// unusable (an empty one is the root to a filesystem).
fn container_name(name: &str) -> Result<(), String> {
    names::check(NameOf::Container, name)
}

/// A guest's object name, as [`container_name`].
fn object_name(name: &str) -> Result<(), String> {
    names::check(NameOf::Object, name)
}

/// Both parts of an object id.
fn object_id(id: &ObjectId) -> Result<(), String> {
    container_name(&id.container)?;
    object_name(&id.object)
}

impl blobstore::Host for PluginView<'_> {
    async fn create_container(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<Container>, String>> {
        if let Err(e) = container_name(&name) {
            return Ok(Err(e));
        }
        let backend = self.blob_backend()?;
        if let Err(e) = backend.create_container(&name).await {
            return Ok(Err(e.into()));
        }
        Ok(Ok(self.table.push(Container { backend, name })?))
    }

    async fn get_container(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<Container>, String>> {
        if let Err(e) = container_name(&name) {
            return Ok(Err(e));
        }
        let backend = self.blob_backend()?;
        match backend.container_exists(&name).await {
            Ok(true) => Ok(Ok(self.table.push(Container { backend, name })?)),
            Ok(false) => Ok(Err(format!("container `{name}` does not exist"))),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn delete_container(&mut self, name: String) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = container_name(&name) {
            return Ok(Err(e));
        }
        Ok(self
            .blob_backend()?
            .delete_container(&name)
            .await
            .for_guest())
    }

    async fn container_exists(&mut self, name: String) -> wasmtime::Result<Result<bool, String>> {
        if let Err(e) = container_name(&name) {
            return Ok(Err(e));
        }
        Ok(self
            .blob_backend()?
            .container_exists(&name)
            .await
            .for_guest())
    }

    async fn copy_object(
        &mut self,
        src: ObjectId,
        dest: ObjectId,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(copy(&*self.blob_backend()?, &src, &dest).await)
    }

    async fn move_object(
        &mut self,
        src: ObjectId,
        dest: ObjectId,
    ) -> wasmtime::Result<Result<(), String>> {
        let backend = self.blob_backend()?;
        if let Err(e) = copy(&*backend, &src, &dest).await {
            return Ok(Err(e));
        }
        Ok(backend
            .delete(&src.container, &src.object)
            .await
            .for_guest())
    }
}

async fn copy(
    backend: &dyn BlobstoreBackend,
    src: &ObjectId,
    dest: &ObjectId,
) -> Result<(), String> {
    object_id(src)?;
    object_id(dest)?;
    if !backend.container_exists(&dest.container).await? {
        return Err(format!("container `{}` does not exist", dest.container));
    }
    let data = backend
        .get(&src.container, &src.object)
        .await?
        .ok_or_else(|| {
            format!(
                "object `{}` not found in container `{}`",
                src.object, src.container
            )
        })?;
    backend
        .put(&dest.container, &dest.object, data)
        .await
        .for_guest()
}

impl container::Host for PluginView<'_> {}

impl container::HostContainer for PluginView<'_> {
    async fn name(
        &mut self,
        this: Resource<Container>,
    ) -> wasmtime::Result<Result<String, String>> {
        Ok(Ok(self.table.get(&this)?.name.clone()))
    }

    async fn info(
        &mut self,
        this: Resource<Container>,
    ) -> wasmtime::Result<Result<ContainerMetadata, String>> {
        let (backend, name) = self.container(&this)?;
        Ok(backend
            .container_created(&name)
            .await
            .map(|created_at| ContainerMetadata { name, created_at })
            .for_guest())
    }

    async fn get_data(
        &mut self,
        this: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> wasmtime::Result<Result<Resource<IncomingValue>, String>> {
        if let Err(e) = object_name(&name) {
            return Ok(Err(e));
        }
        let (backend, container) = self.container(&this)?;
        let data = match backend.get(&container, &name).await {
            Ok(Some(data)) => data,
            Ok(None) => {
                return Ok(Err(format!(
                    "object `{name}` not found in container `{container}`"
                )));
            }
            Err(e) => return Ok(Err(e.into())),
        };
        // Offsets are inclusive; clamp to the object.
        let len = data.len() as u64;
        let data = if start >= len || end < start {
            Bytes::new()
        } else {
            data.slice(start as usize..=(end.min(len - 1)) as usize)
        };
        Ok(Ok(self.table.push(IncomingValue { data })?))
    }

    async fn write_data(
        &mut self,
        this: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = object_name(&name) {
            return Ok(Err(e));
        }
        let (backend, container) = self.container(&this)?;
        self.table.get_mut(&data)?.target = Some((backend, container, name));
        Ok(Ok(()))
    }

    async fn list_objects(
        &mut self,
        this: Resource<Container>,
    ) -> wasmtime::Result<Result<Resource<ObjectNames>, String>> {
        let (backend, container) = self.container(&this)?;
        match backend.list(&container).await {
            Ok(mut names) => {
                names.sort();
                Ok(Ok(self.table.push(ObjectNames { names, position: 0 })?))
            }
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn delete_object(
        &mut self,
        this: Resource<Container>,
        name: String,
    ) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = object_name(&name) {
            return Ok(Err(e));
        }
        let (backend, container) = self.container(&this)?;
        Ok(backend.delete(&container, &name).await.for_guest())
    }

    async fn delete_objects(
        &mut self,
        this: Resource<Container>,
        names: Vec<String>,
    ) -> wasmtime::Result<Result<(), String>> {
        if let Err(e) = names.iter().try_for_each(|name| object_name(name)) {
            return Ok(Err(e));
        }
        let (backend, container) = self.container(&this)?;
        for name in names {
            if let Err(e) = backend.delete(&container, &name).await {
                return Ok(Err(e.into()));
            }
        }
        Ok(Ok(()))
    }

    async fn has_object(
        &mut self,
        this: Resource<Container>,
        name: String,
    ) -> wasmtime::Result<Result<bool, String>> {
        if let Err(e) = object_name(&name) {
            return Ok(Err(e));
        }
        let (backend, container) = self.container(&this)?;
        Ok(backend
            .info(&container, &name)
            .await
            .map(|i| i.is_some())
            .for_guest())
    }

    async fn object_info(
        &mut self,
        this: Resource<Container>,
        name: String,
    ) -> wasmtime::Result<Result<ObjectMetadata, String>> {
        if let Err(e) = object_name(&name) {
            return Ok(Err(e));
        }
        let (backend, container) = self.container(&this)?;
        Ok(match backend.info(&container, &name).await {
            Ok(Some(info)) => Ok(ObjectMetadata {
                name,
                container,
                created_at: info.created_at,
                size: info.size,
            }),
            Ok(None) => Err(format!(
                "object `{name}` not found in container `{container}`"
            )),
            Err(e) => Err(e.into()),
        })
    }

    async fn clear(&mut self, this: Resource<Container>) -> wasmtime::Result<Result<(), String>> {
        let (backend, container) = self.container(&this)?;
        let names = match backend.list(&container).await {
            Ok(names) => names,
            Err(e) => return Ok(Err(e.into())),
        };
        for name in names {
            if let Err(e) = backend.delete(&container, &name).await {
                return Ok(Err(e.into()));
            }
        }
        Ok(Ok(()))
    }

    async fn drop(&mut self, this: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for PluginView<'_> {
    async fn read_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        len: u64,
    ) -> wasmtime::Result<Result<(Vec<String>, bool), String>> {
        let names = self.table.get_mut(&this)?;
        let end = names
            .position
            .saturating_add(len as usize)
            .min(names.names.len());
        let page = names.names[names.position..end].to_vec();
        names.position = end;
        Ok(Ok((page, end >= names.names.len())))
    }

    async fn skip_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        num: u64,
    ) -> wasmtime::Result<Result<(u64, bool), String>> {
        let names = self.table.get_mut(&this)?;
        let end = names
            .position
            .saturating_add(num as usize)
            .min(names.names.len());
        let skipped = (end - names.position) as u64;
        names.position = end;
        Ok(Ok((skipped, end >= names.names.len())))
    }

    async fn drop(&mut self, this: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl types::Host for PluginView<'_> {}

impl types::HostOutgoingValue for PluginView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue {
            body: MemoryOutputPipe::new(MAX_VALUE),
            body_taken: false,
            target: None,
        })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        this: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let value = self.table.get_mut(&this)?;
        if value.body_taken {
            return Ok(Err(()));
        }
        value.body_taken = true;
        let stream: DynOutputStream = Box::new(value.body.clone());
        Ok(Ok(self.table.push(stream)?))
    }

    async fn finish(
        &mut self,
        this: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<(), String>> {
        let value = self.table.delete(this)?;
        let Some((backend, container, name)) = value.target else {
            return Ok(Err("write-data was not called for this value".into()));
        };
        Ok(backend
            .put(&container, &name, value.body.contents())
            .await
            .for_guest())
    }

    async fn drop(&mut self, this: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl types::HostIncomingValue for PluginView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(Ok(self.table.delete(this)?.data.to_vec()))
    }

    async fn incoming_value_consume_async(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> wasmtime::Result<Result<Resource<DynInputStream>, String>> {
        let data = self.table.delete(this)?.data;
        let stream: DynInputStream = Box::new(MemoryInputPipe::new(data));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, this: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.data.len() as u64)
    }

    async fn drop(&mut self, this: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
