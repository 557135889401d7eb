//! The NATS JetStream KV backend: one KV bucket per `open(identifier)`,
//! created when missing. Increments are compare-and-set loops (safe across
//! hosts), serialized per key within this host so they rarely collide.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::{FutureExt, TryStreamExt};

use super::{KeyValueBackend, KeyValueBucket, KvError, KvFuture, PAGE, add, parse_counter};
use crate::plugin::BackendError;
use crate::plugin::nats::{connect, decode_key, encode_bucket, encode_key};

/// Locks striping the keys of a bucket, for local increments.
const STRIPES: usize = 64;

/// Buckets in a NATS JetStream KV store.
pub struct NatsKeyValue {
    url: String,
    jetstream: jetstream::Context,
    buckets: tokio::sync::Mutex<HashMap<String, Arc<NatsBucket>>>,
}

impl NatsKeyValue {
    /// Connects to the NATS server at `url`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let client = connect(url).await?;
        Ok(Self::with_client(url, client))
    }

    /// Uses an existing connection.
    pub fn with_client(url: &str, client: async_nats::Client) -> Self {
        Self {
            url: url.to_string(),
            jetstream: jetstream::new(client),
            buckets: Default::default(),
        }
    }
}

fn nats_error(what: &str, error: impl std::fmt::Display) -> KvError {
    KvError::Other(format!("NATS {what}: {error}"))
}

struct NatsBucket {
    store: kv::Store,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl KeyValueBackend for NatsKeyValue {
    fn describe(&self) -> String {
        format!("NATS JetStream KV at {}", self.url)
    }

    fn open<'a>(&'a self, name: &'a str) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        async move {
            let mut buckets = self.buckets.lock().await;
            if let Some(bucket) = buckets.get(name) {
                return Ok(bucket.clone() as Arc<dyn KeyValueBucket>);
            }
            let bucket_name = encode_bucket(name);
            let store = match self.jetstream.get_key_value(&bucket_name).await {
                Ok(store) => store,
                Err(_) => self
                    .jetstream
                    .create_key_value(kv::Config {
                        bucket: bucket_name.clone(),
                        history: 1,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| nats_error(&format!("cannot open bucket `{name}`"), e))?,
            };
            let bucket = Arc::new(NatsBucket {
                store,
                stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            });
            buckets.insert(name.to_string(), bucket.clone());
            Ok(bucket as Arc<dyn KeyValueBucket>)
        }
        .boxed()
    }
}

impl NatsBucket {
    fn stripe(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        &self.stripes[(hasher.finish() as usize) % STRIPES]
    }
}

impl KeyValueBucket for NatsBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        async move {
            let value = self
                .store
                .get(encode_key(key))
                .await
                .map_err(|e| nats_error("get", e))?;
            Ok(value.map(|v| v.to_vec()))
        }
        .boxed()
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        async move {
            self.store
                .put(encode_key(key), Bytes::from(value))
                .await
                .map(drop)
                .map_err(|e| nats_error("put", e))
        }
        .boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        async move {
            self.store
                .delete(encode_key(key))
                .await
                .map_err(|e| nats_error("delete", e))
        }
        .boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        async move { Ok(self.get(key).await?.is_some()) }.boxed()
    }

    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        async move {
            let keys = self.store.keys().await.map_err(|e| nats_error("keys", e))?;
            let mut keys: Vec<String> = keys
                .map_ok(|k| decode_key(&k))
                .try_collect()
                .await
                .map_err(|e| nats_error("keys", e))?;
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
            let _local = self.stripe(key).lock().await;
            let encoded = encode_key(key);
            // Other hosts may write concurrently: retry on a lost race.
            for _ in 0..100 {
                let entry = self
                    .store
                    .entry(encoded.clone())
                    .await
                    .map_err(|e| nats_error("get", e))?;
                let live = entry.as_ref().filter(|e| e.operation == kv::Operation::Put);
                let new = add(parse_counter(live.map(|e| e.value.as_ref()))?, delta)?;
                let value = Bytes::from(new.to_string());
                // Writing against the revision read: another writer in
                // between makes it fail, and the loop reads again.
                match &entry {
                    None => match self.store.create(&encoded, value).await {
                        Ok(_) => return Ok(new),
                        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(nats_error("increment", e)),
                    },
                    Some(entry) => match self.store.update(&encoded, value, entry.revision).await {
                        Ok(_) => return Ok(new),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                        Err(e) => return Err(nats_error("increment", e)),
                    },
                }
            }
            Err(KvError::Other(
                "NATS increment: too much contention on the key".into(),
            ))
        }
        .boxed()
    }
}
