//! Many workloads on one host: deploys N copies of the hello-world component
//! (each its own workload, routed at `w<i>.test`), reports the resident
//! memory each idle workload costs, then serves until killed so a load
//! generator can drive `w0.test` while the others sit idle.
//! `bench/scale.sh` runs it for 1, 100 and 1,000 workloads.
//!
//! `cargo bench -p wash-runtime --bench scale -- <workloads> <port>`

mod support;

use std::sync::Arc;

use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{HostApi, HostBuilder};

fn main() {
    // Cargo passes `--bench`; the numbers are ours.
    let numbers: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let workloads = numbers.first().copied().unwrap_or(100);
    let port = numbers.get(1).copied().unwrap_or(18703);
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
        for i in 1..workloads {
            let id = format!("w{i}");
            let route = format!("{id}.test");
            host.workload_start(
                &id,
                support::http_workload(&id, bytes.clone(), &route, false),
            )
            .await
            .expect("workload");
        }
        let after = support::rss_kib();
        let per = if workloads > 1 {
            (after.saturating_sub(before)) as f64 / (workloads - 1) as f64
        } else {
            0.0
        };
        println!(
            "workloads={workloads} rss_kib={after} idle_workload_kib={per:.1} live_instances={}",
            host.stats().live_instances
        );
        println!("ready");
        std::future::pending::<()>().await;
    });
}
