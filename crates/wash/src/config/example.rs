//! What `wash config init` writes: a small starting point, or with
//! `--example` every section filled with values that pass validation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{
    BuildConfig, Config, DevConfig, HostConfig, NewConfig, WitConfig, WitRegistry, WorkloadConfig,
};

/// The layout version this wash writes.
pub const VERSION: &str = "1";

/// A fresh project's config: the version and where `wash dev` listens.
pub fn minimal() -> Config {
    Config {
        version: Some(VERSION.into()),
        dev: DevConfig {
            address: Some("127.0.0.1:8000".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every section with illustrative values. Nothing in it needs a server or
/// a file that a fresh project lacks, so it validates as written.
pub fn example() -> Config {
    Config {
        version: Some(VERSION.into()),
        build: BuildConfig {
            command: Some("cargo build --release --target wasm32-wasip2".into()),
            env: map(&[("CARGO_TERM_COLOR", "always")]),
            component_path: Some(PathBuf::from("target/wasm32-wasip2/release/app.wasm")),
        },
        new: NewConfig {
            command: Some("git init --quiet".into()),
        },
        wit: WitConfig {
            registries: vec![WitRegistry {
                url: "oci://ghcr.io".into(),
                namespace: Some("wasmcloud".into()),
                repository: Some("wasmcloud/interfaces/{name}".into()),
            }],
            skip_fetch: false,
            wit_dir: Some(PathBuf::from("wit")),
            sources: map(&[(
                "wasi:http",
                "https://github.com/WebAssembly/wasi-http/archive/refs/tags/v0.2.3.tar.gz",
            )]),
        },
        workload: WorkloadConfig {
            config: map(&[("greeting", "hello")]),
            allowed_hosts: vec!["api.example.com".into(), "*.example.org".into()],
            environment: map(&[("LOG_LEVEL", "info")]),
            ..Default::default()
        },
        host: HostConfig {
            host_group: Some("default".into()),
            http_addr: Some("0.0.0.0:8080".into()),
            scheduler_nats_url: Some("nats://127.0.0.1:4222".into()),
            data_nats_url: Some("nats://127.0.0.1:4222".into()),
            labels: map(&[("zone", "local")]),
            allow_insecure_registries: vec!["localhost:5000".into()],
            ..Default::default()
        },
        dev: DevConfig {
            address: Some("127.0.0.1:8000".into()),
            wasi_keyvalue_path: Some(PathBuf::from(".wash/data/keyvalue")),
            wasi_blobstore_path: Some(PathBuf::from(".wash/data/blobstore")),
            ..Default::default()
        },
    }
}
