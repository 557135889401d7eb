//! HTTPS on the ingress: rustls on aws-lc-rs with ALPN `h2` and
//! `http/1.1`, optional client-certificate authentication, a certificate
//! per host name by SNI (falling back to the host's own), and certificate
//! files re-read when they change, without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use crate::tls::provider;

/// How often certificate files are checked for changes. Polling, not file
/// events: Kubernetes rotates mounted secrets by swapping a symlink, which
/// file watchers miss.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Certificate file names in each host's directory of
/// [`TlsSettings::sni_dir`], as Kubernetes mounts a TLS secret.
const SNI_CERT: &str = "tls.crt";
const SNI_KEY: &str = "tls.key";

/// What the ingress serves HTTPS with.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The host's certificate chain (PEM), served when no SNI certificate
    /// matches.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Clients must present a certificate issued by one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
    /// Per-host certificates: `<dir>/<host name>/tls.crt` and `tls.key`
    /// (`<dir>/*.example.com/` for a wildcard), chosen by SNI.
    pub sni_dir: Option<PathBuf>,
}

impl TlsSettings {
    /// HTTPS with `cert` and `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            sni_dir: None,
        }
    }

    /// Requires client certificates issued by the CAs in `ca` (mTLS).
    pub fn client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }

    /// Serves per-host certificates from `dir` by SNI.
    pub fn sni_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.sni_dir = Some(dir.into());
        self
    }

    /// Loads every file as a server would, without serving: the error a
    /// start would fail with, found early (configuration checks).
    pub fn check(&self) -> Result<(), TlsIngressError> {
        server_config(self).map(drop)
    }
}

/// Why TLS for the ingress cannot be set up; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsIngressError {
    /// A file could not be read or holds no usable PEM.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("{} does not match the certificate {}: {reason}", key.display(), cert.display())]
    Mismatch {
        /// The certificate.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsIngressError {
    TlsIngressError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A certificate chain and its key, checked to belong together.
fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsIngressError> {
    let cert_pem = std::fs::read(cert).map_err(|e| file_error(cert, e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, format!("not valid PEM: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(cert, "contains no PEM certificate"));
    }
    let key_pem = std::fs::read(key).map_err(|e| file_error(key, e))?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| file_error(key, format!("no PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, private, &provider())
        .map(Arc::new)
        .map_err(|e| TlsIngressError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            reason: e.to_string(),
        })
}

/// The certificates in use at one time.
struct Certificates {
    default: Arc<CertifiedKey>,
    /// Lowercase host name (or `*.suffix`) -> certificate.
    by_host: HashMap<String, Arc<CertifiedKey>>,
}

fn load(settings: &TlsSettings) -> Result<Certificates, TlsIngressError> {
    let default = load_pair(&settings.cert, &settings.key)?;
    let mut by_host = HashMap::new();
    if let Some(dir) = &settings.sni_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, e))?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let Some(host) = entry.file_name().to_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            // Kubernetes' own `..data` links are not host names.
            if host.starts_with("..") {
                continue;
            }
            let pair = load_pair(&path.join(SNI_CERT), &path.join(SNI_KEY))?;
            by_host.insert(host, pair);
        }
    }
    Ok(Certificates { default, by_host })
}

/// Picks the certificate for each handshake.
#[derive(Debug)]
pub(crate) struct Resolver {
    current: RwLock<Arc<Certificates>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("hosts", &self.by_host.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Resolver {
    fn certificates(&self) -> Arc<Certificates> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, certificates: Certificates) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(certificates);
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certificates = self.certificates();
        if let Some(name) = hello.server_name() {
            let name = name.to_ascii_lowercase();
            if let Some(found) = certificates.by_host.get(&name) {
                return Some(found.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(found) = certificates.by_host.get(&format!("*.{parent}"))
            {
                return Some(found.clone());
            }
        }
        Some(certificates.default.clone())
    }
}

/// The server config and the resolver its certificates can be swapped in.
pub(crate) fn server_config(
    settings: &TlsSettings,
) -> Result<(Arc<ServerConfig>, Arc<Resolver>), TlsIngressError> {
    let resolver = Arc::new(Resolver {
        current: RwLock::new(Arc::new(load(settings)?)),
    });
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::tls::read_certificates(ca).map_err(|e| file_error(ca, e))? {
                roots.add(cert).map_err(|e| file_error(ca, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| file_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}

/// What the certificate files look like now: their paths, sizes and
/// modification times. A change means "read them again".
fn fingerprint(settings: &TlsSettings) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = vec![settings.cert.clone(), settings.key.clone()];
    if let Some(dir) = &settings.sni_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.filter_map(Result::ok) {
            files.push(entry.path().join(SNI_CERT));
            files.push(entry.path().join(SNI_KEY));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

/// Re-reads the certificates whenever their files change, until `stop`.
/// A change that does not load (a half-written file, a key that does not
/// match yet) keeps the certificates in use and is logged.
pub(crate) async fn reload_on_change(
    settings: TlsSettings,
    resolver: Arc<Resolver>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen = fingerprint(&settings);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(RELOAD_CHECK) => {}
        }
        let now = fingerprint(&settings);
        if now == seen {
            continue;
        }
        match load(&settings) {
            Ok(certificates) => {
                seen = now;
                resolver.replace(certificates);
                tracing::info!(cert = %settings.cert.display(), "TLS certificates reloaded");
            }
            Err(e) => {
                // Tried again at the next check: a rotation may be half done.
                tracing::warn!(
                    "TLS certificates changed but cannot be loaded (keeping the current ones): {e}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str, host: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![host.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn bad_files_are_named() {
        crate::tls::init_crypto();
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = pair(dir.path(), "a", "a.test");
        let (_, key_b) = pair(dir.path(), "b", "b.test");
        let error = server_config(&TlsSettings::new(&cert_a, &key_b))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("b.key does not match"), "{error}");
        let missing = dir.path().join("missing.crt");
        let error = server_config(&TlsSettings::new(&missing, &key_a))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("missing.crt"), "{error}");
        let error = server_config(&TlsSettings::new(&cert_a, &cert_a))
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("a.crt: no PEM private key"), "{error}");
        assert!(server_config(&TlsSettings::new(&cert_a, &key_a)).is_ok());
    }
}
