//! One component instance and what it runs with: the state of its store
//! (WASI, HTTP, the plugins' per-component bindings, limits), how instances
//! are created fresh or reused, and how a plugin calls into a component.
//!
//! This layer sits on the [`engine`](crate::engine) and
//! [`egress`](crate::egress); plugins and the host build on it.

mod bindings;
pub(crate) mod invoke;
pub(crate) mod pool;
pub(crate) mod store;
mod view;

pub use self::bindings::{Bindings, BindingsBuilder};
pub use self::invoke::ComponentHandle;
pub use self::pool::{DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONCURRENCY, HttpWorld, Reuse};
pub use self::store::{HostBusy, StoreState};
pub use self::view::{PluginView, Plugins};
