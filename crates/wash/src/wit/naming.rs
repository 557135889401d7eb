//! Where a WIT package lives in an OCI registry: `wit.registries` entries
//! (namespace -> registry URL and repository template), with built-in
//! defaults for the `wasmcloud` and `wasi` namespaces.

use anyhow::{Result, bail};
use wit_parser::PackageName;

use crate::config::{WitConfig, WitRegistry};

/// Repository of a package under its registry when no template is given.
pub const DEFAULT_REPOSITORY: &str = "{namespace}/interfaces/{name}";

/// Registries used when the configuration names none for a namespace: where
/// wasmCloud and the WASI subgroup publish their packages.
const BUILT_IN: &[(&str, &str, &str)] = &[
    ("wasmcloud", "oci://ghcr.io", "wasmcloud/interfaces/{name}"),
    ("wasi", "oci://ghcr.io", "webassembly/wasi/{name}"),
];

/// A registry and how packages are laid out in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `host[:port]`.
    pub host: String,
    /// Path under the host, without slashes at either end (may be empty).
    pub prefix: String,
    /// Reached over plain HTTP.
    pub insecure: bool,
    /// Repository template (`{namespace}`, `{name}`).
    pub template: String,
}

impl Location {
    /// Parses `oci://host[:port][/prefix]`, `https://...`, `http://...` (plain
    /// HTTP), or a bare `host[:port][/prefix]` (HTTPS).
    pub fn parse(url: &str, template: Option<&str>) -> Result<Self> {
        let (insecure, rest) = match url.split_once("://") {
            Some(("oci" | "https", rest)) => (false, rest),
            Some(("http", rest)) => (true, rest),
            Some((scheme, _)) => bail!(
                "`{url}` uses `{scheme}://`; a WIT registry is oci://, https:// or http:// \
                 (plain HTTP)"
            ),
            None => (false, url),
        };
        let rest = rest.trim_end_matches('/');
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            bail!("`{url}` names no registry host");
        }
        let template = template.unwrap_or(DEFAULT_REPOSITORY);
        check_repository_template(template).map_err(anyhow::Error::msg)?;
        Ok(Self {
            host: host.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            insecure,
            template: template.to_string(),
        })
    }

    /// `host/prefix/<repository>` of `package` (no tag).
    pub fn repository(&self, package: &PackageName) -> String {
        let repository = self
            .template
            .replace("{namespace}", &package.namespace)
            .replace("{name}", &package.name);
        [
            self.host.as_str(),
            self.prefix.as_str(),
            repository.as_str(),
        ]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
    }

    /// The full reference of `package` at `version`.
    pub fn reference(&self, package: &PackageName, version: &semver::Version) -> String {
        format!("{}:{version}", self.repository(package))
    }
}

/// Where packages of `namespace` are fetched from and published to: the
/// entry naming the namespace, else an entry naming none, else a built-in
/// default; `None` when nothing serves it.
pub fn location_for(config: &WitConfig, namespace: &str) -> Result<Option<Location>> {
    let entry = |wanted: Option<&str>| {
        config
            .registries
            .iter()
            .find(|r: &&WitRegistry| r.namespace.as_deref() == wanted)
    };
    if let Some(registry) = entry(Some(namespace)).or_else(|| entry(None)) {
        return Location::parse(&registry.url, registry.repository.as_deref()).map(Some);
    }
    BUILT_IN
        .iter()
        .find(|(ns, _, _)| *ns == namespace)
        .map(|(_, url, template)| Location::parse(url, Some(template)))
        .transpose()
}

/// Whether `value` is a WIT identifier: dash-separated words of lowercase
/// letters and digits, each starting with a letter.
pub fn is_wit_identifier(value: &str) -> bool {
    !value.is_empty()
        && value.split('-').all(|word| {
            word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// A repository template must name the package, and only use the known
/// placeholders.
pub fn check_repository_template(template: &str) -> std::result::Result<(), String> {
    if !template.contains("{name}") {
        return Err(format!(
            "`{template}` does not contain `{{name}}`: every package would land in one \
             repository"
        ));
    }
    let stripped = template.replace("{namespace}", "").replace("{name}", "");
    if stripped.contains('{') || stripped.contains('}') {
        return Err(format!(
            "`{template}` has a placeholder other than `{{namespace}}` and `{{name}}`"
        ));
    }
    Ok(())
}

/// The file `wash wit build` writes for a package: `<ns>_<name>@<version>.wasm`.
pub fn package_file_name(package: &PackageName) -> String {
    match &package.version {
        Some(version) => format!("{}_{}@{version}.wasm", package.namespace, package.name),
        None => format!("{}_{}.wasm", package.namespace, package.name),
    }
}

/// The directory a package gets under `wit/deps`: `<ns>-<name>[-<version>]`.
pub fn deps_dir_name(package: &PackageName) -> String {
    match &package.version {
        Some(version) => format!("{}-{}-{version}", package.namespace, package.name),
        None => format!("{}-{}", package.namespace, package.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> PackageName {
        let (ns, rest) = text.split_once(':').unwrap();
        let (name, version) = match rest.split_once('@') {
            Some((n, v)) => (n, Some(v.parse().unwrap())),
            None => (rest, None),
        };
        PackageName {
            namespace: ns.into(),
            name: name.into(),
            version,
        }
    }

    fn registry(url: &str, namespace: Option<&str>, repository: Option<&str>) -> WitRegistry {
        WitRegistry {
            url: url.into(),
            namespace: namespace.map(Into::into),
            repository: repository.map(Into::into),
        }
    }

    #[test]
    fn references_follow_the_namespace_then_the_catch_all_then_built_ins() {
        let config = WitConfig {
            registries: vec![
                registry("http://127.0.0.1:5000", Some("acme"), None),
                registry(
                    "oci://mirror.example.com/wit",
                    None,
                    Some("{namespace}/{name}"),
                ),
            ],
            ..Default::default()
        };
        let v = semver::Version::new(0, 2, 0);
        let acme = location_for(&config, "acme").unwrap().unwrap();
        assert!(acme.insecure);
        assert_eq!(
            acme.reference(&name("acme:billing"), &v),
            "127.0.0.1:5000/acme/interfaces/billing:0.2.0"
        );
        let other = location_for(&config, "wasmcloud").unwrap().unwrap();
        assert!(!other.insecure);
        assert_eq!(
            other.reference(&name("wasmcloud:messaging"), &v),
            "mirror.example.com/wit/wasmcloud/messaging:0.2.0"
        );
        let built_in = location_for(&WitConfig::default(), "wasmcloud")
            .unwrap()
            .unwrap();
        assert_eq!(
            built_in.reference(&name("wasmcloud:messaging"), &v),
            "ghcr.io/wasmcloud/interfaces/messaging:0.2.0"
        );
        assert_eq!(location_for(&WitConfig::default(), "acme").unwrap(), None);
    }

    #[test]
    fn bad_registries_and_templates_are_named() {
        let error = Location::parse("ftp://x", None).unwrap_err().to_string();
        assert!(error.contains("ftp://"), "{error}");
        assert!(Location::parse("oci://", None).is_err());
        let error = check_repository_template("wit/{namespace}").unwrap_err();
        assert!(error.contains("{name}"), "{error}");
        assert!(check_repository_template("{ns}/{name}").is_err());
        assert!(is_wit_identifier("my-company2"));
        assert!(!is_wit_identifier("My"));
        assert!(!is_wit_identifier("a--b"));
        assert!(!is_wit_identifier("2a"));
    }

    #[test]
    fn file_and_directory_names_carry_the_version() {
        assert_eq!(
            package_file_name(&name("wasmcloud:messaging@0.2.0")),
            "wasmcloud_messaging@0.2.0.wasm"
        );
        assert_eq!(
            deps_dir_name(&name("wasi:keyvalue@0.2.0-draft")),
            "wasi-keyvalue-0.2.0-draft"
        );
        assert_eq!(deps_dir_name(&name("local:app")), "local-app");
    }
}
