//! The in-memory blobstore backend.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use futures::FutureExt;

use super::{BlobFuture, BlobstoreBackend, ObjectInfo, now_secs};
use crate::plugin::BackendError;

/// Containers held in memory.
#[derive(Debug, Default)]
pub struct InMemoryBlobstore {
    containers: Mutex<HashMap<String, MemoryContainer>>,
}

#[derive(Debug, Default)]
struct MemoryContainer {
    created_at: u64,
    objects: BTreeMap<String, (Bytes, u64)>,
}

impl InMemoryBlobstore {
    fn containers(&self) -> MutexGuard<'_, HashMap<String, MemoryContainer>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(
        &self,
        container: &str,
        f: impl FnOnce(&mut MemoryContainer) -> T,
    ) -> Result<T, BackendError> {
        self.containers()
            .get_mut(container)
            .map(f)
            .ok_or_else(|| BackendError::message(format!("container `{container}` does not exist")))
    }
}

fn ready<'a, T: Send + 'a>(value: Result<T, BackendError>) -> BlobFuture<'a, T> {
    futures::future::ready(value).boxed()
}

impl BlobstoreBackend for InMemoryBlobstore {
    fn describe(&self) -> String {
        "in-memory".into()
    }

    fn create_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()> {
        let mut containers = self.containers();
        if containers.contains_key(name) {
            return ready(Err(BackendError::message(format!(
                "container `{name}` already exists"
            ))));
        }
        containers.insert(
            name.to_string(),
            MemoryContainer {
                created_at: now_secs(),
                objects: BTreeMap::new(),
            },
        );
        ready(Ok(()))
    }

    fn container_exists<'a>(&'a self, name: &'a str) -> BlobFuture<'a, bool> {
        ready(Ok(self.containers().contains_key(name)))
    }

    fn delete_container<'a>(&'a self, name: &'a str) -> BlobFuture<'a, ()> {
        self.containers().remove(name);
        ready(Ok(()))
    }

    fn container_created<'a>(&'a self, name: &'a str) -> BlobFuture<'a, u64> {
        ready(self.with(name, |c| c.created_at))
    }

    fn put<'a>(&'a self, container: &'a str, name: &'a str, data: Bytes) -> BlobFuture<'a, ()> {
        ready(self.with(container, |c| {
            c.objects.insert(name.to_string(), (data, now_secs()));
        }))
    }

    fn get<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<Bytes>> {
        ready(self.with(container, |c| c.objects.get(name).map(|(d, _)| d.clone())))
    }

    fn delete<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, ()> {
        ready(self.with(container, |c| {
            c.objects.remove(name);
        }))
    }

    fn info<'a>(&'a self, container: &'a str, name: &'a str) -> BlobFuture<'a, Option<ObjectInfo>> {
        ready(self.with(container, |c| {
            c.objects.get(name).map(|(d, created_at)| ObjectInfo {
                size: d.len() as u64,
                created_at: *created_at,
            })
        }))
    }

    fn list<'a>(&'a self, container: &'a str) -> BlobFuture<'a, Vec<String>> {
        ready(self.with(container, |c| c.objects.keys().cloned().collect()))
    }
}
