//! `wash config init|show|info|validate|cleanup` and `wash completion`,
//! run as a user would, with the user's config directory in a temp dir.

mod common;

use std::path::Path;

use common::{Finished, assert_clean_error, wash};
use serde_json::Value;

/// Runs `wash` in `dir` with `home` as the XDG config, cache and data root.
async fn wash_in(dir: &Path, home: &Path, args: &[&str]) -> Finished {
    let output = wash()
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("WASH_CACHE_DIR", home.join("cache"))
        .env("WASH_DATA_DIR", home.join("data"))
        .output()
        .await
        .expect("wash runs");
    output.into()
}

fn parse(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    match path.extension().unwrap().to_str().unwrap() {
        "yaml" | "yml" => serde_norway::from_str(&text).unwrap(),
        "json" => serde_json::from_str(&text).unwrap(),
        "toml" => toml::from_str(&text).unwrap(),
        other => panic!("unexpected extension {other}"),
    }
}

#[tokio::test]
async fn init_writes_each_format_and_what_it_writes_reads_back() {
    for format in ["yaml", "yml", "json", "toml"] {
        let project = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let done = wash_in(
            project.path(),
            home.path(),
            &["config", "init", "--format", format],
        )
        .await;
        assert!(done.success, "{format}: {}", done.stderr);
        let file = project
            .path()
            .join(".wash")
            .join(format!("config.{format}"));
        let written = parse(&file);
        assert_eq!(written["dev"]["address"], "127.0.0.1:8000", "{format}");
        assert_eq!(written["version"], 1, "{format}: the version is a number");

        // wash reads back exactly what it wrote.
        let shown = wash_in(
            project.path(),
            home.path(),
            &["config", "show", "-o", "json"],
        )
        .await;
        assert!(shown.success, "{format}: {}", shown.stderr);
        let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
        assert_eq!(
            shown["config"]["dev"]["address"], "127.0.0.1:8000",
            "{format}"
        );
        let source = shown["sources"]["dev.address"].as_str().unwrap();
        assert!(
            source.ends_with(&format!(".wash/config.{format}")),
            "{source}"
        );

        // The example fills every section and validates clean.
        let example = wash_in(
            project.path(),
            home.path(),
            &["config", "init", "--format", format, "--example", "--force"],
        )
        .await;
        assert!(example.success, "{format}: {}", example.stderr);
        let written = parse(&file);
        for section in ["build", "new", "wit", "workload", "host", "dev"] {
            assert!(
                written[section].is_object(),
                "{format}: no `{section}` in the example"
            );
        }
        let valid = wash_in(project.path(), home.path(), &["config", "validate"]).await;
        assert!(valid.success, "{format}: {}", valid.stderr);
        assert!(valid.stdout.starts_with("Valid: "), "{}", valid.stdout);
        assert!(
            !valid.stderr.contains("warning"),
            "{format}: {}",
            valid.stderr
        );
    }
}

#[tokio::test]
async fn init_never_overwrites_without_force_and_global_only_warns() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = project.path().join(".wash/config.yaml");
    assert!(
        wash_in(project.path(), home.path(), &["config", "init"])
            .await
            .success
    );
    std::fs::write(&config, "version: 1\n# mine\n").unwrap();

    let refused = wash_in(
        project.path(),
        home.path(),
        &["config", "init", "--format", "json"],
    )
    .await;
    assert_clean_error(&refused);
    assert!(
        refused.stderr.contains("already exists; pass --force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "version: 1\n# mine\n"
    );

    let forced = wash_in(
        project.path(),
        home.path(),
        &["config", "init", "--format", "json", "--force", "--global"],
    )
    .await;
    assert!(forced.success, "{}", forced.stderr);
    assert!(
        forced
            .stderr
            .contains("`--global` is deprecated and has no effect"),
        "{}",
        forced.stderr
    );
    // Replaced, not shadowed: one config file remains, in the project.
    assert!(!config.exists());
    assert!(project.path().join(".wash/config.json").is_file());
    assert!(!home.path().join("config/wash").exists());
}

#[tokio::test]
async fn project_values_win_over_user_values_and_show_says_where_each_came_from() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let user_dir = home.path().join("config/wash");
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(
        user_dir.join("config.toml"),
        "[dev]\naddress = \"0.0.0.0:9000\"\ndata_nats_url = \"nats://127.0.0.1:4222\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(project.path().join(".wash")).unwrap();
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        "dev:\n  address: 127.0.0.1:7000\n",
    )
    .unwrap();

    let shown = wash_in(project.path(), home.path(), &["config", "show"]).await;
    assert!(shown.success, "{}", shown.stderr);
    let line = |key: &str| {
        shown
            .stdout
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {}", shown.stdout))
            .to_string()
    };
    assert!(line("dev.address = 127.0.0.1:7000").ends_with(".wash/config.yaml"));
    assert!(line("dev.data_nats_url = nats://127.0.0.1:4222").ends_with("wash/config.toml"));

    // --user-config replaces the XDG file.
    let other = home.path().join("other.json");
    std::fs::write(&other, r#"{"dev": {"wasi_blobstore_path": "/srv/blobs"}}"#).unwrap();
    let shown = wash_in(
        project.path(),
        home.path(),
        &[
            "config",
            "show",
            "-o",
            "json",
            "--user-config",
            other.to_str().unwrap(),
        ],
    )
    .await;
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["config"]["dev"]["wasi_blobstore_path"], "/srv/blobs");
    assert!(shown["config"]["dev"].get("data_nats_url").is_none());

    let info = wash_in(
        project.path(),
        home.path(),
        &["config", "info", "-o", "json"],
    )
    .await;
    let info: Value = serde_json::from_str(&info.stdout).unwrap();
    let user = info
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "user config")
        .unwrap();
    assert!(
        user["path"]
            .as_str()
            .unwrap()
            .ends_with("config/wash/config.toml"),
        "{user}"
    );
    assert_eq!(user["exists"], true);
}

#[tokio::test]
async fn unknown_keys_are_warnings_naming_key_and_file() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join(".wash")).unwrap();
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        "dev:\n  adress: 127.0.0.1:1\nbuidl: {}\n",
    )
    .unwrap();
    let valid = wash_in(project.path(), home.path(), &["config", "validate"]).await;
    assert!(valid.success, "{}", valid.stderr);
    assert!(
        valid.stderr.contains("unknown key `dev.adress` in "),
        "{}",
        valid.stderr
    );
    assert!(
        valid.stderr.contains("unknown key `buidl` in "),
        "{}",
        valid.stderr
    );
    assert!(
        valid.stderr.contains(".wash/config.yaml"),
        "{}",
        valid.stderr
    );
}

#[tokio::test]
async fn validate_reports_every_problem_at_once_with_file_and_key() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let user_dir = home.path().join("config/wash");
    std::fs::create_dir_all(&user_dir).unwrap();
    // One problem from the user file, to see it named.
    std::fs::write(
        user_dir.join("config.yaml"),
        "host:\n  scheduler_nats_url: http://127.0.0.1:4222\n",
    )
    .unwrap();
    let cert = project.path().join("cert.pem");
    std::fs::write(&cert, "not checked here").unwrap();
    std::fs::create_dir_all(project.path().join(".wash")).unwrap();
    let fixture = format!(
        r#"
build:
  command: "  "
  component_path: app.wasm
new:
  command: ""
wit:
  registries:
    - url: "not a url"
    - url: oci://ghcr.io
      namespace: Acme
      repository: "wit/{{namespace}}"
  sources:
    "local:missing": ./no-such-wit
    "wasi:http": https://example.com/wasi-http.tar.gz
host:
  http_addr: "0.0.0.0"
  tls_key_path: {cert}
dev:
  address: "127.0.0.1:99999"
  wasi_keyvalue_redis_url: "nats://127.0.0.1:4222"
  data_nats_url: "redis://127.0.0.1:6379"
  postgres_url: "mysql://db"
  tls_cert_path: ./missing-cert.pem
  wasi_webgpu: true
"#,
        cert = cert.display()
    );
    std::fs::write(project.path().join(".wash/config.yaml"), fixture).unwrap();

    let report = wash_in(project.path(), home.path(), &["config", "validate"]).await;
    assert_clean_error(&report);
    let project_file = project
        .path()
        .canonicalize()
        .unwrap()
        .join(".wash/config.yaml");
    let expected = [
        ("dev.address", "not a socket address"),
        ("host.http_addr", "not a socket address"),
        (
            "dev.wasi_keyvalue_redis_url",
            "expected redis:// or rediss://",
        ),
        ("dev.data_nats_url", "expected nats://"),
        ("dev.postgres_url", "expected postgres://"),
        ("host.scheduler_nats_url", "uses `http://`"),
        ("dev.tls_cert_path", "needs its key"),
        ("dev.tls_cert_path", "missing-cert.pem does not exist"),
        ("host.tls_key_path", "needs its certificate"),
        ("dev.wasi_webgpu", "WebGPU"),
        ("build.command", "the command is empty"),
        ("new.command", "the command is empty"),
        ("wit.registries.0.url", "is not a URL"),
        ("wit.registries.1.namespace", "is not a WIT namespace"),
        ("wit.registries.1.repository", "does not contain `{name}`"),
        ("wit.sources.local:missing", "no-such-wit does not exist"),
    ];
    for (key, message) in expected {
        let found = report
            .stderr
            .lines()
            .any(|line| line.contains(&format!("`{key}`: ")) && line.contains(message));
        assert!(found, "no `{key}`: {message} in\n{}", report.stderr);
    }
    assert!(report.stderr.contains("16 problems"), "{}", report.stderr);
    assert!(
        report
            .stderr
            .contains(&format!("{}: `dev.address`", project_file.display())),
        "{}",
        report.stderr
    );
    assert!(
        report
            .stderr
            .contains("config/wash/config.yaml: `host.scheduler_nats_url`"),
        "{}",
        report.stderr
    );
    assert!(
        !report.stderr.contains("wasi:http"),
        "remote sources are skipped"
    );

    // --file validates another file in the project's place.
    let good = project.path().join("good.toml");
    std::fs::write(&good, "[dev]\naddress = \"localhost:8000\"\n").unwrap();
    std::fs::write(user_dir.join("config.yaml"), "").unwrap();
    let valid = wash_in(
        project.path(),
        home.path(),
        &["config", "validate", "--file", good.to_str().unwrap()],
    )
    .await;
    assert!(valid.success, "{}", valid.stderr);
}

/// Type errors, unknown keys and semantic problems of one file, all in one
/// run, each with its file and key.
#[tokio::test]
async fn validate_reports_type_errors_unknown_keys_and_checks_in_one_run() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join(".wash")).unwrap();
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        "version: 2\n\
         build:\n  command: make\n\
         dev:\n  address: 12345\n  adress: 127.0.0.1:1\n  data_nats_url: redis://127.0.0.1:6379\n\
         workload:\n  allowedHosts: api.example.com\n  enviroment: {}\n",
    )
    .unwrap();
    let report = wash_in(project.path(), home.path(), &["config", "validate"]).await;
    assert_clean_error(&report);
    let file = project
        .path()
        .canonicalize()
        .unwrap()
        .join(".wash/config.yaml");
    let expected = [
        (
            "dev.address",
            "invalid type: integer `12345`, expected a string",
        ),
        (
            "workload.allowedHosts",
            "invalid type: string \"api.example.com\"",
        ),
        ("version", "version `2` is not supported"),
        ("build.component_path", "`build.command` is set"),
        ("dev.data_nats_url", "expected nats://"),
    ];
    for (key, message) in expected {
        let line = format!("{}: `{key}`: ", file.display());
        let found = report
            .stderr
            .lines()
            .any(|l| l.contains(&line) && l.contains(message));
        assert!(found, "no `{line}...{message}` in\n{}", report.stderr);
    }
    assert!(report.stderr.contains("5 problems"), "{}", report.stderr);
    for (unknown, meant) in [
        ("dev.adress", "dev.address"),
        ("workload.enviroment", "workload.environment"),
    ] {
        let warning = format!("unknown key `{unknown}` in {}", file.display());
        let hint = format!("did you mean `{meant}`?");
        let found = report
            .stderr
            .lines()
            .any(|l| l.contains(&warning) && l.contains(&hint));
        assert!(found, "no `{warning}` with `{hint}` in\n{}", report.stderr);
    }
}

#[tokio::test]
async fn syntax_errors_show_line_and_column() {
    let cases = [
        (
            "config.yaml",
            "dev:\n  address: 127.0.0.1:8000\n  bad: [unclosed\n",
            ":4:",
        ),
        (
            "config.json",
            "{\n  \"dev\": {\n    \"address\": ,\n  }\n}\n",
            ":3:16",
        ),
        (
            "config.toml",
            "[dev]\naddress = \"127.0.0.1:8000\"\nnot toml\n",
            ":3:",
        ),
    ];
    for (name, text, position) in cases {
        let project = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(project.path().join(".wash")).unwrap();
        std::fs::write(project.path().join(".wash").join(name), text).unwrap();
        let report = wash_in(project.path(), home.path(), &["config", "validate"]).await;
        assert_clean_error(&report);
        let expected = format!("{name}{position}");
        assert!(
            report.stderr.contains(&expected),
            "{name}: want `{expected}` in {}",
            report.stderr
        );
        assert!(report.stderr.contains("syntax error"), "{}", report.stderr);
    }
}

#[tokio::test]
async fn a_bad_config_stops_other_commands_with_the_same_report() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join(".wash")).unwrap();
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        "wit:\n  skip_fetch: sometimes\n",
    )
    .unwrap();
    let build = wash_in(project.path(), home.path(), &["build"]).await;
    assert_clean_error(&build);
    assert!(
        build.stderr.contains("`wit.skip_fetch`: invalid type"),
        "{}",
        build.stderr
    );
}

fn fill(dir: &Path, bytes: usize) {
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("a.bin"), vec![1u8; bytes]).unwrap();
    std::fs::write(dir.join("nested/b.bin"), vec![2u8; bytes]).unwrap();
}

#[tokio::test]
async fn cleanup_lists_sizes_on_dry_run_and_removes_only_what_it_is_told() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let (cache, data) = (home.path().join("cache"), home.path().join("data"));
    fill(&cache, 1536);
    fill(&data, 512 * 1024);

    let told_nothing = wash_in(project.path(), home.path(), &["config", "cleanup"]).await;
    assert_clean_error(&told_nothing);
    assert!(
        told_nothing.stderr.contains("--cache, --data or --all"),
        "{}",
        told_nothing.stderr
    );

    let dry = wash_in(
        project.path(),
        home.path(),
        &["config", "cleanup", "--all", "--dry-run"],
    )
    .await;
    assert!(dry.success, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains(&format!("would remove {} (cache, 3 KiB)", cache.display())),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains(&format!("would remove {} (data, 1 MiB)", data.display())),
        "{}",
        dry.stdout
    );
    assert!(
        cache.join("nested/b.bin").is_file() && data.join("a.bin").is_file(),
        "dry run touched files"
    );

    let cleaned = wash_in(
        project.path(),
        home.path(),
        &["config", "cleanup", "--cache"],
    )
    .await;
    assert!(cleaned.success, "{}", cleaned.stderr);
    assert!(!cache.exists(), "cache kept");
    assert!(
        data.join("nested/b.bin").is_file(),
        "data removed with --cache"
    );

    let cleaned = wash_in(
        project.path(),
        home.path(),
        &["config", "cleanup", "--data", "-o", "json"],
    )
    .await;
    let report: Value = serde_json::from_str(&cleaned.stdout).unwrap();
    assert_eq!(report[0]["name"], "data");
    assert_eq!(report[0]["bytes"], 1024 * 1024);
    assert_eq!(report[0]["removed"], true);
    assert!(!data.exists());
}

#[tokio::test]
async fn completions_cover_every_shell_and_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let done = wash_in(dir.path(), dir.path(), &["completion", shell]).await;
        assert!(done.success, "{shell}: {}", done.stderr);
        for word in ["wash", "config", "validate", "workload", "user-config"] {
            assert!(
                done.stdout.contains(word),
                "{shell} completion lacks `{word}`"
            );
        }
    }
    let unknown = wash_in(dir.path(), dir.path(), &["completion", "tcsh"]).await;
    assert!(!unknown.success);
    assert!(
        unknown.stderr.contains("possible values"),
        "{}",
        unknown.stderr
    );
}
