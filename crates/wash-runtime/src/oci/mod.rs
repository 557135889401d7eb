//! Components as OCI artifacts: pushed and pulled with `oci-client` in the
//! CNCF wasm layout (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer), cached on disk by digest and verified.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::digest::sha256_hex;
use bytes::Bytes;
use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
/// An image manifest, as [`OciClient::manifest`] returns it.
pub use oci_client::manifest::OciImageManifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::types::{Credentials, PullPolicy};

/// Media type of the artifact's config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Layer media types accepted when pulling (older tools wrote the second).
const ACCEPTED_LAYERS: [&str; 2] = [
    WASM_LAYER_MEDIA_TYPE,
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// Errors of OCI operations; each names the reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// The reference does not parse.
    #[error("`{reference}` is not a valid OCI reference: {reason}")]
    Reference {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The registry refused or failed.
    #[error("{operation} `{reference}`: {reason}")]
    Registry {
        /// `pull` or `push`.
        operation: &'static str,
        /// The reference.
        reference: String,
        /// What the registry or network said.
        reason: String,
    },
    /// The registry does not have the reference (no such tag, digest or
    /// repository).
    #[error("{operation} `{reference}`: not found in the registry ({reason})")]
    NotFound {
        /// `pull` or `push`.
        operation: &'static str,
        /// The reference.
        reference: String,
        /// What the registry said.
        reason: String,
    },
    /// The registry wants a login, or refused the one given.
    #[error("{operation} `{reference}`: the registry refused access ({reason})")]
    Unauthorized {
        /// `pull` or `push`.
        operation: &'static str,
        /// The reference.
        reference: String,
        /// What the registry said.
        reason: String,
    },
    /// No connection to the registry could be made.
    #[error("{operation} `{reference}`: cannot reach registry {registry} ({reason})")]
    Unreachable {
        /// `pull` or `push`.
        operation: &'static str,
        /// The reference.
        reference: String,
        /// `host[:port]` of the registry.
        registry: String,
        /// What the network said.
        reason: String,
    },
    /// The artifact holds no wasm component layer.
    #[error("`{reference}` is not a wasm component artifact (layers: {layers})")]
    NotWasm {
        /// The reference.
        reference: String,
        /// Media types it does have.
        layers: String,
    },
    /// The bytes do not match their digest.
    #[error("`{reference}`: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The reference.
        reference: String,
        /// Declared digest.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// Pull policy `Never` and nothing cached.
    #[error("`{reference}` is not cached and the pull policy is Never")]
    NotCached {
        /// The reference.
        reference: String,
    },
    /// The pull took longer than allowed.
    #[error("pulling `{reference}` timed out after {after:?}")]
    Timeout {
        /// The reference.
        reference: String,
        /// The limit.
        after: Duration,
    },
    /// The cache directory could not be used.
    #[error("OCI cache {}: {source}", path.display())]
    Cache {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A CA file could not be used.
    #[error("CA file {}: {reason}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// How an [`OciClient`] reaches registries.
#[derive(Debug, Clone)]
pub struct OciConfig {
    /// Where pulled components are kept, by digest.
    pub cache_dir: PathBuf,
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM files) to trust.
    pub ca_files: Vec<PathBuf>,
    /// Longest a pull may take.
    pub pull_timeout: Duration,
}

impl OciConfig {
    /// Caching under `cache_dir`, HTTPS only, a 5-minute pull limit.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            insecure_registries: Vec::new(),
            ca_files: Vec::new(),
            pull_timeout: Duration::from_secs(300),
        }
    }
}

/// A pulled component.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The component's bytes.
    pub bytes: Bytes,
    /// `sha256:<hex>` of the bytes (the layer digest).
    pub digest: String,
    /// Whether the bytes came from the local cache.
    pub cached: bool,
}

/// One wasm layer and what describes it, for [`OciClient::push_artifact`].
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The wasm bytes (a component or a WIT package).
    pub layer: Bytes,
    /// The artifact's config document (`application/vnd.wasm.config.v0+json`).
    pub config: serde_json::Value,
    /// Manifest annotations (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
    /// Annotations of the layer (its title, for tools that save it).
    pub layer_annotations: BTreeMap<String, String>,
}

/// Progress of a transfer: bytes so far, and the total when known.
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// Pulls and pushes components.
pub struct OciClient {
    config: OciConfig,
    extra_roots: Vec<oci_client::client::Certificate>,
    /// One `oci_client::Client` per login: it remembers the first login it
    /// sees for a registry, and workloads may pull from one registry with
    /// different secrets. Keyed by a digest of the login, never the login.
    clients: std::sync::Mutex<std::collections::HashMap<String, Client>>,
    /// Pulls in progress, by reference and login: concurrent pulls of one
    /// image wait for the first instead of each fetching it.
    flights: std::sync::Mutex<std::collections::HashMap<String, std::sync::Weak<Flight>>>,
    /// Pulls that reached a registry.
    fetches: std::sync::atomic::AtomicU64,
}

/// One image's pulls: taken in turn, and the latest result kept for the
/// pulls that waited on it.
#[derive(Default)]
struct Flight(tokio::sync::Mutex<Option<(tokio::time::Instant, Pulled)>>);

impl std::fmt::Debug for OciClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciClient")
            .field("config", &self.config)
            .finish()
    }
}

/// Sorts a registry failure into what a user can act on: not found, not
/// authorized, unreachable, or anything else.
fn classify(
    operation: &'static str,
    reference: &str,
    parsed: &Reference,
    error: OciDistributionError,
) -> OciError {
    let reason = error.to_string();
    let reference = reference.to_string();
    let codes: Vec<&OciErrorCode> = match &error {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|e| &e.code).collect()
        }
        _ => Vec::new(),
    };
    let not_found = matches!(error, OciDistributionError::ImageManifestNotFoundError(_))
        || matches!(error, OciDistributionError::ServerError { code: 404, .. })
        || codes.iter().any(|c| {
            matches!(
                c,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
            )
        });
    let unauthorized = matches!(
        error,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::ServerError {
                code: 401 | 403,
                ..
            }
    ) || codes
        .iter()
        .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied));
    let unreachable = match &error {
        OciDistributionError::RequestError(e) => e.is_connect() || e.is_timeout(),
        _ => false,
    };
    if unauthorized {
        OciError::Unauthorized {
            operation,
            reference,
            reason,
        }
    } else if not_found {
        OciError::NotFound {
            operation,
            reference,
            reason,
        }
    } else if unreachable {
        // The innermost cause says why (refused, timed out, DNS).
        let mut cause: &dyn std::error::Error = &error;
        while let Some(next) = cause.source() {
            cause = next;
        }
        OciError::Unreachable {
            operation,
            reference,
            registry: parsed.resolve_registry().to_string(),
            reason: cause.to_string(),
        }
    } else {
        OciError::Registry {
            operation,
            reference,
            reason,
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

impl OciClient {
    /// A client per `config` (reads the CA files now).
    pub fn new(config: OciConfig) -> Result<Self, OciError> {
        // reqwest's rustls needs the process provider; an embedder that did
        // not install one must not get a panic at its first pull.
        crate::tls::init_crypto();
        let mut extra = Vec::new();
        for path in &config.ca_files {
            let data = std::fs::read(path).map_err(|e| OciError::Ca {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            extra.push(oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data,
            });
        }
        let this = Self {
            config,
            extra_roots: extra,
            clients: Default::default(),
            flights: Default::default(),
            fetches: Default::default(),
        };
        // Build the anonymous client now so a bad CA fails at start, not at
        // the first pull.
        this.client_for(&RegistryAuth::Anonymous)?;
        Ok(this)
    }

    /// The client for `auth`, made on first use.
    fn client_for(&self, auth: &RegistryAuth) -> Result<Client, OciError> {
        let key = match auth {
            RegistryAuth::Anonymous => "anonymous".to_string(),
            RegistryAuth::Basic(user, password) => {
                sha256(format!("basic\0{user}\0{password}").as_bytes())
            }
            RegistryAuth::Bearer(token) => sha256(format!("bearer\0{token}").as_bytes()),
        };
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client_config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.config.insecure_registries.clone()),
            extra_root_certificates: self.extra_roots.clone(),
            connect_timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        };
        let client = Client::try_from(client_config).map_err(|e| OciError::Ca {
            path: self.config.ca_files.first().cloned().unwrap_or_default(),
            reason: e.to_string(),
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn parse(reference: &str) -> Result<Reference, OciError> {
        reference
            .parse()
            .map_err(|e: oci_client::ParseError| OciError::Reference {
                reference: reference.to_string(),
                reason: e.to_string(),
            })
    }

    /// Credentials given, else those of the docker config file, else none.
    fn auth(reference: &Reference, credentials: Option<&Credentials>) -> RegistryAuth {
        if let Some(c) = credentials {
            return RegistryAuth::Basic(c.username().to_string(), c.password().to_string());
        }
        match docker_credential::get_credential(reference.resolve_registry()) {
            Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
                RegistryAuth::Basic(user, password)
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                RegistryAuth::Bearer(token)
            }
            Err(_) => RegistryAuth::Anonymous,
        }
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.config
            .cache_dir
            .join("blobs")
            .join(digest.replace(':', "-"))
    }

    fn ref_path(&self, reference: &str) -> PathBuf {
        self.config
            .cache_dir
            .join("refs")
            .join(sha256_hex(reference.as_bytes()))
    }

    /// A cached blob whose bytes still match its digest.
    async fn cached(&self, digest: &str) -> Option<Bytes> {
        let bytes = tokio::fs::read(self.blob_path(digest)).await.ok()?;
        (sha256(&bytes) == digest).then(|| bytes.into())
    }

    async fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), OciError> {
        let cache_error = |source| OciError::Cache {
            path: path.to_path_buf(),
            source,
        };
        let dir = path
            .parent()
            .unwrap_or(&self.config.cache_dir)
            .to_path_buf();
        let (path, bytes) = (path.to_path_buf(), bytes.to_vec());
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            std::fs::create_dir_all(&dir)?;
            let mut file = tempfile::NamedTempFile::new_in(&dir)?;
            file.write_all(&bytes)?;
            file.persist(&path).map(drop).map_err(|e| e.error)
        })
        .await
        .map_err(|e| cache_error(std::io::Error::other(e)))?
        .map_err(cache_error)
    }

    /// Pulls that reached a registry so far (cache hits and pulls that
    /// waited on another pull of the same image do not count).
    pub fn registry_pulls(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pulls the component at `reference`, honoring `policy` and the cache.
    /// Concurrent pulls of one reference with the same login are one pull:
    /// the others wait for it and share its result.
    pub async fn pull(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
        policy: PullPolicy,
        progress: Progress<'_>,
    ) -> Result<Pulled, OciError> {
        let asked = tokio::time::Instant::now();
        let flight = self.flight(reference, credentials);
        let mut latest = flight.0.lock().await;
        if let Some((finished, pulled)) = latest.as_ref()
            && *finished >= asked
        {
            // A pull that ended after this one was asked for serves it.
            return Ok(Pulled {
                cached: true,
                ..pulled.clone()
            });
        }
        let pulled = self
            .pull_now(reference, credentials, policy, progress)
            .await?;
        *latest = Some((tokio::time::Instant::now(), pulled.clone()));
        Ok(pulled)
    }

    /// The flight of pulls of `reference` with this login.
    fn flight(&self, reference: &str, credentials: Option<&Credentials>) -> Arc<Flight> {
        let login = credentials
            .map(|c| sha256(format!("{}\0{}", c.username(), c.password()).as_bytes()))
            .unwrap_or_default();
        let key = format!("{reference}\0{login}");
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flight) = flights.get(&key).and_then(std::sync::Weak::upgrade) {
            return flight;
        }
        flights.retain(|_, flight| flight.strong_count() > 0);
        let flight = Arc::new(Flight::default());
        flights.insert(key, Arc::downgrade(&flight));
        flight
    }

    async fn pull_now(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
        policy: PullPolicy,
        progress: Progress<'_>,
    ) -> Result<Pulled, OciError> {
        let parsed = Self::parse(reference)?;
        // A digest pinned in the reference needs no registry round trip.
        let known = match parsed.digest() {
            Some(digest) => Some(digest.to_string()),
            None => tokio::fs::read_to_string(self.ref_path(reference))
                .await
                .ok(),
        };
        if policy != PullPolicy::Always
            && let Some(digest) = &known
            && let Some(bytes) = self.cached(digest.trim()).await
        {
            return Ok(Pulled {
                bytes,
                digest: digest.trim().to_string(),
                cached: true,
            });
        }
        if policy == PullPolicy::Never {
            return Err(OciError::NotCached {
                reference: reference.to_string(),
            });
        }
        let pulling = self.fetch(reference, &parsed, credentials, progress);
        let pulled = tokio::time::timeout(self.config.pull_timeout, pulling)
            .await
            .map_err(|_| OciError::Timeout {
                reference: reference.to_string(),
                after: self.config.pull_timeout,
            })??;
        self.store(&self.ref_path(reference), pulled.digest.as_bytes())
            .await?;
        Ok(pulled)
    }

    async fn fetch(
        &self,
        reference: &str,
        parsed: &Reference,
        credentials: Option<&Credentials>,
        progress: Progress<'_>,
    ) -> Result<Pulled, OciError> {
        let registry_error = |e| classify("pull", reference, parsed, e);
        let auth = Self::auth(parsed, credentials);
        let client = self.client_for(&auth)?;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (manifest, _) = client
            .pull_image_manifest(parsed, &auth)
            .await
            .map_err(registry_error)?;
        let Some(layer) = manifest
            .layers
            .iter()
            .find(|l| ACCEPTED_LAYERS.contains(&l.media_type.as_str()))
        else {
            return Err(OciError::NotWasm {
                reference: reference.to_string(),
                layers: manifest
                    .layers
                    .iter()
                    .map(|l| l.media_type.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if let Some(bytes) = self.cached(&layer.digest).await {
            progress(bytes.len() as u64, Some(bytes.len() as u64));
            return Ok(Pulled {
                bytes,
                digest: layer.digest.clone(),
                cached: true,
            });
        }
        let mut stream = client
            .pull_blob_stream(parsed, layer)
            .await
            .map_err(registry_error)?;
        let total = stream.content_length.or(u64::try_from(layer.size).ok());
        // The registry's size is a hint, not a promise: cap what is reserved
        // up front so a lying header cannot make the host allocate gigabytes.
        let reserve = total.unwrap_or(0).min(64 * 1024 * 1024);
        let mut bytes = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| OciError::Registry {
                operation: "pull",
                reference: reference.to_string(),
                reason: e.to_string(),
            })?;
            bytes.extend_from_slice(&chunk);
            progress(bytes.len() as u64, total);
        }
        let actual = sha256(&bytes);
        if actual != layer.digest {
            return Err(OciError::DigestMismatch {
                reference: reference.to_string(),
                expected: layer.digest.clone(),
                actual,
            });
        }
        self.store(&self.blob_path(&actual), &bytes).await?;
        Ok(Pulled {
            bytes: bytes.into(),
            digest: actual,
            cached: false,
        })
    }

    /// Pushes a component; returns the manifest URL and the layer digest.
    pub async fn push(
        &self,
        reference: &str,
        component: Bytes,
        credentials: Option<&Credentials>,
    ) -> Result<(String, String), OciError> {
        let digest = sha256(&component);
        let config = serde_json::json!({
            "created": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [digest],
        });
        let artifact = Artifact {
            layer: component,
            config,
            annotations: BTreeMap::new(),
            layer_annotations: BTreeMap::new(),
        };
        let url = self.push_artifact(reference, artifact, credentials).await?;
        Ok((url, digest))
    }

    /// Pushes one wasm layer with its config and annotations, in the CNCF
    /// wasm layout; returns the manifest URL.
    pub async fn push_artifact(
        &self,
        reference: &str,
        artifact: Artifact,
        credentials: Option<&Credentials>,
    ) -> Result<String, OciError> {
        let parsed = Self::parse(reference)?;
        let config = Config::new(
            artifact.config.to_string().into_bytes(),
            WASM_CONFIG_MEDIA_TYPE.into(),
            None,
        );
        let layer_annotations =
            (!artifact.layer_annotations.is_empty()).then_some(artifact.layer_annotations);
        let layers = vec![ImageLayer::new(
            artifact.layer.to_vec(),
            WASM_LAYER_MEDIA_TYPE.into(),
            layer_annotations,
        )];
        let annotations = (!artifact.annotations.is_empty()).then_some(artifact.annotations);
        let manifest = OciImageManifest::build(&layers, &config, annotations);
        let auth = Self::auth(&parsed, credentials);
        let response = self
            .client_for(&auth)?
            .push(&parsed, &layers, config, &auth, Some(manifest))
            .await
            .map_err(|e| classify("push", reference, &parsed, e))?;
        Ok(response.manifest_url)
    }

    /// The manifest at `reference` and its digest, or `None` when the
    /// registry does not have it.
    pub async fn manifest(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Option<(OciImageManifest, String)>, OciError> {
        let parsed = Self::parse(reference)?;
        let auth = Self::auth(&parsed, credentials);
        let client = self.client_for(&auth)?;
        match client.pull_image_manifest(&parsed, &auth).await {
            Ok(found) => Ok(Some(found)),
            Err(e) => match classify("pull", reference, &parsed, e) {
                OciError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The tags of the repository `reference` names (its tag, if any, is
    /// ignored).
    pub async fn tags(
        &self,
        reference: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Vec<String>, OciError> {
        let parsed = Self::parse(reference)?;
        let auth = Self::auth(&parsed, credentials);
        let client = self.client_for(&auth)?;
        let response = client
            .list_tags(&parsed, &auth, None, None)
            .await
            .map_err(|e| classify("list tags of", reference, &parsed, e))?;
        Ok(response.tags)
    }
}
