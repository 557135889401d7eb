//! The NATS object store blobstore backend: a container is an object store
//! bucket, an object an object.

use async_nats::jetstream::{self, object_store};
use bytes::Bytes;
use futures::{FutureExt, TryStreamExt};
use tokio::io::AsyncReadExt;

use super::{BlobFuture, BlobstoreBackend, ObjectInfo};
use crate::plugin::nats::{connect, encode_bucket};
use crate::plugin::{BackendError, BoxError};

/// Containers as NATS object store buckets.
pub struct NatsBlobstore {
    url: String,
    jetstream: jetstream::Context,
}

impl NatsBlobstore {
    /// Connects to the NATS server at `url`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        Ok(Self::with_client(url, connect(url).await?))
    }

    /// Uses an existing connection.
    pub fn with_client(url: &str, client: async_nats::Client) -> Self {
        Self {
            url: url.to_string(),
            jetstream: jetstream::new(client),
        }
    }

    async fn store(&self, container: &str) -> Result<object_store::ObjectStore, BackendError> {
        self.jetstream
            .get_object_store(encode_bucket(container))
            .await
            .map_err(|_| BackendError::message(format!("container `{container}` does not exist")))
    }
}

fn nats(what: &str, error: impl Into<BoxError>) -> BackendError {
    BackendError::new(format!("NATS {what}"), error)
}

impl BlobstoreBackend for NatsBlobstore {
    fn describe(&self) -> String {
        format!("NATS object store at {}", self.url)
    }

    fn create_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()> {
        async move {
            if self.store(name).await.is_ok() {
                return Err(BackendError::message(format!(
                    "container `{name}` already exists"
                )));
            }
            self.jetstream
                .create_object_store(object_store::Config {
                    bucket: encode_bucket(name),
                    ..Default::default()
                })
                .await
                .map(drop)
                .map_err(|e| nats("create container", e))
        }
        .boxed()
    }

    fn container_exists<'a>(&'a self, name: &'a str) -> BlobFuture<'a, bool> {
        async move { Ok(self.store(name).await.is_ok()) }.boxed()
    }

    fn delete_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()> {
        async move {
            if self.store(name).await.is_err() {
                return Ok(());
            }
            self.jetstream
                .delete_object_store(encode_bucket(name))
                .await
                .map_err(|e| nats("delete container", e))
        }
        .boxed()
    }

    fn container_created<'a>(&'a self, name: &'a str) -> BlobFuture<'a, u64> {
        async move {
            let mut stream = self
                .jetstream
                .get_stream(format!("OBJ_{}", encode_bucket(name)))
                .await
                .map_err(|_| BackendError::message(format!("container `{name}` does not exist")))?;
            let info = stream.info().await.map_err(|e| nats("container info", e))?;
            Ok(info.created.unix_timestamp().max(0) as u64)
        }
        .boxed()
    }

    fn put<'a>(&'a self, container: &'a str, name: &'a str, data: Bytes) -> BlobFuture<'a, ()> {
        async move {
            let store = self.store(container).await?;
            store
                .put(name, &mut data.as_ref())
                .await
                .map(drop)
                .map_err(|e| nats("put", e))
        }
        .boxed()
    }

    fn get<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<Bytes>> {
        async move {
            let store = self.store(container).await?;
            let mut object = match store.get(name).await {
                Ok(object) => object,
                Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(nats("get", e)),
            };
            let mut data = Vec::new();
            object
                .read_to_end(&mut data)
                .await
                .map_err(|e| nats("read", e))?;
            Ok(Some(data.into()))
        }
        .boxed()
    }

    fn delete<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, ()> {
        async move {
            let store = self.store(container).await?;
            match store.info(name).await {
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => return Ok(()),
                Ok(info) if info.deleted => return Ok(()),
                _ => {}
            }
            store.delete(name).await.map_err(|e| nats("delete", e))
        }
        .boxed()
    }

    fn info<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<ObjectInfo>> {
        async move {
            let store = self.store(container).await?;
            match store.info(name).await {
                Ok(info) if !info.deleted => Ok(Some(ObjectInfo {
                    size: info.size as u64,
                    created_at: info
                        .modified
                        .map(|m| m.unix_timestamp().max(0) as u64)
                        .unwrap_or_default(),
                })),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
                Err(e) => Err(nats("info", e)),
            }
        }
        .boxed()
    }

    fn list<'a>(&'a self, container: &'a str) -> BlobFuture<'a, Vec<String>> {
        async move {
            let store = self.store(container).await?;
            let list = store.list().await.map_err(|e| nats("list", e))?;
            let infos: Vec<object_store::ObjectInfo> =
                list.try_collect().await.map_err(|e| nats("list", e))?;
            Ok(infos
                .into_iter()
                .filter(|i| !i.deleted)
                .map(|i| i.name)
                .collect())
        }
        .boxed()
    }
}
