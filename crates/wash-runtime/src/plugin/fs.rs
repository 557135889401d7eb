//! On-disk layout shared by the filesystem backends (key-value, blobstore):
//! a directory per bucket or container under a root, a file per entry,
//! names escaped so none can leave its directory, writes atomic.

use std::io::Write;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Letters, digits, `-` and `_` stay; everything else is escaped, so no
/// name can be a path (no `/`, no `.` or `..`).
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// Creates `root` (and its parents); the error names the directory.
pub(crate) fn create_root(root: impl Into<PathBuf>) -> std::io::Result<PathBuf> {
    let root = root.into();
    std::fs::create_dir_all(&root).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", root.display()))
    })?;
    Ok(root)
}

/// `name` as a file or directory name inside `dir`.
pub(crate) fn entry(dir: &Path, name: &str) -> PathBuf {
    dir.join(utf8_percent_encode(name, ESCAPE).to_string())
}

/// Writes `data` to `path` (inside `dir`) through a synced temporary file
/// and a rename: a crash never leaves a torn file.
pub(crate) async fn write_atomic(
    dir: PathBuf,
    path: PathBuf,
    data: impl AsRef<[u8]> + Send + 'static,
) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut file = tempfile::NamedTempFile::new_in(&dir)?;
        file.write_all(data.as_ref())?;
        file.as_file().sync_data()?;
        file.persist(&path).map(drop).map_err(|e| e.error)
    })
    .await
    .map_err(|e| std::io::Error::other(format!("write task failed: {e}")))?
}

/// The decoded names of the entries in `dir`, unsorted.
pub(crate) async fn list_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    let mut names = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Temporary files of writes in progress start with `.`.
        if !name.starts_with('.') {
            names.push(percent_decode_str(name).decode_utf8_lossy().into_owned());
        }
    }
    Ok(names)
}
