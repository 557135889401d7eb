//! WIT packages in OCI registries, in the layout wasm-pkg-tools uses: one
//! `application/wasm` layer holding the binary package, the wasm config
//! (`application/vnd.wasm.config.v0+json`) listing what it exports, and
//! `org.opencontainers.image.*` annotations from its metadata.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use serde::Serialize;
use wash_runtime::oci::{
    Artifact, OciClient, OciConfig, OciError, OciImageManifest, WASM_LAYER_MEDIA_TYPE,
};
use wash_runtime::types::{Credentials, PullPolicy};
use wit_parser::PackageName;

use super::package::{self, Provenance, Resolved};

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Extra CA certificates to trust.
    pub ca_files: Vec<PathBuf>,
}

impl Access {
    /// An OCI client for this access, caching under `cache_dir`.
    pub fn client(&self, cache_dir: PathBuf) -> Result<OciClient> {
        let config = OciConfig {
            insecure_registries: self.insecure.clone(),
            ca_files: self.ca_files.clone(),
            ..OciConfig::new(cache_dir)
        };
        Ok(OciClient::new(config)?)
    }
}

/// A registry error as one line that says what to do about it.
pub fn explain(error: OciError) -> anyhow::Error {
    let hint = match &error {
        OciError::Unreachable { registry, .. } => format!(
            "is the registry at {registry} running and reachable? Check the registry in \
             `wit.registries` (.wash/config.yaml) or --registry"
        ),
        OciError::Unauthorized { reference, .. } => {
            let host = reference.split('/').next().unwrap_or_default();
            format!("log in with `docker login {host}`, or pass --user and --password")
        }
        OciError::NotFound { .. } => "no such version is published there: check the version \
                                      your WIT imports, or publish it with `wash wit publish`"
            .to_string(),
        OciError::NotWasm { .. } => "the repository holds something other than a WIT \
                                     package: check the repository template in \
                                     `wit.registries`"
            .to_string(),
        _ => return anyhow!("{error}"),
    };
    anyhow!("{error}; {hint}")
}

/// What publishing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Pushed; the tag did not exist.
    Published,
    /// The tag already holds these exact bytes: nothing pushed.
    Unchanged,
    /// A pre-release tag held other bytes and `--force` replaced them.
    Replaced,
}

/// The layer digest a manifest's wasm layer has.
fn wasm_layer_digest(manifest: &OciImageManifest) -> Option<String> {
    manifest
        .layers
        .iter()
        .find(|l| l.media_type == WASM_LAYER_MEDIA_TYPE)
        .map(|l| l.digest.clone())
}

/// Publishes `bytes` (the binary package `resolved`) at `reference`. A
/// stable version is immutable: the same bytes again are a no-op, other
/// bytes are refused. A pre-release may be replaced with `force`.
pub async fn publish(
    oci: &OciClient,
    reference: &str,
    resolved: &Resolved,
    bytes: Vec<u8>,
    provenance: &Provenance,
    force: bool,
    credentials: Option<&Credentials>,
) -> Result<(Outcome, String)> {
    let name = resolved.name();
    let Some(version) = &name.version else {
        bail!("{name} has no version: a published package needs one (`package {name}@1.0.0;`)");
    };
    let digest = super::sha256_digest(&bytes);
    let existing = oci
        .manifest(reference, credentials)
        .await
        .map_err(explain)?;
    let mut outcome = Outcome::Published;
    if let Some((manifest, _)) = existing {
        let theirs = wasm_layer_digest(&manifest).unwrap_or_else(|| "no wasm layer".into());
        if theirs == digest {
            return Ok((Outcome::Unchanged, digest));
        }
        if version.pre.is_empty() {
            bail!(
                "{reference} already exists with other content (registry: {theirs}, this \
                 package: {digest}); stable versions are immutable: publish a new version"
            );
        }
        if !force {
            bail!(
                "{reference} already exists with other content (registry: {theirs}, this \
                 package: {digest}); it is a pre-release, so --force may replace it"
            );
        }
        outcome = Outcome::Replaced;
    }
    let artifact = artifact(name, resolved, Bytes::from(bytes), provenance, &digest);
    oci.push_artifact(reference, artifact, credentials)
        .await
        .map_err(explain)?;
    Ok((outcome, digest))
}

/// The OCI artifact of a binary package.
fn artifact(
    name: &PackageName,
    resolved: &Resolved,
    layer: Bytes,
    provenance: &Provenance,
    digest: &str,
) -> Artifact {
    let config = serde_json::json!({
        "created": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "author": provenance.authors,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [digest],
        "component": {
            "exports": package::exports(resolved),
            "imports": [],
            "target": null,
        },
    });
    let mut annotations = BTreeMap::new();
    let mut annotate = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            annotations.insert(format!("org.opencontainers.image.{key}"), value.clone());
        }
    };
    annotate("version", &name.version.as_ref().map(ToString::to_string));
    annotate("description", &provenance.description);
    annotate("licenses", &provenance.licenses);
    annotate("source", &provenance.source);
    annotate("revision", &provenance.revision);
    annotate("url", &provenance.homepage);
    annotate("authors", &provenance.authors);
    let layer_annotations = BTreeMap::from([(
        "org.opencontainers.image.title".to_string(),
        format!("{}.wasm", name.name),
    )]);
    Artifact {
        layer,
        config,
        annotations,
        layer_annotations,
    }
}

/// A package pulled from a registry.
pub struct Pulled {
    pub bytes: Bytes,
    pub digest: String,
    pub resolved: Resolved,
}

/// Pulls the binary package at `reference` and checks it is `expected`.
pub async fn pull(
    oci: &OciClient,
    reference: &str,
    expected: &PackageName,
    credentials: Option<&Credentials>,
) -> Result<Pulled> {
    let pulled = oci
        .pull(reference, credentials, PullPolicy::Always, &|_, _| {})
        .await
        .map_err(explain)?;
    let resolved = package::decode(&pulled.bytes)
        .map_err(|e| anyhow!("{reference} {e}: the registry holds something else there"))?;
    if !same_package(resolved.name(), expected) {
        bail!(
            "{reference} holds the WIT package {}, not {expected}: check the repository \
             template in `wit.registries`",
            resolved.name()
        );
    }
    Ok(Pulled {
        bytes: pulled.bytes,
        digest: pulled.digest,
        resolved,
    })
}

/// Same namespace and name, and the version asked for (any, if none was).
pub fn same_package(found: &PackageName, wanted: &PackageName) -> bool {
    found.namespace == wanted.namespace
        && found.name == wanted.name
        && (wanted.version.is_none() || found.version == wanted.version)
}

/// The newest stable version among `tags` (pre-releases only if there is
/// nothing else).
pub fn newest(tags: &[String]) -> Option<semver::Version> {
    let mut versions: Vec<semver::Version> = tags.iter().filter_map(|t| t.parse().ok()).collect();
    versions.sort();
    versions
        .iter()
        .rev()
        .find(|v| v.pre.is_empty())
        .or(versions.last())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_prefers_stable_versions() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            newest(&tags(&["0.1.0", "0.10.0", "0.2.0", "1.0.0-rc.1", "latest"])),
            Some("0.10.0".parse().unwrap())
        );
        assert_eq!(
            newest(&tags(&["0.2.0-draft", "0.1.0-draft"])),
            Some("0.2.0-draft".parse().unwrap())
        );
        assert_eq!(newest(&tags(&["latest"])), None);
    }
}
