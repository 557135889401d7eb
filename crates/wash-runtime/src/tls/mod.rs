//! TLS for the whole process: rustls on aws-lc-rs, and the trust roots
//! outbound connections check certificates against.
//!
//! `ring` is compiled out of the tree entirely; every TLS configuration the
//! runtime builds names the aws-lc-rs provider explicitly, and
//! [`init_crypto`] makes it the process default for libraries that use it.

#[cfg(feature = "wasi-tls")]
pub mod wasi;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A CA file could not be read or parsed.
    #[error("CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The system's certificate store could not be loaded.
    #[error("cannot load the system's root certificates: {0}")]
    NativeRoots(String),
    /// No root certificates at all: nothing could be trusted.
    #[error("no trusted root certificates configured")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Installs aws-lc-rs as the process-wide rustls provider. Call it first
/// thing in every binary; calling it again is harmless.
pub fn init_crypto() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing it is fine too.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The aws-lc-rs provider, for configurations built by this crate.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Which certificates outbound TLS trusts.
///
/// ```
/// use wash_runtime::tls::TrustRoots;
/// let roots = TrustRoots::webpki().with_native(false);
/// assert!(roots.root_store().unwrap().len() > 100);
/// ```
#[derive(Debug, Clone)]
pub struct TrustRoots {
    webpki: bool,
    native: bool,
    extra: Vec<PathBuf>,
}

impl Default for TrustRoots {
    fn default() -> Self {
        Self::webpki()
    }
}

impl TrustRoots {
    /// Mozilla's roots, as shipped in `webpki-roots` (the default).
    pub fn webpki() -> Self {
        Self {
            webpki: true,
            native: false,
            extra: Vec::new(),
        }
    }

    /// No roots at all; add some with [`Self::with_ca_file`].
    pub fn empty() -> Self {
        Self {
            webpki: false,
            native: false,
            extra: Vec::new(),
        }
    }

    /// Also trust the operating system's certificate store.
    pub fn with_native(mut self, native: bool) -> Self {
        self.native = native;
        self
    }

    /// Also trust the CA certificates in a PEM file.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra.push(path.into());
        self
    }

    /// Builds the root store, reading every file now.
    pub fn root_store(&self) -> Result<RootCertStore, TlsError> {
        let mut store = RootCertStore::empty();
        if self.webpki {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.native {
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty()
                && let Some(error) = loaded.errors.first()
            {
                return Err(TlsError::NativeRoots(error.to_string()));
            }
            let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
            tracing::debug!(added, "loaded native root certificates");
        }
        for path in &self.extra {
            for cert in read_certificates(path)? {
                store.add(cert).map_err(|e| TlsError::CaFile {
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        if store.is_empty() {
            return Err(TlsError::NoRoots);
        }
        Ok(store)
    }

    /// A client configuration trusting these roots, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.root_store()?)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// Every certificate in a PEM file; an error names the file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(error("contains no PEM certificates".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let err = TrustRoots::empty()
            .with_ca_file(&empty)
            .root_store()
            .unwrap_err();
        assert!(err.to_string().contains("empty.pem"), "{err}");
        assert!(err.to_string().contains("no PEM certificates"), "{err}");

        let missing = dir.path().join("missing.pem");
        let err = TrustRoots::webpki()
            .with_ca_file(&missing)
            .root_store()
            .unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    #[test]
    fn native_roots_come_from_the_system_store() {
        // rustls-native-certs reads SSL_CERT_FILE when set: point it at a CA
        // made here, so the test knows exactly what the store holds.
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let file = dir.path().join("system.pem");
        std::fs::write(&file, ca.pem()).unwrap();
        // SAFETY: no other test in this binary reads or writes these.
        unsafe {
            std::env::set_var("SSL_CERT_FILE", &file);
            std::env::remove_var("SSL_CERT_DIR");
        }
        let store = TrustRoots::empty().with_native(true).root_store().unwrap();
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn no_roots_is_an_error() {
        assert!(matches!(
            TrustRoots::empty().root_store(),
            Err(TlsError::NoRoots)
        ));
    }

    #[test]
    fn init_crypto_installs_aws_lc_rs_once() {
        init_crypto();
        init_crypto();
        let installed = CryptoProvider::get_default().expect("installed");
        let aws = rustls::crypto::aws_lc_rs::default_provider();
        assert_eq!(
            installed.cipher_suites.len(),
            aws.cipher_suites.len(),
            "the installed provider is aws-lc-rs"
        );
    }
}
