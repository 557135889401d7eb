//! `wasi:tls` for guests (WASI P3): the host side performs the handshake
//! with a [`TlsProvider`]. The default, [`RustlsTlsProvider`], is rustls on
//! aws-lc-rs with webpki roots; `EngineBuilder::with_tls_provider` replaces
//! it for every workload of an engine.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
pub use wasmtime_wasi_tls::TlsProvider;
use wasmtime_wasi_tls::{Error as WasiTlsError, TlsStream, TlsTransport};

use super::{TlsError, TrustRoots, provider};

/// How long a handshake may take before the guest gets an error.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`TlsProvider`] on rustls (aws-lc-rs), with configurable roots,
/// optional certificate pinning and a handshake timeout.
///
/// ```
/// use wash_runtime::tls::{TrustRoots, wasi::RustlsTlsProvider};
/// let provider = RustlsTlsProvider::builder()
///     .trust(TrustRoots::webpki())
///     .pin_sha256([0u8; 32])
///     .build()
///     .unwrap();
/// ```
#[derive(Clone)]
pub struct RustlsTlsProvider {
    config: Arc<ClientConfig>,
    handshake_timeout: Duration,
}

/// Builds a [`RustlsTlsProvider`].
#[derive(Debug, Clone, Default)]
pub struct RustlsTlsProviderBuilder {
    trust: TrustRoots,
    pins: Vec<[u8; 32]>,
    handshake_timeout: Option<Duration>,
}

impl RustlsTlsProviderBuilder {
    /// The roots server certificates must chain to.
    pub fn trust(mut self, trust: TrustRoots) -> Self {
        self.trust = trust;
        self
    }

    /// Additionally require the server's end-entity certificate to have this
    /// SHA-256 digest (of its DER). Several pins allow rotation.
    pub fn pin_sha256(mut self, digest: [u8; 32]) -> Self {
        self.pins.push(digest);
        self
    }

    /// How long a handshake may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// Reads the roots and builds the provider.
    pub fn build(self) -> Result<RustlsTlsProvider, TlsError> {
        // wasi:tls offers no ALPN protocols.
        let config = if self.pins.is_empty() {
            self.trust.client_config(&[])?
        } else {
            let roots = Arc::new(self.trust.root_store()?);
            let chain = WebPkiServerVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                    chain,
                    pins: self.pins,
                }))
                .with_no_client_auth()
        };
        Ok(RustlsTlsProvider {
            config: Arc::new(config),
            handshake_timeout: self.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
        })
    }
}

impl RustlsTlsProvider {
    /// Webpki roots, no pins.
    pub fn new() -> Result<Self, TlsError> {
        Self::builder().build()
    }

    /// A builder starting from webpki roots.
    pub fn builder() -> RustlsTlsProviderBuilder {
        RustlsTlsProviderBuilder::default()
    }

    /// Uses a ready rustls configuration (it should use aws-lc-rs).
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        Self {
            config,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl TlsProvider for RustlsTlsProvider {
    fn connect(
        &self,
        server_name: String,
        transport: Box<dyn TlsTransport>,
    ) -> Pin<Box<dyn Future<Output = Result<Box<dyn TlsStream>, WasiTlsError>> + Send>> {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let timeout = self.handshake_timeout;
        Box::pin(async move {
            let name = ServerName::try_from(server_name.clone())
                .map_err(|_| WasiTlsError::msg(format!("invalid server name `{server_name}`")))?;
            let handshake = connector.connect(name, transport);
            let stream = match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(WasiTlsError::msg(describe(&e))),
                Err(_) => {
                    return Err(WasiTlsError::msg(format!(
                        "TLS handshake with `{server_name}` timed out after {timeout:?}"
                    )));
                }
            };
            Ok(Box::new(RustlsStream(stream)) as Box<dyn TlsStream>)
        })
    }
}

/// What went wrong in a handshake, e.g. `invalid peer certificate: UnknownIssuer`.
fn describe(error: &io::Error) -> String {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => error.to_string(),
    }
}

/// Shares one provider among the stores of an engine.
pub(crate) struct SharedProvider(pub(crate) Arc<dyn TlsProvider>);

impl TlsProvider for SharedProvider {
    fn connect(
        &self,
        server_name: String,
        transport: Box<dyn TlsTransport>,
    ) -> Pin<Box<dyn Future<Output = Result<Box<dyn TlsStream>, WasiTlsError>> + Send>> {
        self.0.connect(server_name, transport)
    }
}

/// A rustls client stream, as wasi-tls wants it.
struct RustlsStream(tokio_rustls::client::TlsStream<Box<dyn TlsTransport>>);

impl TlsStream for RustlsStream {}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Verifies the chain as usual, then requires a pinned end-entity digest.
#[derive(Debug)]
struct PinnedVerifier {
    chain: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if self.pins.contains(&digest) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}
