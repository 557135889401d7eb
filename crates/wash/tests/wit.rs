//! WIT packages over OCI against a real registry (Debian's docker-registry
//! on loopback): `wash wit build | publish | fetch`, provenance, immutable
//! versions, the lock file, and `wash build` fetching what a project lacks.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::servers::{Registry, free_port};
use common::{Finished, Running, assert_clean_error, finish, repo, run, url_in, wash};
use serde_json::Value;

const MESSAGING: &str = "wit/deps/wasmcloud-messaging-0.2.0";
const SECRETS: &str = "wit/deps/wasmcloud-secrets-0.1.0-draft";

fn json(finished: &Finished) -> Value {
    assert!(finished.success, "{}", finished.stderr);
    serde_json::from_str(finished.stdout.trim()).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", finished.stdout);
    })
}

/// Runs `wash` in `dir` with extra arguments.
async fn wash_in(dir: &Path, args: &[&str]) -> Finished {
    run(args, Some(dir)).await
}

/// `wash wit publish <package> --registry <at>` and `extra` flags.
async fn publish(dir: &Path, package: &str, at: &str, extra: &[&str]) -> Finished {
    let mut args = vec!["wit", "publish", package, "--registry", at];
    args.extend(extra);
    wash_in(dir, &args).await
}

/// Copies a package directory of the repository's `wit/deps`.
fn copy_package(from: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(repo().join(from)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The manifest the registry holds for `repository:tag`.
fn manifest(registry: &Registry, repository: &str, tag: &str) -> Value {
    let output = std::process::Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
            &format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                registry.address()
            ),
        ])
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "no manifest for {repository}:{tag}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_package_in_wit_builds_and_an_error_names_its_place() {
    let out = tempfile::tempdir().unwrap();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("wit/deps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.push(repo().join("wit"));
    for dir in &dirs {
        let built = json(
            &wash_in(
                out.path(),
                &["wit", "build", dir.to_str().unwrap(), "-o", "json"],
            )
            .await,
        );
        let file = out.path().join(built["file"].as_str().unwrap());
        let bytes = std::fs::read(&file).unwrap();
        assert!(bytes.starts_with(b"\0asm"), "{}", file.display());
        let package = built["package"].as_str().unwrap();
        let expected = package.replacen(':', "_", 1) + ".wasm";
        assert!(
            file.ends_with(&expected),
            "{} for {package}",
            file.display()
        );
        assert_eq!(
            built["provenance"]["version"],
            package.split('@').nth(1).unwrap()
        );
        // The checkout's commit is the revision.
        assert_eq!(built["provenance"]["revision"].as_str().unwrap().len(), 40);
    }

    // A planted error: the file, its line and column are named.
    let broken = out.path().join("broken");
    copy_package(MESSAGING, &broken);
    let file = broken.join("package.wit");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines = text.lines().count();
    std::fs::write(
        &file,
        format!("{text}\ninterface oops {{\n  f: func() -> no-such-type;\n}}\n"),
    )
    .unwrap();
    let failed = wash_in(out.path(), &["wit", "build", broken.to_str().unwrap()]).await;
    assert_clean_error(&failed);
    let place = format!("package.wit:{}:", lines + 3);
    assert!(
        failed.stderr.contains(&place),
        "{place} not in {}",
        failed.stderr
    );
    assert!(failed.stderr.contains("no-such-type"), "{}", failed.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_packages_round_trip_and_stable_versions_are_immutable() {
    let registry = Registry::start();
    let at = format!("http://{}", registry.address());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let messaging = repo().join(MESSAGING);
    let messaging = messaging.to_str().unwrap();
    let provenance = [
        "--license",
        "Apache-2.0",
        "--source",
        "https://example.com/wash",
        "--author",
        "wash team",
    ];
    let mut build = vec!["wit", "build", messaging, "-o", "json"];
    build.extend(provenance);
    let built = json(&wash_in(d, &build).await);
    let file = built["file"].as_str().unwrap().to_string();

    let published = json(
        &wash_in(
            d,
            &["wit", "publish", &file, "--registry", &at, "-o", "json"],
        )
        .await,
    );
    let reference = format!(
        "{}/wasmcloud/interfaces/messaging:0.2.0",
        registry.address()
    );
    assert_eq!(published["reference"], reference);
    assert_eq!(published["outcome"], "published");
    assert_eq!(published["digest"], built["digest"]);

    // The layout wkg reads: wasm config, one application/wasm layer,
    // annotations from the metadata.
    let stored = manifest(&registry, "wasmcloud/interfaces/messaging", "0.2.0");
    assert_eq!(
        stored["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(stored["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(stored["layers"][0]["digest"], built["digest"]);
    let annotations = &stored["annotations"];
    assert_eq!(annotations["org.opencontainers.image.version"], "0.2.0");
    assert_eq!(
        annotations["org.opencontainers.image.licenses"],
        "Apache-2.0"
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://example.com/wash"
    );

    // Fetched back: the same bytes, the same provenance.
    let back = d.join("back.wasm");
    let pulled = wash_in(
        d,
        &[
            "oci",
            "pull",
            &reference,
            back.to_str().unwrap(),
            "--insecure",
        ],
    )
    .await;
    assert!(pulled.success, "{}", pulled.stderr);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(d.join(&file)).unwrap()
    );
    let ours = json(&wash_in(d, &["inspect", &file, "-o", "json"]).await);
    let theirs = json(&wash_in(d, &["inspect", "back.wasm", "-o", "json"]).await);
    assert_eq!(ours["provenance"], theirs["provenance"]);
    assert_eq!(theirs["kind"], "wit-package");
    assert_eq!(theirs["package"], "wasmcloud:messaging@0.2.0");
    assert_eq!(theirs["provenance"]["licenses"], "Apache-2.0");
    let text = wash_in(d, &["inspect", "back.wasm"]).await;
    assert!(
        text.stdout.contains("// licenses: Apache-2.0"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("package wasmcloud:messaging@0.2.0;"),
        "{}",
        text.stdout
    );

    // Again: a no-op that says so.
    let again = wash_in(d, &["wit", "publish", &file, "--registry", &at]).await;
    assert!(again.success, "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing to publish"),
        "{}",
        again.stdout
    );

    // Other content under the same stable version: refused, both digests
    // named, the registry unchanged. A directory is built on the way.
    let refused = publish(d, messaging, &at, &["--revision", "other"]).await;
    assert_clean_error(&refused);
    assert!(refused.stderr.contains("immutable"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains(built["digest"].as_str().unwrap()),
        "{}",
        refused.stderr
    );
    let forced = publish(d, messaging, &at, &["--revision", "other", "--force"]).await;
    assert_clean_error(&forced);
    let stored = manifest(&registry, "wasmcloud/interfaces/messaging", "0.2.0");
    assert_eq!(stored["layers"][0]["digest"], built["digest"]);

    // A pre-release may be replaced, with --force only.
    let secrets = repo().join(SECRETS);
    let secrets = secrets.to_str().unwrap();
    let first = json(
        &wash_in(
            d,
            &["wit", "publish", secrets, "--registry", &at, "-o", "json"],
        )
        .await,
    );
    assert_eq!(first["outcome"], "published");
    let changed = [
        "wit",
        "publish",
        secrets,
        "--registry",
        &at,
        "--revision",
        "next",
    ];
    let refused = wash_in(d, &changed).await;
    assert_clean_error(&refused);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    let mut force = changed.to_vec();
    force.extend(["--force", "-o", "json"]);
    let replaced = json(&wash_in(d, &force).await);
    assert_eq!(replaced["outcome"], "replaced");
    assert_ne!(replaced["digest"], first["digest"]);
    let stored = manifest(&registry, "wasmcloud/interfaces/secrets", "0.1.0-draft");
    assert_eq!(stored["layers"][0]["digest"], replaced["digest"]);
}

/// A project whose WIT imports `import`, with `wit.registries` pointing
/// the `wasmcloud` namespace at `registry_url`.
fn project_importing(dir: &Path, import: &str, registry_url: &str) -> PathBuf {
    let project = dir.join("app");
    std::fs::create_dir_all(project.join("wit")).unwrap();
    std::fs::create_dir_all(project.join(".wash")).unwrap();
    std::fs::write(
        project.join("wit/world.wit"),
        format!("package local:app;\n\nworld app {{\n  import {import};\n}}\n"),
    )
    .unwrap();
    std::fs::write(
        project.join(".wash/config.yaml"),
        format!(
            "version: 1\nwit:\n  registries:\n    - namespace: wasmcloud\n      url: {registry_url}\n"
        ),
    )
    .unwrap();
    project
}

/// One line, naming `reference` and the advice.
fn assert_one_line_error(finished: &Finished, reference: &str, advice: &str) {
    assert_clean_error(finished);
    let errors: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", finished.stderr);
    assert!(
        errors[0].contains(reference),
        "{reference} not in {}",
        errors[0]
    );
    assert!(
        errors[0].contains(advice),
        "`{advice}` not in {}",
        errors[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_failures_are_one_line_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();

    // Nothing listens.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let project = project_importing(
        &dir.path().join("a"),
        "wasmcloud:messaging/consumer@0.2.0",
        &format!("http://{nowhere}"),
    );
    let failed = wash_in(&project, &["wit", "fetch"]).await;
    assert_one_line_error(
        &failed,
        &format!("{nowhere}/wasmcloud/interfaces/messaging:0.2.0"),
        "running and reachable",
    );

    // A tag that does not exist.
    let registry = Registry::start();
    let at = format!("http://{}", registry.address());
    let project = project_importing(
        &dir.path().join("b"),
        "wasmcloud:messaging/consumer@0.9.0",
        &at,
    );
    let failed = wash_in(&project, &["wit", "fetch"]).await;
    assert_one_line_error(
        &failed,
        &format!(
            "{}/wasmcloud/interfaces/messaging:0.9.0",
            registry.address()
        ),
        "wash wit publish",
    );

    // A component where a package should be.
    let reference = format!(
        "{}/wasmcloud/interfaces/messaging:0.2.0",
        registry.address()
    );
    let component = common::fixture("http_hello_world");
    let pushed = wash_in(
        dir.path(),
        &[
            "oci",
            "push",
            &reference,
            component.to_str().unwrap(),
            "--insecure",
        ],
    )
    .await;
    assert!(pushed.success, "{}", pushed.stderr);
    let project = project_importing(
        &dir.path().join("c"),
        "wasmcloud:messaging/consumer@0.2.0",
        &at,
    );
    let failed = wash_in(&project, &["wit", "fetch"]).await;
    assert_one_line_error(&failed, &reference, "not a WIT package");
    assert!(
        !project
            .join("wit/deps")
            .join("wasmcloud-messaging-0.2.0")
            .exists()
    );

    // A registry that wants a login.
    let private = Registry::start_with_htpasswd(
        "washer:$2b$05$.BSBW.L6g4twcB7ULSe1S.5PCdzCmAcsq1sYnZWRcfbIjqrhJYQxK\n",
    );
    let at = format!("http://{}", private.address());
    let project = project_importing(
        &dir.path().join("d"),
        "wasmcloud:messaging/consumer@0.2.0",
        &at,
    );
    let no_login = tempfile::tempdir().unwrap();
    let mut command = wash();
    command
        .args(["wit", "fetch"])
        .current_dir(&project)
        .env("DOCKER_CONFIG", no_login.path());
    let failed = finish(command).await;
    assert_one_line_error(
        &failed,
        &format!("{}/wasmcloud/interfaces/messaging:0.2.0", private.address()),
        "docker login",
    );
    let messaging = repo().join(MESSAGING);
    let refused = publish(dir.path(), messaging.to_str().unwrap(), &at, &[]).await;
    assert_one_line_error(&refused, private.address().as_str(), "docker login");
}

/// POSTs `body` to `url`; status and body.
async fn post(url: &str, body: &str) -> (u16, String) {
    common::call("POST", url, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_project_fetches_its_wit_builds_runs_and_rebuilds_offline() {
    let mut registry = Registry::start();
    let at = format!("http://{}", registry.address());
    let dir = tempfile::tempdir().unwrap();
    let messaging = repo().join(MESSAGING);
    let published = publish(
        dir.path(),
        messaging.to_str().unwrap(),
        &at,
        &["-o", "json"],
    )
    .await;
    let digest = json(&published)["digest"].as_str().unwrap().to_string();

    let created = wash_in(
        dir.path(),
        &[
            "new",
            "http-messaging",
            "--name",
            "publisher",
            "--non-interactive",
        ],
    )
    .await;
    assert!(created.success, "{}", created.stderr);
    let project = dir.path().join("publisher");
    assert!(
        !project.join("wit/deps").exists(),
        "the template vendors nothing"
    );
    std::fs::copy(
        repo().join("components/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    let config = project.join(".wash/config.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "wit:\n  registries:\n    - namespace: wasmcloud\n      url: {at}\n"
    ));
    std::fs::write(&config, text).unwrap();

    // `wash build` fetches what wit/deps lacks, pins it, builds.
    let built = wash_in(&project, &["build"]).await;
    assert!(built.success, "{}", built.stderr);
    assert!(
        built.stderr.contains("Fetched wasmcloud:messaging@0.2.0"),
        "{}",
        built.stderr
    );
    let package = project.join("wit/deps/wasmcloud-messaging-0.2.0/package.wit");
    assert!(
        std::fs::read_to_string(&package)
            .unwrap()
            .contains("package wasmcloud:messaging@0.2.0;")
    );
    let lock = std::fs::read_to_string(project.join("wkg.lock")).unwrap();
    assert!(lock.contains("name = \"wasmcloud:messaging\""), "{lock}");
    assert!(lock.contains("requirement = \"=0.2.0\""), "{lock}");
    assert!(lock.contains(&digest), "{lock}");
    let artifact = built.stdout.trim().to_string();
    let world = json(&wash_in(&project, &["inspect", &artifact, "-o", "json"]).await);
    assert_eq!(world["kind"], "component");
    // A component's provenance: the tools that made it.
    assert!(
        world["provenance"]["processed_by"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t[0] == "wit-component")),
        "{world}"
    );
    assert!(
        world["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "wasmcloud:messaging/consumer@0.2.0"),
        "{world}"
    );

    // It runs under `wash dev` against the in-memory broker.
    let mut command = wash();
    command
        .args(["dev", "--address", "127.0.0.1:0", "-C"])
        .arg(&project);
    let dev = Running::spawn(command);
    let url = url_in(
        &dev.wait_for("Serving publisher at", Duration::from_secs(300))
            .await,
    );
    let (status, body) = post(&format!("{url}orders.created"), "{\"id\":7}").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "published 8 bytes on orders.created\n")
    );
    assert!(dev.terminate().await);

    // The registry goes away: the lock and wit/deps are enough, and so is
    // the cache of locked digests when wit/deps is lost.
    registry.stop();
    let again = wash_in(&project, &["build"]).await;
    assert!(again.success, "{}", again.stderr);
    assert!(!again.stderr.contains("wit/deps lacks"), "{}", again.stderr);
    std::fs::remove_dir_all(project.join("wit/deps")).unwrap();
    let offline = wash_in(&project, &["build"]).await;
    assert!(offline.success, "{}", offline.stderr);
    assert!(package.is_file());
    assert_eq!(
        std::fs::read_to_string(project.join("wkg.lock")).unwrap(),
        lock
    );

    // Moving the lock needs the registry: --update says it cannot reach it,
    // and leaves what is there in place.
    let update = wash_in(&project, &["wit", "fetch", "--update"]).await;
    assert_clean_error(&update);
    assert!(
        update.stderr.contains("running and reachable"),
        "{}",
        update.stderr
    );
    assert!(package.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_pin_packages_to_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    // No registry at all: a source wins over the registry of the namespace.
    let project = project_importing(
        dir.path(),
        "wasmcloud:messaging/consumer@0.2.0",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    copy_package(MESSAGING, &dir.path().join("vendored/messaging"));
    let config = project.join(".wash/config.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("  sources:\n    wasmcloud:messaging: ../vendored/messaging\n");
    std::fs::write(&config, text).unwrap();
    let fetched = json(&wash_in(&project, &["wit", "fetch", "-o", "json"]).await);
    assert_eq!(
        fetched["fetched"][0]["package"],
        "wasmcloud:messaging@0.2.0"
    );
    assert_eq!(fetched["fetched"][0]["origin"], "source");
    assert!(
        project
            .join("wit/deps/wasmcloud-messaging-0.2.0/package.wit")
            .is_file()
    );
    // Nothing from a registry, so nothing to lock.
    assert!(!project.join("wkg.lock").exists());
    let again = wash_in(&project, &["wit", "fetch"]).await;
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);

    // A source that holds another package is named.
    std::fs::remove_dir_all(project.join("wit/deps")).unwrap();
    // (Both packages are one `package.wit`: this overwrites it.)
    copy_package(SECRETS, &dir.path().join("vendored/messaging"));
    let wrong = wash_in(&project, &["wit", "fetch"]).await;
    assert_clean_error(&wrong);
    assert!(
        wrong.stderr.contains("wasmcloud:secrets"),
        "{}",
        wrong.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_script_publishes_every_package_once() {
    let registry = Registry::start();
    let script = |registry: &Registry| {
        std::process::Command::new("bash")
            .arg(repo().join("scripts/publish-wit.sh"))
            .arg(format!("http://{}", registry.address()))
            .env("WASH", env!("CARGO_BIN_EXE_wash"))
            .env("WIT_SOURCE", "https://example.com/wash")
            .output()
            .expect("bash runs")
    };
    let packages = std::fs::read_dir(repo().join("wit/deps")).unwrap().count() + 1;
    let first = script(&registry);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(stdout.matches("Published ").count(), packages, "{stdout}");
    let stored = manifest(&registry, "wasmcloud/interfaces/messaging", "0.2.0");
    assert_eq!(
        stored["annotations"]["org.opencontainers.image.source"],
        "https://example.com/wash"
    );
    manifest(&registry, "wash/interfaces/host", "0.1.0");

    // Run again, as a release job would on the next push: nothing changes.
    let second = script(&registry);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{stdout}");
    assert_eq!(
        stdout.matches("nothing to publish").count(),
        packages,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_package_whose_content_changed_is_refused_until_updated() {
    let registry = Registry::start();
    let at = format!("http://{}", registry.address());
    let dir = tempfile::tempdir().unwrap();
    let secrets = repo().join(SECRETS);
    let secrets = secrets.to_str().unwrap();
    let publish = |revision: &'static str| {
        let at = at.clone();
        let dir = dir.path().to_path_buf();
        async move {
            let args = [
                "wit",
                "publish",
                secrets,
                "--registry",
                &at,
                "--revision",
                revision,
                "--force",
                "-o",
                "json",
            ];
            json(&wash_in(&dir, &args).await)["digest"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let first = publish("one").await;
    let project = project_importing(dir.path(), "wasmcloud:secrets/store@0.1.0-draft", &at);
    // Each fetch with its own cache: only the registry can answer.
    let fetch = |args: &'static [&'static str]| {
        let project = project.clone();
        async move {
            let cache = tempfile::tempdir().unwrap();
            let mut command = wash();
            command
                .args(args)
                .current_dir(&project)
                .env("WASH_CACHE_DIR", cache.path());
            finish(command).await
        }
    };
    assert!(fetch(&["wit", "fetch"]).await.success);
    let lock = || std::fs::read_to_string(project.join("wkg.lock")).unwrap();
    assert!(lock().contains(&first), "{}", lock());

    // The pre-release is replaced in the registry; the lock still says the
    // old digest, so a fetch that needs it refuses the new content.
    let second = publish("two").await;
    assert_ne!(first, second);
    std::fs::remove_dir_all(project.join("wit/deps")).unwrap();
    let refused = fetch(&["wit", "fetch"]).await;
    assert_clean_error(&refused);
    assert!(
        refused.stderr.contains("changed since wkg.lock"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(&first) && refused.stderr.contains(&second));
    assert!(refused.stderr.contains("--update"), "{}", refused.stderr);
    assert!(lock().contains(&first));

    // --update takes the new content and moves the lock.
    let updated = fetch(&["wit", "fetch", "--update"]).await;
    assert!(updated.success, "{}", updated.stderr);
    assert!(lock().contains(&second), "{}", lock());
    assert!(!lock().contains(&first), "{}", lock());
}
