//! What a host receives for a Workload: ConfigMaps and Secrets read into
//! the start request in the reference's order of precedence, pull secrets
//! as credentials, and errors that name the object at fault.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::PostParams;
use runtime_operator::crd::Workload;
use runtime_operator::workload::start::Resolver;
use test_support::kube_api::FakeApiServer;

const NS: &str = "apps";

fn workload(yaml: &str) -> Workload {
    serde_norway::from_str(yaml).unwrap()
}

const SPEC: &str = r#"
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata: {name: hello, namespace: apps, annotations: {team: web}}
spec:
  components:
    - name: hello
      image: registry.example.com:5000/hello:1
      imagePullSecret: {name: pull}
      imagePullPolicy: IfNotPresent
      poolSize: 2
      localResources:
        environment:
          configFrom: [{name: base}]
          secretFrom: [{name: creds}]
          config: {LEVEL: debug}
        allowedHosts: [api.example.com]
  hostInterfaces:
    - namespace: wasi
      package: http
      interfaces: [incoming-handler]
      config: {host: hello.test}
  kubernetes:
    service: {name: hello}
"#;

async fn objects(api: &FakeApiServer, pull_type: &str) {
    let client = api.client();
    let mut base = ConfigMap::default();
    base.metadata.name = Some("base".into());
    base.data = Some(BTreeMap::from([
        ("LEVEL".into(), "info".into()),
        ("TOKEN".into(), "from-configmap".into()),
        ("REGION".into(), "eu".into()),
    ]));
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &base)
        .await
        .unwrap();
    let secrets = Api::<Secret>::namespaced(client, NS);
    let mut creds = Secret::default();
    creds.metadata.name = Some("creds".into());
    creds.data = Some(BTreeMap::from([(
        "TOKEN".into(),
        ByteString(b"from-secret".to_vec()),
    )]));
    secrets
        .create(&PostParams::default(), &creds)
        .await
        .unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cret");
    let docker = serde_json::json!({"auths": {"registry.example.com:5000": {"auth": auth}}});
    let mut pull = Secret::default();
    pull.metadata.name = Some("pull".into());
    pull.type_ = Some(pull_type.into());
    pull.data = Some(BTreeMap::from([(
        ".dockerconfigjson".into(),
        ByteString(serde_json::to_vec(&docker).unwrap()),
    )]));
    secrets.create(&PostParams::default(), &pull).await.unwrap();
}

#[tokio::test]
async fn config_secrets_and_pull_credentials_reach_the_start_request() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let api = FakeApiServer::start().await;
    objects(&api, "kubernetes.io/dockerconfigjson").await;
    let request = Resolver::new(api.client(), NS)
        .workload(&workload(SPEC))
        .await
        .unwrap();
    assert_eq!(
        (request.namespace.as_str(), request.name.as_str()),
        (NS, "hello")
    );
    assert_eq!(request.annotations["team"], "web");
    let world = request.wit_world.unwrap();
    let component = &world.components[0];
    let environment = &component.local_resources.as_ref().unwrap().environment;
    // config over secretFrom over configFrom.
    assert_eq!(environment["LEVEL"], "debug");
    assert_eq!(environment["TOKEN"], "from-secret");
    assert_eq!(environment["REGION"], "eu");
    let pull = component.image_pull_secret.as_ref().unwrap();
    assert_eq!(
        (pull.username.as_str(), pull.password.as_str()),
        ("robot", "s3cret")
    );
    assert_eq!(component.pool_size, 2);
    assert_eq!(
        component.image_pull_policy,
        runtime_proto::v2::ImagePullPolicy::IfNotPresent as i32
    );
    // Service traffic reaches it by alias.
    assert_eq!(
        world.host_interfaces[0].config["host-aliases"],
        "hello.apps,hello.apps.svc"
    );
}

#[tokio::test]
async fn unusable_references_are_named() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let api = FakeApiServer::start().await;
    let resolver = Resolver::new(api.client(), NS);
    let missing = resolver.workload(&workload(SPEC)).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "Secret `pull` not found in namespace `apps`"
    );

    objects(&api, "Opaque").await;
    let wrong_type = resolver.workload(&workload(SPEC)).await.unwrap_err();
    assert_eq!(
        wrong_type.to_string(),
        "image pull secret `pull` has type `Opaque`; it must be `kubernetes.io/dockerconfigjson`"
    );
}
