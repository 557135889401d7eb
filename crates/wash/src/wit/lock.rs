//! `wkg.lock`: the exact version and digest each WIT dependency resolved
//! to, in the format wasm-pkg-tools writes, so `wkg` and wash share it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The lock file's name, in the project root.
pub const LOCK_FILE: &str = "wkg.lock";
const FORMAT_VERSION: u64 = 1;
const HEADER: &str = "# This file is written by `wash wit fetch` (and `wkg`); do not edit it.\n\
                      # It pins each WIT dependency to a version and content digest.\n";

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
}

impl Default for LockFile {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            packages: Vec::new(),
        }
    }
}

/// One package (`namespace:name`) and the versions it is locked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<LockedVersion>,
}

/// A version requirement and what it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedVersion {
    /// `=0.2.0` for an exact import, `*` for one without a version.
    pub requirement: String,
    pub version: String,
    /// `sha256:<hex>` of the binary package.
    pub digest: String,
}

/// The requirement recorded for an import of `version` (or of no version).
pub fn requirement(version: Option<&semver::Version>) -> String {
    match version {
        Some(version) => format!("={version}"),
        None => "*".into(),
    }
}

impl LockFile {
    /// The lock file of the project at `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(LOCK_FILE)
    }

    /// Reads the lock file; a missing file is an empty lock.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let lock: Self = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid lock file (delete it and run `wash wit fetch` to write a new one)",
                path.display()
            )
        })?;
        if lock.version != FORMAT_VERSION {
            bail!(
                "{}: lock file format {} is not supported (wash reads format {FORMAT_VERSION})",
                path.display(),
                lock.version
            );
        }
        Ok(lock)
    }

    /// Writes the lock file (packages sorted, so it diffs cleanly).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        for package in &mut sorted.packages {
            package
                .versions
                .sort_by(|a, b| a.requirement.cmp(&b.requirement));
        }
        let text = format!("{HEADER}{}", toml::to_string(&sorted)?);
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// What `name` at `requirement` is locked to.
    pub fn find(&self, name: &str, requirement: &str) -> Option<&LockedVersion> {
        self.packages
            .iter()
            .find(|p| p.name == name)?
            .versions
            .iter()
            .find(|v| v.requirement == requirement)
    }

    /// Records (or replaces) what `name` at `requirement` resolved to.
    pub fn set(&mut self, name: &str, registry: &str, locked: LockedVersion) {
        let index = match self.packages.iter().position(|p| p.name == name) {
            Some(index) => index,
            None => {
                self.packages.push(LockedPackage {
                    name: name.into(),
                    registry: None,
                    versions: Vec::new(),
                });
                self.packages.len() - 1
            }
        };
        let package = &mut self.packages[index];
        package.registry = Some(registry.into());
        package
            .versions
            .retain(|v| v.requirement != locked.requirement);
        package.versions.push(locked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_replaces_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = LockFile::path(dir.path());
        assert_eq!(LockFile::load(&path).unwrap(), LockFile::default());
        let mut lock = LockFile::default();
        let v = |version: &str, digest: &str| LockedVersion {
            requirement: requirement(Some(&version.parse().unwrap())),
            version: version.into(),
            digest: digest.into(),
        };
        lock.set("wasmcloud:messaging", "ghcr.io", v("0.2.0", "sha256:aa"));
        lock.set("wasi:io", "ghcr.io", v("0.2.0", "sha256:bb"));
        lock.set("wasmcloud:messaging", "ghcr.io", v("0.2.0", "sha256:cc"));
        lock.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# This file is written"), "{text}");
        assert!(text.contains("[[packages.versions]]"), "{text}");
        let back = LockFile::load(&path).unwrap();
        assert_eq!(
            back.find("wasmcloud:messaging", "=0.2.0").unwrap().digest,
            "sha256:cc"
        );
        assert_eq!(back.packages[0].name, "wasi:io", "sorted by name");
        assert!(back.find("wasmcloud:messaging", "*").is_none());
    }

    #[test]
    fn a_broken_lock_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = LockFile::path(dir.path());
        std::fs::write(&path, "version = [").unwrap();
        let error = format!("{:#}", LockFile::load(&path).unwrap_err());
        assert!(error.contains("wkg.lock"), "{error}");
        std::fs::write(&path, "version = 7").unwrap();
        let error = format!("{:#}", LockFile::load(&path).unwrap_err());
        assert!(error.contains("format 7"), "{error}");
    }
}
