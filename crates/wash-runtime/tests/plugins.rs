//! The plugin seam and the small plugins: wasi:config, wasi:logging,
//! wasmcloud:secrets, and an embedder's own plugin.

mod common;

use std::sync::{Arc, Mutex};

use common::{client, fixture, get, http_workload, interface, logs, plugin_host, send};
use wash_runtime::host::{HostApi, HostBuilder, HostError};
use wash_runtime::instance::StoreState;
use wash_runtime::plugin::{
    HostPlugin, ItemBind, Plugin, PluginError, PluginFuture, ProvidedInterface, ResolvedWorkload,
    WorkloadBind,
};

/// Trace level, so a secret leaking at any level would be caught.
fn capture() {
    logs::capture_at(
        "trace,cranelift=info,wasmtime=info,wasmtime_internal_cranelift=info,regalloc2=info,hyper=info,h2=info",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_merges_workload_and_component_values() {
    capture();
    let host = plugin_host(wash_runtime::plugin::builtin()).await;
    let mut workload = http_workload("cfg", fixture("plugin_probe"), &[("host", "cfg.test")]);
    workload.host_interfaces.push(interface(
        "wasi",
        "config",
        &[("a", "workload"), ("b", "workload")],
    ));
    let config = &mut workload.components[0].local_resources.config;
    config.insert("b".into(), "component".into());
    config.insert("c".into(), "component".into());
    host.workload_start("cfg", workload).await.unwrap();
    let addr = host.http_addr().unwrap();
    assert_eq!(
        get(&client(), addr, "cfg.test", "/config").await,
        (200, "a=workload\nb=component\nc=component\n".into())
    );
    assert_eq!(
        get(&client(), addr, "cfg.test", "/config/b").await,
        (200, "component".into())
    );
    assert_eq!(
        get(&client(), addr, "cfg.test", "/config/zzz").await,
        (404, "unset".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_logs_carry_workload_component_and_level() {
    capture();
    let host = plugin_host(wash_runtime::plugin::builtin()).await;
    host.workload_start(
        "logger",
        http_workload("logger", fixture("plugin_probe"), &[("host", "log.test")]),
    )
    .await
    .unwrap();
    let addr = host.http_addr().unwrap();
    send(addr, "log.test", "POST", "/log/warn", "disk almost full").await;
    send(addr, "log.test", "POST", "/log/error", "disk full").await;
    let warn = logs::lines_with(&[
        "WARN",
        "disk almost full",
        "workload=logger",
        "component=logger",
        "context=probe",
    ]);
    assert_eq!(warn.len(), 1, "{warn:#?}");
    let error = logs::lines_with(&["ERROR", "disk full", "workload=logger"]);
    assert_eq!(error.len(), 1, "{error:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_revealed_on_request_and_never_logged() {
    capture();
    let value = "s3cr3t-value-that-must-not-leak-9F2A";
    // SAFETY: set before any thread of this test reads the environment; no
    // other test in this binary uses this variable.
    unsafe { std::env::set_var("WASH_TEST_API_KEY", value) };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cert.pem");
    std::fs::write(&file, "file-secret-contents").unwrap();
    let file_source = format!("file:{}", file.display());

    let host = plugin_host(wash_runtime::plugin::builtin()).await;
    let mut workload = http_workload("sec", fixture("plugin_probe"), &[("host", "sec.test")]);
    workload.host_interfaces.push(interface(
        "wasmcloud",
        "secrets",
        &[("api_key", "env:WASH_TEST_API_KEY"), ("cert", &file_source)],
    ));
    host.workload_start("sec", workload).await.unwrap();
    let addr = host.http_addr().unwrap();
    assert_eq!(
        get(&client(), addr, "sec.test", "/secret/api_key").await,
        (200, value.len().to_string())
    );
    assert_eq!(
        get(&client(), addr, "sec.test", "/secret/cert").await,
        (200, "20".into())
    );
    assert_eq!(
        get(&client(), addr, "sec.test", "/secret/nope").await,
        (404, "SecretsError::NotFound".into())
    );

    // A source that cannot be read fails the start, naming the key, not a value.
    let mut broken = http_workload("sec2", fixture("plugin_probe"), &[("host", "sec2.test")]);
    broken.host_interfaces.push(interface(
        "wasmcloud",
        "secrets",
        &[("db_password", "env:WASH_TEST_UNSET_VAR")],
    ));
    let err = host.workload_start("sec2", broken).await.unwrap_err();
    assert!(
        matches!(err, HostError::Plugin(PluginError::Config { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("db_password") && text.contains("WASH_TEST_UNSET_VAR"),
        "{text}"
    );

    let everything = logs::all();
    assert!(!everything.is_empty());
    assert!(
        !everything.contains(value),
        "the secret leaked into the logs"
    );
    assert!(
        !everything.contains("file-secret-contents"),
        "the file secret leaked into the logs"
    );
}

/// What an embedder's plugin looks like: it provides
/// `example:missing/greeter` (which the `imports_unknown` fixture imports).
struct Greeter {
    events: Arc<Mutex<Vec<String>>>,
}

/// The greeter's state for one workload, which its host functions find in
/// each component's bindings.
#[derive(Clone)]
struct Greeting(String);

impl Greeter {
    fn log(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }
}

impl HostPlugin for Greeter {
    type WorkloadState = Greeting;

    fn id(&self) -> &str {
        "greeter"
    }

    fn world(&self) -> Vec<ProvidedInterface> {
        vec![ProvidedInterface::new(
            "example",
            "missing",
            "0.1.0",
            &["greeter"],
        )]
    }

    fn on_workload_bind<'a>(
        &'a self,
        workload: &'a WorkloadBind<'a>,
    ) -> PluginFuture<'a, Greeting> {
        self.log(format!("bind {}", workload.workload_id));
        let greeting = Greeting(format!("from {}", workload.workload_id));
        Box::pin(async { Ok(greeting) })
    }

    fn on_workload_item_bind(
        &self,
        greeting: &Greeting,
        item: &mut ItemBind<'_>,
    ) -> Result<(), PluginError> {
        self.log(format!("item {} {:?}", item.component.name, item.imports));
        item.bindings.insert(greeting.clone());
        let interface = "example:missing/greeter@0.1.0";
        item.linker
            .instance(interface)
            .and_then(|mut instance| {
                instance.func_wrap(
                    "greet",
                    |mut store: wasmtime::StoreContextMut<'_, StoreState>, (name,): (String,)| {
                        let view = store.data_mut().plugin_view();
                        let from = view.bindings.get::<Greeting>().map(|g| g.0.clone());
                        Ok((format!("hello, {name} ({})", from.unwrap_or_default()),))
                    },
                )
            })
            .map_err(|e| PluginError::link("greeter", interface, e))
    }

    fn on_workload_resolved<'a>(
        &'a self,
        _greeting: &'a mut Greeting,
        workload: &'a ResolvedWorkload<'a>,
    ) -> PluginFuture<'a, ()> {
        let names: Vec<&str> = workload.components.iter().map(|c| c.name()).collect();
        self.log(format!("resolved {names:?}"));
        Box::pin(async { Ok(()) })
    }

    fn on_workload_unbind<'a>(
        &'a self,
        workload_id: &'a str,
        _greeting: Greeting,
    ) -> PluginFuture<'a, ()> {
        self.log(format!("unbind {workload_id}"));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedder_plugin_provides_an_interface_through_the_seam() {
    capture();
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut plugins = wash_runtime::plugin::builtin();
    plugins.push(Plugin::new(Greeter {
        events: events.clone(),
    }));
    let host = plugin_host(plugins).await;
    host.workload_start(
        "greet",
        http_workload(
            "greet",
            fixture("imports_unknown"),
            &[("host", "greet.test")],
        ),
    )
    .await
    .unwrap();
    let (status, body) = get(&client(), host.http_addr().unwrap(), "greet.test", "/").await;
    assert_eq!((status, body.as_str()), (200, "hello, wash (from greet)"));
    host.workload_stop("greet").await;
    assert_eq!(
        *events.lock().unwrap(),
        [
            "bind greet".to_string(),
            "item greet [\"example:missing/greeter@0.1.0\"]".into(),
            "resolved [\"greet\"]".into(),
            "unbind greet".into(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_plugin_ids_are_refused() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let first = Greeter {
        events: events.clone(),
    };
    let second = Greeter { events };
    let result = HostBuilder::new()
        .with_plugin(first)
        .unwrap()
        .with_plugin(second);
    match result {
        Err(HostError::DuplicatePlugin(id)) => assert_eq!(id, "greeter"),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a second plugin with the same id was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_reports_what_it_links_and_what_it_calls() {
    let host = plugin_host(vec![Plugin::new(
        wash_runtime::plugin::messaging::Messaging::in_memory(),
    )])
    .await;
    let provided = host.provided_interfaces();
    let has = |namespace: &str, package: &str, version: &str| {
        provided.iter().any(|i| {
            i.namespace == namespace
                && i.package == package
                && i.version.as_deref() == Some(version)
        })
    };
    // WASI P2 and P3 as linked, and the plugin's own package.
    for (package, version) in [
        ("http", "0.2"),
        ("http", "0.3"),
        ("clocks", "0.3"),
        ("io", "0.2"),
    ] {
        assert!(
            has("wasi", package, version),
            "wasi:{package}@{version} in {provided:?}"
        );
    }
    #[cfg(feature = "wasi-tls")]
    assert!(has("wasi", "tls", "0.3"), "{provided:?}");
    assert!(has("wasmcloud", "messaging", "0.2.0"), "{provided:?}");
    let called = host.called_interfaces();
    assert!(
        called
            .iter()
            .any(|i| i.package == "messaging" && i.interfaces == ["handler"]),
        "{called:?}"
    );
}
