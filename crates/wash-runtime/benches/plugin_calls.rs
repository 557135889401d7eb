//! The cost of calling a plugin function that does nothing
//! (`example:noop/api.noop`: no parameters, no results) from a workload,
//! served three ways: by a native plugin whose host function is linked
//! synchronously, by one linked as an async host function (as wash's
//! built-in capabilities are), and by `components/noop-plugin` loaded as a
//! component plugin. The guest (`components/noop-bench`) times the calls
//! itself, N to a request.
//!
//! The three hosts run in this process and take turns, a request each:
//! this machine's speed drifts from one request to the next, and taking
//! turns puts the three sides of a round under the same conditions. A
//! ratio is the median of the rounds' ratios.
//!
//! `cargo bench -p wash-runtime --bench plugin_calls -- [calls per request=100000] [rounds=150] [component]`
//! (`component` times the component plugin alone, for a profile.)
//! (`bench/plugins.sh` runs it after the `wasi:keyvalue` calls.)

// The tests' HTTP client.
#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};
use wash_runtime::plugin::component::{ComponentPluginSource, ComponentPluginSpec};
use wash_runtime::plugin::{
    HostPlugin, ItemBind, PluginError, PluginFuture, ProvidedInterface, WorkloadBind,
};

/// The allocator `wash` ships with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const INTERFACE: &str = "example:noop/api@0.1.0";
const ROUTE: &str = "noop.test";

/// `example:noop/api` as a native plugin: a host function that returns at
/// once, linked sync or async.
struct NativeNoop {
    asynchronous: bool,
}

impl HostPlugin for NativeNoop {
    type WorkloadState = ();

    fn id(&self) -> &str {
        "native-noop"
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new("example", "noop", "0.1.0", &["api"])]
    }

    fn on_workload_bind<'a>(&'a self, _workload: &'a WorkloadBind<'a>) -> PluginFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn on_workload_item_bind(&self, _: &(), item: &mut ItemBind<'_>) -> Result<(), PluginError> {
        let asynchronous = self.asynchronous;
        item.linker
            .instance(INTERFACE)
            .and_then(|mut instance| {
                if asynchronous {
                    instance.func_wrap_async("noop", |_, (): ()| Box::new(async { Ok(()) }))
                } else {
                    instance.func_wrap("noop", |_, (): ()| Ok(()))
                }
            })
            .map_err(|e| PluginError::link("native-noop", INTERFACE, e))
    }
}

type Client = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

/// One of the hosts taking turns, and what it answered.
struct Side {
    name: &'static str,
    addr: SocketAddr,
    /// Mean ns per call of each request.
    means: Vec<f64>,
    /// ns per call of each request's fastest batch.
    fastest: Vec<f64>,
}

async fn host(native: Option<NativeNoop>) -> Host {
    let mut builder = HostBuilder::new().with_http(
        HttpServerBuilder::new(([127, 0, 0, 1], 0).into()).router(Arc::new(DynamicRouter::new())),
    );
    builder = match native {
        Some(plugin) => builder
            .with_plugin(Arc::new(plugin))
            .expect("native plugin"),
        None => builder
            .with_component_plugin(ComponentPluginSpec::new(
                "noop",
                ComponentPluginSource::Bytes(support::fixture("noop_plugin")),
            ))
            .expect("component plugin"),
    };
    let host = builder.start().await.expect("host starts");
    host.workload_start(
        "noop-bench",
        support::http_workload("noop-bench", support::fixture("noop_bench"), ROUTE, false),
    )
    .await
    .expect("the bench workload starts");
    host
}

/// `n` calls in one request: (mean, fastest batch), ns per call.
async fn time(client: &Client, addr: SocketAddr, n: u64) -> (f64, f64) {
    let (status, body) = common::get(client, addr, ROUTE, &format!("/noop/{n}")).await;
    assert_eq!(status, 200, "{body}");
    let mut numbers = body
        .split_whitespace()
        .map(|n| n.parse::<f64>().expect("a number"));
    let (Some(mean), Some(fastest)) = (numbers.next(), numbers.next()) else {
        panic!("unexpected answer: {body}");
    };
    (mean, fastest)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

/// Median of the rounds' ratios `a / b`, and their spread.
fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(0.0, f64::max);
    (median(ratios), low, high)
}

/// wasmtime alone, for the floor: the plugin instantiated in a store of an
/// engine without concurrency (as wash runs plugins), its `noop` export
/// called straight from the host.
struct WasmtimeAlone {
    store: wasmtime::Store<()>,
    typed: wasmtime::component::TypedFunc<(), ()>,
    dynamic: wasmtime::component::Func,
    /// ns per call of each round: `TypedFunc::call_async` (on a fiber, as
    /// wash calls a plugin), `Func::call_async` with `Val`s (how wash calls
    /// a custom interface), `TypedFunc::call` (no fiber).
    typed_async: Vec<f64>,
    dynamic_async: Vec<f64>,
    typed_sync: Vec<f64>,
}

impl WasmtimeAlone {
    fn new() -> Self {
        use wasmtime::component::{Component, Linker};
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .concurrency_support(false)
            .epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config).expect("engine");
        let component =
            Component::new(&engine, support::fixture("noop_plugin")).expect("the plugin compiles");
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = Linker::new(&engine)
            .instantiate(&mut store, &component)
            .expect("the plugin imports nothing");
        let api = instance
            .get_export_index(&mut store, None, INTERFACE)
            .expect("exports the interface");
        let noop = instance
            .get_export_index(&mut store, Some(&api), "noop")
            .expect("exports noop");
        let typed = instance
            .get_typed_func(&mut store, noop)
            .expect("noop: func()");
        let dynamic = instance.get_func(&mut store, noop).expect("noop");
        Self {
            store,
            typed,
            dynamic,
            typed_async: Vec::new(),
            dynamic_async: Vec::new(),
            typed_sync: Vec::new(),
        }
    }

    /// One round: `calls` calls each way.
    async fn time(&mut self, calls: u64) {
        let per_call =
            |started: std::time::Instant| started.elapsed().as_nanos() as f64 / calls as f64;
        let started = std::time::Instant::now();
        for _ in 0..calls {
            self.typed
                .call_async(&mut self.store, ())
                .await
                .expect("call");
        }
        self.typed_async.push(per_call(started));
        let started = std::time::Instant::now();
        for _ in 0..calls {
            self.dynamic
                .call_async(&mut self.store, &[], &mut [])
                .await
                .expect("call");
        }
        self.dynamic_async.push(per_call(started));
        let started = std::time::Instant::now();
        for _ in 0..calls {
            self.typed.call(&mut self.store, ()).expect("call");
        }
        self.typed_sync.push(per_call(started));
    }
}

fn main() {
    // Cargo passes `--bench`; the numbers are ours.
    let numbers: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let calls = numbers.first().copied().unwrap_or(100_000).max(1);
    let rounds = numbers.get(1).copied().unwrap_or(150).max(1);
    // `component`: time that side alone (to profile it).
    let only_component = std::env::args().any(|a| a == "component");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        // Kept alive while they serve.
        let mut hosts = vec![("component", host(None).await)];
        if !only_component {
            hosts.insert(0, ("native (sync)", host(Some(NativeNoop { asynchronous: false })).await));
            hosts.insert(1, ("native (async)", host(Some(NativeNoop { asynchronous: true })).await));
        }
        let mut sides: Vec<Side> = hosts
            .iter()
            .map(|(name, host)| Side {
                name,
                addr: host.http_addr().expect("HTTP address"),
                means: Vec::new(),
                fastest: Vec::new(),
            })
            .collect();
        let mut alone = (!only_component).then(WasmtimeAlone::new);
        let client = common::client();
        for side in &sides {
            time(&client, side.addr, calls).await; // warm-up
        }
        eprintln!("==> timing noop ({rounds} rounds x {calls} calls)");
        for _ in 0..rounds {
            for side in &mut sides {
                let (mean, fastest) = time(&client, side.addr, calls).await;
                side.means.push(mean);
                side.fastest.push(fastest);
            }
            if let Some(alone) = &mut alone {
                alone.time(calls).await;
            }
        }
        println!(
            "\n{:<16} | {:>10} {:>30} | {:>10} {:>30}",
            "noop served by",
            "mean ns",
            "component / this (range)",
            "fastest ns",
            "component / this (range)"
        );
        let component = &sides[sides.len() - 1];
        for side in &sides {
            let (r, lo, hi) = ratio(&component.means, &side.means);
            let (fr, flo, fhi) = ratio(&component.fastest, &side.fastest);
            println!(
                "{:<16} | {:>10.0} {:>30} | {:>10.0} {:>30}",
                side.name,
                median(side.means.clone()),
                format!("{r:.2}x ({lo:.2}-{hi:.2})"),
                median(side.fastest.clone()),
                format!("{fr:.2}x ({flo:.2}-{fhi:.2})"),
            );
        }
        println!(
            "ns per call, medians of {rounds} rounds of {calls} calls; ratio = median of the rounds' ratios; {} cores",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        if let Some(alone) = alone {
            // A component no-op costs at least the workload's side of a
            // host call (the whole native no-op) plus wasmtime's entry
            // into the plugin: its ratio to native can go no lower.
            let native = &sides[0].means;
            println!(
                "\nwasmtime alone, the host calling the plugin's noop, timed in the same rounds; \
                 floor = (native (sync) + this) / native (sync), median of rounds"
            );
            for (name, ns) in [
                ("TypedFunc::call_async", &alone.typed_async),
                ("Func::call_async", &alone.dynamic_async),
                ("TypedFunc::call", &alone.typed_sync),
            ] {
                let floor: Vec<f64> = native.iter().zip(ns).map(|(n, a)| n + a).collect();
                let (r, lo, hi) = ratio(&floor, native);
                println!(
                    "{name:<22} | {:>6.0} ns | floor {r:.2}x ({lo:.2}-{hi:.2})",
                    median(ns.clone())
                );
            }
        }
        drop(hosts);
    });
}
