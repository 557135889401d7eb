//! Backends shared by the capability plugins: which backend a workload's
//! host interface entry asks for (parsed once, into [`BackendChoice`]), one
//! cache of connected backends for every plugin ([`Backends`]), and the
//! error a backend fails with ([`BackendError`]).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::PluginError;
use crate::types::WitInterface;

/// Any error, as a backend's cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a backend could not be reached or failed: what was attempted (naming
/// the backend and its address) and, when there is one, the cause.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct BackendError {
    context: String,
    #[source]
    source: Option<BoxError>,
}

impl BackendError {
    /// A failure with a cause, e.g. `cannot connect to NATS at nats://x`.
    pub fn new(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A failure that is its own explanation.
    pub fn message(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }

    /// What was attempted, and the cause.
    pub fn into_parts(self) -> (String, Option<BoxError>) {
        (self.context, self.source)
    }

    /// The context and every cause, for places that show one line (a
    /// guest's error string, a status message).
    pub fn report(&self) -> String {
        crate::types::error_report(self)
    }
}

/// What a guest sees of a backend error: the WIT interfaces carry strings.
impl From<BackendError> for String {
    fn from(error: BackendError) -> Self {
        error.report()
    }
}

/// Turns a backend result into what a WIT function returns to the guest.
pub(crate) trait ForGuest<T> {
    /// The result with the error as one line of text.
    fn for_guest(self) -> Result<T, String>;
}

impl<T> ForGuest<T> for Result<T, BackendError> {
    fn for_guest(self) -> Result<T, String> {
        self.map_err(String::from)
    }
}

/// Which backend one host interface entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendChoice {
    /// No `backend` key: the plugin's default.
    Default,
    /// In-process, shared by every workload that asks for it.
    Memory,
    /// A directory on the host.
    Filesystem {
        /// The directory.
        path: PathBuf,
    },
    /// A NATS server (JetStream where the capability needs it).
    Nats {
        /// Its URL.
        url: String,
    },
    /// A Redis server.
    Redis {
        /// Its URL.
        url: String,
    },
}

impl BackendChoice {
    /// Parses an entry: `backend` is one of `kinds`, the keys it needs are
    /// present, and every other key is one the backend reads or one of
    /// `extra` (keys of the capability itself, such as `bucket`). The error
    /// names the offending key.
    pub(crate) fn parse(
        plugin: &str,
        entry: &WitInterface,
        kinds: &[&str],
        extra: &[&str],
    ) -> Result<Self, PluginError> {
        let config = &entry.config;
        let kind = config.get("backend").map(String::as_str);
        let needs: &[&str] = match kind {
            None | Some("memory") => &[],
            Some("filesystem") => &["path"],
            Some("nats" | "redis") => &["url"],
            Some(_) => &[],
        };
        let mut known: Vec<&str> = vec!["backend"];
        known.extend_from_slice(needs);
        known.extend_from_slice(extra);
        // Keys another backend would read: a typo is told apart from a key
        // of the wrong backend.
        for key in config.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let message = match (kind, key.as_str()) {
                (Some(kind), "url" | "path") => {
                    format!(
                        "backend `{kind}` does not read it (its keys: {})",
                        known.join(", ")
                    )
                }
                _ => format!("unknown key (known keys: {})", known.join(", ")),
            };
            return Err(PluginError::config(plugin, key, message));
        }
        let setting = |key: &str| {
            config.get(key).cloned().ok_or_else(|| {
                PluginError::config(
                    plugin,
                    key,
                    format!("required by backend `{}`", kind.unwrap_or_default()),
                )
            })
        };
        let choice = match kind {
            None => Self::Default,
            Some(kind) if !kinds.contains(&kind) => {
                return Err(PluginError::config(
                    plugin,
                    "backend",
                    format!("unknown backend `{kind}` (known: {})", kinds.join(", ")),
                ));
            }
            Some("memory") => Self::Memory,
            Some("filesystem") => Self::Filesystem {
                path: setting("path")?.into(),
            },
            Some("nats") => Self::Nats {
                url: setting("url")?,
            },
            Some(_) => Self::Redis {
                url: setting("url")?,
            },
        };
        Ok(choice)
    }

    /// The cache key of this backend for `capability`.
    pub fn key(&self, capability: &'static str) -> BackendKey {
        let (kind, location) = match self {
            Self::Default => ("default", String::new()),
            Self::Memory => ("memory", String::new()),
            Self::Filesystem { path } => ("filesystem", path.display().to_string()),
            Self::Nats { url } => ("nats", url.clone()),
            Self::Redis { url } => ("redis", url.clone()),
        };
        BackendKey {
            capability,
            kind,
            location,
        }
    }
}

/// A plugin's default backend and the cache of those workloads choose.
pub(crate) struct BackendSet<B: ?Sized> {
    default: Arc<B>,
    cache: Backends,
}

impl<B: ?Sized + Send + Sync + 'static> BackendSet<B> {
    pub(crate) fn new(default: Arc<B>) -> Self {
        Self {
            default,
            cache: Backends::new(),
        }
    }

    /// Shares `cache` (with other plugins) instead of a cache of its own.
    pub(crate) fn share(&mut self, cache: Backends) {
        self.cache = cache;
    }

    /// The default backend.
    pub(crate) fn default_backend(&self) -> Arc<B> {
        self.default.clone()
    }

    /// The backend `choice` names: the default, or the one `make` builds,
    /// once per distinct choice.
    pub(crate) async fn choose<F, Fut>(
        &self,
        capability: &'static str,
        choice: BackendChoice,
        make: F,
    ) -> Result<Arc<B>, PluginError>
    where
        F: FnOnce(BackendChoice) -> Fut,
        Fut: Future<Output = Result<Arc<B>, BackendError>>,
    {
        if choice == BackendChoice::Default {
            return Ok(self.default.clone());
        }
        self.cache
            .get_or_connect(choice.key(capability), || make(choice))
            .await
            .map_err(|e| PluginError::backend(capability, e))
    }
}

/// Opens a backend over a directory; the error names it.
pub(crate) fn in_directory<T>(
    path: PathBuf,
    open: impl FnOnce(PathBuf) -> std::io::Result<T>,
) -> Result<T, BackendError> {
    let display = path.display().to_string();
    open(path).map_err(|e| BackendError::new(format!("cannot use directory `{display}`"), e))
}

/// Names one connected backend: the capability that uses it, the kind of
/// backend and where it is. Equal settings share one backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendKey {
    /// The plugin's capability, e.g. `wasi-keyvalue`.
    pub capability: &'static str,
    /// `memory`, `filesystem`, `nats`, `redis`.
    pub kind: &'static str,
    /// URL or path; empty for in-process backends.
    pub location: String,
}

type Slot = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;

/// Connected backends of every plugin, by [`BackendKey`]. Cheap to clone
/// (clones share the cache).
///
/// Concurrent requests for one key wait for a single connect; requests for
/// other keys never wait for it (no lock is held across a connect), so one
/// unreachable server does not stall starts that use healthy ones. A
/// failed connect is not kept: the next request tries again.
///
/// ```
/// # async fn demo() -> Result<(), std::io::Error> {
/// use std::sync::Arc;
/// use wash_runtime::plugin::{BackendKey, Backends};
///
/// let backends = Backends::new();
/// let key = BackendKey { capability: "example", kind: "memory", location: String::new() };
/// let first: Arc<String> = backends
///     .get_or_connect(key.clone(), || async {
///         Ok::<_, std::io::Error>(Arc::new("connected".to_string()))
///     })
///     .await?;
/// let again: Arc<String> = backends
///     .get_or_connect(key, || async { Err(std::io::Error::other("not called again")) })
///     .await?;
/// assert!(Arc::ptr_eq(&first, &again));
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Backends {
    slots: Arc<Mutex<HashMap<(TypeId, BackendKey), Slot>>>,
}

impl Backends {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend under `key`, made by `connect` if there is none yet.
    pub async fn get_or_connect<T, E, F, Fut>(&self, key: BackendKey, connect: F) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        // The map's lock is held only to find the key's slot; the connect
        // runs under the slot's own once-cell.
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((TypeId::of::<T>(), key))
            .or_default()
            .clone();
        let value = slot
            .get_or_try_init(|| async {
                let value = connect().await?;
                Ok::<_, E>(Arc::new(value) as Arc<dyn Any + Send + Sync>)
            })
            .await?;
        // The type is part of the key, so the downcast holds.
        match value.downcast_ref::<T>() {
            Some(value) => Ok(value.clone()),
            None => unreachable_type(),
        }
    }

    /// How many backends are connected (for tests and metrics).
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|slot| slot.initialized())
            .count()
    }

    /// Whether no backend is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Slots are keyed by the value's type, so a value of another type is never
/// found; this only satisfies the compiler.
#[cold]
fn unreachable_type<T, E>() -> Result<T, E> {
    unreachable!("backend slots are keyed by their value type")
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("connected", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> WitInterface {
        WitInterface {
            config: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn choices_are_typed_and_strangers_named() {
        let kinds = &["memory", "filesystem", "nats", "redis"];
        let parse = |pairs| BackendChoice::parse("kv", &entry(pairs), kinds, &["bucket"]);
        assert_eq!(parse(&[]).unwrap(), BackendChoice::Default);
        assert_eq!(
            parse(&[("backend", "nats"), ("url", "nats://x")]).unwrap(),
            BackendChoice::Nats {
                url: "nats://x".into()
            }
        );
        let error = parse(&[("backend", "nats"), ("urll", "x")]).unwrap_err();
        assert!(error.to_string().contains("`urll`"), "{error}");
        let error = parse(&[("backend", "nats"), ("path", "/x"), ("url", "u")]).unwrap_err();
        assert!(error.to_string().contains("does not read it"), "{error}");
        let error = parse(&[("backend", "redis")]).unwrap_err();
        assert!(
            error.to_string().contains("required by backend `redis`"),
            "{error}"
        );
        let error = parse(&[("backend", "etcd")]).unwrap_err();
        assert!(
            error.to_string().contains("unknown backend `etcd`"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_failed_connect_is_tried_again() {
        let backends = Backends::new();
        let key = BackendChoice::Memory.key("test");
        let failed: Result<Arc<u8>, &str> = backends
            .get_or_connect(key.clone(), || async { Err("down") })
            .await;
        assert_eq!(failed, Err("down"));
        assert!(backends.is_empty());
        let value: Result<Arc<u8>, &str> = backends
            .get_or_connect(key, || async { Ok(Arc::new(7)) })
            .await;
        assert_eq!(value, Ok(Arc::new(7)));
        assert_eq!(backends.len(), 1);
    }
}
