//! Harness for running the `wash` binary: processes, their output, HTTP.
#![allow(dead_code, reason = "each test binary uses a different subset")]

#[allow(unused_imports, reason = "not every test binary starts servers")]
pub use test_support::servers;

pub mod ca;
pub mod hosts;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A built guest component.
#[allow(unused_imports, reason = "not every test binary runs a fixture")]
pub use test_support::fixture_path as fixture;

/// Target dir for guest builds made by tests: shared, so dependencies are
/// compiled once, and apart from components/target so fixtures stay intact.
pub fn guest_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest-target")
}

/// Copies the hello-world example into a fresh directory.
pub fn hello_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example = repo().join("components/http-hello-world");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::copy(example.join("Cargo.toml"), dir.path().join("Cargo.toml")).unwrap();
    std::fs::copy(example.join("src/lib.rs"), dir.path().join("src/lib.rs")).unwrap();
    // Same dependency versions as the fixtures: nothing new to download.
    std::fs::copy(
        repo().join("components/Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .unwrap();
    dir
}

/// A `wash` command with the test's environment.
pub fn wash() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wash"));
    command
        .env("CARGO_TARGET_DIR", guest_target_dir())
        .env(
            "WASH_CACHE_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wash-cache"),
        )
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Output of a finished `wash` run.
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Finished {
    fn from(output: std::process::Output) -> Self {
        Self {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `command` (a [`wash`] with arguments) to completion.
pub async fn finish(mut command: Command) -> Finished {
    command.output().await.expect("wash runs").into()
}

/// Runs `wash` to completion.
pub async fn run(args: &[&str], dir: Option<&Path>) -> Finished {
    let mut command = wash();
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    finish(command).await
}

/// Asserts an error is reported the way users should see it: once, without
/// panics or backtraces.
pub fn assert_clean_error(finished: &Finished) {
    assert!(
        !finished.success,
        "expected failure; stdout: {}",
        finished.stdout
    );
    let stderr = &finished.stderr;
    assert!(stderr.contains("error: "), "{stderr}");
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!stderr.contains(bad), "`{bad}` in stderr: {stderr}");
    }
}

/// A running `wash` whose output lines are collected as they come.
pub struct Running {
    pub child: Child,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn spawn(mut command: Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("wash starts");
        let stdout = collect(child.stdout.take().unwrap(), false);
        let stderr = collect(child.stderr.take().unwrap(), true);
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub async fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_nth(needle, 1, timeout).await
    }

    /// Waits for the `n`th stdout line containing `needle`; returns it.
    pub async fn wait_for_nth(&self, needle: &str, n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .nth(n - 1)
                .cloned();
            if let Some(line) = found {
                return line;
            }
            if Instant::now() > deadline {
                panic!(
                    "no `{needle}` on stdout within {timeout:?}\nstdout: {:#?}\nstderr: {:#?}",
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub async fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            if Instant::now() > deadline {
                panic!(
                    "no `{needle}` on stderr within {timeout:?}\nstderr: {:#?}",
                    self.stderr.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.child.id() {
            // SAFETY: plain syscall on a pid we own.
            unsafe { libc::kill(pid as i32, signal) };
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> bool {
        self.signal(libc::SIGTERM);
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }
}

fn collect(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    echo: bool,
) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if echo {
                eprintln!("[wash] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// The URL in a `Serving ... at http(s)://...` line.
pub fn url_in(line: &str) -> String {
    let start = line
        .find("http://")
        .or_else(|| line.find("https://"))
        .expect("a URL");
    line[start..].split_whitespace().next().unwrap().to_string()
}

/// A request with `method` and `body` to `url`; status and body.
pub async fn call(method: &str, url: &str, body: &str) -> (u16, String) {
    let (status, _, body) = request(method, url, None, body).await;
    (status, body)
}

/// A request with `method`, an optional `Host` header and `body` to `url`;
/// status, headers and body.
pub async fn request(
    method: &str,
    url: &str,
    host: Option<&str>,
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let client: Client<_, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(host) = host {
        request = request.header(http::header::HOST, host);
    }
    let request = request
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// GET a URL; status and body.
pub async fn get(url: &str) -> (u16, String) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse().unwrap()).await.expect("request");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
