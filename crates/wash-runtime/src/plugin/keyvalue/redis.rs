//! The Redis key-value backend: bucket `b`'s key `k` is Redis key `b:k`;
//! increments are Redis's own atomic `INCRBY`.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{KeyValueBackend, KeyValueBucket, KvError, KvFuture, PAGE};
use crate::plugin::BackendError;

/// Buckets as key prefixes in one Redis database.
pub struct RedisKeyValue {
    url: String,
    connection: ConnectionManager,
}

impl RedisKeyValue {
    /// Connects to `url` (`redis://host:port/db`). The connection heals
    /// itself after Redis restarts; calls meanwhile fail with an error.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let client = redis::Client::open(url)
            .map_err(|e| BackendError::new(format!("invalid Redis URL `{url}`"), e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| BackendError::new(format!("cannot connect to Redis at {url}"), e))?;
        Ok(Self {
            url: url.to_string(),
            connection,
        })
    }
}

struct RedisBucket {
    prefix: String,
    /// The prefix with glob characters escaped, for `SCAN MATCH`.
    pattern: String,
    connection: ConnectionManager,
}

fn redis_error(error: redis::RedisError) -> KvError {
    KvError::Other(format!("Redis: {error}"))
}

impl KeyValueBackend for RedisKeyValue {
    fn describe(&self) -> String {
        format!("Redis at {}", self.url)
    }

    fn open<'a>(&'a self, name: &'a str) -> KvFuture<'a, Arc<dyn KeyValueBucket>> {
        let prefix = format!("{name}:");
        let mut pattern = String::new();
        for c in prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        let bucket: Arc<dyn KeyValueBucket> = Arc::new(RedisBucket {
            prefix,
            pattern,
            connection: self.connection.clone(),
        });
        futures::future::ready(Ok(bucket)).boxed()
    }
}

impl RedisBucket {
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl KeyValueBucket for RedisBucket {
    fn get<'a>(&'a self, key: &'a str) -> KvFuture<'a, Option<Vec<u8>>> {
        async move {
            redis::cmd("GET")
                .arg(self.key(key))
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)
        }
        .boxed()
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> KvFuture<'a, ()> {
        async move {
            redis::cmd("SET")
                .arg(self.key(key))
                .arg(value)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)
        }
        .boxed()
    }

    fn delete<'a>(&'a self, key: &'a str) -> KvFuture<'a, ()> {
        async move {
            redis::cmd("DEL")
                .arg(self.key(key))
                .query_async::<u64>(&mut self.connection.clone())
                .await
                .map(drop)
                .map_err(redis_error)
        }
        .boxed()
    }

    fn exists<'a>(&'a self, key: &'a str) -> KvFuture<'a, bool> {
        async move {
            redis::cmd("EXISTS")
                .arg(self.key(key))
                .query_async::<u64>(&mut self.connection.clone())
                .await
                .map(|n| n > 0)
                .map_err(redis_error)
        }
        .boxed()
    }

    fn list_keys(&self, cursor: Option<u64>) -> KvFuture<'_, (Vec<String>, Option<u64>)> {
        async move {
            // SCAN's own cursor: 0 starts, 0 returned means done.
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor.unwrap_or(0))
                .arg("MATCH")
                .arg(&self.pattern)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)?;
            let keys = keys
                .into_iter()
                .filter_map(|k| k.strip_prefix(&self.prefix).map(str::to_string))
                .collect();
            Ok((keys, (next != 0).then_some(next)))
        }
        .boxed()
    }

    fn increment<'a>(&'a self, key: &'a str, delta: u64) -> KvFuture<'a, u64> {
        async move {
            let delta = i64::try_from(delta)
                .map_err(|_| KvError::Other("Redis increments are limited to i64".into()))?;
            let new: i64 = redis::cmd("INCRBY")
                .arg(self.key(key))
                .arg(delta)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(redis_error)?;
            u64::try_from(new).map_err(|_| KvError::Other("the counter is negative".into()))
        }
        .boxed()
    }
}
