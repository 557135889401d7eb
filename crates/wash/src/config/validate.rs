//! `wash config validate`: structural checks over the merged configuration.
//! Every problem is collected; none stops the others from being found.

use std::path::{Path, PathBuf};

use super::{Loaded, Problem};

/// Every problem in `loaded`, each naming its file and key: what loading
/// found (syntax and type errors) and what the checks below find. A key with
/// a type error is not checked again.
pub fn validate(loaded: &Loaded) -> Vec<Problem> {
    let mut problems = loaded.problems.clone();
    let mistyped: Vec<&str> = loaded
        .problems
        .iter()
        .filter_map(|p| p.key.as_deref())
        .collect();
    let unchecked = |key: &str| {
        mistyped
            .iter()
            .any(|bad| key == *bad || key.starts_with(&format!("{bad}.")))
    };
    problems.extend(
        semantic(loaded)
            .into_iter()
            .filter(|p| !p.key.as_deref().is_some_and(unchecked)),
    );
    problems
}

/// The layout version this wash reads.
const SUPPORTED_VERSION: &str = "1";

/// Checks of values that have the right type.
fn semantic(loaded: &Loaded) -> Vec<Problem> {
    let mut checks = Checks {
        loaded,
        problems: Vec::new(),
    };
    let config = &loaded.config;

    if let Some(version) = config.version.as_deref()
        && version != SUPPORTED_VERSION
        && version != "1.0"
    {
        checks.problem(
            "version",
            format!(
                "version `{version}` is not supported: this wash reads version \
                 {SUPPORTED_VERSION} (write `version: {SUPPORTED_VERSION}`, or leave it out)"
            ),
        );
    }

    // Addresses.
    checks.socket_address("dev.address", config.dev.address.as_deref());
    checks.socket_address("host.http_addr", config.host.http_addr.as_deref());

    // URLs of the right kind where they are expected.
    const REDIS: &[&str] = &["redis", "rediss"];
    const NATS: &[&str] = &["nats", "tls", "ws", "wss"];
    const POSTGRES: &[&str] = &["postgres", "postgresql"];
    checks.url(
        "dev.wasi_keyvalue_redis_url",
        config.dev.wasi_keyvalue_redis_url.as_deref(),
        REDIS,
    );
    checks.url(
        "dev.wasi_keyvalue_nats_url",
        config.dev.wasi_keyvalue_nats_url.as_deref(),
        NATS,
    );
    checks.url(
        "dev.data_nats_url",
        config.dev.data_nats_url.as_deref(),
        NATS,
    );
    checks.url(
        "dev.postgres_url",
        config.dev.postgres_url.as_deref(),
        POSTGRES,
    );
    checks.url(
        "host.scheduler_nats_url",
        config.host.scheduler_nats_url.as_deref(),
        NATS,
    );
    checks.url(
        "host.data_nats_url",
        config.host.data_nats_url.as_deref(),
        NATS,
    );

    // TLS material: certificate and key together, and on disk.
    let dev = &config.dev;
    checks.tls_pair(
        "dev",
        dev.tls_cert_path.as_deref(),
        dev.tls_key_path.as_deref(),
    );
    checks.existing_file("dev.tls_ca_path", dev.tls_ca_path.as_deref());
    let host = &config.host;
    checks.tls_pair(
        "host",
        host.tls_cert_path.as_deref(),
        host.tls_key_path.as_deref(),
    );
    checks.existing_file("host.tls_ca_path", host.tls_ca_path.as_deref());
    if let Some(dir) = host.tls_sni_dir.as_deref() {
        let resolved = checks.loaded.resolve(dir);
        if !resolved.is_dir() {
            checks.problem(
                "host.tls_sni_dir",
                format!("{} is not a directory", resolved.display()),
            );
        }
    }
    // A pair that is there must also load: PEM, and a key that matches.
    checks.tls_loads(
        "dev",
        dev.tls_cert_path.as_deref(),
        dev.tls_key_path.as_deref(),
        None,
        None,
    );
    checks.tls_loads(
        "host",
        host.tls_cert_path.as_deref(),
        host.tls_key_path.as_deref(),
        host.tls_ca_path.as_deref(),
        host.tls_sni_dir.as_deref(),
    );

    if dev.wasi_webgpu
        && let Some(reason) = webgpu_unavailable()
    {
        checks.problem("dev.wasi_webgpu", reason);
    }

    // Commands.
    checks.non_empty_command("build.command", config.build.command.as_deref());
    checks.non_empty_command("new.command", config.new.command.as_deref());
    if config.build.command.is_some() && config.build.component_path.is_none() {
        checks.problem(
            "build.component_path",
            "`build.command` is set, so wash needs `build.component_path`: where the command \
             writes the component"
                .into(),
        );
    }

    // WIT.
    for (index, registry) in config.wit.registries.iter().enumerate() {
        let key = format!("wit.registries.{index}.url");
        match url::Url::parse(&registry.url) {
            Ok(url) if ["https", "http", "oci"].contains(&url.scheme()) && url.host().is_some() => {}
            Ok(url) if url.host().is_none() => {
                checks.problem(&key, format!("`{}` has no host", registry.url));
            }
            Ok(url) => checks.problem(
                &key,
                format!(
                    "`{}` uses `{}://`; WIT registries are reached over https://, http:// or oci://",
                    registry.url,
                    url.scheme()
                ),
            ),
            Err(e) => checks.problem(&key, format!("`{}` is not a URL ({e})", registry.url)),
        }
        if let Some(namespace) = &registry.namespace
            && !crate::wit::naming::is_wit_identifier(namespace)
        {
            checks.problem(
                &format!("wit.registries.{index}.namespace"),
                format!(
                    "`{namespace}` is not a WIT namespace: use lowercase words joined by dashes \
                     (wasmcloud, my-company)"
                ),
            );
        }
        if let Some(repository) = &registry.repository
            && let Err(e) = crate::wit::naming::check_repository_template(repository)
        {
            checks.problem(&format!("wit.registries.{index}.repository"), e);
        }
    }
    for (package, source) in &config.wit.sources {
        if is_remote_source(source) {
            continue;
        }
        let path = loaded.resolve(Path::new(source));
        if !path.exists() {
            checks.problem(
                &format!("wit.sources.{package}"),
                format!("local WIT source {} does not exist", path.display()),
            );
        }
    }

    // Secrets come from the environment or a file, nowhere else.
    for (name, source) in &config.workload.secrets {
        if !(source.starts_with("env:") || source.starts_with("file:")) {
            checks.problem(
                &format!("workload.secrets.{name}"),
                "the source must be `env:<VAR>` or `file:<path>`".into(),
            );
        }
    }

    // What dev mounts and serves must be there.
    for (index, volume) in dev.volumes.iter().enumerate() {
        let path = loaded.resolve(&volume.host_path);
        if !path.is_dir() {
            checks.problem(
                &format!("dev.volumes.{index}.host_path"),
                format!("{} is not a directory", path.display()),
            );
        }
    }
    for (index, component) in dev.components.iter().enumerate() {
        let path = loaded.resolve(&component.path);
        if !path.is_file() {
            checks.problem(
                &format!("dev.components.{index}.path"),
                format!("{} does not exist", path.display()),
            );
        }
    }
    checks.problems
}

/// Remote WIT sources are fetched, not checked here.
fn is_remote_source(source: &str) -> bool {
    [
        "http://", "https://", "git+", "git@", "git://", "oci://", "ssh://",
    ]
    .iter()
    .any(|prefix| source.starts_with(prefix))
        || source.ends_with(".git")
}

/// Why `wasi:webgpu` cannot be offered here, if it cannot.
fn webgpu_unavailable() -> Option<String> {
    if cfg!(windows) {
        let system = std::env::var_os("SystemRoot")
            .map_or_else(|| PathBuf::from(r"C:\Windows"), PathBuf::from);
        if system.join("System32").join("d3d12.dll").is_file() {
            return Some(
                "Direct3D 12 is present, but this build of wash has no wasi:webgpu support".into(),
            );
        }
        return Some("WebGPU needs Direct3D 12, which this machine does not have".into());
    }
    Some(format!(
        "WebGPU (wasi:webgpu) is supported on Windows only; not on {}",
        std::env::consts::OS
    ))
}

struct Checks<'a> {
    loaded: &'a Loaded,
    problems: Vec<Problem>,
}

impl Checks<'_> {
    fn problem(&mut self, key: &str, message: String) {
        self.problems.push(Problem {
            file: self.loaded.origin_of(key).cloned(),
            key: Some(key.to_string()),
            position: None,
            message,
        });
    }

    fn socket_address(&mut self, key: &str, value: Option<&str>) {
        let Some(value) = value else { return };
        if value.parse::<std::net::SocketAddr>().is_ok() {
            self.bindable(key, value);
            return;
        }
        // `localhost:8000` and other host names are fine too.
        let valid_named = value.rsplit_once(':').is_some_and(|(host, port)| {
            port.parse::<u16>().is_ok()
                && !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        });
        if !valid_named {
            self.problem(
                key,
                format!(
                    "`{value}` is not a socket address (expected HOST:PORT, e.g. 127.0.0.1:8000)"
                ),
            );
            return;
        }
        self.bindable(key, value);
    }

    /// An address the commands could not listen on: not an address of this
    /// machine, or a port this user may not open. One in use is fine here
    /// (it may be the wash that is already running).
    fn bindable(&mut self, key: &str, value: &str) {
        use std::io::ErrorKind;
        use std::net::ToSocketAddrs;
        let Ok(mut addresses) = value.to_socket_addrs() else {
            return;
        };
        let Some(address) = addresses.next() else {
            return;
        };
        match std::net::TcpListener::bind(address) {
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::AddrNotAvailable | ErrorKind::PermissionDenied
                ) =>
            {
                self.problem(key, format!("cannot listen on `{value}`: {e}"));
            }
            _ => {}
        }
    }

    /// Loads a certificate and key (and client CA, SNI certificates) as the
    /// server would, when the files are there.
    fn tls_loads(
        &mut self,
        section: &str,
        cert: Option<&Path>,
        key: Option<&Path>,
        client_ca: Option<&Path>,
        sni_dir: Option<&Path>,
    ) {
        let (Some(cert), Some(key)) = (cert, key) else {
            return;
        };
        let (cert, key) = (self.loaded.resolve(cert), self.loaded.resolve(key));
        if !cert.is_file() || !key.is_file() {
            return;
        }
        let mut settings = wash_runtime::host::http::TlsSettings::new(cert, key);
        if let Some(ca) = client_ca
            .map(|p| self.loaded.resolve(p))
            .filter(|p| p.is_file())
        {
            settings = settings.client_ca(ca);
        }
        if let Some(dir) = sni_dir
            .map(|p| self.loaded.resolve(p))
            .filter(|p| p.is_dir())
        {
            settings = settings.sni_dir(dir);
        }
        if let Err(e) = settings.check() {
            self.problem(&format!("{section}.tls_cert_path"), e.to_string());
        }
    }

    fn url(&mut self, key: &str, value: Option<&str>, schemes: &[&str]) {
        let Some(value) = value else { return };
        let expected = schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ");
        match url::Url::parse(value) {
            Ok(url) if schemes.contains(&url.scheme()) => {}
            Ok(url) => self.problem(
                key,
                format!("`{value}` uses `{}://`; expected {expected}", url.scheme()),
            ),
            Err(e) => self.problem(
                key,
                format!("`{value}` is not a URL ({e}); expected {expected}"),
            ),
        }
    }

    fn tls_pair(&mut self, section: &str, cert: Option<&Path>, key: Option<&Path>) {
        let cert_key = format!("{section}.tls_cert_path");
        let key_key = format!("{section}.tls_key_path");
        match (cert, key) {
            (Some(_), None) => self.problem(
                &cert_key,
                format!("a TLS certificate needs its key: set `{key_key}` too"),
            ),
            (None, Some(_)) => self.problem(
                &key_key,
                format!("a TLS key needs its certificate: set `{cert_key}` too"),
            ),
            _ => {}
        }
        self.existing_file(&cert_key, cert);
        self.existing_file(&key_key, key);
    }

    fn existing_file(&mut self, key: &str, path: Option<&Path>) {
        let Some(path) = path else { return };
        let resolved = self.loaded.resolve(path);
        if !resolved.is_file() {
            self.problem(key, format!("{} does not exist", resolved.display()));
        }
    }

    fn non_empty_command(&mut self, key: &str, command: Option<&str>) {
        if command.is_some_and(|c| c.trim().is_empty()) {
            self.problem(key, "the command is empty".into());
        }
    }
}
