//! Many workloads on one host: deploys N copies of the hello-world component
//! (each its own workload, routed at `w<i>.test`), reports the resident
//! memory each idle workload costs, then serves until killed so a load
//! generator can drive `w0.test` while the others sit idle.
//! `bench/scale.sh` runs it for 1, 100 and 1,000 workloads, started one
//! after another (`sequential`) or in batches of 100 at once
//! (`concurrent`, as a control plane placing a replica set does).
//!
//! `cargo bench -p wash-runtime --bench scale -- <workloads> <port> [sequential|concurrent]`

mod support;

use std::sync::Arc;

use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};

/// The allocator `wash` ships with, so the memory figures are the host's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Starts in the concurrent mode come in batches of this many.
const BATCH: u64 = 100;

fn main() {
    // Cargo passes `--bench`; the numbers and the mode are ours.
    let numbers: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let workloads = numbers.first().copied().unwrap_or(100);
    let port = numbers.get(1).copied().unwrap_or(18703);
    let concurrent = std::env::args().any(|a| a == "concurrent");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bytes = support::fixture("http_hello_world");
    runtime.block_on(async {
        let address = format!("127.0.0.1:{port}").parse().expect("address");
        let host = HostBuilder::new()
            .with_http(HttpServerBuilder::new(address).router(Arc::new(DynamicRouter::new())))
            .start()
            .await
            .expect("host");
        // The first workload pays for what every workload shares (the
        // compiled code, the linker); count the rest.
        host.workload_start(
            "w0",
            support::http_workload("w0", bytes.clone(), "w0.test", false),
        )
        .await
        .expect("workload");
        let before = support::rss_kib();
        let started = std::time::Instant::now();
        if concurrent {
            let mut next = 1;
            while next < workloads {
                let batch = next..(next + BATCH).min(workloads);
                next = batch.end;
                let starts = batch.map(|i| start(&host, i, bytes.clone()));
                futures::future::join_all(starts).await;
            }
        } else {
            for i in 1..workloads {
                start(&host, i, bytes.clone()).await;
            }
        }
        let elapsed = started.elapsed();
        let after = support::rss_kib();
        let per = if workloads > 1 {
            (after.saturating_sub(before)) as f64 / (workloads - 1) as f64
        } else {
            0.0
        };
        println!(
            "workloads={workloads} rss_kib={after} idle_workload_kib={per:.1} live_instances={} \
             start_ms={} loads={}",
            host.stats().live_instances,
            elapsed.as_millis(),
            host.engine().loads()
        );
        println!("ready");
        std::future::pending::<()>().await;
    });
}

/// Starts workload `w<i>`, routed at `w<i>.test`.
async fn start(host: &Host, i: u64, bytes: bytes::Bytes) {
    let id = format!("w{i}");
    let route = format!("{id}.test");
    host.workload_start(&id, support::http_workload(&id, bytes, &route, false))
        .await
        .expect("workload");
}
