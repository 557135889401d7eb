//! Component plugins through the CLI: `wash dev --host-plugin` and
//! `dev.host_plugins`, and `wash host --host-plugin` pulling the plugin from
//! a real registry with a digest pin.

mod common;

use std::time::Duration;

use common::hosts::{get_host, start_host};
use common::servers::{Nats, Registry};
use common::{Running, fixture, get, run, url_in, wash};
use futures::StreamExt;
use serde_json::{Value, json};

const STARTUP: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wash_dev_links_plugins_from_a_flag_and_from_the_config() {
    // A flag: the greeter plugin, for a workload importing its interface,
    // with its own config, secret and a pool of two instances.
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("token");
    std::fs::write(&token, "from-a-file").unwrap();
    let mut command = wash();
    command
        .args([
            "dev",
            "--no-watch",
            "--address",
            "127.0.0.1:0",
            "--host-plugin",
        ])
        .arg(format!(
            "id=greeter,file={},config.greeting=hey,secret.token=file:{},instances=2",
            fixture("greeter_plugin").display(),
            token.display()
        ))
        .arg(fixture("http_greeter"));
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", STARTUP).await);
    let (status, body) = get(&format!("{url}ada")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("hey, ada, from the plugin to dev-"),
        "{body}"
    );
    assert_eq!(get(&format!("{url}count/9")).await, (200, "10 11\n".into()));
    assert_eq!(
        get(&format!("{url}secret")).await,
        (200, "secret from-a-file\n".into())
    );
    assert!(dev.terminate().await);

    // The config, with a path relative to the project: the key-value
    // plugin serves the unchanged counter instead of the built-in store.
    let project = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("kv_plugin"), project.path().join("kv.wasm")).unwrap();
    std::fs::create_dir_all(project.path().join(".wash")).unwrap();
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        "dev:\n  host_plugins:\n    - id: kv\n      file: kv.wasm\n      max-restarts: 1\n",
    )
    .unwrap();
    let mut command = wash();
    command
        .args([
            "-l",
            "info",
            "dev",
            "--no-watch",
            "--address",
            "127.0.0.1:0",
            "-C",
        ])
        .arg(project.path())
        .arg(fixture("http_kv_counter"));
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", STARTUP).await);
    let started = dev
        .wait_for_stderr("component plugin started", Duration::from_secs(5))
        .await;
    assert!(started.contains("plugin=kv"), "{started}");
    assert_eq!(get(&url).await, (200, "1\n".into()));
    assert_eq!(get(&url).await, (200, "2\n".into()));
    // The plugin runs as a workload of its own beside the project's (that
    // it, not the built-in store, serves the count is shown by the
    // runtime's tests: workloads there stay apart).
    dev.wait_for_stderr("workload_id=plugin:kv", Duration::from_secs(5))
        .await;
    assert!(dev.terminate().await);

    // A bad spec is refused before anything starts, naming what is wrong.
    let refused = run(
        &["dev", "--host-plugin", "id=x,path=a.wasm", "--no-watch"],
        None,
    )
    .await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("unknown key `path`"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wash_host_pulls_a_pinned_plugin_and_refuses_a_wrong_pin() {
    let nats = Nats::start();
    let registry = Registry::start();
    let image = format!("{}/greeter-plugin:1", registry.address());
    let plugin = fixture("greeter_plugin");
    let pushed = run(
        &[
            "oci",
            "push",
            &image,
            plugin.to_str().unwrap(),
            "--insecure",
        ],
        None,
    )
    .await;
    assert!(pushed.success, "{}", pushed.stderr);
    let digest = pushed
        .stdout
        .split(['(', ')'])
        .nth(1)
        .expect("the digest in the output")
        .to_string();
    assert!(digest.starts_with("sha256:"), "{}", pushed.stdout);
    let front = format!("{}/http-greeter:1", registry.address());
    let pushed = run(
        &[
            "oci",
            "push",
            &front,
            fixture("http_greeter").to_str().unwrap(),
            "--insecure",
        ],
        None,
    )
    .await;
    assert!(pushed.success, "{}", pushed.stderr);

    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut heartbeats = client
        .subscribe("runtime.operator.heartbeat.gp")
        .await
        .unwrap();
    client.flush().await.unwrap();
    let spec = format!("id=greeter,image={image},digest={digest},max-restarts=2");
    let host = start_host(
        "gp",
        &nats.url(),
        &registry.address(),
        &["--host-plugin", &spec],
    );
    host.ready().await;

    // Heartbeats list what the plugin provides.
    let beat = tokio::time::timeout(Duration::from_secs(10), heartbeats.next())
        .await
        .expect("a heartbeat")
        .expect("a heartbeat");
    let beat: Value = serde_json::from_slice(&beat.payload).unwrap();
    assert!(
        beat.to_string().contains(r#""package":"greeter""#),
        "{beat}"
    );

    let start = json!({"workloadId": "front", "workload": {"name": "front", "witWorld": {
        "components": [{"name": "front", "image": front}],
        "hostInterfaces": [
            {"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": {"host": "front.test"}}
        ]
    }}});
    // Pulling and compiling on a busy machine can take a while.
    let request = async_nats::Request::new()
        .payload(start.to_string().into())
        .timeout(Some(STARTUP));
    let reply = client
        .send_request("runtime.host.gp.workload.start", request)
        .await
        .expect("a reply");
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(
        reply["workloadStatus"]["workloadState"], "WORKLOAD_STATE_RUNNING",
        "{reply}"
    );
    assert_eq!(
        get_host(&host.url("/ada"), "front.test").await,
        (200, "hello, ada, from the plugin to front\n".into())
    );
    // The plugin's workload is the host's: the control plane sees it but
    // cannot stop it.
    let stop = json!({"workloadId": "plugin:greeter"}).to_string();
    let reply = client
        .request("runtime.host.gp.workload.stop", stop.into())
        .await
        .expect("a reply");
    let reply = String::from_utf8_lossy(&reply.payload).to_string();
    assert!(
        reply.contains("started and stopped with the host"),
        "{reply}"
    );
    assert_eq!(
        get_host(&host.url("/bob"), "front.test").await,
        (200, "hello, bob, from the plugin to front\n".into())
    );
    assert!(host.process.terminate().await);

    // The same image under another pin: the host does not start, and says
    // which plugin and which digests.
    let wrong = format!("id=greeter,image={image},digest=sha256:{}", "0".repeat(64));
    let refused = start_host(
        "gw",
        &nats.url(),
        &registry.address(),
        &["--host-plugin", &wrong],
    );
    let line = refused
        .process
        .wait_for_stderr("greeter", Duration::from_secs(60))
        .await;
    assert!(line.contains("digest"), "{line}");
    assert!(
        !refused.process.terminate().await,
        "the host exited with an error"
    );
}
