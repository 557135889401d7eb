//! `wash-runtime`: an embeddable WebAssembly component runtime.
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

pub mod engine;
pub mod host;
pub mod oci;
pub mod plugin;
pub mod tls;
pub mod types;
pub mod washlet;
