//! The keys each config section knows, read off the types themselves (so
//! they cannot drift), for "did you mean" hints on unknown keys.

use serde::Deserialize;
use serde::de::{self, Visitor};

use super::{
    BuildConfig, Config, DevComponent, DevConfig, DevVolume, HostConfig, NewConfig, WitConfig,
    WitRegistry, WorkloadConfig,
};

/// The field names of a struct's derived `Deserialize`: a deserializer
/// that records what `deserialize_struct` is asked for, then stops.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldCollector(&mut fields));
    fields
}

struct FieldCollector<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Collected;

impl std::fmt::Display for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fields collected")
    }
}

impl std::error::Error for Collected {}

impl de::Error for Collected {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Collected
    }
}

impl<'de> de::Deserializer<'de> for FieldCollector<'_> {
    type Error = Collected;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Collected> {
        Err(Collected)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Collected> {
        *self.0 = fields;
        Err(Collected)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The keys known at `parent` (a dotted path, list indexes as numbers).
fn known_at(parent: &str) -> &'static [&'static str] {
    let generic: Vec<&str> = parent
        .split('.')
        .map(|p| if p.parse::<usize>().is_ok() { "N" } else { p })
        .collect();
    match generic.join(".").as_str() {
        "" => fields_of::<Config>(),
        "build" => fields_of::<BuildConfig>(),
        "new" => fields_of::<NewConfig>(),
        "wit" => fields_of::<WitConfig>(),
        "wit.registries.N" => fields_of::<WitRegistry>(),
        "workload" => fields_of::<WorkloadConfig>(),
        "host" => fields_of::<HostConfig>(),
        "dev" => fields_of::<DevConfig>(),
        "dev.components.N" => fields_of::<DevComponent>(),
        "dev.volumes.N" => fields_of::<DevVolume>(),
        _ => &[],
    }
}

/// For an unknown key path such as `dev.adress`: the known key it most
/// likely meant (`dev.address`), if one is close.
pub fn did_you_mean(unknown: &str) -> Option<String> {
    let (parent, name) = unknown.rsplit_once('.').unwrap_or(("", unknown));
    let lowered = name.to_ascii_lowercase().replace('-', "_");
    // A typo: a letter or two off, swapped, missing or extra.
    let allowed = (lowered.chars().count() / 3).max(1);
    known_at(parent)
        .iter()
        .map(|known| {
            let known_lowered = known.to_ascii_lowercase();
            (strsim::damerau_levenshtein(&lowered, &known_lowered), known)
        })
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| match parent {
            "" => known.to_string(),
            parent => format!("{parent}.{known}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_know_their_fields() {
        assert!(fields_of::<DevConfig>().contains(&"address"));
        assert!(fields_of::<Config>().contains(&"workload"));
        assert!(known_at("dev.volumes.3").contains(&"guest_path"));
    }

    #[test]
    fn close_misspellings_get_a_suggestion() {
        assert_eq!(did_you_mean("dev.adress").as_deref(), Some("dev.address"));
        assert_eq!(did_you_mean("bulid").as_deref(), Some("build"));
        assert_eq!(
            did_you_mean("host.http-addr").as_deref(),
            Some("host.http_addr")
        );
        assert_eq!(
            did_you_mean("wit.registries.0.ulr").as_deref(),
            Some("wit.registries.0.url")
        );
        assert_eq!(did_you_mean("dev.zzzzzz"), None);
        assert_eq!(did_you_mean("nothing.here"), None);
    }
}
