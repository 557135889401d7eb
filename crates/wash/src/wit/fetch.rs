//! `wash wit fetch`: every package the project's WIT imports that `wit/deps`
//! does not hold, from `wit.sources` or the registries of `wit.registries`,
//! written to `wit/deps` as WIT text and pinned in `wkg.lock`.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use wit_parser::{PackageName, UnresolvedPackageGroup};

use super::lock::{self, LockFile, LockedVersion};
use super::naming;
use super::package::{self, Resolved};
use super::registry::{self, Access};
use crate::build::Project;
use crate::output;

/// Where a fetched package came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Pulled from a registry.
    Registry,
    /// The locked digest, from wash's cache: no registry reached.
    Cache,
    /// A `wit.sources` path or URL.
    Source,
}

/// One package written to `wit/deps`.
#[derive(Debug, Clone, Serialize)]
pub struct Fetched {
    pub package: String,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub dir: String,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub fetched: Vec<Fetched>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_file: Option<String>,
}

/// The project's WIT directory.
pub fn wit_dir(project: &Project) -> PathBuf {
    project.root.join(
        project
            .config
            .wit
            .wit_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("wit")),
    )
}

/// Packages the WIT in `dir` imports from elsewhere (not counting those it
/// defines itself).
fn imports_of(group: &UnresolvedPackageGroup) -> Vec<PackageName> {
    let own: BTreeSet<String> = std::iter::once(&group.main)
        .chain(&group.nested)
        .map(|p| p.name.to_string())
        .collect();
    std::iter::once(&group.main)
        .chain(&group.nested)
        .flat_map(|p| p.foreign_deps.keys().cloned())
        .filter(|name| !own.contains(&name.to_string()))
        .collect()
}

/// The names of the packages in `deps` (directories, `.wit` and `.wasm`
/// files), each with the path it is at.
fn present(deps: &Path) -> Result<Vec<(PackageName, PathBuf)>> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(deps) else {
        return Ok(found);
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            let group = UnresolvedPackageGroup::parse_dir(&path)
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("in {}", path.display()))?;
            found.push((group.main.name.clone(), path));
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") => {
                let bytes = std::fs::read(&path)?;
                let resolved =
                    package::decode(&bytes).with_context(|| path.display().to_string())?;
                for (_, p) in resolved.resolve.packages.iter() {
                    found.push((p.name.clone(), path.clone()));
                }
            }
            Some("wit") => {
                let text = std::fs::read_to_string(&path)?;
                let mut map = wit_parser::SourceMap::default();
                map.push(&path, text);
                let group = map
                    .parse()
                    .map_err(|(map, e)| anyhow!("{}", e.render(&map)))?;
                found.push((group.main.name.clone(), path));
            }
            _ => {}
        }
    }
    Ok(found)
}

fn held(present: &[(PackageName, PathBuf)], wanted: &PackageName) -> bool {
    present
        .iter()
        .any(|(name, _)| registry::same_package(name, wanted))
}

/// Imports of the project's WIT that `wit/deps` does not hold.
pub fn missing(project: &Project) -> Result<Vec<PackageName>> {
    let dir = wit_dir(project);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let group = UnresolvedPackageGroup::parse_dir(&dir)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("in {}", dir.display()))?;
    let have = present(&dir.join("deps"))?;
    Ok(imports_of(&group)
        .into_iter()
        .filter(|name| !held(&have, name))
        .collect())
}

/// Cached binary packages, by digest: a locked package is found here when
/// `wit/deps` lost it and the registry is out of reach.
fn cache_path(digest: &str) -> PathBuf {
    crate::paths::cache_dir()
        .join("wit")
        .join(format!("{}.wasm", digest.replace(':', "-")))
}

fn cached(digest: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(cache_path(digest)).ok()?;
    (super::sha256_digest(&bytes) == digest).then_some(bytes)
}

fn keep_in_cache(digest: &str, bytes: &[u8]) {
    let path = cache_path(digest);
    // A cache that cannot be written only costs a later pull.
    if let Some(dir) = path.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = std::fs::write(path, bytes);
    }
}

/// Fetches what the project's WIT imports and `wit/deps` lacks. With
/// `update`, packages the lock file pins are resolved again and replaced.
pub async fn fetch(project: &Project, update: bool) -> Result<Report> {
    let dir = wit_dir(project);
    if !dir.is_dir() {
        return Ok(Report::default());
    }
    let deps = dir.join("deps");
    let lock_path = LockFile::path(&project.root);
    let mut lock = LockFile::load(&lock_path)?;
    let group = UnresolvedPackageGroup::parse_dir(&dir)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("in {}", dir.display()))?;
    let mut have = present(&deps)?;
    if update {
        // Locked packages are resolved again; their copies are replaced
        // only once the new content is in hand.
        let locked: BTreeSet<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
        have.retain(|(name, _)| {
            !locked.contains(format!("{}:{}", name.namespace, name.name).as_str())
        });
    }

    let mut report = Report::default();
    let mut queue: VecDeque<PackageName> = imports_of(&group).into();
    let mut lock_changed = false;
    while let Some(wanted) = queue.pop_front() {
        if held(&have, &wanted) {
            continue;
        }
        std::fs::create_dir_all(&deps)
            .with_context(|| format!("cannot create {}", deps.display()))?;
        if let Some(source) = source_for(project, &wanted) {
            let (written, more) = from_source(project, &source, &wanted, &deps).await?;
            for name in written {
                report.fetched.push(Fetched {
                    package: name.to_string(),
                    origin: Origin::Source,
                    reference: Some(source.clone()),
                    digest: None,
                    dir: deps
                        .join(naming::deps_dir_name(&name))
                        .display()
                        .to_string(),
                });
                have.push((name, PathBuf::new()));
            }
            queue.extend(more);
            continue;
        }
        let (pulled, reference, origin) =
            from_registry(project, &wanted, &mut lock, update, &mut lock_changed).await?;
        for name in write_packages(&pulled, &deps, &have)? {
            let main = registry::same_package(&name, pulled.name());
            report.fetched.push(Fetched {
                package: name.to_string(),
                origin,
                reference: main.then(|| reference.0.clone()),
                digest: main.then(|| reference.1.clone()),
                dir: deps
                    .join(naming::deps_dir_name(&name))
                    .display()
                    .to_string(),
            });
            have.push((name, PathBuf::new()));
        }
    }
    if lock_changed {
        lock.save(&lock_path)?;
    }
    if lock_changed || lock_path.is_file() {
        report.lock_file = Some(lock_path.display().to_string());
    }
    // Everything is on disk now: the whole tree must resolve.
    package::resolve_dir(&dir, None)?;
    Ok(report)
}

/// The `wit.sources` entry for `wanted`: by `ns:name@version`, else by
/// `ns:name`.
fn source_for(project: &Project, wanted: &PackageName) -> Option<String> {
    let sources = &project.config.wit.sources;
    let bare = format!("{}:{}", wanted.namespace, wanted.name);
    sources
        .get(&wanted.to_string())
        .or_else(|| sources.get(&bare))
        .cloned()
}

/// The package from the registry of its namespace, honouring the lock.
/// Returns it with its reference and digest, and where the bytes came from.
async fn from_registry(
    project: &Project,
    wanted: &PackageName,
    lock: &mut LockFile,
    update: bool,
    lock_changed: &mut bool,
) -> Result<(Resolved, (String, String), Origin)> {
    let Some(location) = naming::location_for(&project.config.wit, &wanted.namespace)? else {
        bail!(
            "the project's WIT imports {wanted}, which wit/deps does not hold, and no registry \
             serves the `{}` namespace: add one to `wit.registries` in .wash/config.yaml (url \
             and namespace), a path in `wit.sources`, or put the package in wit/deps",
            wanted.namespace
        );
    };
    let access = Access {
        insecure: if location.insecure {
            vec![location.host.clone()]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    let bare = format!("{}:{}", wanted.namespace, wanted.name);
    let requirement = lock::requirement(wanted.version.as_ref());
    let locked = (!update)
        .then(|| lock.find(&bare, &requirement).cloned())
        .flatten();

    if let Some(locked) = &locked
        && let Some(bytes) = cached(&locked.digest)
    {
        let version: semver::Version = locked
            .version
            .parse()
            .with_context(|| format!("wkg.lock: `{}` is not a version", locked.version))?;
        let reference = location.reference(wanted, &version);
        let resolved = package::decode(&bytes)
            .with_context(|| format!("cached {}", cache_path(&locked.digest).display()))?;
        return Ok((resolved, (reference, locked.digest.clone()), Origin::Cache));
    }

    let scratch = tempfile::tempdir()?;
    let oci = access.client(scratch.path().to_path_buf())?;
    let version = match (&locked, &wanted.version) {
        (Some(locked), _) => locked
            .version
            .parse()
            .with_context(|| format!("wkg.lock: `{}` is not a version", locked.version))?,
        (None, Some(version)) => version.clone(),
        (None, None) => {
            let repository = location.repository(wanted);
            let tags = oci
                .tags(&repository, None)
                .await
                .map_err(registry::explain)?;
            registry::newest(&tags).ok_or_else(|| {
                anyhow!("{repository} has no versioned tags: publish {wanted} there first")
            })?
        }
    };
    let reference = location.reference(wanted, &version);
    let spinner = output::spinner(format!("Fetching {wanted} from {reference}"));
    let pulled = registry::pull(&oci, &reference, wanted, None).await;
    spinner.finish_and_clear();
    let pulled = pulled?;
    if let Some(locked) = &locked
        && locked.digest != pulled.digest
    {
        bail!(
            "{reference} changed since wkg.lock pinned it (locked {}, registry has {}): run \
             `wash wit fetch --update` to accept the new content",
            locked.digest,
            pulled.digest
        );
    }
    keep_in_cache(&pulled.digest, &pulled.bytes);
    eprintln!("Fetched {wanted} from {reference} ({})", pulled.digest);
    if locked.is_none() {
        lock.set(
            &bare,
            &location.host,
            LockedVersion {
                requirement,
                version: version.to_string(),
                digest: pulled.digest.clone(),
            },
        );
        *lock_changed = true;
    }
    Ok((
        pulled.resolved,
        (reference, pulled.digest),
        Origin::Registry,
    ))
}

/// Writes every package of a decoded binary package that `deps` lacks, as
/// WIT text; returns their names.
fn write_packages(
    pulled: &Resolved,
    deps: &Path,
    have: &[(PackageName, PathBuf)],
) -> Result<Vec<PackageName>> {
    let mut written = Vec::new();
    for (id, package) in pulled.resolve.packages.iter() {
        if held(have, &package.name) {
            continue;
        }
        let dir = deps.join(naming::deps_dir_name(&package.name));
        let text = package::wit_text(&pulled.resolve, id)?;
        if dir.is_dir() {
            // An older copy (`--update`): replaced whole.
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot replace {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let file = dir.join("package.wit");
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        written.push(package.name.clone());
    }
    Ok(written)
}

/// Copies a `wit.sources` package into `deps`. Returns the packages written
/// and the imports of text packages still to resolve.
async fn from_source(
    project: &Project,
    source: &str,
    wanted: &PackageName,
    deps: &Path,
) -> Result<(Vec<PackageName>, Vec<PackageName>)> {
    let bytes_or_dir = if let Some(reference) = source.strip_prefix("oci://") {
        let scratch = tempfile::tempdir()?;
        let oci = Access::default().client(scratch.path().to_path_buf())?;
        let pulled = registry::pull(&oci, reference, wanted, None).await?;
        SourceContent::Wasm(pulled.bytes.to_vec())
    } else if source.starts_with("https://") || source.starts_with("http://") {
        SourceContent::from_download(source).await?
    } else {
        let path = project.root.join(source);
        if path.is_dir() {
            SourceContent::Dir(path)
        } else {
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "wit.sources.{wanted}: cannot read {} (a WIT directory, .wit or .wasm file)",
                    path.display()
                )
            })?;
            SourceContent::from_bytes(bytes)?
        }
    };
    let context = || format!("wit.sources entry for {wanted} ({source})");
    match bytes_or_dir {
        SourceContent::Wasm(bytes) => {
            let resolved = package::decode(&bytes).with_context(context)?;
            if !registry::same_package(resolved.name(), wanted) {
                bail!("{}: holds {}, not {wanted}", context(), resolved.name());
            }
            Ok((write_packages(&resolved, deps, &[])?, Vec::new()))
        }
        SourceContent::Text(text) => {
            let mut map = wit_parser::SourceMap::default();
            map.push(Path::new(source), text.clone());
            let group = map
                .parse()
                .map_err(|(map, e)| anyhow!("{}", e.render(&map)))
                .with_context(context)?;
            let dir = dir_for(&group, wanted, deps).with_context(context)?;
            std::fs::write(dir.join("package.wit"), text)?;
            Ok((vec![group.main.name.clone()], imports_of(&group)))
        }
        SourceContent::Dir(path) => {
            let group = UnresolvedPackageGroup::parse_dir(&path)
                .map_err(|e| anyhow!("{e}"))
                .with_context(context)?;
            let dir = dir_for(&group, wanted, deps).with_context(context)?;
            for entry in std::fs::read_dir(&path)?.filter_map(|e| e.ok()) {
                let file = entry.path();
                if file.extension().is_some_and(|e| e == "wit") {
                    std::fs::copy(&file, dir.join(entry.file_name()))
                        .with_context(|| format!("cannot copy {}", file.display()))?;
                }
            }
            Ok((vec![group.main.name.clone()], imports_of(&group)))
        }
    }
}

/// The `wit/deps` directory for the package a source parsed to, made
/// ready; an error when it is not the package asked for.
fn dir_for(group: &UnresolvedPackageGroup, wanted: &PackageName, deps: &Path) -> Result<PathBuf> {
    let name = &group.main.name;
    if !registry::same_package(name, wanted) {
        bail!("holds {name}, not {wanted}");
    }
    let dir = deps.join(naming::deps_dir_name(name));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// What a `wit.sources` entry holds.
enum SourceContent {
    Wasm(Vec<u8>),
    Text(String),
    Dir(PathBuf),
}

impl SourceContent {
    fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        if bytes.starts_with(b"\0asm") {
            return Ok(Self::Wasm(bytes));
        }
        String::from_utf8(bytes)
            .map(Self::Text)
            .map_err(|_| anyhow!("neither a wasm binary nor WIT text"))
    }

    async fn from_download(url: &str) -> Result<Self> {
        if url.ends_with(".tar.gz") || url.ends_with(".tgz") || url.ends_with(".zip") {
            bail!(
                "{url}: archives are not fetched; point `wit.sources` at a .wasm or .wit file, \
                 or unpack it and give its directory"
            );
        }
        let response = reqwest::get(url)
            .await
            .with_context(|| format!("cannot download {url}"))?;
        if !response.status().is_success() {
            bail!("{url}: the server answered {}", response.status());
        }
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("cannot download {url}"))?;
        Self::from_bytes(bytes.to_vec()).with_context(|| url.to_string())
    }
}
