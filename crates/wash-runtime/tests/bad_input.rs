//! Bad input gets one clear error naming what is wrong, and the host stays up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, fixture, get, host, http_workload};
use wash_runtime::engine::EngineError;
use wash_runtime::host::ResolveError;
use wash_runtime::host::http::{DevRouter, DynamicRouter, RouteError};
use wash_runtime::host::{HostApi, HostError};
use wash_runtime::types::WorkloadState;

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_wasm_and_core_modules_are_refused_by_name() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    let err = host
        .workload_start("junk", http_workload("junk", "GIF89a...".into(), &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Resolve(ResolveError::Compile(EngineError::NotWasm { .. }))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("component `junk`"), "{err}");

    let core = b"\0asm\x01\0\0\0".to_vec();
    let err = host
        .workload_start("core", http_workload("core", core.into(), &[]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );

    let mut truncated = fixture("http_hello_world").to_vec();
    truncated.truncate(truncated.len() / 2);
    let err = host
        .workload_start("cut", http_workload("cut", truncated.into(), &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Resolve(ResolveError::Compile(EngineError::Invalid { .. }))
        ),
        "{err}"
    );
    // The failure is visible in status, and the id can be retried.
    let status = host.workload_status("cut").await;
    assert_eq!(status.workload_state, WorkloadState::Error);
    assert!(
        status.message.contains("invalid component"),
        "{}",
        status.message
    );
    host.workload_start(
        "cut",
        http_workload("cut", fixture("http_hello_world"), &[]),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_without_http_export_is_named_with_its_exports() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    let err = host
        .workload_start("cli", http_workload("cli", fixture("cli-hello"), &[]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HostError::Resolve(ResolveError::NoHttpExport { .. })),
        "{text}"
    );
    assert!(text.contains("component `cli`"), "{text}");
    assert!(text.contains("wasi:http/incoming-handler"), "{text}");
    assert!(
        text.contains("wasi:cli/run@0.2"),
        "lists what it does export: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_import_is_named() {
    let host = host(Arc::new(DevRouter::default()), TIMEOUT).await;
    let err = host
        .workload_start("imp", http_workload("imp", fixture("imports_unknown"), &[]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HostError::Resolve(ResolveError::MissingImport { .. })),
        "{text}"
    );
    assert!(text.contains("example:missing/greeter@0.1.0"), "{text}");
    assert!(text.contains("component `imp`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_routing_config_fails_the_start_and_keeps_others_serving() {
    let host = host(Arc::new(DynamicRouter::new()), TIMEOUT).await;
    host.workload_start(
        "good",
        http_workload(
            "good",
            fixture("http_hello_world"),
            &[("host", "good.test")],
        ),
    )
    .await
    .unwrap();
    let err = host
        .workload_start(
            "bad",
            http_workload("bad", fixture("http_hello_world"), &[("host", "bad_host!")]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, HostError::Route(RouteError::InvalidHost { .. })),
        "{err}"
    );
    let err = host
        .workload_start(
            "nohost",
            http_workload("nohost", fixture("http_hello_world"), &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, HostError::Route(RouteError::MissingHost { .. })),
        "{err}"
    );
    assert_eq!(
        get(&client(), host.http_addr().unwrap(), "good.test", "/")
            .await
            .0,
        200
    );
}
