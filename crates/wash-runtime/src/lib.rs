//! `wash-runtime`: an embeddable WebAssembly component runtime.
//!
//! # Modules
//!
//! The modules are layers: each uses only those listed before it.
//!
//! | module | what it is |
//! |---|---|
//! | [`types`] | the data model: [`types::Workload`], [`types::Component`], host interfaces |
//! | [`tls`] | the crypto provider (rustls on aws-lc-rs), trust roots, `wasi:tls` |
//! | [`engine`] | the wasmtime engine, compile cache, component loading |
//! | [`egress`] | outbound HTTP and sockets of guests: policy and the default client |
//! | [`instance`] | one component instance: store state, instance reuse, calls into components |
//! | [`plugin`] | capabilities beyond WASI (key-value, blobs, messaging, config, logging, secrets) |
//! | [`host`] | workloads and their lifecycle, the linker, the HTTP ingress |
//! | [`oci`] | components as OCI artifacts |
//! | [`washlet`] | the host's agent on the NATS control plane |
//!
//! # Features
//!
//! - `wasi-tls`: guests may use `wasi:tls` (WASI P3) for TLS over their
//!   sockets, on rustls; replace the provider with
//!   [`engine::EngineBuilder::with_tls_provider`].
//!
//! # How to embed
//!
//! 1. Build an [`engine::Engine`] with [`engine::EngineBuilder`] (pooling
//!    allocator, epoch deadlines and an optional on-disk compile cache).
//! 2. Build a [`host::Host`] with [`host::HostBuilder`], giving it the engine
//!    and, to serve HTTP, a [`host::http::HttpServerBuilder`] with a
//!    [`host::http::Router`].
//! 3. Start [`types::Workload`]s through [`host::HostApi`]: each component is
//!    compiled (or loaded from cache), linked and pre-instantiated once.
//! 4. Requests are routed to workloads; each gets a fresh instance with the
//!    component's memory limit and deadline enforced.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wash_runtime::host::{HostApi, HostBuilder, http::{DevRouter, HttpServerBuilder}};
//! use wash_runtime::types::{Component, Workload};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let host = HostBuilder::new()
//!     .with_http(HttpServerBuilder::new("127.0.0.1:8000".parse()?).router(Arc::new(DevRouter::default())))
//!     .start()
//!     .await?;
//! let component = Component {
//!     name: "hello".into(),
//!     bytes: Some(std::fs::read("hello.wasm")?.into()),
//!     ..Default::default()
//! };
//! host.workload_start("hello", Workload { name: "hello".into(), components: vec![component], ..Default::default() })
//!     .await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod digest;
pub mod egress;
pub mod engine;
pub mod host;
pub mod instance;
pub mod oci;
pub mod plugin;
pub mod telemetry;
pub mod tls;
pub mod types;
pub mod washlet;
