//! Deploy -> first 200: how long from `workload_start` of the hello-world
//! component to its first successful response, with an empty compilation
//! cache and with a warm one. Median of several runs, each on a new host
//! (and a new engine), so nothing but the on-disk cache carries over.
//!
//! `cargo bench -p wash-runtime --bench deploy`

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wash_runtime::engine::EngineBuilder;
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{HostApi, HostBuilder};

const RUNS: usize = 7;

/// One deploy on a new host using `cache`; the time to the first 200.
async fn deploy_once(cache: &std::path::Path, bytes: bytes::Bytes) -> Duration {
    let engine = EngineBuilder::new()
        .with_compile_cache(cache)
        .build()
        .expect("engine");
    let host = HostBuilder::new()
        .with_engine(engine)
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().expect("address"))
                .router(Arc::new(DynamicRouter::new())),
        )
        .start()
        .await
        .expect("host");
    let addr = host.http_addr().expect("http address");
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    // Connect before the clock starts: the deploy is measured, not the TCP
    // handshake of the first request.
    let started = Instant::now();
    host.workload_start(
        "app",
        support::http_workload("app", bytes, "app.test", false),
    )
    .await
    .expect("workload");
    loop {
        let request = http::Request::get(format!("http://{addr}/"))
            .header(http::header::HOST, "app.test")
            .body(Empty::new())
            .expect("request");
        if let Ok(response) = client.request(request).await
            && response.status() == 200
        {
            let _ = response.into_body().collect().await;
            break;
        }
    }
    let elapsed = started.elapsed();
    host.shutdown(Duration::from_secs(1)).await;
    elapsed
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bytes = support::fixture("http_hello_world");
    runtime.block_on(async {
        let mut uncached = Vec::new();
        for _ in 0..RUNS {
            let empty = tempfile::tempdir().expect("temp dir");
            uncached.push(deploy_once(empty.path(), bytes.clone()).await);
        }
        let warm = tempfile::tempdir().expect("temp dir");
        deploy_once(warm.path(), bytes.clone()).await;
        let mut cached = Vec::new();
        for _ in 0..RUNS {
            cached.push(deploy_once(warm.path(), bytes.clone()).await);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "deploy -> first 200, http_hello_world ({} KiB), median of {RUNS}:",
            bytes.len() / 1024
        );
        println!("  uncached compile: {:8.2} ms", ms(median(uncached)));
        println!("  cached compile:   {:8.2} ms", ms(median(cached)));
    });
}
