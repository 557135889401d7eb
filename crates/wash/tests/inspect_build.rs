//! `wash inspect` and `wash build`.

mod common;

use common::{assert_clean_error, fixture, hello_project, run};

#[tokio::test]
async fn inspect_prints_the_world_as_wit() {
    let file = fixture("http_hello_world");
    let finished = run(&["inspect", file.to_str().unwrap()], None).await;
    assert!(finished.success, "{}", finished.stderr);
    assert!(
        finished.stdout.contains("world root {"),
        "{}",
        finished.stdout
    );
    assert!(
        finished
            .stdout
            .contains("export wasi:http/incoming-handler@0.2")
    );
    assert!(finished.stdout.contains("import wasi:http/types@0.2"));
}

#[tokio::test]
async fn inspect_json_lists_imports_and_exports() {
    let file = fixture("http_hello_p3");
    let finished = run(&["inspect", "-o", "json", file.to_str().unwrap()], None).await;
    assert!(finished.success, "{}", finished.stderr);
    let json: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    let exports: Vec<&str> = json["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(exports, ["wasi:http/handler@0.3.2"]);
    assert!(
        json["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "wasi:http/types@0.3.2")
    );
}

#[tokio::test]
async fn inspect_refuses_non_components_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "hello").unwrap();
    let finished = run(&["inspect", junk.to_str().unwrap()], None).await;
    assert_clean_error(&finished);
    assert!(
        finished
            .stderr
            .contains("notes.txt: not a WebAssembly binary"),
        "{}",
        finished.stderr
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let finished = run(&["inspect", core.to_str().unwrap()], None).await;
    assert_clean_error(&finished);
    assert!(
        finished.stderr.contains("core WebAssembly module"),
        "{}",
        finished.stderr
    );

    let finished = run(&["inspect", "/nonexistent/x.wasm"], None).await;
    assert_clean_error(&finished);
    assert!(
        finished.stderr.contains("/nonexistent/x.wasm"),
        "{}",
        finished.stderr
    );
}

#[tokio::test]
async fn build_prints_the_artifact_path() {
    let project = hello_project();
    let finished = run(&["build", "-o", "json"], Some(project.path())).await;
    assert!(finished.success, "{}", finished.stderr);
    let json: serde_json::Value = serde_json::from_str(&finished.stdout).unwrap();
    let artifact = std::path::PathBuf::from(json["artifact"].as_str().unwrap());
    assert!(
        artifact.ends_with("wasm32-wasip2/release/http_hello_world.wasm"),
        "{artifact:?}"
    );
    let bytes = std::fs::read(&artifact).unwrap();
    assert!(bytes.starts_with(b"\0asm"));
}

#[tokio::test]
async fn build_without_a_recipe_says_what_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let finished = run(&["build"], Some(empty.path())).await;
    assert_clean_error(&finished);
    assert!(
        finished
            .stderr
            .contains("no Cargo.toml and no `build.command`"),
        "{}",
        finished.stderr
    );
}

#[tokio::test]
async fn build_uses_the_configured_command() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join(".wash")).unwrap();
    let source = fixture("http_hello_world");
    std::fs::write(
        project.path().join(".wash/config.yaml"),
        format!(
            "build:\n  command: cp {} out.wasm\n  component_path: out.wasm\n",
            source.display()
        ),
    )
    .unwrap();
    let finished = run(&["build"], Some(project.path())).await;
    assert!(finished.success, "{}", finished.stderr);
    assert!(
        finished.stdout.trim().ends_with("out.wasm"),
        "{}",
        finished.stdout
    );
}
