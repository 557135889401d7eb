//! The on-disk compile cache: a second start of the same component on a
//! compatible engine loads the artifact instead of compiling.

mod common;

use std::sync::Arc;

use common::{client, fixture, get, http_workload};
use wash_runtime::engine::{CacheOutcome, CacheStats, EngineBuilder};
use wash_runtime::host::http::{DevRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder};

async fn host_with_cache(dir: &std::path::Path) -> Host {
    host_with(EngineBuilder::new().with_compile_cache(dir)).await
}

async fn host_with(engine: EngineBuilder) -> Host {
    let engine = engine.with_max_instances(16).build().unwrap();
    HostBuilder::new()
        .with_engine(engine)
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DevRouter::default())),
        )
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_start_hits_the_cache_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let workload = http_workload("hello", fixture("http_hello_world"), &[]);

    let first = host_with_cache(dir.path()).await;
    first
        .workload_start("hello", workload.clone())
        .await
        .unwrap();
    assert_eq!(
        first.components("hello").unwrap()[0].cache,
        CacheOutcome::Miss
    );
    assert_eq!(
        first.engine().cache_stats(),
        CacheStats { hits: 0, misses: 1 }
    );
    let artifacts: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(artifacts.len(), 1, "one artifact written");

    // A new engine (as after a restart) with the same settings.
    let second = host_with_cache(dir.path()).await;
    second.workload_start("hello", workload).await.unwrap();
    let info = &second.components("hello").unwrap()[0];
    assert_eq!(info.cache, CacheOutcome::Hit);
    assert_eq!(
        second.engine().cache_stats(),
        CacheStats { hits: 1, misses: 0 }
    );
    assert!(info.digest.starts_with("sha256:"));
    // The cached artifact really runs.
    let (status, body) = get(&client(), second.http_addr().unwrap(), "x", "/").await;
    assert_eq!((status, body.as_str()), (200, "Hello from wash!\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_engine_settings_do_not_share_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let workload = http_workload("hello", fixture("http_hello_world"), &[]);
    let plain = host_with_cache(dir.path()).await;
    plain
        .workload_start("hello", workload.clone())
        .await
        .unwrap();

    // Fuel changes generated code: its artifact must be a different one.
    let host = host_with(
        EngineBuilder::new()
            .with_fuel(u64::MAX)
            .with_compile_cache(dir.path()),
    )
    .await;
    host.workload_start("hello", workload).await.unwrap();
    assert_eq!(
        host.engine().cache_stats(),
        CacheStats { hits: 0, misses: 1 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_cache_entry_is_replaced_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let workload = http_workload("hello", fixture("http_hello_world"), &[]);
    let first = host_with_cache(dir.path()).await;
    first
        .workload_start("hello", workload.clone())
        .await
        .unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a compiled component").unwrap();
    }
    let second = host_with_cache(dir.path()).await;
    second
        .workload_start("hello", workload.clone())
        .await
        .unwrap();
    assert_eq!(
        second.components("hello").unwrap()[0].cache,
        CacheOutcome::Miss
    );
    // The rewritten entry is good again.
    let third = host_with_cache(dir.path()).await;
    third.workload_start("hello", workload).await.unwrap();
    assert_eq!(
        third.components("hello").unwrap()[0].cache,
        CacheOutcome::Hit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_of_the_same_bytes_share_one_loaded_component() {
    let host = host_with(EngineBuilder::new()).await;
    let bytes = fixture("http_hello_world");
    for id in ["a", "b", "c"] {
        host.workload_start(id, http_workload(id, bytes.clone(), &[]))
            .await
            .unwrap();
    }
    assert_eq!(host.engine().loaded_components(), 1);
    host.workload_start("other", http_workload("other", fixture("http_slow"), &[]))
        .await
        .unwrap();
    assert_eq!(host.engine().loaded_components(), 2);

    // Held while any workload runs it; let go when the last one stops.
    host.workload_stop("a").await;
    host.workload_stop("b").await;
    assert_eq!(host.engine().loaded_components(), 2);
    host.workload_stop("c").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while host.engine().loaded_components() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped component stays loaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
