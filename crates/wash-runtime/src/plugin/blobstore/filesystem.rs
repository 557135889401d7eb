//! The filesystem blobstore backend: a directory per container, a file per
//! object (names escaped), written atomically.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use crate::plugin::fs;
use bytes::Bytes;
use futures::FutureExt;

use super::{BlobFuture, BlobstoreBackend, ObjectInfo};
use crate::plugin::BackendError;

/// Containers as directories under a root.
#[derive(Debug)]
pub struct FilesystemBlobstore {
    root: PathBuf,
}

impl FilesystemBlobstore {
    /// Uses (and creates) `root`.
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        Ok(Self {
            root: fs::create_root(root)?,
        })
    }

    fn dir(&self, container: &str) -> PathBuf {
        fs::entry(&self.root, container)
    }

    fn file(&self, container: &str, name: &str) -> PathBuf {
        fs::entry(&self.dir(container), name)
    }

    async fn require(&self, container: &str) -> Result<PathBuf, BackendError> {
        let dir = self.dir(container);
        match tokio::fs::metadata(&dir).await {
            Ok(meta) if meta.is_dir() => Ok(dir),
            _ => Err(BackendError::message(format!(
                "container `{container}` does not exist"
            ))),
        }
    }
}

fn seconds(time: std::io::Result<std::time::SystemTime>) -> u64 {
    time.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn io(context: &str, error: std::io::Error) -> BackendError {
    BackendError::new(context, error)
}

impl BlobstoreBackend for FilesystemBlobstore {
    fn describe(&self) -> String {
        format!("filesystem at {}", self.root.display())
    }

    fn create_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()> {
        async move {
            match tokio::fs::create_dir(self.dir(name)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(
                    BackendError::message(format!("container `{name}` already exists")),
                ),
                Err(e) => Err(io("cannot create container", e)),
            }
        }
        .boxed()
    }

    fn container_exists<'a>(&'a self, name: &'a str) -> BlobFuture<'a, bool> {
        async move { Ok(self.require(name).await.is_ok()) }.boxed()
    }

    fn delete_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()> {
        async move {
            match tokio::fs::remove_dir_all(self.dir(name)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io("cannot delete container", e)),
            }
        }
        .boxed()
    }

    fn container_created<'a>(&'a self, name: &'a str) -> BlobFuture<'a, u64> {
        async move {
            let dir = self.require(name).await?;
            let meta = tokio::fs::metadata(dir)
                .await
                .map_err(|e| io("metadata", e))?;
            Ok(seconds(meta.created().or_else(|_| meta.modified())))
        }
        .boxed()
    }

    fn put<'a>(&'a self, container: &'a str, name: &'a str, data: Bytes) -> BlobFuture<'a, ()> {
        async move {
            let dir = self.require(container).await?;
            let path = self.file(container, name);
            fs::write_atomic(dir, path, data)
                .await
                .map_err(|e| io("cannot write object", e))
        }
        .boxed()
    }

    fn get<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<Bytes>> {
        async move {
            self.require(container).await?;
            match tokio::fs::read(self.file(container, name)).await {
                Ok(bytes) => Ok(Some(bytes.into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io("cannot read object", e)),
            }
        }
        .boxed()
    }

    fn delete<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, ()> {
        async move {
            self.require(container).await?;
            match tokio::fs::remove_file(self.file(container, name)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io("cannot delete object", e)),
            }
        }
        .boxed()
    }

    fn info<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<ObjectInfo>> {
        async move {
            self.require(container).await?;
            match tokio::fs::metadata(self.file(container, name)).await {
                Ok(meta) => Ok(Some(ObjectInfo {
                    size: meta.len(),
                    created_at: seconds(meta.modified()),
                })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io("cannot stat object", e)),
            }
        }
        .boxed()
    }

    fn list<'a>(&'a self, container: &'a str) -> BlobFuture<'a, Vec<String>> {
        async move {
            let dir = self.require(container).await?;
            fs::list_names(&dir).await.map_err(|e| io("cannot list", e))
        }
        .boxed()
    }
}
