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

/// `name` as a file or directory name inside `dir`. The plugins refuse
/// empty names before they get here; should one arrive anyway, it maps to
/// `%` (which no escaped name can be), never to `dir` itself.
pub(crate) fn entry(dir: &Path, name: &str) -> PathBuf {
    if name.is_empty() {
        return dir.join("%");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_one_entry_inside_its_directory() {
        let dir = Path::new("/data/bucket");
        let long = "../".repeat(400);
        for name in [
            "",
            ".",
            "..",
            "/",
            "../..",
            "%2e%2e",
            "a/../../b",
            "a\0b",
            "\\",
            &long,
        ] {
            let path = entry(dir, name);
            assert_eq!(path.parent(), Some(dir), "{name:?} -> {}", path.display());
            let file = path.file_name().unwrap().to_str().unwrap();
            assert!(file != "." && file != "..", "{name:?}");
            assert!(!file.contains('/'), "{name:?}");
        }
        // Escaping is one to one: distinct names, distinct entries.
        assert_ne!(entry(dir, ".."), entry(dir, "%2e%2e"));
        assert_ne!(entry(dir, ""), entry(dir, "%"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]

        /// Any name is one entry directly inside its directory, and reads
        /// back as itself.
        #[test]
        fn escaped_names_stay_inside_and_round_trip(name in "\\PC{1,40}|[./%\\\\\\x00-]{1,12}") {
            let dir = Path::new("/data/bucket");
            let path = entry(dir, &name);
            proptest::prop_assert_eq!(path.parent(), Some(dir));
            let file = path.file_name().unwrap().to_str().unwrap();
            proptest::prop_assert!(file != "." && file != ".." && !file.contains('/'));
            proptest::prop_assert!(!file.starts_with('.'), "hidden like a temp file: {}", file);
            let decoded = percent_decode_str(file).decode_utf8_lossy();
            proptest::prop_assert_eq!(decoded, name);
        }
    }
}
