//! `wash new`: built-in templates that build, git templates, and no
//! prompts where no one can answer.

mod common;

use std::path::Path;

use common::{assert_clean_error, repo, run};

/// Same dependency versions as the fixtures: nothing new to download, and
/// the build reuses what the shared target dir already holds.
fn pin_like_the_fixtures(project: &Path) {
    std::fs::copy(
        repo().join("components/Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_template_makes_a_project_that_builds() {
    let dir = tempfile::tempdir().unwrap();
    for template in [
        "http-hello-world",
        "http-kv-counter",
        "http-client",
        "http-postgres",
    ] {
        let name = format!("my-{template}");
        // `run` closes stdin: nothing could answer a prompt.
        let created = run(
            &["new", template, "--name", &name, "--non-interactive"],
            Some(dir.path()),
        )
        .await;
        assert!(created.success, "{template}: {}", created.stderr);
        assert!(
            created
                .stdout
                .contains(&format!("Created {name} from {template}")),
            "{}",
            created.stdout
        );
        let project = dir.path().join(&name);
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{manifest}"
        );
        assert!(
            !manifest.contains("{{"),
            "unrendered placeholder in {manifest}"
        );

        pin_like_the_fixtures(&project);
        let built = run(&["build"], Some(&project)).await;
        assert!(built.success, "{template} does not build: {}", built.stderr);
        let artifact = built.stdout.trim();
        let expected = format!("{}.wasm", name.replace('-', "_"));
        assert!(artifact.ends_with(&expected), "{artifact}");

        // And it is a component of the kind the template promises.
        let world = run(&["inspect", artifact], None).await;
        assert!(world.success, "{}", world.stderr);
        assert!(
            // P2 or P3 HTTP.
            world.stdout.contains("export wasi:http/incoming-handler")
                || world.stdout.contains("export wasi:http/handler@0.3"),
            "{}",
            world.stdout
        );
        if template == "http-kv-counter" {
            assert!(
                world.stdout.contains("import wasi:keyvalue/atomics"),
                "{}",
                world.stdout
            );
        }
        if template == "http-postgres" {
            // A P3 component dialing out itself; TLS only when asked for,
            // so it runs on hosts without wasi:tls.
            assert!(
                world.stdout.contains("export wasi:http/handler@0.3")
                    && world.stdout.contains("import wasi:sockets/types@0.3")
                    && world.stdout.contains("import wasi:config/store")
                    && !world.stdout.contains("wasi:tls"),
                "{}",
                world.stdout
            );
        }
        let valid = run(&["config", "validate"], Some(&project)).await;
        assert!(valid.success, "{template}: {}", valid.stderr);
    }
}

#[tokio::test]
async fn without_a_name_and_no_one_to_ask_it_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["new", "http-hello-world", "--non-interactive"][..],
        // stdin is closed: no terminal, so no prompt either.
        &["new", "http-hello-world"][..],
    ] {
        let refused = run(args, Some(dir.path())).await;
        assert_clean_error(&refused);
        assert!(
            refused
                .stderr
                .contains("a project name is required: pass --name NAME"),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );

    let unknown = run(&["new", "http-hello-wrld", "--name", "x"], Some(dir.path())).await;
    assert_clean_error(&unknown);
    assert!(
        unknown.stderr.contains("http-kv-counter"),
        "lists the templates: {}",
        unknown.stderr
    );

    let bad_name = run(
        &["new", "http-hello-world", "--name", "Bad Name"],
        Some(dir.path()),
    )
    .await;
    assert_clean_error(&bad_name);
    assert!(
        bad_name.stderr.contains("not a valid project name"),
        "{}",
        bad_name.stderr
    );

    assert!(
        run(
            &["new", "http-hello-world", "--name", "taken"],
            Some(dir.path())
        )
        .await
        .success
    );
    let taken = run(&["new", "http-client", "--name", "taken"], Some(dir.path())).await;
    assert_clean_error(&taken);
    assert!(taken.stderr.contains("already exists"), "{}", taken.stderr);
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test]
async fn git_templates_take_a_subfolder_a_ref_and_run_new_command() {
    let origin = tempfile::tempdir().unwrap();
    let repo_dir = origin.path();
    git(repo_dir, &["init", "--quiet", "--initial-branch", "main"]);
    std::fs::create_dir_all(repo_dir.join("templates/svc/.wash")).unwrap();
    std::fs::write(repo_dir.join("README.md"), "top level\n").unwrap();
    std::fs::write(repo_dir.join("templates/svc/file.txt"), "first\n").unwrap();
    std::fs::write(
        repo_dir.join("templates/svc/.wash/config.yaml"),
        "new:\n  command: echo \"made $WASH_PROJECT_NAME\" > made.txt\n",
    )
    .unwrap();
    git(repo_dir, &["add", "."]);
    git(repo_dir, &["commit", "--quiet", "-m", "first"]);
    let first = git(repo_dir, &["rev-parse", "HEAD"]);
    std::fs::write(repo_dir.join("templates/svc/file.txt"), "second\n").unwrap();
    git(repo_dir, &["commit", "--quiet", "-am", "second"]);
    let url = format!("file://{}", repo_dir.display());

    let dir = tempfile::tempdir().unwrap();
    let created = run(
        &[
            "new",
            &url,
            "--name",
            "svc",
            "--subfolder",
            "templates/svc",
            "--git-ref",
            &first,
            "--non-interactive",
        ],
        Some(dir.path()),
    )
    .await;
    assert!(created.success, "{}", created.stderr);
    let project = dir.path().join("svc");
    assert_eq!(
        std::fs::read_to_string(project.join("file.txt")).unwrap(),
        "first\n"
    );
    assert!(!project.join("README.md").exists(), "only the subfolder");
    assert!(!project.join(".git").exists());
    assert_eq!(
        std::fs::read_to_string(project.join("made.txt")).unwrap(),
        "made svc\n"
    );

    // Latest by default, the whole repository without --subfolder.
    let whole = run(&["new", &url, "--name", "whole"], Some(dir.path())).await;
    assert!(whole.success, "{}", whole.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("whole/templates/svc/file.txt")).unwrap(),
        "second\n"
    );

    let missing = run(
        &["new", &url, "--name", "x", "--subfolder", "nope"],
        Some(dir.path()),
    )
    .await;
    assert_clean_error(&missing);
    assert!(
        missing
            .stderr
            .contains("--subfolder `nope` is not a folder"),
        "{}",
        missing.stderr
    );
    let bad_ref = run(
        &["new", &url, "--name", "y", "--git-ref", "no-such-tag"],
        Some(dir.path()),
    )
    .await;
    assert_clean_error(&bad_ref);
    assert!(
        bad_ref.stderr.contains("--git-ref `no-such-tag`"),
        "{}",
        bad_ref.stderr
    );
    let unreachable = run(
        &["new", "file:///nonexistent/repo.git", "--name", "z"],
        Some(dir.path()),
    )
    .await;
    assert_clean_error(&unreachable);
    assert!(
        unreachable.stderr.contains("git clone"),
        "{}",
        unreachable.stderr
    );
}
