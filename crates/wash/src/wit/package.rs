//! WIT packages: resolved from a directory with their dependencies, encoded
//! as wasm with provenance in its metadata, and decoded back.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use wasm_metadata::{AddMetadata, AddMetadataField};
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{PackageId, PackageName, Resolve, UnresolvedPackageGroup};

/// Where a package came from and who made it, as stored in its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Source repository URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Revision of the source (a git commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Version of the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// SPDX license expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licenses: Option<String>,
    /// Authors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authors: Option<String>,
    /// What it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where to learn more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Tools that made or changed it, with their versions (`wash 0.1.0`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processed_by: Vec<(String, String)>,
}

impl Provenance {
    /// Lines of `key: value` for people.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let fields = [
            ("source", &self.source),
            ("revision", &self.revision),
            ("version", &self.version),
            ("licenses", &self.licenses),
            ("authors", &self.authors),
            ("description", &self.description),
            ("homepage", &self.homepage),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                lines.push(format!("{key}: {value}"));
            }
        }
        for (tool, version) in &self.processed_by {
            lines.push(format!("processed-by: {tool} {version}"));
        }
        lines
    }
}

/// A package resolved from source.
pub struct Resolved {
    pub resolve: Resolve,
    pub package: PackageId,
}

impl Resolved {
    pub fn name(&self) -> &PackageName {
        &self.resolve.packages[self.package].name
    }
}

/// The deps directory used for `dir` when none is given: `dir/deps`, or,
/// for a package that itself sits in a `deps` directory, its siblings.
fn default_deps(dir: &Path) -> Option<PathBuf> {
    let own = dir.join("deps");
    if own.is_dir() {
        return Some(own);
    }
    let parent = dir.parent()?;
    (parent.file_name()? == "deps").then(|| parent.to_path_buf())
}

/// Parses one entry of a deps directory: a package directory, a `.wit`
/// file, or a `.wasm` binary package (merged into `resolve` at once).
fn parse_dep(resolve: &mut Resolve, path: &Path) -> Result<Option<UnresolvedPackageGroup>> {
    if path.is_dir() {
        return UnresolvedPackageGroup::parse_dir(path).map(Some);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("wit") => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut map = wit_parser::SourceMap::default();
            map.push(path, text);
            map.parse()
                .map(Some)
                .map_err(|(map, e)| anyhow!("{}", e.render(&map)))
        }
        Some("wasm") => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let decoded = decode(&bytes).with_context(|| path.display().to_string())?;
            resolve
                .merge(decoded.resolve)
                .with_context(|| format!("{}: conflicts with another package", path.display()))?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Resolves the package in `dir` with the packages of `deps` (default: see
/// [`default_deps`]). Errors name the file, line and column.
pub fn resolve_dir(dir: &Path, deps: Option<&Path>) -> Result<Resolved> {
    if !dir.is_dir() {
        bail!("{} is not a directory of WIT files", dir.display());
    }
    let main = UnresolvedPackageGroup::parse_dir(dir)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("in {}", dir.display()))?;
    let deps = deps.map(Path::to_path_buf).or_else(|| default_deps(dir));
    let mut resolve = Resolve::default();
    let mut groups = Vec::new();
    if let Some(deps) = &deps {
        let own = dir.canonicalize().ok();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(deps)
            .with_context(|| format!("cannot read {}", deps.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.canonicalize().ok() != own)
            .collect();
        entries.sort();
        for entry in entries {
            if let Some(group) = parse_dep(&mut resolve, &entry)? {
                groups.push(group);
            }
        }
    }
    let package = resolve
        .push_groups(main, groups)
        .map_err(|e| anyhow!("{}", e.render(&resolve.source_map)))?;
    Ok(Resolved { resolve, package })
}

/// The provenance `wash wit build` records: what the flags say, filled in
/// from the git checkout `dir` is in where they are silent.
pub fn provenance_for(dir: &Path, given: Provenance, version: Option<String>) -> Provenance {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
        (output.status.success() && !text.is_empty()).then_some(text)
    };
    let mut provenance = given;
    if provenance.revision.is_none() {
        provenance.revision = git(&["rev-parse", "HEAD"]);
    }
    if provenance.source.is_none() {
        provenance.source = git(&["remote", "get-url", "origin"]).and_then(|r| remote_url(&r));
    }
    if provenance.version.is_none() {
        provenance.version = version;
    }
    provenance
        .processed_by
        .push(("wash".into(), env!("CARGO_PKG_VERSION").into()));
    provenance
}

/// A git remote as the URL provenance records: scp-style remotes
/// (`git@host:org/repo.git`) become `https://host/org/repo`, a local path a
/// `file://` URL; anything else that is not a URL is left out rather than
/// failing a build over a default.
fn remote_url(remote: &str) -> Option<String> {
    let remote = remote.trim();
    if url::Url::parse(remote).is_ok() {
        return Some(remote.to_string());
    }
    if let Some((user_host, path)) = remote.split_once(':')
        && !user_host.contains('/')
        && !path.starts_with('/')
    {
        let host = user_host.rsplit('@').next().unwrap_or(user_host);
        let path = path.trim_end_matches(".git");
        return Some(format!("https://{host}/{path}"));
    }
    let path = Path::new(remote);
    if path.is_absolute() {
        return url::Url::from_file_path(path).ok().map(String::from);
    }
    None
}

/// Encodes the resolved package as a binary WIT package with `provenance`
/// in its metadata.
pub fn encode(resolved: &Resolved, provenance: &Provenance) -> Result<Vec<u8>> {
    let bytes = wit_component::encode(&resolved.resolve, resolved.package)
        .with_context(|| format!("cannot encode {}", resolved.name()))?;
    let mut add = AddMetadata::default();
    add.processed_by = provenance.processed_by.clone();
    let set = |value: &Option<String>| value.clone();
    if let Some(source) = set(&provenance.source) {
        add.source = AddMetadataField::Set(
            source
                .parse()
                .map_err(|e| anyhow!("source `{source}` is not a URL: {e}"))?,
        );
    }
    if let Some(homepage) = set(&provenance.homepage) {
        add.homepage = AddMetadataField::Set(
            homepage
                .parse()
                .map_err(|e| anyhow!("homepage `{homepage}` is not a URL: {e}"))?,
        );
    }
    if let Some(licenses) = set(&provenance.licenses) {
        add.licenses = AddMetadataField::Set(
            licenses
                .parse()
                .map_err(|e| anyhow!("license `{licenses}` is not an SPDX expression: {e}"))?,
        );
    }
    if let Some(revision) = set(&provenance.revision) {
        add.revision = AddMetadataField::Set(wasm_metadata::Revision::new(revision));
    }
    if let Some(version) = set(&provenance.version) {
        add.version = AddMetadataField::Set(wasm_metadata::Version::new(version));
    }
    if let Some(authors) = set(&provenance.authors) {
        add.authors = AddMetadataField::Set(wasm_metadata::Authors::new(authors));
    }
    if let Some(description) = set(&provenance.description) {
        add.description = AddMetadataField::Set(wasm_metadata::Description::new(description));
    }
    add.to_wasm(&bytes)
        .context("cannot add provenance metadata to the package")
}

/// What a wasm file is, decoded.
pub enum Wasm {
    /// A binary WIT package.
    Package(Resolved),
    /// A component, with its world.
    Component(Resolve, wit_parser::WorldId),
}

/// Decodes wasm bytes as a WIT package or a component.
pub fn decode_any(bytes: &[u8]) -> Result<Wasm> {
    if !bytes.starts_with(b"\0asm") {
        bail!("not a WebAssembly binary (it does not start with the `\\0asm` magic)");
    }
    if wasmparser::Parser::is_core_wasm(bytes) {
        bail!("is a core WebAssembly module, not a component or WIT package");
    }
    Ok(
        match wit_component::decode(bytes).context("invalid component or WIT package")? {
            DecodedWasm::WitPackage(resolve, package) => {
                Wasm::Package(Resolved { resolve, package })
            }
            DecodedWasm::Component(resolve, world) => Wasm::Component(resolve, world),
        },
    )
}

/// Decodes a binary WIT package; a component or anything else is an error.
pub fn decode(bytes: &[u8]) -> Result<Resolved> {
    match decode_any(bytes)? {
        Wasm::Package(resolved) => Ok(resolved),
        Wasm::Component(..) => bail!("is a component, not a WIT package"),
    }
}

/// The provenance recorded in a wasm binary's metadata.
pub fn provenance_of(bytes: &[u8]) -> Result<Provenance> {
    let payload =
        wasm_metadata::Payload::from_binary(bytes).context("cannot read the wasm metadata")?;
    let meta = payload.metadata();
    let text = |value: Option<&dyn std::fmt::Display>| value.map(|v| v.to_string());
    let processed_by = meta
        .producers
        .as_ref()
        .and_then(|p| p.get("processed-by"))
        .map(|field| {
            field
                .iter()
                .map(|(tool, version)| (tool.clone(), version.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(Provenance {
        source: text(meta.source.as_ref().map(|v| v as _)),
        revision: text(meta.revision.as_ref().map(|v| v as _)),
        version: text(meta.version.as_ref().map(|v| v as _)),
        licenses: text(meta.licenses.as_ref().map(|v| v as _)),
        authors: text(meta.authors.as_ref().map(|v| v as _)),
        description: text(meta.description.as_ref().map(|v| v as _)),
        homepage: text(meta.homepage.as_ref().map(|v| v as _)),
        processed_by,
    })
}

/// The WIT text of one package of `resolve`.
pub fn wit_text(resolve: &Resolve, package: PackageId) -> Result<String> {
    let mut printer = WitPrinter::default();
    printer.print(resolve, package, &[])?;
    Ok(printer.output.to_string())
}

/// What a binary package exports, as the wasm OCI config lists it: its
/// interfaces and worlds, fully qualified.
pub fn exports(resolved: &Resolved) -> Vec<String> {
    let resolve = &resolved.resolve;
    let package = &resolve.packages[resolved.package];
    let version = package
        .name
        .version
        .as_ref()
        .map(|v| format!("@{v}"))
        .unwrap_or_default();
    let mut exports: Vec<String> = package
        .interfaces
        .values()
        .filter_map(|id| resolve.id_of(*id))
        .collect();
    exports.extend(package.worlds.keys().map(|world| {
        format!(
            "{}:{}/{world}{version}",
            package.name.namespace, package.name.name
        )
    }));
    exports.sort();
    exports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_package_round_trips_with_its_provenance() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "types.wit",
            "package acme:billing@1.2.0;\ninterface api { use acme:money/types.{cents}; charge: func(amount: cents); }\n",
        );
        write(
            dir.path(),
            "deps/money/types.wit",
            "package acme:money;\ninterface types { type cents = u64; }\n",
        );
        let resolved = resolve_dir(dir.path(), None).unwrap();
        assert_eq!(resolved.name().to_string(), "acme:billing@1.2.0");
        let provenance = Provenance {
            source: Some("https://example.com/acme/wit".into()),
            revision: Some("0123abcd".into()),
            version: Some("1.2.0".into()),
            licenses: Some("Apache-2.0".into()),
            authors: Some("Acme".into()),
            processed_by: vec![("wash".into(), "9.9.9".into())],
            ..Default::default()
        };
        let bytes = encode(&resolved, &provenance).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.name().to_string(), "acme:billing@1.2.0");
        let recorded = provenance_of(&bytes).unwrap();
        // wit-component records itself as well.
        assert!(
            recorded
                .processed_by
                .contains(&("wash".into(), "9.9.9".into())),
            "{recorded:?}"
        );
        assert_eq!(
            Provenance {
                processed_by: Vec::new(),
                ..recorded
            },
            Provenance {
                processed_by: Vec::new(),
                ..provenance.clone()
            }
        );
        assert_eq!(exports(&back), vec!["acme:billing/api@1.2.0"]);
        // The same source builds to the same bytes: what publishing relies
        // on to tell a re-push from a change.
        assert_eq!(encode(&resolved, &provenance).unwrap(), bytes);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "api.wit",
            "package acme:app;\n\ninterface api {\n  f: func() -> nothing-like-this;\n}\n",
        );
        let error = format!("{:#}", resolve_dir(dir.path(), None).err().unwrap());
        assert!(error.contains("api.wit:4:"), "{error}");
        assert!(error.contains("nothing-like-this"), "{error}");

        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "world.wit",
            "package acme:app;\n\nworld app {\n  import acme:missing/api@1.0.0;\n}\n",
        );
        let error = format!("{:#}", resolve_dir(dir.path(), None).err().unwrap());
        assert!(error.contains("world.wit:4:"), "{error}");
        assert!(error.contains("acme:missing"), "{error}");
    }

    #[test]
    fn git_remotes_become_urls() {
        assert_eq!(
            remote_url("https://github.com/acme/wit.git").as_deref(),
            Some("https://github.com/acme/wit.git")
        );
        assert_eq!(
            remote_url("git@github.com:acme/wit.git").as_deref(),
            Some("https://github.com/acme/wit")
        );
        assert_eq!(
            remote_url("/work/main").as_deref(),
            Some("file:///work/main")
        );
        assert_eq!(remote_url("../relative/clone"), None);
    }

    #[test]
    fn a_component_is_not_a_package() {
        let error = decode(b"\0asm\x01\0\0\0").err().unwrap().to_string();
        assert!(error.contains("core WebAssembly module"), "{error}");
        assert!(decode(b"hello").is_err());
    }
}
