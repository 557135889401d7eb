//! The guest components under `components/`, built for `wasm32-wasip2`.

use std::path::PathBuf;

use bytes::Bytes;

/// Directory of the built guest components (`WASH_FIXTURES_DIR` overrides).
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("WASH_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../components/target/wasm32-wasip2/release"),
    }
}

/// The path of a fixture component, e.g. `http_hello_world`; panics with
/// the command that builds it when it is missing.
pub fn fixture_path(name: &str) -> PathBuf {
    let path = fixtures_dir().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "fixture {} is missing; build the guest components first: \
         `cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml` \
         (or run ./scripts/test.sh)",
        path.display()
    );
    path
}

/// The bytes of a fixture component.
pub fn fixture(name: &str) -> Bytes {
    let path = fixture_path(name);
    match std::fs::read(&path) {
        Ok(bytes) => bytes.into(),
        Err(e) => panic!("cannot read fixture {}: {e}", path.display()),
    }
}
