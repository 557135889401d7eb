//! The filesystem key-value backend: a directory per bucket, a file per key.
//! Writes are atomic (write a temporary file, then rename), so a crash never
//! leaves a torn value, and data survives restarts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{KeyValueBackend, KeyValueBucket, KvError, KvFuture, PAGE, add, parse_counter};
use futures::FutureExt;

/// Buckets stored under a root directory.
#[derive(Debug)]
pub struct FilesystemKeyValue {
    root: PathBuf,
    /// One lock per bucket directory serializes read-modify-write updates
    /// within this process.
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

impl FilesystemKeyValue {
    /// Uses (and creates) `root`.
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        Ok(Self {
            root: crate::plugin::fs::create_root(root)?,
            locks: Mutex::default(),
        })
    }
}

struct FsBucket {
    dir: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

fn io_error(context: &str, error: impl std::fmt::Display) -> KvError {
    KvError::Other(format!("{context}: {error}"))
}

impl KeyValueBackend for FilesystemKeyValue {
    fn describe(&self) -> String {
        format!("filesystem at {}", self.root.display())
    }

    fn open<'a>(&'a self, name: &'a str) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        async move {
            let dir = crate::plugin::fs::entry(&self.root, name);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| io_error("cannot create bucket directory", e))?;
            let lock = self
                .locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(dir.clone())
                .or_default()
                .clone();
            Ok(Arc::new(FsBucket { dir, lock }) as Arc<dyn KeyValueBucket>)
        }
        .boxed()
    }
}

impl FsBucket {
    fn path(&self, key: &str) -> PathBuf {
        crate::plugin::fs::entry(&self.dir, key)
    }

    async fn read(path: &Path) -> Result<Option<Vec<u8>>, KvError> {
        match tokio::fs::read(path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("cannot read value", e)),
        }
    }

    async fn write(&self, path: PathBuf, value: Vec<u8>) -> Result<(), KvError> {
        crate::plugin::fs::write_atomic(self.dir.clone(), path, value)
            .await
            .map_err(|e| io_error("cannot write value", e))
    }
}

impl KeyValueBucket for FsBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        async move { Self::read(&self.path(key)).await }.boxed()
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        async move {
            let _guard = self.lock.lock().await;
            self.write(self.path(key), value).await
        }
        .boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        async move {
            let _guard = self.lock.lock().await;
            match tokio::fs::remove_file(self.path(key)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error("cannot delete value", e)),
            }
        }
        .boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        async move {
            tokio::fs::try_exists(self.path(key))
                .await
                .map_err(|e| io_error("cannot check key", e))
        }
        .boxed()
    }

    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        async move {
            let mut keys = crate::plugin::fs::list_names(&self.dir)
                .await
                .map_err(|e| io_error("cannot list bucket", e))?;
            keys.sort();
            let start = cursor.unwrap_or(0) as usize;
            let total = keys.len();
            let page: Vec<String> = keys.into_iter().skip(start).take(PAGE).collect();
            let next = (start + page.len() < total).then(|| (start + page.len()) as u64);
            Ok((page, next))
        }
        .boxed()
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64> {
        async move {
            let _guard = self.lock.lock().await;
            let path = self.path(key);
            let new = add(parse_counter(Self::read(&path).await?.as_deref())?, delta)?;
            self.write(path, new.to_string().into_bytes()).await?;
            Ok(new)
        }
        .boxed()
    }
}
