//! `wasi:keyvalue` store and atomics as a component plugin, over its own
//! in-memory map. Every key is kept under the calling workload's id (from
//! `wasmcloud:host/identity`), so workloads never see each other's data.
//! The host serves one call at a time, so the map needs no lock.

wit_bindgen::generate!({ path: "wit", world: "plugin", generate_all });

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use exports::wasi::keyvalue::atomics;
use exports::wasi::keyvalue::store::{self, BucketBorrow, Error, GuestBucket, KeyResponse};
use wasmcloud::host::identity;

/// One bucket of one workload: key -> value.
type Bucket = Rc<RefCell<BTreeMap<String, Vec<u8>>>>;

/// (workload, bucket) -> its keys.
type Map = BTreeMap<(String, String), Bucket>;

thread_local! {
    static DATA: RefCell<Map> = const { RefCell::new(BTreeMap::new()) };
}

/// Keys listed per page.
const PAGE: usize = 100;

struct KvPlugin;

/// An open bucket: the keys of the bucket it names, for the workload that
/// opened it (found once, at open).
struct OpenBucket(Bucket);

impl OpenBucket {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> T) -> T {
        f(&mut self.0.borrow_mut())
    }
}

impl store::Guest for KvPlugin {
    type Bucket = OpenBucket;

    fn open(identifier: String) -> Result<store::Bucket, Error> {
        let keys = DATA.with_borrow_mut(|data| {
            data.entry((identity::caller(), identifier))
                .or_default()
                .clone()
        });
        Ok(store::Bucket::new(OpenBucket(keys)))
    }
}

impl GuestBucket for OpenBucket {
    fn get(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.with(|m| m.get(&key).cloned()))
    }

    fn set(&self, key: String, value: Vec<u8>) -> Result<(), Error> {
        self.with(|m| m.insert(key, value));
        Ok(())
    }

    fn delete(&self, key: String) -> Result<(), Error> {
        self.with(|m| m.remove(&key));
        Ok(())
    }

    fn exists(&self, key: String) -> Result<bool, Error> {
        Ok(self.with(|m| m.contains_key(&key)))
    }

    fn list_keys(&self, cursor: Option<u64>) -> Result<KeyResponse, Error> {
        let skip = cursor.unwrap_or(0) as usize;
        let keys: BTreeSet<String> = self.with(|m| m.keys().cloned().collect());
        let page: Vec<String> = keys.iter().skip(skip).take(PAGE).cloned().collect();
        let next = skip + page.len();
        Ok(KeyResponse {
            cursor: (next < keys.len()).then_some(next as u64),
            keys: page,
        })
    }
}

impl atomics::Guest for KvPlugin {
    fn increment(bucket: BucketBorrow<'_>, key: String, delta: u64) -> Result<u64, Error> {
        let bucket: &OpenBucket = bucket.get();
        bucket.with(|m| {
            let current = match m.get(&key) {
                None => 0,
                Some(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| Error::Other(format!("`{key}` does not hold a number")))?,
            };
            let next = current + delta;
            m.insert(key, next.to_string().into_bytes());
            Ok(next)
        })
    }
}

export!(KvPlugin);
