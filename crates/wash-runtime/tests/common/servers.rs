//! Real backend servers for tests, each on a free loopback port, started
//! and stopped by the harness: `nats-server` with JetStream and
//! `redis-server`. `./scripts/test.sh` installs both.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (released again, so there is a small race).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited during startup ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on port {port} within 15 s");
}

fn spawn(program: &str, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start `{program}` ({e}); run ./scripts/test.sh, which installs it")
        })
}

/// A `nats-server` with JetStream, its data in a temporary directory that
/// survives restarts of the server.
pub struct Nats {
    pub port: u16,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    pub fn start() -> Self {
        let mut nats = Self {
            port: free_port(),
            store: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        nats.run();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let args = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-js".into(),
            "-sd".into(),
            self.store.path().display().to_string(),
        ];
        let mut child = spawn("nats-server", &args);
        wait_for_port(self.port, "nats-server", &mut child);
        self.child = Some(child);
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `redis-server` without persistence.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = Self {
            port: free_port(),
            dir: dir.path().to_path_buf(),
            child: None,
            _dir: dir,
        };
        redis.run();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn run(&mut self) {
        let args = vec![
            "--port".into(),
            self.port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            self.dir.display().to_string(),
        ];
        let mut child = spawn("redis-server", &args);
        wait_for_port(self.port, "redis-server", &mut child);
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
