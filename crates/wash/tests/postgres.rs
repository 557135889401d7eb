//! A P3 component that speaks the Postgres protocol itself, over
//! `wasi:sockets` (and `wasi:tls`), against a real Postgres server: the
//! JSON API with settings from `wasi:config` and the password from
//! `wasmcloud:secrets`, rows checked with psql, the egress policy, an outage
//! in the middle, connection reuse on warm instances, TLS with a CA made
//! here, and the same through `wash host`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::ca::Ca;
use common::hosts::start_host;
use common::servers::{Nats, Postgres, PostgresOptions, Registry};
use common::{Running, call, fixture, request, run, url_in, wash};
use serde_json::json;

const STARTUP: Duration = Duration::from_secs(120);
const USER: &str = "app";
const PASSWORD: &str = "correct-horse-battery-staple";

/// Postgres with the `app` role, which must log in with [`PASSWORD`].
fn with_app_user(tls: Option<(String, String)>) -> Postgres {
    Postgres::start_with(PostgresOptions {
        tls,
        password_users: vec![(USER.into(), PASSWORD.into())],
    })
}

/// A directory whose `.wash/config.yaml` holds the workload's settings:
/// `database_url` for `wasi:config`, the password secret when `secret`,
/// name lookups for `localhost`, and the loopback port when `port` is set.
fn settings(url: &str, secret: bool, port: Option<u16>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = format!(
        "workload:\n  config:\n    database_url: \"{url}\"\n  allowedIpNameLookups: [localhost]\n"
    );
    if secret {
        yaml.push_str("  secrets:\n    database_password: env:WASH_TEST_PG_PASSWORD\n");
    }
    if let Some(port) = port {
        yaml.push_str(&format!("  allowedHostLoopbackPorts: [{port}]\n"));
    }
    std::fs::create_dir_all(dir.path().join(".wash")).unwrap();
    std::fs::write(dir.path().join(".wash/config.yaml"), yaml).unwrap();
    dir
}

/// `wash dev` of the fixture with the settings in `dir`, plus `args`.
async fn dev(dir: &Path, args: &[&str]) -> (Running, String) {
    let mut command = wash();
    command
        .env("WASH_TEST_PG_PASSWORD", PASSWORD)
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0", "-C"])
        .arg(dir)
        .args(args)
        .arg(fixture("http_postgres_p3"));
    let running = Running::spawn(command);
    let url = url_in(&running.wait_for("Serving", STARTUP).await);
    (running, url)
}

/// The database session that served a response.
fn backend_pid(headers: &http::HeaderMap) -> String {
    headers
        .get("x-postgres-backend-pid")
        .expect("a backend pid header")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_live_in_postgres_and_an_outage_is_a_503() {
    let mut postgres = with_app_user(None);
    // A host name, resolved through wasi:sockets; the password from the
    // workload's secret, not the URL.
    let dir = settings(
        &postgres.url_as(USER, "localhost"),
        true,
        Some(postgres.port),
    );
    let (running, url) = dev(dir.path(), &[]).await;
    let todos = format!("{url}todos");

    let (status, created) = call("POST", &todos, r#"{"title":"write tests"}"#).await;
    assert_eq!(status, 201, "{created}");
    assert!(created.contains(r#""title":"write tests""#), "{created}");
    assert_eq!(call("POST", &todos, r#"{"title":"ship"}"#).await.0, 201);
    // The rows really are in the database, written by the app role.
    assert_eq!(
        postgres.psql("SELECT title FROM todos ORDER BY id"),
        "write tests\nship"
    );
    assert_eq!(
        postgres.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'todos'"),
        USER
    );
    let (status, listed) = call("GET", &todos, "").await;
    assert_eq!(status, 200);
    assert!(
        listed.contains("write tests") && listed.contains("ship"),
        "{listed}"
    );
    let first = postgres.psql("SELECT min(id) FROM todos");
    let (status, one) = call("GET", &format!("{todos}/{first}"), "").await;
    assert_eq!((status, one.contains("write tests")), (200, true), "{one}");
    assert_eq!(call("GET", &format!("{todos}/999999"), "").await.0, 404);
    assert_eq!(call("POST", &todos, "not json").await.0, 400);
    assert_eq!(call("DELETE", &format!("{todos}/{first}"), "").await.0, 204);
    assert_eq!(postgres.psql("SELECT count(*) FROM todos"), "1");

    // Postgres goes away: 503 with a message, the host keeps serving, and
    // requests work again once it is back.
    postgres.stop();
    let (status, body) = call("GET", &todos, "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database unavailable"), "{body}");
    postgres.run();
    let (status, body) = call("GET", &todos, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ship"), "{body}");
    assert!(running.terminate().await);

    // A wrong password is refused by the server, and said so.
    let mut command = wash();
    command
        .env("WASH_TEST_PG_PASSWORD", "wrong")
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0", "-C"])
        .arg(dir.path())
        .arg(fixture("http_postgres_p3"));
    let wrong = Running::spawn(command);
    let url = url_in(&wrong.wait_for("Serving", STARTUP).await);
    let (status, body) = call("GET", &format!("{url}todos"), "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("password authentication failed"), "{body}");
    assert!(wrong.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_database_in_its_policy_the_connect_is_denied() {
    let postgres = Postgres::start();
    let dir = settings(&postgres.url(), false, None);
    let (running, url) = dev(dir.path(), &[]).await;
    let (status, body) = call("GET", &format!("{url}todos"), "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("AccessDenied"), "{body}");
    // The host's policy refused the connect itself, naming the address.
    let log = running
        .wait_for_stderr("socket use denied", Duration::from_secs(10))
        .await;
    assert!(log.contains(&postgres.port.to_string()), "{log}");
    assert!(running.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_instance_reuses_its_connection_and_fresh_ones_open_their_own() {
    let mut postgres = Postgres::start();
    // No secret configured: the URL's user logs in (trust).
    let dir = settings(&postgres.url(), false, Some(postgres.port));
    let (warm, warm_url) = dev(dir.path(), &["--pool-size", "1"]).await;
    let (fresh, fresh_url) = dev(dir.path(), &[]).await;

    let mut sessions = Vec::new();
    for _ in 0..4 {
        let (status, headers, body) = request("GET", &format!("{warm_url}todos"), None, "").await;
        assert_eq!(status, 200, "{body}");
        sessions.push(backend_pid(&headers));
    }
    assert!(
        sessions.iter().all(|pid| *pid == sessions[0]),
        "one warm instance, one session: {sessions:?}"
    );
    // The session stays open between requests.
    let query = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
        sessions[0]
    );
    assert_eq!(postgres.psql(&query), "1");

    let mut sessions = Vec::new();
    for _ in 0..4 {
        let (status, headers, body) = request("GET", &format!("{fresh_url}todos"), None, "").await;
        assert_eq!(status, 200, "{body}");
        sessions.push(backend_pid(&headers));
    }
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 4, "a session per fresh instance");

    // The server restarts under the warm instance: its kept connection is
    // dead, and the next request opens a new one instead of failing.
    let before = {
        let (_, headers, _) = request("GET", &format!("{warm_url}todos"), None, "").await;
        backend_pid(&headers)
    };
    postgres.stop();
    postgres.run();
    let (status, headers, body) = request("GET", &format!("{warm_url}todos"), None, "").await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(backend_pid(&headers), before);
    assert!(warm.terminate().await);
    assert!(fresh.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_runs_tls_through_wasi_tls_against_the_hosts_cas() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "postgres");
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    ca.issue(&["localhost"], &cert, &key);
    let postgres = Postgres::start_with(PostgresOptions {
        tls: Some((
            std::fs::read_to_string(&cert).unwrap(),
            std::fs::read_to_string(&key).unwrap(),
        )),
        password_users: Vec::new(),
    });
    let url = format!(
        "{}?sslmode=require",
        postgres.url_as("postgres", "localhost")
    );
    let project = settings(&url, false, Some(postgres.port));

    // The host trusts the CA: the session is encrypted end to end.
    let ca_path = ca.pem.to_str().unwrap();
    let (trusted, base) = dev(project.path(), &["--http-client-ca-path", ca_path]).await;
    let (status, headers, body) = request(
        "POST",
        &format!("{base}todos"),
        None,
        r#"{"title":"secret"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let pid = backend_pid(&headers);
    assert_eq!(
        postgres.psql(&format!("SELECT ssl FROM pg_stat_ssl WHERE pid = {pid}")),
        "t"
    );
    assert_eq!(postgres.psql("SELECT title FROM todos"), "secret");
    assert!(trusted.terminate().await);

    // It does not: the handshake fails, and the response says why.
    let (untrusted, base) = dev(project.path(), &[]).await;
    let (status, body) = call("GET", &format!("{base}todos"), "").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("TLS"), "{body}");
    assert!(body.contains("UnknownIssuer"), "{body}");
    assert_eq!(postgres.psql("SELECT count(*) FROM todos"), "1");
    assert!(untrusted.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_wash_host_with_settings_from_the_workload() {
    let postgres = with_app_user(None);
    let nats = Nats::start();
    let registry = Registry::start();
    let image = format!("{}/todos:1", registry.address());
    let component = fixture("http_postgres_p3");
    let pushed = run(
        &[
            "oci",
            "push",
            &image,
            component.to_str().unwrap(),
            "--insecure",
        ],
        None,
    )
    .await;
    assert!(pushed.success, "{}", pushed.stderr);
    // The password reaches the host as a file the secret names.
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("pg-password");
    std::fs::write(&password_file, PASSWORD).unwrap();

    let host = start_host("pg", &nats.url(), &registry.address(), &[]);
    host.ready().await;
    let start = json!({"workloadId": "todos", "workload": {"name": "todos", "witWorld": {
        "components": [{"name": "todos", "image": image, "localResources": {
            "config": {"database_url": postgres.url_as(USER, "localhost")},
            "allowedIpNameLookups": ["localhost"],
            "allowedHostLoopbackPorts": [postgres.port.to_string()],
        }}],
        "hostInterfaces": [
            {"namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": {"host": "todos.test"}},
            {"namespace": "wasmcloud", "package": "secrets", "interfaces": ["store", "reveal"],
             "config": {"database_password": format!("file:{}", password_file.display())}}
        ]
    }}});
    let client = async_nats::connect(nats.url()).await.unwrap();
    let reply = tokio::time::timeout(
        STARTUP,
        client.request("runtime.host.pg.workload.start", start.to_string().into()),
    )
    .await
    .expect("a reply in time")
    .expect("a reply");
    let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(
        reply["workloadStatus"]["workloadState"], "WORKLOAD_STATE_RUNNING",
        "{reply}"
    );

    let todos = host.url("/todos");
    let host_header = Some("todos.test");
    let (status, _, body) = request("POST", &todos, host_header, r#"{"title":"on a host"}"#).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        request("POST", &todos, host_header, r#"{"title":"second"}"#)
            .await
            .0,
        201
    );
    assert_eq!(
        postgres.psql("SELECT title FROM todos ORDER BY id"),
        "on a host\nsecond"
    );
    let (status, _, listed) = request("GET", &todos, host_header, "").await;
    assert_eq!(status, 200);
    assert!(
        listed.contains("on a host") && listed.contains("second"),
        "{listed}"
    );
    let first = postgres.psql("SELECT min(id) FROM todos");
    let one = format!("{todos}/{first}");
    let (status, _, body) = request("GET", &one, host_header, "").await;
    assert_eq!((status, body.contains("on a host")), (200, true), "{body}");
    assert_eq!(request("DELETE", &one, host_header, "").await.0, 204);
    assert_eq!(request("GET", &one, host_header, "").await.0, 404);
    assert_eq!(postgres.psql("SELECT title FROM todos"), "second");
    assert!(host.process.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_postgres_template_runs_against_a_database() {
    let postgres = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let created = run(
        &[
            "new",
            "http-postgres",
            "--name",
            "todo-app",
            "--non-interactive",
        ],
        Some(dir.path()),
    )
    .await;
    assert!(created.success, "{}", created.stderr);
    let project = dir.path().join("todo-app");
    // Same dependency versions as the fixture: nothing new to download.
    std::fs::copy(
        common::repo().join("components/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    // Pointed at this test's server, as its README says.
    let config = project.join(".wash/config.yaml");
    let yaml = std::fs::read_to_string(&config)
        .unwrap()
        .replace("5432", &postgres.port.to_string());
    std::fs::write(&config, yaml).unwrap();

    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0", "-C"])
        .arg(&project);
    let running = Running::spawn(command);
    let url = url_in(&running.wait_for("Serving", Duration::from_secs(600)).await);
    let (status, body) = call(
        "POST",
        &format!("{url}todos"),
        r#"{"title":"from a template"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(postgres.psql("SELECT title FROM todos"), "from a template");
    assert!(running.terminate().await);
}
