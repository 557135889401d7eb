//! HTTPS on the ingress, checked with curl: h2 by ALPN, certificates
//! rotated on disk without a restart, client certificates (mTLS), and a
//! workload's own certificate chosen by SNI.

mod common;

use std::process::Output;
use std::time::Duration;

use common::ca::Ca;
use common::hosts::{push_hello, start_host};
use common::servers::{Nats, Registry};
use common::{Running, assert_clean_error, hello_project, run, url_in, wash};

/// curl with `args`; its output.
fn curl(args: &[&str]) -> Output {
    std::process::Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits (polling, 100 ms apart) until `check` holds.
async fn until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_h2_over_tls_and_follows_a_rotated_certificate() {
    let project = hello_project();
    let dir = project.path();
    let first = Ca::new(dir, "first");
    let (cert, key) = (dir.join("tls/cert.pem"), dir.join("tls/key.pem"));
    first.issue(&["localhost", "127.0.0.1"], &cert, &key);
    std::fs::create_dir_all(dir.join(".wash")).unwrap();
    std::fs::write(
        dir.join(".wash/config.yaml"),
        "version: 1\ndev:\n  tls_cert_path: tls/cert.pem\n  tls_key_path: tls/key.pem\n",
    )
    .unwrap();
    let mut command = wash();
    command
        .args(["dev", "--address", "127.0.0.1:0", "-C"])
        .arg(dir);
    let dev = Running::spawn(command);
    let url = url_in(
        &dev.wait_for("Serving http_hello_world at", Duration::from_secs(300))
            .await,
    );
    assert!(url.starts_with("https://"), "{url}");
    let url = url.replace("127.0.0.1", "localhost");

    let ca = first.pem.to_str().unwrap();
    let served = curl(&["--cacert", ca, "-w", "\n%{http_version}", &url]);
    assert!(served.status.success(), "{}", text(&served.stderr));
    assert_eq!(text(&served.stdout), "Hello from wash!\n\n2", "h2 by ALPN");
    let http1 = curl(&["--cacert", ca, "--http1.1", "-w", "\n%{http_version}", &url]);
    assert_eq!(text(&http1.stdout), "Hello from wash!\n\n1.1");
    // Plain HTTP to the HTTPS port gets nothing.
    let plain = curl(&[&url.replace("https://", "http://")]);
    assert!(!text(&plain.stdout).contains("Hello"));

    // Rotated on disk (a certificate from another CA): the next
    // connections see it, with no restart.
    let second = Ca::new(dir, "second");
    second.issue(&["localhost"], &cert, &key);
    let new_ca = second.pem.to_str().unwrap();
    until("the rotated certificate", Duration::from_secs(20), || {
        curl(&["--cacert", new_ca, &url]).status.success()
    })
    .await;
    let old = curl(&["--cacert", ca, &url]);
    assert!(!old.status.success(), "the old certificate is still served");
    assert!(dev.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_requires_client_certificates_and_picks_certificates_by_sni() {
    let nats = Nats::start();
    let registry = Registry::start();
    let image = push_hello(&registry).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_ca = Ca::new(d, "host");
    host_ca.issue(
        &["localhost", "127.0.0.1"],
        &d.join("host.crt"),
        &d.join("host.key"),
    );
    // The workload's host name gets its own certificate, from another CA.
    let site_ca = Ca::new(d, "site");
    site_ca.issue(
        &["hello.test"],
        &d.join("sni/hello.test/tls.crt"),
        &d.join("sni/hello.test/tls.key"),
    );
    let client_ca = Ca::new(d, "clients");
    client_ca.issue(
        &["client.test"],
        &d.join("client.crt"),
        &d.join("client.key"),
    );

    let args = [
        "--tls-cert",
        d.join("host.crt").to_str().unwrap(),
        "--tls-key",
        d.join("host.key").to_str().unwrap(),
        "--tls-client-ca",
        client_ca.pem.to_str().unwrap(),
        "--tls-sni-dir",
        d.join("sni").to_str().unwrap(),
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = start_host("tls-1", &nats.url(), &registry.address(), &args);
    host.ready().await;
    let workload = d.join("workload.yaml");
    std::fs::write(
        &workload,
        format!(
            "name: hello\nnamespace: default\ncomponents:\n  - name: hello\n    image: {image}\nhostInterfaces:\n  - namespace: wasi\n    package: http\n    interfaces: [incoming-handler]\n    config:\n      host: hello.test\n"
        ),
    )
    .unwrap();
    let started = run(
        &[
            "workload",
            "start",
            "--host",
            "tls-1",
            "--scheduler-nats-url",
            &nats.url(),
            "-f",
            workload.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(started.success, "{}", started.stderr);

    let port = host.http.to_string();
    let resolve = format!("hello.test:{port}:127.0.0.1");
    let url = format!("https://hello.test:{port}/");
    let client = [
        "--cert",
        d.join("client.crt").to_str().unwrap(),
        "--key",
        d.join("client.key").to_str().unwrap(),
    ]
    .map(String::from);
    let client: Vec<&str> = client.iter().map(String::as_str).collect();
    let site = site_ca.pem.to_str().unwrap();

    // With a client certificate, and the site's certificate by SNI.
    let mut ok = vec![
        "--resolve",
        &resolve,
        "--cacert",
        site,
        "-w",
        "\n%{http_version}",
    ];
    ok.extend(&client);
    ok.push(&url);
    let served = curl(&ok);
    assert!(served.status.success(), "{}", text(&served.stderr));
    assert_eq!(text(&served.stdout), "Hello from wash!\n\n2");

    // The same request trusting only the host's CA fails: SNI chose the
    // site's certificate. Without SNI (by address) the host's is served.
    let mut host_only = vec![
        "--resolve",
        &resolve,
        "--cacert",
        host_ca.pem.to_str().unwrap(),
    ];
    host_only.extend(&client);
    host_only.push(&url);
    assert!(!curl(&host_only).status.success());
    let by_address = format!("https://127.0.0.1:{port}/");
    let mut fallback = vec![
        "--cacert",
        host_ca.pem.to_str().unwrap(),
        "-H",
        "Host: hello.test",
    ];
    fallback.extend(&client);
    fallback.push(&by_address);
    let served = curl(&fallback);
    assert!(served.status.success(), "{}", text(&served.stderr));
    assert_eq!(text(&served.stdout), "Hello from wash!\n");

    // Without a client certificate: the handshake is refused.
    let refused = curl(&["--resolve", &resolve, "--cacert", site, &url]);
    assert!(!refused.status.success());
    assert!(!text(&refused.stdout).contains("Hello"));
    // A certificate from a CA the host does not trust: refused too.
    let stranger = Ca::new(d, "stranger");
    stranger.issue(&["client.test"], &d.join("other.crt"), &d.join("other.key"));
    let refused = curl(&[
        "--resolve",
        &resolve,
        "--cacert",
        site,
        "--cert",
        d.join("other.crt").to_str().unwrap(),
        "--key",
        d.join("other.key").to_str().unwrap(),
        &url,
    ]);
    assert!(!refused.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_stops_the_start_naming_the_file() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new(d, "ca");
    ca.issue(&["localhost"], &d.join("a.crt"), &d.join("a.key"));
    ca.issue(&["localhost"], &d.join("b.crt"), &d.join("b.key"));
    let failed = run(
        &[
            "host",
            "--scheduler-nats-url",
            &nats.url(),
            "--http-addr",
            "127.0.0.1:0",
            "--tls-cert",
            d.join("a.crt").to_str().unwrap(),
            "--tls-key",
            d.join("b.key").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_clean_error(&failed);
    assert!(
        failed.stderr.contains("b.key does not match"),
        "{}",
        failed.stderr
    );
    let half = run(
        &["host", "--tls-cert", d.join("a.crt").to_str().unwrap()],
        None,
    )
    .await;
    assert_clean_error(&half);
    assert!(half.stderr.contains("--tls-key"), "{}", half.stderr);

    // `config validate` finds the same mismatch before anything starts.
    let project = d.join("project");
    std::fs::create_dir_all(project.join(".wash")).unwrap();
    std::fs::write(
        project.join(".wash/config.yaml"),
        format!(
            "version: 1\nhost:\n  tls_cert_path: {}\n  tls_key_path: {}\n  http_addr: 203.0.113.9:8080\n",
            d.join("a.crt").display(),
            d.join("b.key").display()
        ),
    )
    .unwrap();
    let report = run(&["config", "validate"], Some(&project)).await;
    assert_clean_error(&report);
    assert!(
        report.stderr.contains("`host.tls_cert_path`"),
        "{}",
        report.stderr
    );
    assert!(
        report.stderr.contains("does not match"),
        "{}",
        report.stderr
    );
    assert!(
        report
            .stderr
            .contains("cannot listen on `203.0.113.9:8080`"),
        "{}",
        report.stderr
    );
}
