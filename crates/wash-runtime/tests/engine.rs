//! Engine-level guarantees: one epoch ticker per engine, fuel enforcement.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, fixture, get, http_workload};
use wash_runtime::engine::EngineBuilder;
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{HostApi, HostBuilder};

/// Threads of this process named `wash-epoch`.
fn epoch_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "wash-epoch")
        .count()
}

// One test function on purpose: thread counts are process-wide, so nothing
// else in this binary may build engines concurrently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_epoch_thread_per_engine_and_fuel_is_enforced() {
    let before = epoch_threads();
    let engine = EngineBuilder::new().with_max_instances(32).build().unwrap();
    let host = HostBuilder::new()
        .with_engine(engine)
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new())),
        )
        .start()
        .await
        .unwrap();
    for i in 0..5 {
        let name = format!("w{i}");
        let workload = http_workload(
            &name,
            fixture("http_hello_world"),
            &[("host", &format!("{name}.test"))],
        );
        host.workload_start(&name, workload).await.unwrap();
    }
    for i in 0..5 {
        let (status, _) = get(
            &client(),
            host.http_addr().unwrap(),
            &format!("w{i}.test"),
            "/",
        )
        .await;
        assert_eq!(status, 200);
    }
    assert_eq!(epoch_threads(), before + 1, "five workloads, one ticker");
    host.shutdown(Duration::from_secs(1)).await;
    drop(host);
    // The ticker stops with its engine.
    for _ in 0..50 {
        if epoch_threads() == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        epoch_threads(),
        before,
        "ticker thread ended with the engine"
    );

    // Fuel: a spinning guest runs dry long before the 30 s deadline.
    let fueled = EngineBuilder::new()
        .with_max_instances(8)
        .with_fuel(50_000_000)
        .build()
        .unwrap();
    let host = HostBuilder::new()
        .with_engine(fueled)
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new())),
        )
        .start()
        .await
        .unwrap();
    for (id, component) in [("spin", "loop_forever"), ("hello", "http_hello_world")] {
        let workload = http_workload(id, fixture(component), &[("host", &format!("{id}.test"))]);
        host.workload_start(id, workload).await.unwrap();
    }
    let addr = host.http_addr().unwrap();
    let started = std::time::Instant::now();
    let (status, body) = get(&client(), addr, "spin.test", "/").await;
    assert_eq!((status, body.as_str()), (500, "the component trapped\n"));
    assert!(started.elapsed() < Duration::from_secs(10));
    // Enough fuel for a normal request.
    assert_eq!(get(&client(), addr, "hello.test", "/").await.0, 200);
}
