//! The config file formats: YAML, JSON and TOML, read into one document
//! model (a JSON value) so merging and reporting work the same for all.

use std::path::Path;

use serde_json::Value;

use super::{Config, Problem};

/// A config file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Yml,
    Json,
    Toml,
}

impl Format {
    /// The format a file name's extension says.
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "yaml" => Some(Self::Yaml),
            "yml" => Some(Self::Yml),
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Yaml => "yaml",
            Self::Yml => "yml",
            Self::Json => "json",
            Self::Toml => "toml",
        }
    }

    /// Parses `text`; a syntax error carries its line and column.
    pub fn parse(self, text: &str) -> Result<Value, (Option<(usize, usize)>, String)> {
        // An empty YAML file is an empty config, not an error.
        if matches!(self, Self::Yaml | Self::Yml) && text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        match self {
            Self::Yaml | Self::Yml => serde_norway::from_str(text).map_err(|e| {
                let position = e.location().map(|l| (l.line(), l.column()));
                (position, strip_position(&e.to_string()))
            }),
            Self::Json => serde_json::from_str(text).map_err(|e| {
                let position = (e.line() > 0).then(|| (e.line(), e.column()));
                (position, strip_position(&e.to_string()))
            }),
            Self::Toml => toml::from_str(text).map_err(|e| {
                let position = e.span().map(|span| line_column(text, span.start));
                (position, e.message().to_string())
            }),
        }
    }

    /// Writes `config` in this format.
    pub fn render(self, config: &Config) -> Result<String, String> {
        match self {
            Self::Yaml | Self::Yml => serde_norway::to_string(config).map_err(|e| e.to_string()),
            Self::Json => serde_json::to_string_pretty(config)
                .map(|text| text + "\n")
                .map_err(|e| e.to_string()),
            Self::Toml => toml::to_string_pretty(config).map_err(|e| e.to_string()),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parsers append " at line L column C"; the position is shown separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Reads and parses one file.
pub fn read_document(path: &Path) -> Result<Value, Problem> {
    let problem = |position, message| Problem {
        file: Some(path.to_path_buf()),
        key: None,
        position,
        message,
    };
    let format = Format::of(path).ok_or_else(|| {
        problem(
            None,
            "unknown config format (use .yaml, .yml, .json or .toml)".to_string(),
        )
    })?;
    let text =
        std::fs::read_to_string(path).map_err(|e| problem(None, format!("cannot read: {e}")))?;
    let document = format
        .parse(&text)
        .map_err(|(position, message)| problem(position, format!("syntax error: {message}")))?;
    match document {
        Value::Object(_) => Ok(without_nulls(document)),
        Value::Null => Ok(Value::Object(Default::default())),
        other => Err(problem(
            None,
            format!(
                "expected a mapping of sections at the top, found {}",
                kind(&other)
            ),
        )),
    }
}

/// `key:` with nothing after it means "not set", as if it were absent.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A value of the wrong type: its dotted key path (none for the top level)
/// and what is wrong.
pub type TypeError = (Option<String>, String);

/// What a document holds: the typed config (every value of the wrong type
/// left at its default), the unknown keys, and every type error.
pub struct Typed {
    pub config: Config,
    /// The document without the values of the wrong type.
    pub document: Value,
    pub unknown: Vec<String>,
    pub errors: Vec<TypeError>,
}

/// Types `document`, finding every value of the wrong type: serde stops at
/// the first, so each one found is taken out and the rest typed again.
pub fn typed(document: &Value) -> Typed {
    let mut document = document.clone();
    let mut errors = Vec::new();
    // Every round takes one value out, so this ends; the cap is a guard.
    for _ in 0..256 {
        let mut unknown = Vec::new();
        let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignoring = serde_ignored::Deserializer::new(document.clone(), &mut note);
        match serde_path_to_error::deserialize::<_, Config>(ignoring) {
            Ok(config) => {
                return Typed {
                    config,
                    document,
                    unknown,
                    errors,
                };
            }
            Err(error) => {
                let segments: Vec<String> = error
                    .path()
                    .iter()
                    .map(|segment| match segment {
                        serde_path_to_error::Segment::Seq { index } => index.to_string(),
                        other => other.to_string(),
                    })
                    .collect();
                let key = (!segments.is_empty()).then(|| segments.join("."));
                errors.push((key, error.into_inner().to_string()));
                if !remove(&mut document, &segments) {
                    break;
                }
            }
        }
    }
    Typed {
        config: Config::default(),
        document,
        unknown: Vec::new(),
        errors,
    }
}

/// Takes the value at `path` out of `document`; false when there is none.
fn remove(document: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut value = document;
    for segment in parents {
        value = match value {
            Value::Object(map) => match map.get_mut(segment) {
                Some(next) => next,
                None => return false,
            },
            Value::Array(items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(next) => next,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match value {
        Value::Object(map) => map.remove(last).is_some(),
        Value::Array(items) => match last.parse::<usize>() {
            // Keep the other items where they are, so their keys stay true.
            Ok(index) if index < items.len() => {
                items[index] = Value::Object(Default::default());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let (position, _) = Format::Yaml
            .parse("dev:\n  address: [unclosed\n")
            .unwrap_err();
        assert_eq!(position.map(|p| p.0), Some(3));
        let (position, message) = Format::Json
            .parse("{\n  \"dev\": {\"address\": }\n}")
            .unwrap_err();
        assert_eq!(position, Some((2, 22)), "the column of the closing brace");
        assert!(!message.contains("at line"), "{message}");
        let (position, _) = Format::Toml.parse("[dev]\naddress = \n").unwrap_err();
        assert_eq!(position.map(|p| p.0), Some(2));
    }

    #[test]
    fn unknown_keys_are_found_and_type_errors_name_their_key() {
        let document =
            serde_json::json!({"dev": {"adress": "x", "address": "127.0.0.1:1"}, "extra": 1});
        let typed_ok = typed(&document);
        assert!(typed_ok.errors.is_empty());
        assert_eq!(typed_ok.config.dev.address.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(
            typed_ok.unknown,
            vec!["dev.adress".to_string(), "extra".to_string()]
        );
        let typed_bad = typed(&serde_json::json!({"wit": {"skip_fetch": "yes"}}));
        let (key, message) = &typed_bad.errors[0];
        assert_eq!(key.as_deref(), Some("wit.skip_fetch"));
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn every_type_error_is_found_and_the_rest_still_typed() {
        let document = serde_json::json!({
            "dev": {"address": 12345, "data_nats_url": "nats://x:4222", "bogus": 1},
            "workload": {"allowedHosts": "api.example.com"},
            "wit": {"registries": [{"url": "https://a"}, {"url": 7}]},
        });
        let typed = typed(&document);
        let keys: Vec<_> = typed
            .errors
            .iter()
            .map(|(k, _)| k.clone().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "dev.address",
                "wit.registries.1.url",
                "workload.allowedHosts"
            ]
        );
        assert_eq!(
            typed.config.dev.data_nats_url.as_deref(),
            Some("nats://x:4222")
        );
        assert_eq!(typed.config.wit.registries[0].url, "https://a");
        assert_eq!(typed.unknown, ["dev.bogus"]);
    }

    /// Any JSON value, a few levels deep, with config-like keys.
    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            ".{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("dev".to_string()),
                        Just("host".to_string()),
                        Just("wit".to_string()),
                        Just("registries".to_string()),
                        Just("address".to_string()),
                        Just("version".to_string()),
                        Just("volumes".to_string()),
                        Just("allowedHosts".to_string()),
                        "[a-z_]{1,8}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Any text in any format parses or gives a located error.
        #[test]
        fn any_text_parses_or_is_refused(text in "(\\PC|[\n\\[\\]{}=:\"-])*") {
            for format in [Format::Yaml, Format::Json, Format::Toml] {
                let _ = format.parse(&text);
            }
        }

        /// Any document types without a panic, and what it types to writes
        /// and reads back the same in every format.
        #[test]
        fn any_document_types_and_round_trips(document in json()) {
            let typed = typed(&document);
            for format in [Format::Yaml, Format::Json, Format::Toml] {
                let Ok(text) = format.render(&typed.config) else { continue };
                let again = typed_text(format, &text);
                proptest::prop_assert_eq!(&again, &typed.config, "{:?}:\n{}", format, text);
            }
        }
    }

    #[test]
    fn a_version_that_only_looks_like_a_number_reads_back_as_written() {
        for version in ["00", "+1", "1", "01"] {
            let config = Config {
                version: Some(version.into()),
                ..Default::default()
            };
            for format in [Format::Yaml, Format::Json, Format::Toml] {
                let text = format.render(&config).unwrap();
                assert_eq!(
                    typed_text(format, &text).version.as_deref(),
                    Some(version),
                    "{format:?}:\n{text}"
                );
            }
        }
    }

    fn typed_text(format: Format, text: &str) -> Config {
        let document = format.parse(text).expect("what wash writes, it reads");
        let typed = typed(&document);
        assert!(typed.errors.is_empty(), "{:?}", typed.errors);
        typed.config
    }

    #[test]
    fn version_may_be_a_number_or_a_string() {
        let config = typed(&serde_json::json!({"version": 1})).config;
        assert_eq!(config.version.as_deref(), Some("1"));
        let config = typed(&serde_json::json!({"version": "1.0"})).config;
        assert_eq!(config.version.as_deref(), Some("1.0"));
    }
}
