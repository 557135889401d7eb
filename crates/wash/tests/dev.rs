//! `wash dev` end to end: the real binary, real builds, real HTTP.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Running, assert_clean_error, fixture, get, hello_project, run, url_in, wash};

/// The first build in a fresh target dir compiles the guest's dependencies.
const FIRST_BUILD: Duration = Duration::from_secs(600);
const REBUILD: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_reloads_on_edit_and_survives_a_broken_build() {
    let project = hello_project();
    let mut command = wash();
    command
        .args(["dev", "--address", "127.0.0.1:0", "-C"])
        .arg(project.path());
    let dev = Running::spawn(command);
    let url = url_in(
        &dev.wait_for("Serving http_hello_world at", FIRST_BUILD)
            .await,
    );
    assert_eq!(get(&url).await, (200, "Hello from wash!\n".into()));

    // Requests keep flowing while the new version is built and swapped in.
    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn({
        let (url, stop) = (url.clone(), stop.clone());
        async move {
            let mut bodies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                bodies.push(get(&url).await);
            }
            bodies
        }
    });

    let source = project.path().join("src/lib.rs");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        original.replace("Hello from wash!", "Hello, edited!"),
    )
    .unwrap();
    dev.wait_for("Reloaded http_hello_world", REBUILD).await;
    assert_eq!(get(&url).await, (200, "Hello, edited!\n".into()));

    stop.store(true, Ordering::Relaxed);
    let bodies = stream.await.unwrap();
    assert!(
        bodies.iter().all(|(status, _)| *status == 200),
        "{bodies:?}"
    );
    assert!(bodies.iter().any(|(_, b)| b == "Hello from wash!\n"));

    // A broken edit: the compiler error is shown, the last good build serves.
    std::fs::write(&source, format!("{original}\nfn broken( {{")).unwrap();
    dev.wait_for("Build failed", REBUILD).await;
    assert_eq!(get(&url).await, (200, "Hello, edited!\n".into()));
    let compiler_said = dev
        .stderr
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("error"));
    assert!(compiler_said, "the compiler error reaches the user");

    // And fixing it recovers.
    std::fs::write(&source, original.replace("Hello from wash!", "Fixed!")).unwrap();
    dev.wait_for_nth("Reloaded http_hello_world", 2, REBUILD)
        .await;
    assert_eq!(get(&url).await, (200, "Fixed!\n".into()));

    assert!(dev.terminate().await, "wash dev exits cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_a_prebuilt_component_and_reloads_it_when_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.wasm");
    std::fs::copy(fixture("http_hello_world"), &app).unwrap();
    let mut command = wash();
    // Host names work on the command line as in config.
    command.args(["dev", "--address", "localhost:0"]).arg(&app);
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving app at", REBUILD).await);
    assert_eq!(get(&url).await, (200, "Hello from wash!\n".into()));

    // Toolchains often write a new file and rename it over the old one.
    let staged = dir.path().join("app.wasm.partial");
    std::fs::copy(fixture("http_hello_p3"), &staged).unwrap();
    std::fs::rename(&staged, &app).unwrap();
    dev.wait_for("Reloaded app", REBUILD).await;
    let (status, body) = get(&format!("{url}p3")).await;
    assert_eq!(status, 200);
    assert_eq!(body, "Hello from a P3 component! path=/p3\n");

    // A broken replacement keeps the good one serving.
    std::fs::write(&app, b"\0asm garbage").unwrap();
    dev.wait_for("Reload failed", REBUILD).await;
    assert_eq!(get(&url).await.0, 200);
    assert!(dev.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_reports_bad_components_by_file_and_interface() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();

    let cases = [
        (junk.clone(), vec!["junk.wasm", "not a WebAssembly binary"]),
        (
            fixture("cli-hello"),
            vec!["cli-hello.wasm", "exports no HTTP handler"],
        ),
        (
            fixture("imports_unknown"),
            vec!["imports_unknown.wasm", "example:missing/greeter@0.1.0"],
        ),
    ];
    for (file, expected) in cases {
        let file = file.to_str().unwrap().to_string();
        let finished = run(
            &["dev", "--no-watch", "--address", "127.0.0.1:0", &file],
            None,
        )
        .await;
        assert_clean_error(&finished);
        for needle in expected {
            assert!(
                finished.stderr.contains(needle),
                "`{needle}` missing: {}",
                finished.stderr
            );
        }
        assert_eq!(
            finished.stderr.matches("error:").count(),
            1,
            "one error: {}",
            finished.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_falls_back_from_pooling_when_address_space_is_short() {
    let app = fixture("http_hello_world");
    // 16 GB of address space: far too little for the instance pool, enough
    // for on-demand instances.
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "ulimit -v 16000000 && exec {} dev --no-watch --address 127.0.0.1:0 {}",
            env!("CARGO_BIN_EXE_wash"),
            app.display()
        ))
        .env("WASH_CACHE_DIR", tempfile::tempdir().unwrap().keep())
        .kill_on_drop(true);
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", REBUILD).await);
    assert_eq!(get(&url).await, (200, "Hello from wash!\n".into()));
    let fallback: Vec<_> = dev
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("pooling allocator unavailable"))
        .cloned()
        .collect();
    assert_eq!(
        fallback.len(),
        1,
        "one log line about the fallback: {fallback:?}"
    );
    assert!(dev.terminate().await);
}

/// An HTTPS server on loopback with a certificate for `localhost` signed by a
/// CA written to `ca.pem` in `dir`; answers every request with `secret`.
async fn https_upstream(dir: &std::path::Path) -> (std::net::SocketAddr, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = vec![0u8; 4096];
                let _ = tls.read(&mut request).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecret",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, ca_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_trusts_extra_cas_for_outbound_https() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, ca_file) = https_upstream(dir.path()).await;
    let url = format!("https://localhost:{}/", upstream.port());
    let allow = format!("localhost:{}", upstream.port());
    let client = fixture("http_client");

    // With the CA: the component reaches the upstream.
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .args(["--env", &format!("URL={url}"), "--allow-host", &allow])
        .args(["--allow-loopback-port", &upstream.port().to_string()])
        .arg("--http-client-ca-path")
        .arg(&ca_file)
        .arg(&client);
    let dev = Running::spawn(command);
    let serving = url_in(&dev.wait_for("Serving", REBUILD).await);
    assert_eq!(get(&serving).await, (200, "upstream 200\nsecret".into()));
    assert!(dev.terminate().await);

    // Without it: the certificate is refused.
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .args(["--env", &format!("URL={url}"), "--allow-host", &allow])
        .args(["--allow-loopback-port", &upstream.port().to_string()])
        .arg(&client);
    let dev = Running::spawn(command);
    let serving = url_in(&dev.wait_for("Serving", REBUILD).await);
    assert_eq!(
        get(&serving).await,
        (502, "error: TlsCertificateError\n".into())
    );
    assert!(dev.terminate().await);

    // The same through the config file: `workload` environment and
    // allowedHosts, and `dev.tls_ca_path` relative to the project.
    std::fs::create_dir_all(dir.path().join(".wash")).unwrap();
    std::fs::write(
        dir.path().join(".wash/config.yaml"),
        format!(
            "workload:\n  environment:\n    URL: {url}\n  allowedHosts: [\"{allow}\"]\n  allowedHostLoopbackPorts: [{}]\ndev:\n  tls_ca_path: ca.pem\n",
            upstream.port()
        ),
    )
    .unwrap();
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0", "-C"])
        .arg(dir.path())
        .arg(&client);
    let dev = Running::spawn(command);
    let serving = url_in(&dev.wait_for("Serving", REBUILD).await);
    assert_eq!(get(&serving).await, (200, "upstream 200\nsecret".into()));
    assert!(dev.terminate().await);

    // A CA file that is not there: one clear error naming it.
    let missing = dir.path().join("missing-ca.pem");
    let finished = run(
        &[
            "dev",
            "--no-watch",
            "--http-client-ca-path",
            missing.to_str().unwrap(),
            client.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_clean_error(&finished);
    assert!(
        finished.stderr.contains("missing-ca.pem"),
        "{}",
        finished.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_provides_plugins_with_backends_from_config() {
    let counter = fixture("http_kv_counter");
    // Defaults: in-memory key-value.
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .arg(&counter);
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", REBUILD).await);
    assert_eq!(get(&url).await, (200, "1\n".into()));
    assert_eq!(get(&url).await, (200, "2\n".into()));
    assert!(dev.terminate().await);

    // `dev.wasi_keyvalue_path`: counts survive a restart of wash dev.
    let project = tempfile::tempdir().unwrap();
    let data = project.path().join("kv-data");
    std::fs::create_dir(project.path().join(".wash")).unwrap();
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        format!("dev:\n  wasi_keyvalue_path: {}\n", data.display()),
    )
    .unwrap();
    for expected in ["1\n", "2\n"] {
        let mut command = wash();
        command
            .args(["dev", "--no-watch", "--address", "127.0.0.1:0", "-C"])
            .arg(project.path())
            .arg(&counter);
        let dev = Running::spawn(command);
        let url = url_in(&dev.wait_for("Serving", REBUILD).await);
        assert_eq!(get(&url).await, (200, expected.into()));
        let said = dev.stderr.lock().unwrap().join("\n");
        assert!(said.contains("Key-value: filesystem at"), "{said}");
        assert!(dev.terminate().await);
    }
}

/// The listener opens before the first compile is done (a Python component
/// on a cold cache takes seconds): a request sent as soon as the port
/// accepts waits for the component instead of getting a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_during_the_first_compile_waits_for_it() {
    let python = common::repo().join("components/target/python/python_hello.wasm");
    assert!(
        python.is_file(),
        "{} is missing: run components/python-hello/build.sh (./scripts/test.sh does)",
        python.display()
    );
    let cold_cache = tempfile::tempdir().unwrap();
    let port = test_support::servers::free_port();
    let mut command = wash();
    command
        .env("WASH_CACHE_DIR", cold_cache.path())
        .args(["dev", "--address", &format!("127.0.0.1:{port}")])
        .args(["--request-timeout", "120s"])
        .arg(&python);
    let dev = Running::spawn(command);
    let deadline = std::time::Instant::now() + FIRST_BUILD;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "wash dev never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served_before = dev
        .stdout
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("Serving"));
    let url = format!("http://127.0.0.1:{port}/");
    let (mut status, mut body) = get(&url).await;
    // A machine so busy that the compile outlasts the deadline answers 503,
    // saying it is starting; never 404.
    while status == 503 && body.contains("is starting") {
        dev.wait_for("Serving", FIRST_BUILD).await;
        (status, body) = get(&url).await;
    }
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("Hello from Python"), "{body}");
    assert!(
        !served_before,
        "the port opened only after the compile; this test no longer covers the start"
    );
    assert!(dev.terminate().await);
}

/// A workload's secret, read by the component, never reaches the log, even
/// at trace level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_even_at_trace_level() {
    const SECRET: &str = "dev-secret-value-that-must-stay-hidden";
    // Everything at trace but the compiler's own passes, which log nothing
    // of a workload's and take minutes to print.
    const TRACE: &str = "trace,cranelift_codegen=info,regalloc2=info,wasmtime_cranelift=info";
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".wash")).unwrap();
    std::fs::write(
        dir.path().join(".wash/config.yaml"),
        "workload:\n  secrets:\n    api-key: env:WASH_TEST_API_KEY\n",
    )
    .unwrap();
    let mut command = wash();
    command
        .env("WASH_TEST_API_KEY", SECRET)
        .args([
            "-l",
            TRACE,
            "dev",
            "--no-watch",
            "--address",
            "127.0.0.1:0",
            "-C",
        ])
        .arg(dir.path())
        .arg(fixture("plugin_probe"));
    let dev = Running::spawn(command);
    let url = url_in(&dev.wait_for("Serving", REBUILD).await);
    assert_eq!(
        get(&format!("{url}secret/api-key")).await,
        (200, SECRET.len().to_string())
    );
    let (stdout, stderr) = (dev.stdout.clone(), dev.stderr.clone());
    assert!(dev.terminate().await);
    // Everything it wrote, up to its last line.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !stdout.lock().unwrap().iter().any(|l| l.contains("Stopped")) {
        assert!(std::time::Instant::now() < deadline, "no `Stopped` line");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (stdout, stderr) = (
        stdout.lock().unwrap().join("\n"),
        stderr.lock().unwrap().join("\n"),
    );
    assert!(stderr.lines().count() > 50, "trace logging is on: {stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "the secret was logged"
    );
}
