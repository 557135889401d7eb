//! Egress: every outbound HTTP request of every guest passes through here.
//!
//! The policy check (`allowed_hosts`, deny by default) runs before the
//! request reaches the [`OutgoingHandler`], so a denied request never opens
//! a connection, whichever handler the embedder installed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The response future an [`OutgoingHandler`] returns.
pub type OutgoingFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// Who sent an outbound request.
#[derive(Debug, Clone)]
pub struct OutgoingRequestContext {
    /// Id of the workload the guest belongs to.
    pub workload_id: Arc<str>,
    /// Name of the component that sent the request.
    pub component: Arc<str>,
}

/// Sends the outbound HTTP requests of guests (P2 and P3 alike).
///
/// Install one with `HttpServerBuilder::outgoing_handler`; the host calls it
/// for every request that passed the component's `allowed_hosts` policy.
pub trait OutgoingHandler: Send + Sync + 'static {
    /// Sends `request` and resolves to the upstream response.
    fn handle(
        &self,
        context: &OutgoingRequestContext,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> OutgoingFuture;
}

/// The handler used until an embedder installs one: refuses every request
/// with `HTTP-request-denied`, so nothing leaves the host unannounced.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOutgoingHandler;

impl OutgoingHandler for NoOutgoingHandler {
    fn handle(
        &self,
        context: &OutgoingRequestContext,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
    ) -> OutgoingFuture {
        tracing::warn!(
            workload = %context.workload_id,
            component = %context.component,
            uri = %request.uri(),
            "outbound HTTP refused: this host has no outgoing handler"
        );
        Box::pin(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// Which hosts a component may reach: `host`, `*.suffix`, `host:port`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    rules: Vec<HostRule>,
}

#[derive(Debug, Clone)]
enum HostRule {
    Exact(String),
    Suffix(String),
    HostPort(String, u16),
}

impl AllowedHosts {
    /// Parses the `allowed_hosts` list of a component. Empty denies all.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        let rules = patterns
            .iter()
            .map(|p| p.as_ref().trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .map(|p| {
                if let Some(suffix) = p.strip_prefix("*.") {
                    HostRule::Suffix(format!(".{suffix}"))
                } else if let Some((host, port)) = p.rsplit_once(':')
                    && let Ok(port) = port.parse()
                {
                    HostRule::HostPort(host.to_string(), port)
                } else {
                    HostRule::Exact(p)
                }
            })
            .collect();
        Self { rules }
    }

    /// Whether `host` (lowercase or not) on `port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.rules.iter().any(|rule| match rule {
            HostRule::Exact(h) => *h == host,
            HostRule::Suffix(s) => host.ends_with(s.as_str()),
            HostRule::HostPort(h, p) => *h == host && *p == port,
        })
    }
}

/// The egress hooks stored in each guest's store.
#[derive(Clone)]
pub(crate) struct GuestEgress {
    pub(crate) handler: Arc<dyn OutgoingHandler>,
    pub(crate) allowed: Arc<AllowedHosts>,
    pub(crate) context: Arc<OutgoingRequestContext>,
}

impl WasiHttpHooks for GuestEgress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        if !self.allowed.allows(host, port) {
            tracing::warn!(
                workload = %self.context.workload_id,
                component = %self.context.component,
                %host,
                port,
                "outbound HTTP denied: host not in the component's allowed_hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let response = self.handler.handle(&self.context, request, options);
        Box::new(async move {
            let response = response.await?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::AllowedHosts;

    #[test]
    fn empty_list_denies_everything() {
        assert!(!AllowedHosts::new::<&str>(&[]).allows("example.com", 443));
    }

    #[test]
    fn exact_suffix_and_port_rules() {
        let allowed = AllowedHosts::new(&["api.example.com", "*.svc.local", "db.local:8443"]);
        assert!(allowed.allows("api.example.com", 443));
        assert!(allowed.allows("API.Example.com.", 80));
        assert!(!allowed.allows("evil-api.example.com", 443));
        assert!(allowed.allows("a.b.svc.local", 443));
        assert!(
            !allowed.allows("svc.local", 443),
            "*.x matches subdomains only"
        );
        assert!(allowed.allows("db.local", 8443));
        assert!(!allowed.allows("db.local", 443));
    }
}
