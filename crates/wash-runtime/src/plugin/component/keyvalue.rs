//! The typed path for `wasi:keyvalue` plugins. A plugin exporting the whole
//! of `wasi:keyvalue/store` and `atomics` is called through bindings
//! generated for those interfaces, not through `Val`s: arguments and
//! results (a value's bytes, above all) are copied between the workload's
//! memory and the plugin's without a value tree in between. Buckets are
//! handles into the plugin's resource table, as on the generic path.

use std::sync::Arc;

use wasmtime::component::{InstancePre, Linker, Resource, ResourceAny};

use super::runtime::PluginRuntime;
use crate::instance::invoke::InstanceStore;
use crate::instance::{PluginView, Plugins, StoreState};

mod provider {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/keyvalue-provider",
        exports: { default: async },
    });
}

mod bridge {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/keyvalue-bridge",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasi:keyvalue/store.bucket": super::PluginBucket,
        },
    });
}

use self::bridge::wasi::keyvalue::{atomics, store};
use self::provider::exports::wasi::keyvalue::store as plugin_store;

/// A bucket a plugin opened, as a workload holds it: the rep is the handle
/// into the plugin's resource table.
pub struct PluginBucket;

/// Where a plugin's `wasi:keyvalue` exports are.
pub(crate) struct ProviderIndices(provider::KeyvalueProviderIndices);

impl ProviderIndices {
    /// Found when the plugin exports all of store and atomics.
    pub(crate) fn of(pre: &InstancePre<StoreState>) -> Option<Self> {
        provider::KeyvalueProviderIndices::new(pre).ok().map(Self)
    }

    /// The typed exports of one instance.
    pub(crate) fn load(
        &self,
        store: &mut InstanceStore,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Provider> {
        Ok(Provider(self.0.load(&mut **store, instance)?))
    }
}

/// One instance's typed `wasi:keyvalue` exports.
pub(crate) struct Provider(provider::KeyvalueProvider);

/// Whether `import` is an interface this path serves.
pub(crate) fn bridges(import: &str) -> bool {
    let Some(rest) = import.strip_prefix("wasi:keyvalue/") else {
        return false;
    };
    let (name, version) = rest.split_once('@').unwrap_or((rest, ""));
    matches!(name, "store" | "atomics") && crate::plugin::same_line(version, "0.2.0-draft")
}

/// What the workload's host functions reach the plugin through.
struct Bridge {
    runtime: Arc<PluginRuntime>,
    caller: Arc<str>,
}

/// Links `wasi:keyvalue/store` and `atomics` into a workload, served by
/// `runtime`'s plugin for `caller`.
pub(crate) fn link(
    linker: &mut Linker<StoreState>,
    bindings: &mut crate::instance::BindingsBuilder,
    imports: &[String],
    runtime: Arc<PluginRuntime>,
    caller: Arc<str>,
) -> wasmtime::Result<()> {
    bindings.insert(Bridge { runtime, caller });
    if imports.iter().any(|i| i.starts_with("wasi:keyvalue/store")) {
        store::add_to_linker::<StoreState, Plugins>(linker, StoreState::plugin_view)?;
    }
    if imports
        .iter()
        .any(|i| i.starts_with("wasi:keyvalue/atomics"))
    {
        atomics::add_to_linker::<StoreState, Plugins>(linker, StoreState::plugin_view)?;
    }
    Ok(())
}

/// The plugin serving this store's workload, and the caller to name:
/// borrowed, since a call holds no other part of the store's state.
fn bridge<'v>(view: &'v PluginView<'_>) -> wasmtime::Result<&'v Bridge> {
    view.bindings
        .get::<Bridge>()
        .ok_or_else(|| wasmtime::format_err!("wasi:keyvalue is not bound to a plugin here"))
}

/// The plugin's error as the workload's.
fn to_workload(error: plugin_store::Error) -> store::Error {
    match error {
        plugin_store::Error::NoSuchStore => store::Error::NoSuchStore,
        plugin_store::Error::AccessDenied => store::Error::AccessDenied,
        plugin_store::Error::Other(message) => store::Error::Other(message),
    }
}

/// An instance's typed exports, and its store to call them in.
fn typed(
    live: &mut super::runtime::Live,
) -> wasmtime::Result<(&provider::KeyvalueProvider, &mut InstanceStore)> {
    let keyvalue = live
        .keyvalue
        .as_ref()
        .map(|p| &p.0)
        .ok_or_else(|| wasmtime::format_err!("the plugin's wasi:keyvalue is not bound"))?;
    Ok((keyvalue, &mut live.store))
}

/// Calls `call` with the plugin's bucket behind `bucket`, in the instance
/// that owns it.
async fn on_bucket<R>(
    Bridge { runtime, caller }: &Bridge,
    bucket: &Resource<PluginBucket>,
    function: &str,
    call: impl AsyncFnOnce(
        &provider::KeyvalueProvider,
        &mut InstanceStore,
        ResourceAny,
    ) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    let (_, answer) = runtime
        .call_typed(
            Some(bucket.rep()),
            caller,
            function,
            async |live, resource| {
                let (keyvalue, store) = typed(live)?;
                let resource =
                    resource.ok_or_else(|| wasmtime::format_err!("no bucket behind the handle"))?;
                call(keyvalue, store, resource).await
            },
        )
        .await
        .map_err(wasmtime::Error::new)?;
    Ok(answer)
}

impl store::Host for PluginView<'_> {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<PluginBucket>, store::Error>> {
        let Bridge { runtime, caller } = bridge(self)?;
        let (slot, opened) = runtime
            .call_typed(None, caller, "open", async |live, _| {
                let (keyvalue, store) = typed(live)?;
                keyvalue
                    .wasi_keyvalue_store()
                    .call_open(&mut **store, &identifier)
                    .await
            })
            .await
            .map_err(wasmtime::Error::new)?;
        Ok(match opened {
            Ok(bucket) => Ok(Resource::new_own(runtime.adopt(slot, bucket))),
            Err(e) => Err(to_workload(e)),
        })
    }
}

impl store::HostBucket for PluginView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<PluginBucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        on_bucket(bridge(self)?, &bucket, "get", async |kv, store, b| {
            kv.wasi_keyvalue_store()
                .bucket()
                .call_get(&mut **store, b, &key)
                .await
        })
        .await
        .map(|r| r.map_err(to_workload))
    }

    async fn set(
        &mut self,
        bucket: Resource<PluginBucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        on_bucket(bridge(self)?, &bucket, "set", async |kv, store, b| {
            kv.wasi_keyvalue_store()
                .bucket()
                .call_set(&mut **store, b, &key, &value)
                .await
        })
        .await
        .map(|r| r.map_err(to_workload))
    }

    async fn delete(
        &mut self,
        bucket: Resource<PluginBucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        on_bucket(bridge(self)?, &bucket, "delete", async |kv, store, b| {
            kv.wasi_keyvalue_store()
                .bucket()
                .call_delete(&mut **store, b, &key)
                .await
        })
        .await
        .map(|r| r.map_err(to_workload))
    }

    async fn exists(
        &mut self,
        bucket: Resource<PluginBucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, store::Error>> {
        on_bucket(bridge(self)?, &bucket, "exists", async |kv, store, b| {
            kv.wasi_keyvalue_store()
                .bucket()
                .call_exists(&mut **store, b, &key)
                .await
        })
        .await
        .map(|r| r.map_err(to_workload))
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<PluginBucket>,
        cursor: Option<u64>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        on_bucket(bridge(self)?, &bucket, "list-keys", async |kv, store, b| {
            kv.wasi_keyvalue_store()
                .bucket()
                .call_list_keys(&mut **store, b, cursor)
                .await
        })
        .await
        .map(|r| {
            r.map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(to_workload)
        })
    }

    async fn drop(&mut self, bucket: Resource<PluginBucket>) -> wasmtime::Result<()> {
        bridge(self)?
            .runtime
            .drop_resource(bucket.rep())
            .await
            .map_err(wasmtime::Error::new)
    }
}

impl atomics::Host for PluginView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<PluginBucket>,
        key: String,
        delta: u64,
    ) -> wasmtime::Result<Result<u64, store::Error>> {
        on_bucket(bridge(self)?, &bucket, "increment", async |kv, store, b| {
            kv.wasi_keyvalue_atomics()
                .call_increment(&mut **store, b, &key, delta)
                .await
        })
        .await
        .map(|r| r.map_err(to_workload))
    }
}
