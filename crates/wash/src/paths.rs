//! Where wash keeps its files.

use std::path::PathBuf;

/// wash's cache directory: `$WASH_CACHE_DIR`, else the platform cache
/// directory (XDG on Linux) + `wash`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASH_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("wash")
}

/// Compiled components, keyed by digest and engine settings.
pub fn compile_cache_dir() -> PathBuf {
    cache_dir().join("compiled")
}

/// Images pulled from OCI registries, by digest.
pub fn oci_cache_dir() -> PathBuf {
    cache_dir().join("oci")
}

/// wash's data directory: `$WASH_DATA_DIR`, else the platform data
/// directory (XDG on Linux) + `wash`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("wash")
}
