//! What the host links into every component: the one list of WASI package
//! sets, from which both the linker and the list of provided interfaces
//! (for import checks and heartbeats) are made, so they cannot drift apart.

use wasmtime::component::Linker;

use crate::engine::Engine;
use crate::instance::StoreState;

/// A family of WASI packages added to the linker by one wasmtime call.
struct WasiSet {
    /// The packages the call provides, all under `wasi:`.
    packages: &'static [&'static str],
    /// Their version line.
    version: &'static str,
    /// Adds them to a linker.
    add: fn(&mut Linker<StoreState>) -> wasmtime::Result<()>,
}

/// Every WASI set the host provides: P2 (with HTTP), P3 (with HTTP) and,
/// with the `wasi-tls` feature, `wasi:tls`.
fn wasi_sets() -> Vec<WasiSet> {
    #[allow(unused_mut, reason = "wasi:tls is added only with its feature")]
    let mut sets = vec![
        WasiSet {
            packages: &["io", "clocks", "random", "cli", "filesystem", "sockets"],
            version: "0.2",
            add: wasmtime_wasi::p2::add_to_linker_async,
        },
        WasiSet {
            packages: &["http"],
            version: "0.2",
            add: wasmtime_wasi_http::p2::add_only_http_to_linker_async,
        },
        WasiSet {
            packages: &["clocks", "random", "cli", "filesystem", "sockets"],
            version: "0.3",
            add: wasmtime_wasi::p3::add_to_linker,
        },
        WasiSet {
            packages: &["http"],
            version: "0.3",
            add: wasmtime_wasi_http::p3::add_to_linker,
        },
    ];
    #[cfg(feature = "wasi-tls")]
    sets.push(WasiSet {
        packages: &["tls"],
        version: "0.3",
        add: wasmtime_wasi_tls::p3::add_to_linker,
    });
    sets
}

/// The linker every component starts from: every WASI set (only the P2
/// ones on an engine without concurrency, which cannot run P3).
pub(crate) fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine.wasmtime());
    for set in wasi_sets() {
        if !engine.concurrent() && set.version != "0.2" {
            continue;
        }
        (set.add)(&mut linker)?;
    }
    Ok(linker)
}

/// Interfaces linked into every component, by package. A package entry
/// with no interface list provides all of that package's interfaces.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProvidedInterfaces {
    packages: Vec<ProvidedPackage>,
}

#[derive(Debug, Clone)]
struct ProvidedPackage {
    namespace: String,
    package: String,
    /// `major.minor` for 0.x versions, `major` otherwise.
    version_line: String,
}

impl ProvidedInterfaces {
    /// The WASI packages of [`wasi_sets`].
    pub(crate) fn wasi() -> Self {
        let mut provided = Self::default();
        for set in wasi_sets() {
            for package in set.packages {
                provided.add("wasi", package, set.version);
            }
        }
        provided
    }

    /// Each package, as the control plane reports it (version line only).
    pub(crate) fn wit_interfaces(&self) -> impl Iterator<Item = crate::types::WitInterface> + '_ {
        self.packages.iter().map(|p| crate::types::WitInterface {
            namespace: p.namespace.clone(),
            package: p.package.clone(),
            version: Some(p.version_line.clone()),
            ..Default::default()
        })
    }

    pub(crate) fn add(&mut self, namespace: &str, package: &str, version: &str) {
        self.packages.push(ProvidedPackage {
            namespace: namespace.into(),
            package: package.into(),
            version_line: version_line(version),
        });
    }

    pub(crate) fn provides(&self, import: &str) -> bool {
        let Some((namespace, rest)) = import.split_once(':') else {
            return false;
        };
        let (path, version) = match rest.split_once('@') {
            Some((path, version)) => (path, version),
            None => (rest, ""),
        };
        let package = path.split('/').next().unwrap_or(path);
        let line = version_line(version);
        self.packages.iter().any(|p| {
            p.namespace == namespace
                && p.package == package
                && (version.is_empty() || p.version_line == line)
        })
    }
}

/// Semver-compatible line of a version: `0.2.3` -> `0.2`, `1.4.0` -> `1`.
fn version_line(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_string(),
        (None, _) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_packages_are_provided_by_version_line() {
        let p = ProvidedInterfaces::wasi();
        assert!(p.provides("wasi:http/types@0.2.3"));
        assert!(p.provides("wasi:http/types@0.2.9"));
        assert!(p.provides("wasi:clocks/monotonic-clock@0.3.0-rc-2025-09-16"));
        assert!(!p.provides("wasi:keyvalue/store@0.2.0-draft"));
        assert!(!p.provides("wasi:http/types@0.4.0"));
        assert!(!p.provides("example:missing/api@1.0.0"));
        assert!(!p.provides("plain-function"));
    }

    #[test]
    fn version_lines() {
        assert_eq!(version_line("0.2.3"), "0.2");
        assert_eq!(version_line("1.4.0"), "1");
        assert_eq!(version_line("0.3.0-rc-2025-09-16"), "0.3");
    }
}
