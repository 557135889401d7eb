//! `wasmcloud:secrets@0.1.0-draft`: secrets as opaque handles, revealed only
//! on request.
//!
//! Values come from the workload's `wasmcloud:secrets` host interface config
//! (`<name>: env:<VAR>` or `<name>: file:<path>`), read once at bind time.
//! They never appear in logs, errors or `Debug` output: [`SecretValue`]
//! prints as `<redacted>` and is zeroed when dropped.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Resource;
use zeroize::Zeroizing;

use self::bindings::wasmcloud::secrets::reveal;
use self::bindings::wasmcloud::secrets::store::{
    self, SecretValue as WitSecretValue, SecretsError,
};
use super::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, StoreState, WorkloadBind,
};
use crate::instance::{PluginView, Plugins};

/// Host bindings generated from `wit/`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wash:host/secrets",
        imports: { default: async | trappable },
        require_store_data_send: true,
        with: {
            "wasmcloud:secrets/store.secret": crate::plugin::secrets::Secret,
        },
    });
}

const ID: &str = "wasmcloud-secrets";

/// A secret's bytes. Never printed.
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The `secret` resource a guest holds: a handle, not the value.
#[derive(Debug)]
pub struct Secret(Arc<SecretValue>);

/// Provides `wasmcloud:secrets/store` and `reveal`.
#[derive(Debug, Default)]
pub struct Secrets;

/// A workload's secrets by name.
pub type SecretMap = HashMap<String, Arc<SecretValue>>;

struct SecretsBinding {
    secrets: Arc<SecretMap>,
}

impl Secrets {
    /// A plugin with no secrets yet.
    pub fn new() -> Self {
        Self
    }

    fn resolve(name: &str, source: &str) -> Result<SecretValue, PluginError> {
        let value = if let Some(var) = source.strip_prefix("env:") {
            std::env::var(var).map_err(|_| {
                PluginError::config(ID, name, format!("environment variable `{var}` is not set"))
            })?
        } else if let Some(path) = source.strip_prefix("file:") {
            std::fs::read_to_string(path).map_err(|e| {
                PluginError::config(ID, name, format!("cannot read secret file `{path}`: {e}"))
            })?
        } else {
            return Err(PluginError::config(
                ID,
                name,
                "the source must be `env:<VAR>` or `file:<path>`",
            ));
        };
        Ok(SecretValue(Zeroizing::new(value.into_bytes())))
    }
}

impl HostPlugin for Secrets {
    /// The workload's secrets, read once at bind time.
    type WorkloadState = Arc<SecretMap>;

    fn id(&self) -> &str {
        ID
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "wasmcloud",
            "secrets",
            "0.1.0-draft",
            &["store", "reveal"],
        )]
    }

    fn on_workload_bind<'a>(
        &'a self,
        workload: &'a WorkloadBind<'a>,
    ) -> PluginFuture<'a, Arc<SecretMap>> {
        Box::pin(async move {
            let mut secrets = HashMap::new();
            for interface in &workload.interfaces {
                for (name, source) in &interface.config {
                    secrets.insert(name.clone(), Arc::new(Self::resolve(name, source)?));
                }
            }
            Ok(Arc::new(secrets))
        })
    }

    fn on_workload_item_bind(
        &self,
        secrets: &Arc<SecretMap>,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        item.bindings.insert(SecretsBinding {
            secrets: secrets.clone(),
        });
        store::add_to_linker::<StoreState, Plugins>(item.linker, StoreState::plugin_view)
            .map_err(|e| PluginError::link(ID, "wasmcloud:secrets/store", e))?;
        reveal::add_to_linker::<StoreState, Plugins>(item.linker, StoreState::plugin_view)
            .map_err(|e| PluginError::link(ID, "wasmcloud:secrets/reveal", e))
    }
}

impl store::Host for PluginView<'_> {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Secret>, SecretsError>> {
        let Some(binding) = self.bindings.get::<SecretsBinding>() else {
            return Err(wasmtime::format_err!(
                "wasmcloud:secrets is not bound for this component"
            ));
        };
        match binding.secrets.get(&key) {
            Some(value) => Ok(Ok(self.table.push(Secret(value.clone()))?)),
            None => Ok(Err(SecretsError::NotFound)),
        }
    }
}

impl store::HostSecret for PluginView<'_> {
    async fn drop(&mut self, secret: Resource<Secret>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}

impl reveal::Host for PluginView<'_> {
    async fn reveal(&mut self, secret: Resource<Secret>) -> wasmtime::Result<WitSecretValue> {
        let value = &self.table.get(&secret)?.0;
        Ok(match std::str::from_utf8(&value.0) {
            Ok(text) => WitSecretValue::String(text.to_string()),
            Err(_) => WitSecretValue::Bytes(value.0.to_vec()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_print() {
        let value = SecretValue(Zeroizing::new(b"hunter2".to_vec()));
        assert_eq!(format!("{value:?}"), "SecretValue(<redacted>)");
        let handle = Secret(Arc::new(value));
        assert!(!format!("{handle:?}").contains("hunter2"));
    }

    #[test]
    fn sources_must_be_env_or_file() {
        let err = Secrets::resolve("k", "literal:oops").unwrap_err();
        assert!(
            err.to_string().contains("`env:<VAR>` or `file:<path>`"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("oops"),
            "the value stays out of errors"
        );
    }
}
