//! Which workload serves a request.
//!
//! [`DynamicRouter`] routes by `Host` header (plus `host-aliases`) and, beyond
//! the reference platform, by path prefix under a host, longest prefix first.
//! [`DevRouter`] sends everything to the one workload `wash dev` runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::types::Workload;

/// Config key of the `wasi:http` host interface naming the workload's host.
pub const HOST_KEY: &str = "host";
/// Config key listing more host names, comma-separated.
pub const HOST_ALIASES_KEY: &str = "host-aliases";
/// Config key restricting the workload to a path prefix under its hosts.
pub const PATH_KEY: &str = "path";

/// Why a workload's routing configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The workload serves HTTP but says under which host name.
    #[error(
        "workload `{workload}` serves HTTP but its `wasi:http` host interface has no `host` \
         config, so no request could reach it"
    )]
    MissingHost {
        /// Workload name.
        workload: String,
    },
    /// A host name is not a valid RFC 1123 name.
    #[error("workload `{workload}`: `{key}` value `{value}` is not a valid host name: {reason}")]
    InvalidHost {
        /// Workload name.
        workload: String,
        /// The config key.
        key: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path prefix is not an absolute path.
    #[error("workload `{workload}`: `path` value `{value}` must start with `/`")]
    InvalidPath {
        /// Workload name.
        workload: String,
        /// The offending value.
        value: String,
    },
}

/// Maps requests to workload ids. The host registers a workload when it
/// starts serving and unregisters it when it stops.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use wash_runtime::host::http::{RouteError, Router};
/// use wash_runtime::types::Workload;
///
/// /// Sends every request to the one workload that serves HTTP.
/// #[derive(Default)]
/// struct OnlyOne(Mutex<Option<Arc<str>>>);
///
/// impl Router for OnlyOne {
///     fn register(&self, workload_id: &str, _workload: &Workload) -> Result<(), RouteError> {
///         *self.0.lock().unwrap() = Some(workload_id.into());
///         Ok(())
///     }
///
///     fn unregister(&self, workload_id: &str) {
///         let mut current = self.0.lock().unwrap();
///         if current.as_deref() == Some(workload_id) {
///             *current = None;
///         }
///     }
///
///     fn route(&self, _host: &str, _path: &str) -> Option<Arc<str>> {
///         self.0.lock().unwrap().clone()
///     }
/// }
///
/// let router = OnlyOne::default();
/// router.register("hello", &Workload::default())?;
/// assert_eq!(router.route("any.host", "/").as_deref(), Some("hello"));
/// router.unregister("hello");
/// assert_eq!(router.route("any.host", "/"), None);
/// # Ok::<(), RouteError>(())
/// ```
pub trait Router: Send + Sync + 'static {
    /// Adds the routes of a workload that serves HTTP.
    fn register(&self, workload_id: &str, workload: &Workload) -> Result<(), RouteError>;
    /// Removes every route of a workload.
    fn unregister(&self, workload_id: &str);
    /// The workload for a request to `host` (port already stripped, may be
    /// empty when the request named none) and `path`.
    fn route(&self, host: &str, path: &str) -> Option<Arc<str>>;

    /// Whether `workload`, once registered, would serve a request to `host`
    /// and `path`. A request nothing serves yet waits while such a
    /// workload is starting, rather than getting a 404. The default says
    /// no: such requests are answered at once.
    fn would_route(&self, workload: &Workload, host: &str, path: &str) -> bool {
        let _ = (workload, host, path);
        false
    }

    /// Whether a request that nothing serves, and that no starting workload
    /// would serve, should still wait: a workload for it is about to start
    /// (`wash dev` between opening its port and starting its component).
    fn expects_workload(&self, host: &str, path: &str) -> bool {
        let _ = (host, path);
        false
    }
}

/// Routes everything to the most recently registered workload. Until the
/// first one is registered, requests wait for it.
#[derive(Debug, Default)]
pub struct DevRouter {
    current: RwLock<Option<Arc<str>>>,
    /// Whether a workload was ever registered.
    registered: std::sync::atomic::AtomicBool,
}

impl Router for DevRouter {
    fn register(&self, workload_id: &str, _workload: &Workload) -> Result<(), RouteError> {
        *write(&self.current) = Some(workload_id.into());
        self.registered.store(true, Ordering::Release);
        Ok(())
    }

    fn unregister(&self, workload_id: &str) {
        let mut current = write(&self.current);
        if current.as_deref() == Some(workload_id) {
            *current = None;
        }
    }

    fn route(&self, _host: &str, _path: &str) -> Option<Arc<str>> {
        read(&self.current).clone()
    }

    fn would_route(&self, _workload: &Workload, _host: &str, _path: &str) -> bool {
        true
    }

    fn expects_workload(&self, _host: &str, _path: &str) -> bool {
        !self.registered.load(Ordering::Acquire)
    }
}

/// Routes by host name and path prefix; several workloads under the same
/// host and prefix are replicas and share requests in turn.
#[derive(Debug, Default)]
pub struct DynamicRouter {
    hosts: RwLock<HashMap<String, Vec<PrefixRoute>>>,
}

#[derive(Debug)]
struct PrefixRoute {
    /// `/` or a prefix without trailing slash, e.g. `/v1`.
    prefix: String,
    replicas: Vec<Arc<str>>,
    next: AtomicUsize,
}

impl PrefixRoute {
    fn matches(&self, path: &str) -> bool {
        self.prefix == "/"
            || path.strip_prefix(self.prefix.as_str()).is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
            })
    }

    fn pick(&self) -> Option<Arc<str>> {
        match self.replicas.len() {
            0 => None,
            1 => Some(self.replicas[0].clone()),
            n => Some(self.replicas[self.next.fetch_add(1, Ordering::Relaxed) % n].clone()),
        }
    }
}

impl DynamicRouter {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Host names and path prefix a workload asks for, validated.
    fn routes_of(workload: &Workload) -> Result<(Vec<String>, String), RouteError> {
        let config = workload.host_interface("wasi", "http").map(|i| &i.config);
        let host = config
            .and_then(|c| c.get(HOST_KEY))
            .map(|h| h.trim())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| RouteError::MissingHost {
                workload: workload.name.clone(),
            })?;
        let mut hosts = vec![normalize_host(host, HOST_KEY, workload)?];
        if let Some(aliases) = config.and_then(|c| c.get(HOST_ALIASES_KEY)) {
            for alias in aliases.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                hosts.push(normalize_host(alias, HOST_ALIASES_KEY, workload)?);
            }
        }
        let prefix = match config.and_then(|c| c.get(PATH_KEY)).map(|p| p.trim()) {
            None | Some("") | Some("/") => "/".to_string(),
            Some(p) if p.starts_with('/') => p.trim_end_matches('/').to_string(),
            Some(p) => {
                return Err(RouteError::InvalidPath {
                    workload: workload.name.clone(),
                    value: p.to_string(),
                });
            }
        };
        hosts.dedup();
        Ok((hosts, prefix))
    }
}

impl Router for DynamicRouter {
    fn register(&self, workload_id: &str, workload: &Workload) -> Result<(), RouteError> {
        let (hosts, prefix) = Self::routes_of(workload)?;
        let id: Arc<str> = workload_id.into();
        let mut table = write(&self.hosts);
        for host in hosts {
            let routes = table.entry(host).or_default();
            match routes.iter_mut().find(|r| r.prefix == prefix) {
                Some(route) if route.replicas.contains(&id) => {}
                Some(route) => route.replicas.push(id.clone()),
                None => {
                    routes.push(PrefixRoute {
                        prefix: prefix.clone(),
                        replicas: vec![id.clone()],
                        next: AtomicUsize::new(0),
                    });
                    // Longest prefix first, so the first match wins.
                    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
                }
            }
        }
        Ok(())
    }

    fn unregister(&self, workload_id: &str) {
        let mut table = write(&self.hosts);
        for routes in table.values_mut() {
            for route in routes.iter_mut() {
                route.replicas.retain(|r| &**r != workload_id);
            }
            routes.retain(|r| !r.replicas.is_empty());
        }
        table.retain(|_, routes| !routes.is_empty());
    }

    fn route(&self, host: &str, path: &str) -> Option<Arc<str>> {
        let table = read(&self.hosts);
        let routes = if host.bytes().any(|b| b.is_ascii_uppercase()) || host.ends_with('.') {
            table.get(host.trim_end_matches('.').to_ascii_lowercase().as_str())
        } else {
            table.get(host)
        }?;
        routes.iter().find(|r| r.matches(path))?.pick()
    }

    fn would_route(&self, workload: &Workload, host: &str, path: &str) -> bool {
        let Ok((hosts, prefix)) = Self::routes_of(workload) else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let route = PrefixRoute {
            prefix,
            replicas: Vec::new(),
            next: AtomicUsize::new(0),
        };
        hosts.contains(&host) && route.matches(path)
    }
}

/// Lowercases and validates a host name from config (RFC 1123; a port, if
/// given, is dropped since routing ignores ports).
fn normalize_host(raw: &str, key: &'static str, workload: &Workload) -> Result<String, RouteError> {
    let invalid = |reason| RouteError::InvalidHost {
        workload: workload.name.clone(),
        key,
        value: raw.to_string(),
        reason,
    };
    let host = strip_port(raw).trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Err(invalid("it is empty"));
    }
    if host.len() > 253 {
        return Err(invalid("it is longer than 253 characters"));
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(invalid(
                "each dot-separated label must have 1 to 63 characters",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label may not start or end with `-`"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid("only letters, digits, `-` and `.` are allowed"));
        }
    }
    Ok(host)
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
pub(crate) fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

// A poisoned lock only means another thread panicked mid-update of a plain
// map; the data is still consistent enough to route with.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::WitInterface;

    fn workload(name: &str, config: &[(&str, &str)]) -> Workload {
        Workload {
            name: name.into(),
            host_interfaces: vec![WitInterface {
                namespace: "wasi".into(),
                package: "http".into(),
                interfaces: vec!["incoming-handler".into()],
                config: config
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn routes_by_host_and_aliases_case_insensitively() {
        let router = DynamicRouter::new();
        router
            .register(
                "a",
                &workload(
                    "a",
                    &[
                        ("host", "A.example.com"),
                        ("host-aliases", "alias.test, b.test"),
                    ],
                ),
            )
            .unwrap();
        assert_eq!(router.route("a.example.com", "/").as_deref(), Some("a"));
        assert_eq!(router.route("A.EXAMPLE.COM.", "/x").as_deref(), Some("a"));
        assert_eq!(router.route("b.test", "/").as_deref(), Some("a"));
        assert_eq!(router.route("other.test", "/"), None);
    }

    #[test]
    fn longest_prefix_wins_and_prefix_respects_segments() {
        let router = DynamicRouter::new();
        router
            .register("root", &workload("root", &[("host", "api.test")]))
            .unwrap();
        router
            .register(
                "v1",
                &workload("v1", &[("host", "api.test"), ("path", "/v1/")]),
            )
            .unwrap();
        router
            .register(
                "v1-admin",
                &workload("v1a", &[("host", "api.test"), ("path", "/v1/admin")]),
            )
            .unwrap();
        assert_eq!(router.route("api.test", "/v1").as_deref(), Some("v1"));
        assert_eq!(router.route("api.test", "/v1/users").as_deref(), Some("v1"));
        assert_eq!(
            router.route("api.test", "/v1/admin/x").as_deref(),
            Some("v1-admin")
        );
        assert_eq!(router.route("api.test", "/v10").as_deref(), Some("root"));
        assert_eq!(router.route("api.test", "/").as_deref(), Some("root"));
    }

    #[test]
    fn replicas_share_requests_and_unregister_removes() {
        let router = DynamicRouter::new();
        router
            .register("r1", &workload("r", &[("host", "r.test")]))
            .unwrap();
        router
            .register("r2", &workload("r", &[("host", "r.test")]))
            .unwrap();
        let picks: Vec<_> = (0..4)
            .map(|_| router.route("r.test", "/").unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|p| &***p == "r1").count(), 2);
        router.unregister("r1");
        assert!((0..3).all(|_| router.route("r.test", "/").as_deref() == Some("r2")));
        router.unregister("r2");
        assert_eq!(router.route("r.test", "/"), None);
    }

    #[test]
    fn rejects_bad_config_naming_the_key() {
        let router = DynamicRouter::new();
        let err = router.register("x", &workload("x", &[])).unwrap_err();
        assert!(matches!(err, RouteError::MissingHost { .. }));
        let err = router
            .register(
                "x",
                &workload(
                    "x",
                    &[("host", "ok.test"), ("host-aliases", "bad_name.test")],
                ),
            )
            .unwrap_err();
        assert!(err.to_string().contains("host-aliases"), "{err}");
        let err = router
            .register("x", &workload("x", &[("host", "-a.test")]))
            .unwrap_err();
        assert!(matches!(err, RouteError::InvalidHost { .. }));
        let err = router
            .register("x", &workload("x", &[("host", "ok.test"), ("path", "v1")]))
            .unwrap_err();
        assert!(matches!(err, RouteError::InvalidPath { .. }));
    }

    #[test]
    fn strip_port_handles_ipv6() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn dev_router_follows_latest_registration() {
        let router = DevRouter::default();
        router.register("one", &Workload::default()).unwrap();
        router.register("two", &Workload::default()).unwrap();
        router.unregister("one");
        assert_eq!(router.route("any", "/").as_deref(), Some("two"));
        router.unregister("two");
        assert_eq!(router.route("any", "/"), None);
    }
}
