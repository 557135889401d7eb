//! The names guests give buckets, keys, containers and objects, checked
//! before any backend sees them: every backend refuses the same names with
//! the same message, and no backend has to guess what an empty name means
//! (to a filesystem, the directory itself).

/// Longest name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// What a name names, for the message.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NameOf {
    Bucket,
    Key,
    Container,
    Object,
}

impl NameOf {
    fn noun(self) -> &'static str {
        match self {
            Self::Bucket => "bucket",
            Self::Key => "key",
            Self::Container => "container",
            Self::Object => "object",
        }
    }
}

/// `Ok` for a usable name; else why not, e.g. "container name is empty".
pub(crate) fn check(of: NameOf, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{} name is empty", of.noun()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{} name is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            of.noun(),
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_overlong_names_are_refused_by_kind() {
        assert_eq!(
            check(NameOf::Container, ""),
            Err("container name is empty".into())
        );
        assert_eq!(check(NameOf::Key, ""), Err("key name is empty".into()));
        assert!(check(NameOf::Object, &"x".repeat(MAX_NAME_BYTES)).is_ok());
        let long = check(NameOf::Bucket, &"x".repeat(MAX_NAME_BYTES + 1)).unwrap_err();
        assert!(long.starts_with("bucket name is 1025 bytes long"), "{long}");
        for fine in ["..", "/", "%2e%2e", "a\0b", "ünï"] {
            assert!(check(NameOf::Key, fine).is_ok(), "{fine:?}");
        }
    }
}
