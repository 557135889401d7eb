//! The in-memory key-value backend: per-process, gone on restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;

use super::{KeyValueBackend, KeyValueBucket, KvFuture, PAGE, add, parse_counter};

/// Buckets held in memory.
#[derive(Debug, Default)]
pub struct InMemoryKeyValue {
    buckets: Mutex<HashMap<String, Arc<MemoryBucket>>>,
}

#[derive(Debug, Default)]
struct MemoryBucket {
    values: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBucket {
    // Critical sections never panic, so a poisoned lock is still consistent.
    fn values(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.values.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyValueBackend for InMemoryKeyValue {
    fn describe(&self) -> String {
        "in-memory".into()
    }

    fn open<'a>(&'a self, name: &'a str) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket: Arc<dyn KeyValueBucket> = buckets.entry(name.to_string()).or_default().clone();
        futures::future::ready(Ok(bucket)).boxed()
    }
}

impl KeyValueBucket for MemoryBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        futures::future::ready(Ok(self.values().get(key).cloned())).boxed()
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        self.values().insert(key.to_string(), value);
        futures::future::ready(Ok(())).boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        self.values().remove(key);
        futures::future::ready(Ok(())).boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        futures::future::ready(Ok(self.values().contains_key(key))).boxed()
    }

    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        let values = self.values();
        let start = cursor.unwrap_or(0) as usize;
        let keys: Vec<String> = values.keys().skip(start).take(PAGE).cloned().collect();
        let next = (start + keys.len() < values.len()).then(|| (start + keys.len()) as u64);
        futures::future::ready(Ok((keys, next))).boxed()
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64> {
        let mut values = self.values();
        let result = parse_counter(values.get(key).map(Vec::as_slice))
            .and_then(|old| add(old, delta))
            .inspect(|new| {
                values.insert(key.to_string(), new.to_string().into_bytes());
            });
        futures::future::ready(result).boxed()
    }
}
