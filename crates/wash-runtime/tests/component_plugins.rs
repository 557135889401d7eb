//! Component plugins: capabilities written as components, linked into the
//! workloads that import them (functions and resources), knowing their
//! caller, contained and restarted when they fail.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{client, fixture, get, http_workload, interface, send, upstream};
use wash_runtime::host::http::{DynamicRouter, HttpServerBuilder};
use wash_runtime::host::{Host, HostApi, HostBuilder, HostError};
use wash_runtime::plugin::component::{
    ComponentPluginError, ComponentPluginSource, ComponentPluginSpec,
};

fn spec(id: &str, fixture_name: &str) -> ComponentPluginSpec {
    ComponentPluginSpec::new(id, ComponentPluginSource::Bytes(fixture(fixture_name)))
}

async fn host_with(specs: Vec<ComponentPluginSpec>) -> Result<Host, HostError> {
    let mut builder = HostBuilder::new()
        .with_engine(common::engine())
        .with_request_timeout(Duration::from_secs(20))
        .with_http(
            HttpServerBuilder::new("127.0.0.1:0".parse().unwrap())
                .router(Arc::new(DynamicRouter::new())),
        );
    for plugin in wash_runtime::plugin::builtin() {
        builder = builder.with_plugin(plugin)?;
    }
    for spec in specs {
        builder = builder.with_component_plugin(spec)?;
    }
    builder.start().await
}

/// The error a host with `specs` fails to start with.
async fn refused(specs: Vec<ComponentPluginSpec>) -> HostError {
    match host_with(specs).await {
        Ok(_) => panic!("the host started"),
        Err(e) => e,
    }
}

/// Starts `component` as workload `id`, served at `<id>.test`.
async fn start(host: &Host, id: &str, component: &str) {
    let status = start_with_greeting(host, id, component, None)
        .await
        .expect("starts");
    assert_eq!(
        status.workload_state,
        wash_runtime::types::WorkloadState::Running,
        "{status:?}"
    );
}

/// As [`start`], with a host interface entry for `example:greeter` whose
/// config holds `greeting`; the status it ends in.
async fn start_with_greeting(
    host: &Host,
    id: &str,
    component: &str,
    greeting: Option<&str>,
) -> Result<wash_runtime::types::WorkloadStatus, HostError> {
    let mut workload = http_workload(id, fixture(component), &[("host", &format!("{id}.test"))]);
    if let Some(greeting) = greeting {
        workload
            .host_interfaces
            .push(interface("example", "greeter", &[("greeting", greeting)]));
    }
    host.workload_start(id, workload).await
}

/// The greeter plugin, greeting "hi" by its own `wasi:config`.
fn greeter() -> ComponentPluginSpec {
    let mut greeter = spec("greeter", "greeter_plugin");
    greeter
        .local_resources
        .config
        .insert("greeting".into(), "hi".into());
    greeter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_interface_is_served_by_a_plugin_that_knows_its_caller() {
    let host = host_with(vec![greeter()]).await.expect("host starts");
    start(&host, "front", "http_greeter").await;
    let addr = host.http_addr().unwrap();
    let client = client();
    // The plugin's own config (wasi:config, a native capability it
    // imports) and the caller's id (wasmcloud:host/identity).
    assert_eq!(
        get(&client, addr, "front.test", "/ada").await,
        (200, "hi, ada, from the plugin to front\n".into())
    );
    // A resource made in the plugin, owned by the workload, used through
    // its handle and dropped with it.
    assert_eq!(
        get(&client, addr, "front.test", "/count/41").await,
        (200, "42 43\n".into())
    );

    // on-workload-bind gets each workload's config for the interface; the
    // plugin keeps it per caller.
    let status = start_with_greeting(&host, "fr", "http_greeter", Some("bonjour"))
        .await
        .expect("starts");
    assert_eq!(status.message, "");
    assert_eq!(
        get(&client, addr, "fr.test", "/ada").await,
        (200, "bonjour, ada, from the plugin to fr\n".into())
    );
    assert_eq!(
        get(&client, addr, "front.test", "/ada").await,
        (200, "hi, ada, from the plugin to front\n".into())
    );
    // A workload the plugin refuses does not start, and says why.
    let refused = start_with_greeting(&host, "bad", "http_greeter", Some("two words"))
        .await
        .expect_err("refused")
        .to_string();
    assert!(refused.contains("`greeter`"), "{refused}");
    assert!(refused.contains("must be one word"), "{refused}");
    // Unbound when it stops: started again without the entry, the plugin's
    // own greeting applies.
    host.workload_stop("fr").await;
    start(&host, "fr", "http_greeter").await;
    assert_eq!(
        get(&client, addr, "fr.test", "/ada").await,
        (200, "hi, ada, from the plugin to fr\n".into())
    );

    // A custom interface goes the dynamic way.
    assert!(
        host.component_plugin_status("greeter")
            .unwrap()
            .typed
            .is_empty()
    );
    // The plugin's interface is what the host reports it provides.
    let provided = host.provided_interfaces();
    assert!(
        provided
            .iter()
            .any(|i| i.namespace == "example" && i.package == "greeter"),
        "{provided:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_fails_the_call_restarts_then_is_marked_failed() {
    let mut greeter = greeter();
    greeter.max_restarts = 2;
    greeter.local_resources.request_timeout_ms = 1000;
    let host = host_with(vec![greeter]).await.expect("host starts");
    let status = start_with_greeting(&host, "front", "http_greeter", Some("bonjour"))
        .await
        .expect("starts");
    assert_eq!(status.message, "");
    start(&host, "hello", "http_hello_world").await;
    let addr = host.http_addr().unwrap();
    let client = client();
    // A trap, then a call past the plugin's deadline: each fails only the
    // call in flight (the workload answers 500, the host lives on), and
    // the plugin restarts knowing the workloads bound to it.
    for failure in ["/crash", "/spin"] {
        assert_eq!(get(&client, addr, "front.test", failure).await.0, 500);
        assert_eq!(get(&client, addr, "hello.test", "/").await.0, 200);
        assert_eq!(
            get(&client, addr, "front.test", "/ada").await,
            (200, "bonjour, ada, from the plugin to front\n".into()),
            "after {failure}"
        );
    }
    let status = host.component_plugin_status("greeter").unwrap();
    assert_eq!((status.restarts, status.failure), (2, None));
    // The third failure is one too many: the plugin is failed for good.
    assert_eq!(get(&client, addr, "front.test", "/crash").await.0, 500);
    assert_eq!(get(&client, addr, "front.test", "/ada").await.0, 500);
    assert_eq!(get(&client, addr, "hello.test", "/").await.0, 200);
    // ...and says so: in its status, in its workload's, and by offering
    // nothing more (heartbeats drop its interfaces, new workloads that
    // import them are not started).
    let failure = host
        .component_plugin_status("greeter")
        .unwrap()
        .failure
        .expect("marked failed");
    assert!(
        failure.contains("`greeter` is failed after 2 restarts"),
        "{failure}"
    );
    let status = host.workload_status("plugin:greeter").await;
    assert_eq!(
        (status.workload_state, status.message),
        (wash_runtime::types::WorkloadState::Error, failure)
    );
    assert!(
        !host
            .provided_interfaces()
            .iter()
            .any(|i| i.namespace == "example" && i.package == "greeter")
    );
    let refused = start_with_greeting(&host, "late", "http_greeter", None).await;
    assert!(
        refused.as_ref().map_or(true, |s| s.workload_state
            != wash_runtime::types::WorkloadState::Running),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_at_once_in_a_pool_and_reach_out_under_the_plugins_own_policy() {
    let (held, mut arrivals, open) = upstream::gated_upstream().await;
    let (elsewhere, seen) = upstream::http_upstream(None, upstream::Behaviour::Hello).await;
    let mut greeter = greeter();
    greeter.instances = 2;
    // The plugin's own egress policy, not its callers'.
    greeter.local_resources.allowed_hosts = vec![format!("127.0.0.1:{}", held.port())];
    let host = host_with(vec![greeter]).await.expect("host starts");
    start(&host, "one", "http_greeter").await;
    start(&host, "two", "http_greeter").await;
    let addr = host.http_addr().unwrap();
    let client = client();

    // A host outside the plugin's allowedHosts is denied without a
    // connection.
    assert_eq!(
        get(
            &client,
            addr,
            "one.test",
            &format!("/fetch=127.0.0.1:{}", elsewhere.port())
        )
        .await,
        (200, "fetch failed: HttpRequestDenied\n".into())
    );
    assert_eq!(seen.connections(), 0);

    // One workload's call holds an instance until the upstream answers...
    let path = format!("/fetch=127.0.0.1:{}", held.port());
    let holding = {
        let client = client.clone();
        tokio::spawn(async move { get(&client, addr, "one.test", &path).await })
    };
    arrivals
        .recv()
        .await
        .expect("the plugin's request reached the upstream");
    // ...while the other instance serves another workload, with its own
    // identity, and resources stay with the instance that made them.
    let served = tokio::time::timeout(Duration::from_secs(60), async {
        let greeting = get(&client, addr, "two.test", "/ada").await;
        let counted = get(&client, addr, "two.test", "/count/41").await;
        (greeting, counted)
    })
    .await
    .expect("served while the other instance was busy");
    assert_eq!(
        served,
        (
            (200, "hi, ada, from the plugin to two\n".into()),
            (200, "42 43\n".into())
        )
    );
    assert!(!holding.is_finished());
    let status = host.component_plugin_status("greeter").unwrap();
    assert_eq!((status.live_instances, status.restarts), (2, 0));
    open.send(true).unwrap();
    assert_eq!(
        holding.await.unwrap(),
        (200, "fetched 200: held answer\n".into())
    );

    // Many calls at once over both instances, each counter used where it
    // was made, each caller named right.
    let calls = (0..40u32).map(|i| {
        let client = client.clone();
        async move {
            let workload = if i % 2 == 0 { "one" } else { "two" };
            let counted = get(
                &client,
                addr,
                &format!("{workload}.test"),
                &format!("/count/{i}"),
            )
            .await;
            let greeting = get(&client, addr, &format!("{workload}.test"), "/x").await;
            assert_eq!(counted, (200, format!("{} {}\n", i + 1, i + 2)));
            assert_eq!(
                greeting,
                (200, format!("hi, x, from the plugin to {workload}\n"))
            );
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(host.component_plugin_status("greeter").unwrap().restarts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_uses_the_hosts_capabilities_under_its_own_limits() {
    common::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cr3t").unwrap();
    let mut greeter = greeter();
    greeter.id = "capable".into();
    greeter.instances = 2;
    greeter.local_resources.memory_limit_mb = 64;
    // Its own secrets, as a workload's are given.
    greeter.host_interfaces.push(interface(
        "wasmcloud",
        "secrets",
        &[("token", &format!("file:{}", token.display()))],
    ));
    let host = host_with(vec![greeter]).await.expect("host starts");
    start(&host, "front", "http_greeter").await;
    start(&host, "back", "http_greeter").await;
    let addr = host.http_addr().unwrap();
    let client = client();

    // wasi:logging: the line is the plugin's, and names the caller it
    // served.
    assert_eq!(
        get(&client, addr, "front.test", "/log").await,
        (200, "logged\n".into())
    );
    let lines = common::logs::lines_with(&["greeted for front"]);
    assert!(
        lines.iter().any(|l| l.contains("plugin:capable")),
        "{lines:#?}"
    );
    // wasmcloud:secrets, from the plugin's own host interface entry.
    assert_eq!(
        get(&client, addr, "front.test", "/secret").await,
        (200, "secret s3cr3t\n".into())
    );
    // wasi:keyvalue from the host: the plugin's own backing store, which
    // all its instances and callers share.
    assert_eq!(
        get(&client, addr, "front.test", "/remember=blue").await,
        (200, "remembered\n".into())
    );
    assert_eq!(
        get(&client, addr, "back.test", "/recall").await,
        (200, "recalled blue\n".into())
    );
    // Its memory limit: asking for more fails the call, not the host,
    // and the plugin serves again.
    assert_eq!(get(&client, addr, "front.test", "/bomb").await.0, 500);
    let lines = common::logs::lines_with(&["plugin=capable", "memory limit of 64 MiB"]);
    assert!(!lines.is_empty(), "the failure names the limit");
    assert_eq!(
        get(&client, addr, "back.test", "/ada").await,
        (200, "hi, ada, from the plugin to back\n".into())
    );
    assert_eq!(host.component_plugin_status("capable").unwrap().restarts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_kv_workload_runs_on_a_kv_plugin_and_workloads_stay_apart() {
    let host = host_with(vec![spec("kv", "kv_plugin")])
        .await
        .expect("host starts");
    start(&host, "one", "http_kv_counter").await;
    start(&host, "two", "http_kv_counter").await;
    let addr = host.http_addr().unwrap();

    // 200 increments at once: the plugin serves them one at a time, so
    // each count appears exactly once.
    let calls =
        (0..200).map(|_| tokio::spawn(async move { send(addr, "one.test", "GET", "/", "").await }));
    let mut counts = Vec::new();
    for call in calls {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 200, "{body}");
        counts.push(body.trim().parse::<u64>().unwrap());
    }
    counts.sort();
    assert_eq!(counts, (1..=200).collect::<Vec<_>>());

    // The plugin keys by caller: the other workload's count starts at 1.
    assert_eq!(
        send(addr, "two.test", "GET", "/", "").await,
        (200, "1\n".into())
    );
    assert_eq!(
        send(addr, "one.test", "GET", "/", "").await,
        (200, "201\n".into())
    );

    // It exports the whole of store and atomics, so workloads call it
    // through typed bindings: values, deletes and listings come back right.
    assert_eq!(
        host.component_plugin_status("kv").unwrap().typed,
        vec!["wasi:keyvalue"]
    );
    start(&host, "bench", "kv_bench").await;
    assert_eq!(
        send(addr, "bench.test", "GET", "/verify", "").await,
        (200, "verified\n".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_without_parameters_or_results_is_served_call_after_call() {
    // The bench's no-op (`example:noop/api.noop`): nothing to lift or
    // lower, answered from the one live instance, thousands of times in
    // one request.
    let host = host_with(vec![spec("noop", "noop_plugin")])
        .await
        .expect("host starts");
    start(&host, "bench", "noop_bench").await;
    let addr = host.http_addr().unwrap();
    let (status, body) = get(&client(), addr, "bench.test", "/noop/5000").await;
    assert_eq!(status, 200, "{body}");
    let ns: Vec<u64> = body
        .split_whitespace()
        .map(|n| n.parse().expect("ns per call"))
        .collect();
    // Mean per call, then the fastest batch's, which cannot be slower.
    assert!(
        matches!(ns[..], [mean, fastest] if fastest <= mean),
        "{body}"
    );
    let status = host.component_plugin_status("noop").unwrap();
    assert_eq!((status.live_instances, status.restarts), (1, 0));
    assert!(
        status.typed.is_empty(),
        "a custom interface goes the dynamic way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_interface_naming_a_plugin_picks_it() {
    // The built-in key-value plugin and the component plugin both provide
    // wasi:keyvalue. Unnamed, the component plugin serves (it was added on
    // purpose), keeping workloads apart; an entry naming the built-in
    // (`wasi-keyvalue`) gets the built-in, whose in-memory store the two
    // workloads share.
    let host = host_with(vec![spec("kv", "kv_plugin")])
        .await
        .expect("host starts");
    for id in ["a", "b"] {
        let mut workload = http_workload(
            id,
            fixture("http_kv_counter"),
            &[("host", &format!("{id}.test"))],
        );
        let mut kv = interface("wasi", "keyvalue", &[("backend", "memory")]);
        kv.name = Some("wasi-keyvalue".into());
        workload.host_interfaces.push(kv);
        host.workload_start(id, workload).await.expect("starts");
    }
    let addr = host.http_addr().unwrap();
    assert_eq!(
        send(addr, "a.test", "GET", "/", "").await,
        (200, "1\n".into())
    );
    assert_eq!(
        send(addr, "b.test", "GET", "/", "").await,
        (200, "2\n".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plugins_stop_the_start_naming_them() {
    // Not a component.
    let garbage = ComponentPluginSpec::new(
        "garbage",
        ComponentPluginSource::Bytes(bytes::Bytes::from_static(b"not wasm")),
    );
    let err = refused(vec![garbage]).await;
    assert!(err.to_string().contains("garbage"), "{err}");

    // A component exporting nothing a workload could import.
    let err = refused(vec![spec("hello", "http_hello_world")]).await;
    assert!(
        matches!(
            err,
            HostError::ComponentPlugin(ComponentPluginError::NothingExported { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("`hello`"), "{err}");

    // A digest pin that does not match.
    let mut pinned = spec("greeter", "greeter_plugin");
    pinned.digest = Some(format!("sha256:{}", "0".repeat(64)));
    let err = refused(vec![pinned]).await;
    assert!(err.to_string().contains("greeter"), "{err}");
    assert!(err.to_string().contains("digest"), "{err}");

    // A function passing a stream: streams belong to one store.
    let streamy = ComponentPluginSpec::new(
        "streamy",
        ComponentPluginSource::Bytes(component_of("streamy")),
    );
    let err = refused(vec![streamy]).await;
    assert!(
        matches!(
            err,
            HostError::ComponentPlugin(ComponentPluginError::Unsupported { kind: "stream", .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("`streamy`"), "{err}");
    assert!(
        err.to_string().contains("test:plugins/streams@0.1.0#lines"),
        "{err}"
    );

    // A missing file.
    let missing = ComponentPluginSpec::new(
        "lost",
        ComponentPluginSource::File("/nonexistent/plugin.wasm".into()),
    );
    let err = refused(vec![missing]).await;
    assert!(err.to_string().contains("lost"), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/plugin.wasm"),
        "{err}"
    );
}

/// Plugins importing each other's exports, in components made from this
/// WIT (their functions trap; loading, ordering and linking is what counts).
const PLUGINS_WIT: &str = r#"
package test:plugins@0.1.0;

interface ping { ping: func() -> string; }
interface pong { pong: func() -> string; }
interface base { base: func() -> string; }
interface streams { lines: func() -> stream<string>; }

world ping-side { import pong; export ping; }
world pong-side { import ping; export pong; }
world on-base { import base; export ping; }
world base-side { export base; }
world streamy { export streams; }
"#;

/// A component of `world` in [`PLUGINS_WIT`].
fn component_of(world: &str) -> bytes::Bytes {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("plugins.wit", PLUGINS_WIT).unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut module =
        wit_component::dummy_module(&resolve, world, wit_parser::ManglingAndAbi::Standard32);
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
        .into()
}

fn made(id: &str, world: &str) -> ComponentPluginSpec {
    ComponentPluginSpec::new(id, ComponentPluginSource::Bytes(component_of(world)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_start_after_the_plugins_they_import_and_cycles_are_refused() {
    // `top` imports what `base` exports: listed first, started second.
    let host = host_with(vec![made("top", "on-base"), made("base", "base-side")])
        .await
        .expect("host starts");
    for id in ["top", "base"] {
        let status = host.component_plugin_status(id).unwrap();
        assert!(status.started, "{status:?}");
        assert_eq!(
            host.workload_status(&format!("plugin:{id}"))
                .await
                .workload_state,
            wash_runtime::types::WorkloadState::Running
        );
    }
    drop(host);

    // Each imports the other's export: refused, the cycle named.
    let err = refused(vec![made("ping", "ping-side"), made("pong", "pong-side")]).await;
    assert!(
        matches!(
            err,
            HostError::ComponentPlugin(ComponentPluginError::Cycle(_))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ping -> pong -> ping"), "{err}");
}
