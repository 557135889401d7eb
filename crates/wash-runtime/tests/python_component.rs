//! A large component from another toolchain: CPython built with
//! componentize-py (~18 MB, a big memory image), served with the default
//! limits, a fresh instance per request.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, get, host, http_workload};
use wash_runtime::host::HostApi;
use wash_runtime::host::http::DevRouter;

fn python_fixture() -> bytes::Bytes {
    let path = common::fixtures_dir().join("../../python/python_hello.wasm");
    std::fs::read(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}): run components/python-hello/build.sh (./scripts/test.sh does)",
                path.display()
            )
        })
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_component_is_served_with_default_limits() {
    let bytes = python_fixture();
    assert!(
        bytes.len() > 10 << 20,
        "a large component: {} bytes",
        bytes.len()
    );
    let host = host(Arc::new(DevRouter::default()), Duration::from_secs(30)).await;
    host.workload_start("py", http_workload("py", bytes, &[]))
        .await
        .unwrap();
    let addr = host.http_addr().unwrap();
    let mut requests = Vec::new();
    for i in 0..8 {
        requests.push(tokio::spawn(async move {
            get(&client(), addr, "py.test", &format!("/n/{i}")).await
        }));
    }
    for (i, request) in requests.into_iter().enumerate() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("Hello from Python 3."), "{body}");
        assert!(body.ends_with(&format!("path=/n/{i}\n")), "{body}");
    }
    assert_eq!(host.components("py").unwrap()[0].instantiations, 8);
}
