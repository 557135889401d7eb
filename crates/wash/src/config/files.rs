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

/// The typed config of a document and the unknown keys in it; or the key
/// path and message of the first value of the wrong type.
pub fn typed(document: &Value) -> Result<(Config, Vec<String>), (Option<String>, String)> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignoring = serde_ignored::Deserializer::new(document.clone(), &mut note);
    match serde_path_to_error::deserialize::<_, Config>(ignoring) {
        Ok(config) => Ok((config, unknown)),
        Err(error) => {
            let path = error.path().to_string();
            let key = (path != "." && !path.is_empty()).then_some(path);
            Err((key, error.into_inner().to_string()))
        }
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
        let (config, unknown) = typed(&document).unwrap();
        assert_eq!(config.dev.address.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(unknown, vec!["dev.adress".to_string(), "extra".to_string()]);
        let (key, message) = typed(&serde_json::json!({"wit": {"skip_fetch": "yes"}})).unwrap_err();
        assert_eq!(key.as_deref(), Some("wit.skip_fetch"));
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn version_may_be_a_number_or_a_string() {
        let (config, _) = typed(&serde_json::json!({"version": 1})).unwrap();
        assert_eq!(config.version.as_deref(), Some("1"));
        let (config, _) = typed(&serde_json::json!({"version": "1.0"})).unwrap();
        assert_eq!(config.version.as_deref(), Some("1.0"));
    }
}
