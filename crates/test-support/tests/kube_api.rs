//! The fake API server behaves as the kube client and watchers expect.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;
use test_support::kube_api::FakeApiServer;

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some(name.into());
    map.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    map.data = Some(BTreeMap::from([("k".to_string(), "v".to_string())]));
    map
}

fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[tokio::test]
async fn crud_with_conflicts_selectors_and_patches() {
    install_crypto();
    let server = FakeApiServer::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = maps
        .create(&PostParams::default(), &config_map("a", &[("app", "web")]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.namespace().as_deref(), Some("default"));
    maps.create(&PostParams::default(), &config_map("b", &[("app", "db")]))
        .await
        .unwrap();
    let taken = maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(taken, kube::Error::Api(ref e) if e.code == 409),
        "{taken}"
    );

    let web = maps
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 1);
    assert_eq!(web.items[0].name_any(), "a");

    // A replace from a stale read is a conflict.
    let mut stale = created.clone();
    maps.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "patched"}})),
    )
    .await
    .unwrap();
    stale.data = Some(BTreeMap::from([("k".to_string(), "lost".to_string())]));
    let conflict = maps
        .replace("a", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, kube::Error::Api(ref e) if e.code == 409),
        "{conflict}"
    );
    assert_eq!(maps.get("a").await.unwrap().data.unwrap()["k"], "patched");

    // Server-side apply creates, then merges.
    let apply = PatchParams::apply("test").force();
    maps.patch(
        "c",
        &apply,
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}})),
    )
    .await
    .unwrap();
    assert_eq!(maps.get("c").await.unwrap().data.unwrap()["x"], "1");
    let missing = maps.get("nope").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(ref e) if e.code == 404),
        "{missing}"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_and_owners_take_their_objects_along() {
    install_crypto();
    let server = FakeApiServer::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut held = config_map("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    let owner = maps.create(&PostParams::default(), &held).await.unwrap();
    let mut owned = config_map("owned", &[]);
    owned.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "held".into(),
            uid: owner.metadata.uid.clone().unwrap(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    maps.create(&PostParams::default(), &owned).await.unwrap();

    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = maps.get("held").await.unwrap();
    assert!(
        marked.metadata.deletion_timestamp.is_some(),
        "held by its finalizer"
    );
    assert_eq!(server.object_count(), 2);

    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        maps.get_opt("held").await.unwrap().is_none(),
        "gone with its finalizer"
    );
    assert!(
        maps.get_opt("owned").await.unwrap().is_none(),
        "collected with its owner"
    );
    assert_eq!(server.object_count(), 0);
}

#[tokio::test]
async fn a_watcher_sees_what_happens() {
    install_crypto();
    let server = FakeApiServer::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    maps.create(&PostParams::default(), &config_map("before", &[]))
        .await
        .unwrap();
    let mut events = watcher(maps.clone(), watcher::Config::default()).boxed();
    // The initial list.
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        match event.unwrap() {
            watcher::Event::InitApply(map) => seen.push(map.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["before"]);
    // Then changes as they come.
    maps.create(&PostParams::default(), &config_map("after", &[]))
        .await
        .unwrap();
    maps.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    let mut applied = None;
    let mut deleted = None;
    while applied.is_none() || deleted.is_none() {
        match events.next().await.unwrap().unwrap() {
            watcher::Event::Apply(map) => applied = Some(map.name_any()),
            watcher::Event::Delete(map) => deleted = Some(map.name_any()),
            _ => {}
        }
    }
    assert_eq!(applied.as_deref(), Some("after"));
    assert_eq!(deleted.as_deref(), Some("before"));
}

#[tokio::test]
async fn status_goes_through_its_subresource_and_spec_changes_bump_the_generation() {
    install_crypto();
    let server = FakeApiServer::start().await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(server.client(), "default", &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1},
        "status": {"phase": "ignored"}
    }))
    .unwrap();
    let created = widgets
        .create(&PostParams::default(), &widget)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is not set on create"
    );

    let params = PatchParams::default();
    widgets
        .patch_status(
            "w",
            &params,
            &Patch::Merge(json!({"status": {"phase": "Ready"}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    let after_status = widgets.get("w").await.unwrap();
    assert_eq!(after_status.data["status"]["phase"], "Ready");
    assert_eq!(
        after_status.data["spec"]["size"], 1,
        "/status changes status only"
    );
    assert_eq!(after_status.metadata.generation, Some(1));

    widgets
        .patch(
            "w",
            &params,
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"phase": "Gone"}})),
        )
        .await
        .unwrap();
    let after_spec = widgets.get("w").await.unwrap();
    assert_eq!(after_spec.data["spec"]["size"], 2);
    assert_eq!(
        after_spec.data["status"]["phase"], "Ready",
        "the main resource leaves status alone"
    );
    assert_eq!(after_spec.metadata.generation, Some(2));
}

#[tokio::test]
async fn json_patches_apply_whole_or_not_at_all() {
    install_crypto();
    let server = FakeApiServer::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    maps.create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "v"},
        // A member that is not there tests as null.
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/keep"]}
    ]))
    .unwrap();
    let patched = maps
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(add))
        .await
        .unwrap();
    assert_eq!(patched.finalizers(), ["example.com/keep"]);

    // A failed test leaves the object as it was.
    let stale: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "other"},
        {"op": "remove", "path": "/metadata/finalizers"}
    ]))
    .unwrap();
    let refused = maps
        .patch("a", &PatchParams::default(), &Patch::Json::<()>(stale))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, kube::Error::Api(ref e) if e.code == 422),
        "{refused}"
    );
    assert_eq!(
        maps.get("a").await.unwrap().finalizers(),
        ["example.com/keep"]
    );
}

#[tokio::test]
async fn an_object_created_after_its_owner_went_is_collected() {
    install_crypto();
    let server = FakeApiServer::start().await;
    let maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .unwrap();
    maps.delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    let mut late = config_map("late", &[]);
    late.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.uid().unwrap(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    maps.create(&PostParams::default(), &late).await.unwrap();
    assert!(maps.get_opt("late").await.unwrap().is_none());
}
