//! Instantiation time of the hello-world component: a store and an instance
//! the way wash makes one per request (pooling allocator, copy-on-write
//! memory images, pre-instantiated linker), beside plain wasmtime with its
//! default on-demand allocator doing the same with the same WASI imports.
//!
//! `cargo bench -p wash-runtime --bench instantiate`

mod support;

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use wash_runtime::host::HostApi;
use wash_runtime::host::HostBuilder;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

struct Plain {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: NoOutgoing,
}

/// The guest makes no outgoing requests here; nothing to send them with.
struct NoOutgoing;

/// The response and the future that reports how sending it went.
type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

impl WasiHttpHooks for NoOutgoing {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, HttpError>> + Send> {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

impl WasiView for Plain {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Plain {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

fn instantiate(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bytes = support::fixture("http_hello_world");

    // wash: the host's own path.
    let capture = support::capture_plugin();
    let handle = runtime.block_on(async {
        let host = HostBuilder::new()
            .with_plugin(capture.clone())
            .expect("plugin")
            .start()
            .await
            .expect("host");
        host.workload_start(
            "bench",
            support::http_workload("bench", bytes.clone(), "bench.test", true),
        )
        .await
        .expect("workload");
        // Keep the host alive for the whole run.
        std::mem::forget(host);
        capture.handles().pop().expect("captured component")
    });

    // Plain wasmtime, default configuration.
    let mut config = wasmtime::Config::new();
    config.wasm_component_model_async(true);
    let engine = wasmtime::Engine::new(&config).expect("engine");
    let component = Component::new(&engine, &bytes).expect("compile");
    let mut linker = Linker::<Plain>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).expect("http");
    let pre = Arc::new(linker.instantiate_pre(&component).expect("pre"));

    let mut group = c.benchmark_group("instantiate http_hello_world");
    group.bench_function("wash (pooling, CoW, pre-instantiated)", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut store = handle.new_store().await.expect("store");
            handle
                .instance_pre()
                .instantiate_async(&mut *store)
                .await
                .expect("instance")
        })
    });
    group.bench_function("wasmtime defaults (on-demand allocator)", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut store = wasmtime::Store::new(
                &engine,
                Plain {
                    wasi: WasiCtx::builder().build(),
                    http: WasiHttpCtx::new(),
                    table: ResourceTable::new(),
                    hooks: NoOutgoing,
                },
            );
            pre.instantiate_async(&mut store).await.expect("instance")
        })
    });
    group.finish();
}

criterion_group!(benches, instantiate);
criterion_main!(benches);
