//! Per-component plugin state, reached from a store by its type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// Values by type. A `TypeId` is a hash already: foldhash mixes it in a few
/// instructions where the default SipHash takes tens of nanoseconds, paid
/// on every call of an import that looks its plugin's state up.
type ByType = HashMap<TypeId, Arc<dyn Any + Send + Sync>, foldhash::fast::RandomState>;

/// Plugin state of one component, shared by all its instances. Each plugin
/// stores values of its own types; lookups by type return `None` when the
/// plugin did not bind the component, never panic.
#[derive(Default, Clone)]
pub struct Bindings {
    values: Arc<ByType>,
}

impl Bindings {
    /// The value of type `T`, if a plugin stored one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>())?.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for Bindings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bindings")
            .field("values", &self.values.len())
            .finish()
    }
}

/// Collects [`Bindings`] while a component is being linked.
#[derive(Default)]
pub struct BindingsBuilder {
    values: ByType,
}

impl BindingsBuilder {
    /// Stores `value`, replacing one of the same type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Freezes the collected values.
    pub fn build(self) -> Bindings {
        Bindings {
            values: Arc::new(self.values),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_by_type() {
        #[derive(Debug, PartialEq)]
        struct Mine(u32);
        struct Other;
        let mut builder = BindingsBuilder::default();
        builder.insert(Mine(7));
        let bindings = builder.build();
        assert_eq!(bindings.get::<Mine>(), Some(&Mine(7)));
        assert!(bindings.get::<Other>().is_none());
    }
}
