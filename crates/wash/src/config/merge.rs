//! Layering config documents: mappings merge key by key, anything else
//! (a string, a number, a list) is replaced whole by the later layer. Each
//! leaf remembers the file it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The result of layering documents.
#[derive(Debug, Clone)]
pub struct Merged {
    pub document: Value,
    /// Dotted leaf key path -> file.
    pub origins: BTreeMap<String, PathBuf>,
}

impl Default for Merged {
    fn default() -> Self {
        Self {
            document: Value::Object(Map::new()),
            origins: BTreeMap::new(),
        }
    }
}

impl Merged {
    /// Puts `layer` (read from `file`) over what is there.
    pub fn layer(&mut self, layer: Value, file: &Path) {
        merge_into(&mut self.document, layer, "", file, &mut self.origins);
    }
}

fn merge_into(
    target: &mut Value,
    layer: Value,
    prefix: &str,
    file: &Path,
    origins: &mut BTreeMap<String, PathBuf>,
) {
    match (target, layer) {
        (Value::Object(existing), Value::Object(incoming)) => {
            for (key, value) in incoming {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match existing.get_mut(&key) {
                    Some(slot) if slot.is_object() && value.is_object() => {
                        merge_into(slot, value, &path, file, origins);
                    }
                    _ => {
                        forget(origins, &path);
                        record(&value, &path, file, origins);
                        existing.insert(key, value);
                    }
                }
            }
        }
        (target, layer) => {
            forget(origins, prefix);
            record(&layer, prefix, file, origins);
            *target = layer;
        }
    }
}

/// Drops the origins of a value about to be replaced.
fn forget(origins: &mut BTreeMap<String, PathBuf>, path: &str) {
    let nested = format!("{path}.");
    origins.retain(|key, _| key != path && !key.starts_with(&nested));
}

fn record(value: &Value, path: &str, file: &Path, origins: &mut BTreeMap<String, PathBuf>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, value) in map {
                record(value, &format!("{path}.{key}"), file, origins);
            }
        }
        _ => {
            origins.insert(path.to_string(), file.to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn project_values_win_key_by_key_and_remember_their_file() {
        let mut merged = Merged::default();
        let user = Path::new("/home/u/.config/wash/config.yaml");
        let project = Path::new("/p/.wash/config.toml");
        merged.layer(
            json!({"dev": {"address": "0.0.0.0:1", "data_nats_url": "nats://a"}, "wit": {"registries": [{"url": "https://a"}]}}),
            user,
        );
        merged.layer(
            json!({"dev": {"address": "127.0.0.1:2"}, "wit": {"registries": [{"url": "https://b"}]}}),
            project,
        );
        assert_eq!(
            merged.document,
            json!({"dev": {"address": "127.0.0.1:2", "data_nats_url": "nats://a"}, "wit": {"registries": [{"url": "https://b"}]}})
        );
        assert_eq!(merged.origins["dev.address"], project);
        assert_eq!(merged.origins["dev.data_nats_url"], user);
        // Lists are replaced whole, not merged item by item.
        assert_eq!(merged.origins["wit.registries"], project);
        assert_eq!(merged.origins.len(), 3);
    }

    #[test]
    fn a_scalar_replacing_a_mapping_forgets_the_mapping_origins() {
        let mut merged = Merged::default();
        merged.layer(
            json!({"build": {"env": {"A": "1", "B": "2"}}}),
            Path::new("u"),
        );
        merged.layer(json!({"build": {"env": "oops"}}), Path::new("p"));
        assert_eq!(merged.origins.keys().collect::<Vec<_>>(), vec!["build.env"]);
        assert_eq!(merged.origins["build.env"], Path::new("p"));
    }
}
