//! WIT packages: built from source with provenance, published to and
//! fetched from OCI registries, and pinned in a lock file.

pub mod fetch;
pub mod lock;
pub mod naming;
pub mod package;
pub mod registry;

/// `sha256:<hex>` of `bytes`, as OCI names content.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
