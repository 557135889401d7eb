//! Content digests, as the compile cache and OCI name them.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of some bytes.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
