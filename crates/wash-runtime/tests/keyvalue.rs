//! `wasi:keyvalue` through real components, the same suite against every
//! backend: in-memory, filesystem, NATS JetStream KV and Redis (real
//! servers on loopback).

mod common;

use std::time::Duration;

use common::servers::{Nats, Redis};
use common::{client, fixture, get, http_workload, interface, plugin_host, send};
use wash_runtime::host::{Host, HostApi, HostError};
use wash_runtime::plugin::Plugin;

/// One backend under test and what keeps it alive.
enum Backend {
    Memory,
    Filesystem(tempfile::TempDir),
    Nats(Nats),
    Redis(Redis),
}

impl Backend {
    fn all() -> Vec<Backend> {
        vec![
            Backend::Memory,
            Backend::Filesystem(tempfile::tempdir().unwrap()),
            Backend::Nats(Nats::start()),
            Backend::Redis(Redis::start()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Filesystem(_) => "filesystem",
            Backend::Nats(_) => "nats",
            Backend::Redis(_) => "redis",
        }
    }

    /// The `wasi:keyvalue` host interface config selecting this backend.
    fn config(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Memory => vec![("backend", "memory".into())],
            Backend::Filesystem(dir) => vec![
                ("backend", "filesystem".into()),
                ("path", dir.path().display().to_string()),
            ],
            Backend::Nats(nats) => vec![("backend", "nats".into()), ("url", nats.url())],
            Backend::Redis(redis) => vec![("backend", "redis".into()), ("url", redis.url())],
        }
    }
}

async fn start(host: &Host, id: &str, component: &str, backend: &Backend, env: &[(&str, &str)]) {
    let mut workload = http_workload(id, fixture(component), &[("host", &format!("{id}.test"))]);
    let config = backend.config();
    let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    workload
        .host_interfaces
        .push(interface("wasi", "keyvalue", &config));
    for (k, v) in env {
        workload.components[0]
            .local_resources
            .environment
            .insert(k.to_string(), v.to_string());
    }
    host.workload_start(id, workload)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
}

fn plugins() -> Vec<Plugin> {
    wash_runtime::plugin::builtin()
}

/// The conformance suite, through the plugin-probe component.
async fn conformance(host: &Host, id: &str, backend: &str) {
    let addr = host.http_addr().unwrap();
    let h = format!("{id}.test");
    let call = |method: &'static str, path: String, body: &'static str| {
        let h = h.clone();
        async move { send(addr, &h, method, &path, body).await }
    };
    let ok = |text: &str| (200u16, text.to_string());

    // get / set / exists / delete
    assert_eq!(
        call("GET", "/kv/b1/k1".into(), "").await,
        ok("<none>"),
        "{backend}"
    );
    assert_eq!(
        call("PUT", "/kv/b1/k1".into(), "v1").await,
        ok("set"),
        "{backend}"
    );
    assert_eq!(
        call("GET", "/kv/b1/k1".into(), "").await,
        ok("v1"),
        "{backend}"
    );
    assert_eq!(
        call("POST", "/kv/b1/k1/exists".into(), "").await,
        ok("true"),
        "{backend}"
    );
    assert_eq!(
        call("PUT", "/kv/b1/k1".into(), "v2").await,
        ok("set"),
        "{backend}: overwrite"
    );
    assert_eq!(
        call("GET", "/kv/b1/k1".into(), "").await,
        ok("v2"),
        "{backend}"
    );
    assert_eq!(
        call("DELETE", "/kv/b1/k1".into(), "").await,
        ok("deleted"),
        "{backend}"
    );
    assert_eq!(
        call("GET", "/kv/b1/k1".into(), "").await,
        ok("<none>"),
        "{backend}"
    );
    assert_eq!(
        call("POST", "/kv/b1/k1/exists".into(), "").await,
        ok("false"),
        "{backend}"
    );
    assert_eq!(
        call("DELETE", "/kv/b1/absent".into(), "").await,
        ok("deleted"),
        "{backend}: delete absent"
    );

    // Empty bucket and key names are refused alike by every backend (the
    // guest prints the error with `{:?}`, whose shape depends on its
    // bindings generator; the host's message is what matters).
    for (path, message) in [
        ("/kv//k", "bucket name is empty"),
        ("/kv/b1//exists", "key name is empty"),
    ] {
        let (status, body) = call(
            if path.ends_with("exists") {
                "POST"
            } else {
                "GET"
            },
            path.into(),
            "",
        )
        .await;
        assert_eq!(status, 500, "{backend}: {path}: {body}");
        assert!(
            body.contains(&format!("Other(\"{message}\")")),
            "{backend}: {path}: {body}"
        );
    }

    // Keys and bucket names with characters backends cannot store as-is.
    let odd = "/kv/odd%20bucket.x/a.b%20c=d..e";
    assert_eq!(call("PUT", odd.into(), "odd").await, ok("set"), "{backend}");
    assert_eq!(call("GET", odd.into(), "").await, ok("odd"), "{backend}");

    // Buckets are separate.
    call("PUT", "/kv/b1/shared".into(), "one").await;
    call("PUT", "/kv/b2/shared".into(), "two").await;
    assert_eq!(
        call("GET", "/kv/b1/shared".into(), "").await,
        ok("one"),
        "{backend}"
    );
    assert_eq!(
        call("GET", "/kv/b2/shared".into(), "").await,
        ok("two"),
        "{backend}"
    );

    // list-keys, followed across pages by the guest.
    for i in 0..30 {
        call("PUT", format!("/kv/listing/key{i:02}"), "x").await;
    }
    let (status, listed) = call("GET", "/kv/listing".into(), "").await;
    assert_eq!(status, 200, "{backend}: {listed}");
    let mut keys: Vec<&str> = listed.split(',').collect();
    keys.sort();
    let expected: Vec<String> = (0..30).map(|i| format!("key{i:02}")).collect();
    assert_eq!(keys, expected, "{backend}");

    // atomics
    assert_eq!(
        call("POST", "/kv/b1/n/incr/5".into(), "").await,
        ok("5"),
        "{backend}"
    );
    assert_eq!(
        call("POST", "/kv/b1/n/incr/7".into(), "").await,
        ok("12"),
        "{backend}"
    );
    assert_eq!(
        call("GET", "/kv/b1/n".into(), "").await,
        ok("12"),
        "{backend}: stored as decimal"
    );
    call("PUT", "/kv/b1/word".into(), "abc").await;
    let (status, error) = call("POST", "/kv/b1/word/incr/1".into(), "").await;
    assert_eq!(
        status, 500,
        "{backend}: incrementing text is an error: {error}"
    );
    assert!(error.contains("Other(\""), "{backend}: {error}");

    // batch
    assert_eq!(
        call("POST", "/kv/b1/batch".into(), "x=1\ny=2\nz=3").await,
        ok("x=1,y=2,z=3"),
        "{backend}"
    );
    assert_eq!(
        call("GET", "/kv/b1/y".into(), "").await,
        ok("<none>"),
        "{backend}: delete-many"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_every_backend() {
    for backend in Backend::all() {
        let host = plugin_host(plugins()).await;
        let id = format!("probe-{}", backend.name());
        start(&host, &id, "plugin_probe", &backend, &[]).await;
        conformance(&host, &id, backend.name()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_increments_count_exactly_on_every_backend() {
    for backend in Backend::all() {
        let host = plugin_host(plugins()).await;
        let id = format!("counter-{}", backend.name());
        start(
            &host,
            &id,
            "http_kv_counter",
            &backend,
            &[("BUCKET", "counts")],
        )
        .await;
        let addr = host.http_addr().unwrap();
        let mut requests = Vec::new();
        for _ in 0..1000 {
            let host_header = format!("{id}.test");
            requests.push(tokio::spawn(async move {
                get(&client(), addr, &host_header, "/hits").await
            }));
        }
        let mut seen = Vec::new();
        for request in requests {
            let (status, body) = request.await.unwrap();
            assert_eq!(status, 200, "{}: {body}", backend.name());
            seen.push(body.trim().parse::<u64>().unwrap());
        }
        seen.sort_unstable();
        let expected: Vec<u64> = (1..=1000).collect();
        assert_eq!(
            seen,
            expected,
            "{}: every count seen exactly once",
            backend.name()
        );
        let (_, total) = get(&client(), addr, &format!("{id}.test"), "/hits").await;
        assert_eq!(total, "1001\n", "{}", backend.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_instances_reach_different_backends() {
    let dir = tempfile::tempdir().unwrap();
    let host = plugin_host(plugins()).await;
    let mut workload = http_workload("named", fixture("plugin_probe"), &[("host", "named.test")]);
    let mut cache = interface("wasi", "keyvalue", &[("backend", "memory")]);
    cache.name = Some("cache".into());
    let path = dir.path().display().to_string();
    let mut durable = interface(
        "wasi",
        "keyvalue",
        &[
            ("backend", "filesystem"),
            ("path", &path),
            ("bucket", "kept"),
        ],
    );
    durable.name = Some("durable".into());
    workload.host_interfaces.extend([cache, durable]);
    host.workload_start("named", workload).await.unwrap();
    let addr = host.http_addr().unwrap();
    send(addr, "named.test", "PUT", "/kv/cache/k", "in memory").await;
    send(addr, "named.test", "PUT", "/kv/durable/k", "on disk").await;
    assert_eq!(
        send(addr, "named.test", "GET", "/kv/cache/k", "").await.1,
        "in memory"
    );
    assert_eq!(
        send(addr, "named.test", "GET", "/kv/durable/k", "").await.1,
        "on disk"
    );
    // `durable` is the filesystem backend's bucket `kept`; `cache` is not on disk.
    assert_eq!(
        std::fs::read(dir.path().join("kept").join("k")).unwrap(),
        b"on disk"
    );
    assert!(!dir.path().join("cache").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filesystem_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Filesystem(dir);
    {
        let host = plugin_host(plugins()).await;
        start(&host, "fs1", "http_kv_counter", &backend, &[]).await;
        for _ in 0..3 {
            get(&client(), host.http_addr().unwrap(), "fs1.test", "/").await;
        }
        host.shutdown(Duration::from_secs(1)).await;
    }
    let host = plugin_host(plugins()).await;
    start(&host, "fs2", "http_kv_counter", &backend, &[]).await;
    let (status, body) = get(&client(), host.http_addr().unwrap(), "fs2.test", "/").await;
    assert_eq!((status, body.as_str()), (200, "4\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backend_at_start_is_a_clear_error() {
    let port = common::servers::free_port();
    for (kind, url) in [
        ("redis", format!("redis://127.0.0.1:{port}/")),
        ("nats", format!("nats://127.0.0.1:{port}")),
    ] {
        let host = plugin_host(plugins()).await;
        let mut workload =
            http_workload("down", fixture("http_kv_counter"), &[("host", "down.test")]);
        workload.host_interfaces.push(interface(
            "wasi",
            "keyvalue",
            &[("backend", kind), ("url", &url)],
        ));
        let err = host.workload_start("down", workload).await.unwrap_err();
        assert!(matches!(err, HostError::Plugin(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("wasi-keyvalue"), "{text}");
        assert!(text.contains(&url), "names the address: {text}");
        assert!(text.contains("cannot connect"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_config_keys_are_rejected() {
    let host = plugin_host(plugins()).await;
    let mut workload = http_workload("typo", fixture("http_kv_counter"), &[("host", "typo.test")]);
    workload.host_interfaces.push(interface(
        "wasi",
        "keyvalue",
        &[("backend", "memory"), ("urll", "x")],
    ));
    let err = host.workload_start("typo", workload).await.unwrap_err();
    assert!(err.to_string().contains("`urll`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_run_recovers() {
    let mut nats = Nats::start();
    let backend_url = nats.url();
    let host = plugin_host(plugins()).await;
    let mut workload = http_workload(
        "nats-r",
        fixture("http_kv_counter"),
        &[("host", "nats-r.test")],
    );
    workload.host_interfaces.push(interface(
        "wasi",
        "keyvalue",
        &[("backend", "nats"), ("url", &backend_url)],
    ));
    host.workload_start("nats-r", workload).await.unwrap();
    let addr = host.http_addr().unwrap();
    assert_eq!(
        get(&client(), addr, "nats-r.test", "/").await,
        (200, "1\n".into())
    );

    nats.restart();
    // The client reconnects on its own; the next calls succeed and the
    // count (kept by JetStream on disk) continues.
    let mut last = (0, String::new());
    for _ in 0..60 {
        last = get(&client(), addr, "nats-r.test", "/").await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last.0, 200, "no recovery after the restart: {}", last.1);
    assert!(last.1.trim().parse::<u64>().unwrap() >= 2, "{}", last.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_gives_the_guest_an_error_and_the_host_keeps_serving() {
    let mut redis = Redis::start();
    let host = plugin_host(plugins()).await;
    let url = redis.url();
    let mut workload = http_workload("r", fixture("http_kv_counter"), &[("host", "r.test")]);
    workload.host_interfaces.push(interface(
        "wasi",
        "keyvalue",
        &[("backend", "redis"), ("url", &url)],
    ));
    host.workload_start("r", workload).await.unwrap();
    host.workload_start(
        "hello",
        http_workload(
            "hello",
            fixture("http_hello_world"),
            &[("host", "hello.test")],
        ),
    )
    .await
    .unwrap();
    let addr = host.http_addr().unwrap();
    assert_eq!(
        get(&client(), addr, "r.test", "/").await,
        (200, "1\n".into())
    );

    redis.stop();
    let (status, body) = get(&client(), addr, "r.test", "/").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("Other(\"Redis:"),
        "the interface's error value: {body}"
    );
    assert_eq!(get(&client(), addr, "hello.test", "/").await.0, 200);

    // And Redis coming back heals the connection.
    redis.restart();
    let mut last = (0, String::new());
    for _ in 0..40 {
        last = get(&client(), addr, "r.test", "/").await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last, (200, "1\n".into()), "a fresh Redis counts from 1");
}
