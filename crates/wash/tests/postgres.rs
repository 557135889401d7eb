//! A P3 component that speaks the Postgres protocol itself, over
//! `wasi:sockets`, against a real Postgres server: the JSON API, rows
//! checked with psql, the egress policy, and an outage in the middle.

mod common;

use std::time::Duration;

use common::servers::Postgres;
use common::{Running, call, fixture, url_in, wash};

fn dev(postgres: &Postgres, allow: bool) -> Running {
    let mut command = wash();
    command
        .args(["dev", "--no-watch", "--address", "127.0.0.1:0"])
        .args(["--env", &format!("DATABASE_URL={}", postgres.url())]);
    if allow {
        command.args(["--allow-loopback-port", &postgres.port.to_string()]);
    }
    command.arg(fixture("http_postgres_p3"));
    Running::spawn(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_live_in_postgres_and_an_outage_is_a_503() {
    let mut postgres = Postgres::start();
    let running = dev(&postgres, true);
    let url = url_in(&running.wait_for("Serving", Duration::from_secs(120)).await);
    let todos = format!("{url}todos");

    let (status, created) = call("POST", &todos, r#"{"title":"write tests"}"#).await;
    assert_eq!(status, 201, "{created}");
    assert!(created.contains(r#""title":"write tests""#), "{created}");
    assert_eq!(call("POST", &todos, r#"{"title":"ship"}"#).await.0, 201);
    // The rows really are in the database.
    assert_eq!(
        postgres.psql("SELECT title FROM todos ORDER BY id"),
        "write tests\nship"
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_database_in_its_policy_the_connect_is_denied() {
    let postgres = Postgres::start();
    let running = dev(&postgres, false);
    let url = url_in(&running.wait_for("Serving", Duration::from_secs(120)).await);
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
