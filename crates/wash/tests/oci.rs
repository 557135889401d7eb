//! A registry that wants a login: credentials from flags, from the docker
//! config file, and from a host's start request.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::servers::{Nats, Registry, free_port};
use common::{Running, assert_clean_error, fixture, wash};
use serde_json::{Value, json};

const USER: &str = "washer";
const PASSWORD: &str = "wash-secret";
/// A secret a workload reads through `wasmcloud:secrets`.
const API_KEY: &str = "api-key-value-that-must-stay-hidden";
/// bcrypt (cost 5) of `PASSWORD`, as `htpasswd -B` would write it.
const HASH: &str = "$2b$05$.BSBW.L6g4twcB7ULSe1S.5PCdzCmAcsq1sYnZWRcfbIjqrhJYQxK";

/// Runs `wash` with `DOCKER_CONFIG` pointing at `docker_config`.
async fn run_with(args: &[&str], docker_config: &Path) -> common::Finished {
    let output = wash()
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .output()
        .await
        .expect("wash runs");
    output.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_registry_takes_flags_docker_config_and_start_request_credentials() {
    let registry = Registry::start_with_htpasswd(&format!("{USER}:{HASH}\n"));
    let image = format!("{}/private/hello:1", registry.address());
    let component = fixture("http_hello_world");
    let component = component.to_str().unwrap();
    let no_login = tempfile::tempdir().unwrap();
    let with_login = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        with_login.path().join("config.json"),
        json!({"auths": {registry.address(): {"auth": auth}}}).to_string(),
    )
    .unwrap();

    // No login: refused, and the error says where.
    let refused = run_with(
        &["oci", "push", &image, component, "--insecure"],
        no_login.path(),
    )
    .await;
    assert_clean_error(&refused);
    assert!(refused.stderr.contains(&image), "{}", refused.stderr);

    // Wrong password: refused too.
    let push_as = |password: &'static str| {
        let args = [
            "oci",
            "push",
            &image,
            component,
            "--insecure",
            "-u",
            USER,
            "-p",
            password,
        ]
        .map(String::from);
        let docker_config = no_login.path().to_path_buf();
        async move { run_with(&args.each_ref().map(String::as_str), &docker_config).await }
    };
    let wrong = push_as("nope").await;
    assert_clean_error(&wrong);

    // -u/-p.
    let pushed = push_as(PASSWORD).await;
    assert!(pushed.success, "{}", pushed.stderr);

    // The docker config file.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("hello.wasm");
    let pulled = run_with(
        &["oci", "pull", &image, file.to_str().unwrap(), "--insecure"],
        with_login.path(),
    )
    .await;
    assert!(pulled.success, "{}", pulled.stderr);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(component).unwrap()
    );
    let anonymous = run_with(&["oci", "pull", &image, "--insecure"], no_login.path()).await;
    assert_clean_error(&anonymous);

    // A host pulls with the start request's secret, and without it cannot.
    let nats = Nats::start();
    let http = free_port();
    let cache = tempfile::tempdir().unwrap();
    let mut command = wash();
    command
        .args([
            "-l",
            "trace,cranelift_codegen=info,regalloc2=info,wasmtime_cranelift=info",
            "host",
            "--host-id",
            "hp",
            "--scheduler-nats-url",
            &nats.url(),
        ])
        .env("WASH_TEST_API_KEY", API_KEY)
        .args(["--http-addr", &format!("127.0.0.1:{http}")])
        .args(["--allow-insecure-registries", &registry.address()])
        .arg("--oci-cache-dir")
        .arg(cache.path())
        .env("DOCKER_CONFIG", no_login.path());
    let host = Running::spawn(command);
    host.wait_for("serving HTTP on", Duration::from_secs(60))
        .await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let start = |secret: Option<Value>| {
        let mut component = json!({"name": "hello", "image": image});
        if let Some(secret) = secret {
            component["imagePullSecret"] = secret;
        }
        json!({"workloadId": "private", "workload": {"name": "private", "witWorld": {
            "components": [component],
            "hostInterfaces": [
                {"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": {"host": "private.test"}},
                {"namespace": "wasmcloud", "package": "secrets", "interfaces": ["store", "reveal"], "config": {"api-key": "env:WASH_TEST_API_KEY"}}
            ]
        }}})
            .to_string()
    };
    let ask = |payload: String| {
        let client = client.clone();
        async move {
            let reply = tokio::time::timeout(
                Duration::from_secs(30),
                client.request("runtime.host.hp.workload.start", payload.into()),
            )
            .await
            .expect("a reply in time")
            .expect("a reply");
            serde_json::from_slice::<Value>(&reply.payload).unwrap()
        }
    };
    let denied = ask(start(None)).await;
    assert_eq!(
        denied["workloadStatus"]["workloadState"], "WORKLOAD_STATE_ERROR",
        "{denied}"
    );
    assert!(
        denied["workloadStatus"]["message"]
            .as_str()
            .unwrap()
            .contains(&image),
        "{denied}"
    );
    let allowed = ask(start(Some(json!({"username": USER, "password": PASSWORD})))).await;
    assert_eq!(
        allowed["workloadStatus"]["workloadState"], "WORKLOAD_STATE_RUNNING",
        "{allowed}"
    );
    // Neither the registry password nor the workload's secret is echoed
    // back or logged, even at trace level.
    assert!(!allowed.to_string().contains(PASSWORD));
    let stdout = host.stdout.lock().unwrap().join("\n");
    let stderr = host.stderr.lock().unwrap().join("\n");
    assert!(stderr.lines().count() > 50, "trace logging is on: {stderr}");
    for secret in [PASSWORD, API_KEY] {
        assert!(!stdout.contains(secret), "`{secret}` on stdout");
        assert!(!stderr.contains(secret), "`{secret}` on stderr");
    }
}
