//! Real backend servers for tests, each on a free loopback port, started
//! and stopped by the harness: `nats-server` with JetStream,
//! `redis-server`, Debian's `docker-registry`, `prometheus` and `postgresql`. `./scripts/test.sh`
//! installs them.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A free loopback port. It is released again before the caller binds it,
/// so the port is also remembered: this process never hands it out twice
/// (a server restarted on its port while another test looks for one would
/// otherwise be found by both).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A server process, killed when stopped or dropped.
#[derive(Default)]
struct Process(Option<Child>);

impl Process {
    /// Starts `program` and waits until it listens on `port`.
    fn start(program: &str, args: &[String], port: u16) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{program}` ({e}); run ./scripts/test.sh, which installs it")
            });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // Exited first: then whatever listens on the port is not ours.
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{program} exited during startup ({status})");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self(Some(child));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{program} did not listen on port {port} within 15 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `nats-server` with JetStream, its data in a temporary directory that
/// survives restarts of the server.
pub struct Nats {
    pub port: u16,
    // Declared before `store` so the server dies before its data goes.
    process: Process,
    store: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Self {
        let mut nats = Self {
            port: free_port(),
            process: Process::default(),
            store: tempfile::tempdir().expect("temp dir"),
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
        self.process = Process::start("nats-server", &args, self.port);
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

/// A `redis-server` without persistence.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    process: Process,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = Self {
            port: free_port(),
            dir: dir.path().to_path_buf(),
            process: Process::default(),
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
        self.process = Process::start("redis-server", &args, self.port);
    }

    pub fn stop(&mut self) {
        self.process.stop();
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

/// An OCI registry (Debian's `docker-registry`) storing in a temporary
/// directory.
pub struct Registry {
    pub port: u16,
    process: Process,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// A registry that wants basic auth: `htpasswd` holds `user:bcrypt-hash`
    /// lines.
    pub fn start_with_htpasswd(htpasswd: &str) -> Self {
        Self::start_inner(Some(htpasswd))
    }

    fn start_inner(htpasswd: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some(lines) = htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, lines).expect("htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: wash-test\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(&config, yaml).expect("registry config");
        let process = Process::start(
            "docker-registry",
            &["serve".into(), config.display().to_string()],
            port,
        );
        Self {
            port,
            process,
            _dir: dir,
        }
    }

    /// Kills the registry: it is unreachable from then on.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// `127.0.0.1:<port>`, the registry part of references.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A Prometheus server (Debian's `prometheus`) scraping `targets`
/// (`host:port`, path `/metrics`) every second, its data in a temporary
/// directory.
pub struct Prometheus {
    pub port: u16,
    _process: Process,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(targets: &[String]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        let targets = targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wash\n    static_configs:\n      - targets: [{targets}]\n"
            ),
        )
        .expect("prometheus config");
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=error".to_string(),
        ];
        let process = Process::start("prometheus", &args, port);
        Self {
            port,
            _process: process,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`, the base of its HTTP API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// What [`Postgres::start_with`] sets up.
#[derive(Debug, Default, Clone)]
pub struct PostgresOptions {
    /// Serve TLS (`ssl = on`) with this certificate and key (PEM).
    pub tls: Option<(String, String)>,
    /// Login roles (user, password) that must authenticate over TCP.
    pub password_users: Vec<(String, String)>,
}

/// A PostgreSQL server (Debian's `postgresql`) in a temporary directory,
/// run as the `postgres` system user (Postgres refuses to run as root),
/// trusting local connections, on a free loopback port.
pub struct Postgres {
    pub port: u16,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// The directory of `initdb` and `pg_ctl`.
    fn bin() -> PathBuf {
        let found = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .filter(|bin| bin.join("pg_ctl").is_file())
                    .max()
            });
        found.expect("no /usr/lib/postgresql/<version>/bin; run ./scripts/test.sh, which installs postgresql")
    }

    /// Runs a Postgres tool as the `postgres` user.
    fn tool(tool: &str, args: &[&str]) {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Self::bin().join(tool))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        assert!(status.success(), "{tool} {args:?} failed ({status})");
    }

    pub fn start() -> Self {
        Self::start_with(PostgresOptions::default())
    }

    /// As [`Self::start`], with TLS and login roles set up before it first
    /// accepts connections.
    pub fn start_with(options: PostgresOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        // The postgres user must own what it writes: the temp dir too.
        for path in [dir.path(), data.as_path()] {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(path)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown {} failed", path.display());
        }
        let data_arg = data.display().to_string();
        Self::tool(
            "initdb",
            &["-D", &data_arg, "-A", "trust", "-U", "postgres"],
        );
        // Roles with a password must give it over TCP (scram-sha-256); the
        // first matching line of pg_hba.conf wins, so these go on top.
        if !options.password_users.is_empty() {
            let hba = data.join("pg_hba.conf");
            let rest = std::fs::read_to_string(&hba).expect("pg_hba.conf");
            let mut lines: String = options
                .password_users
                .iter()
                .map(|(user, _)| format!("host all {user} 127.0.0.1/32 scram-sha-256\n"))
                .collect();
            lines.push_str(&rest);
            std::fs::write(&hba, lines).expect("pg_hba.conf");
        }
        if let Some((cert, key)) = &options.tls {
            // Postgres wants its key private and its own.
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, pem).expect("TLS files");
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .expect("chmod");
                let status = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(&path)
                    .status()
                    .expect("chown runs");
                assert!(status.success(), "chown {} failed", path.display());
            }
            let conf = data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
            text.push_str("\nssl = on\n");
            std::fs::write(&conf, text).expect("postgresql.conf");
        }
        let mut postgres = Self {
            port: free_port(),
            data,
            _dir: dir,
        };
        postgres.run();
        for (user, password) in &options.password_users {
            postgres.psql(&format!(
                "CREATE ROLE {user} LOGIN PASSWORD '{password}'; GRANT CREATE ON SCHEMA public TO {user}"
            ));
        }
        postgres
    }

    /// Starts the server (again) on its port, waiting until it accepts.
    pub fn run(&mut self) {
        let data = self.data.display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        let log = self.data.join("server.log").display().to_string();
        Self::tool(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// Stops the server, as an outage would.
    pub fn stop(&mut self) {
        let data = self.data.display().to_string();
        Self::tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `postgres://<user>@<host>:<port>/postgres`.
    pub fn url_as(&self, user: &str, host: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres", self.port)
    }

    /// Runs SQL with `psql`; its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-tA", "-p"])
            .arg(self.port.to_string())
            .args(["-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        // Already stopped is fine.
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Self::bin().join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
