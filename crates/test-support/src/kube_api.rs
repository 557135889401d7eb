//! A Kubernetes API server for tests, over real HTTP on loopback, that the
//! `kube` client and `kube-runtime`'s watchers talk to unchanged. No real
//! kube-apiserver can be installed on these machines; everything else in
//! the operator's tests is real.
//!
//! It stores any resource under `/api/v1/...` and `/apis/<group>/<version>/...`
//! as JSON and serves: get, list (label selectors, `metadata.name` field
//! selector), watch (from a resource version, with `timeoutSeconds`),
//! create (409 on a taken name), replace (409 on a stale `resourceVersion`),
//! merge patch, JSON patch (RFC 6902, `test` included), server-side apply
//! as a single field manager sees it (the applied configuration replaces
//! what was applied before; finalizers and owner references others added
//! stay; no managedFields), the `status` subresource (status only; the main
//! resource leaves status alone), the `scale` subresource of custom
//! resources whose CustomResourceDefinition was created here (get, replace,
//! merge patch), `generation` (bumped when `spec` changes), finalizers with
//! `deletionTimestamp`, and garbage collection by `ownerReferences`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::sync::broadcast;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Where an object lives: its collection (`api/v1/configmaps`,
/// `apis/runtime.wasmcloud.dev/v1alpha1/workloads`), namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    collection: String,
    namespace: String,
    name: String,
}

/// A change, as a watch reports it.
#[derive(Debug, Clone)]
struct Event {
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Value,
    version: u64,
}

#[derive(Default)]
struct Store {
    version: u64,
    objects: BTreeMap<Key, Value>,
    /// Every change, for watches that start from an older version.
    history: Vec<Event>,
}

struct State {
    store: Mutex<Store>,
    events: broadcast::Sender<Event>,
    requests: Mutex<std::collections::BTreeSet<ApiRequest>>,
}

/// A request as RBAC sees it: who asked (`User-Agent`), the verb, the API
/// group (empty for core), the resource (`workloads/status` for a
/// subresource) and the namespace (empty when cluster-wide).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiRequest {
    /// The client's `User-Agent`.
    pub agent: String,
    /// get, list, watch, create, update, patch or delete.
    pub verb: String,
    /// The API group.
    pub group: String,
    /// The resource, with its subresource.
    pub resource: String,
    /// The namespace.
    pub namespace: String,
}

/// The fake API server. Dropping it stops it.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApiServer {
    /// Starts it on a free loopback port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let (events, _) = broadcast::channel(4096);
        let state = Arc::new(State {
            store: Mutex::default(),
            events,
            requests: Mutex::default(),
        });
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(&state, request).await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Self { addr, state, task }
    }

    /// Its URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for it into `dir`, for processes that find the
    /// API the way `kubectl` does (`KUBECONFIG`); returns its path.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\nusers:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// A client for it, with `default` as the default namespace.
    pub fn client(&self) -> kube::Client {
        let url = self.url().parse().expect("a valid URL");
        kube::Client::try_from(kube::Config::new(url)).expect("a kube client")
    }

    /// Every distinct request made by a client whose `User-Agent` starts
    /// with `agent`, for checking RBAC rules against.
    pub fn requests(&self, agent: &str) -> Vec<ApiRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.agent.starts_with(agent))
            .cloned()
            .collect()
    }

    /// How many objects it holds (for tests of garbage collection).
    pub fn object_count(&self) -> usize {
        lock(&self.state).objects.len()
    }
}

fn lock(state: &State) -> std::sync::MutexGuard<'_, Store> {
    state.store.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a request path names.
struct Target {
    collection: String,
    /// Empty for a request across all namespaces.
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => (format!("api/{version}"), rest),
        ["apis", group, version, rest @ ..] => (format!("apis/{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (namespace.to_string(), rest),
        rest => (String::new(), rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(Target {
        collection: format!("{prefix}/{plural}"),
        namespace,
        name,
        subresource,
    })
}

fn query(request: &Request<Incoming>) -> BTreeMap<String, String> {
    request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn failure(status: StatusCode, reason: &str, message: String) -> Response<Body> {
    reply(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "code": status.as_u16()
        }),
    )
}

/// Whether an object's labels satisfy `a=b,c!=d,e` style selectors.
fn labels_match(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            labels[key].as_str() != Some(value)
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            labels[key].as_str() == Some(value)
        } else {
            !labels[term].is_null()
        }
    })
}

fn fields_match(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some(("metadata.name", name)) => object["metadata"]["name"].as_str() == Some(name),
        Some(("metadata.namespace", ns)) => object["metadata"]["namespace"].as_str() == Some(ns),
        _ => true,
    })
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (key, value) in fields {
                if value.is_null() {
                    if let Some(map) = target.as_object_mut() {
                        map.remove(key);
                    }
                } else {
                    merge(&mut target[key.as_str()], value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    /// Records a change and tells the watchers.
    fn emit(&mut self, state: &State, key: &Key, kind: &'static str, object: Value) {
        let event = Event {
            collection: key.collection.clone(),
            namespace: key.namespace.clone(),
            kind,
            object,
            version: self.version,
        };
        self.history.push(event.clone());
        let _ = state.events.send(event);
    }

    fn stamp(&mut self, object: &mut Value) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
    }

    /// Stores `object` under `key` (a write of an existing object).
    fn write(&mut self, state: &State, key: Key, mut object: Value) -> Value {
        // An object being deleted goes once its last finalizer is gone.
        let finalizers = object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        self.stamp(&mut object);
        if !object["metadata"]["deletionTimestamp"].is_null() && !finalizers {
            self.objects.remove(&key);
            self.emit(state, &key, "DELETED", object.clone());
            self.collect_garbage(state, &object);
            return object;
        }
        self.objects.insert(key.clone(), object.clone());
        self.emit(state, &key, "MODIFIED", object.clone());
        object
    }

    /// Deletes (or marks for deletion) the object under `key`.
    fn delete(&mut self, state: &State, key: &Key) -> Option<Value> {
        let mut object = self.objects.get(key)?.clone();
        if object["metadata"]["deletionTimestamp"].is_null() {
            object["metadata"]["deletionTimestamp"] = json!(now());
        }
        Some(self.write(state, key.clone(), object))
    }

    /// Whether an owner the object names no longer exists.
    fn owner_missing(&self, object: &Value) -> bool {
        object["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|owners| {
                owners.iter().any(|owner| {
                    !self
                        .objects
                        .values()
                        .any(|o| o["metadata"]["uid"] == owner["uid"])
                })
            })
    }

    /// Deletes what the object owned.
    fn collect_garbage(&mut self, state: &State, owner: &Value) {
        let Some(uid) = owner["metadata"]["uid"].as_str() else {
            return;
        };
        let owned: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, object)| {
                object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"].as_str() == Some(uid)))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in owned {
            self.delete(state, &key);
        }
    }
}

async fn handle(state: &Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let Some(target) = parse_path(request.uri().path()) else {
        return failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no such path {}", request.uri().path()),
        );
    };
    let query = query(&request);
    let method = request.method().clone();
    record(state, &request, &target, &query);
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return failure(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
    };
    // A body that does not parse is answered with what the parser said.
    let parsed = || -> Result<Value, String> {
        if content_type.contains("yaml") {
            serde_norway::from_slice(&body).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(&body).map_err(|e| e.to_string())
        }
    };
    let bad_request = |message: String| failure(StatusCode::BAD_REQUEST, "BadRequest", message);
    if let (Some("scale"), Some(name)) = (target.subresource.as_deref(), &target.name) {
        let body = if method == Method::GET {
            Ok(Value::Null)
        } else {
            parsed()
        };
        return match body {
            Ok(body) => scale(state, &target, name, &method, &content_type, body),
            Err(message) => bad_request(message),
        };
    }
    match (&method, &target.name) {
        (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(state, &target, &query)
        }
        (&Method::GET, None) => list(state, &target, &query),
        (&Method::POST, None) => match parsed() {
            Ok(object) => create(state, &target, object),
            Err(message) => bad_request(message),
        },
        (&Method::GET, Some(name)) => {
            let key = key_of(&target, name);
            match lock(state).objects.get(&key) {
                Some(object) => reply(StatusCode::OK, object.clone()),
                None => not_found(&key),
            }
        }
        (&Method::PUT, Some(name)) => match parsed() {
            Ok(object) => replace(state, &target, name, object),
            Err(message) => bad_request(message),
        },
        (&Method::PATCH, Some(name)) => match parsed() {
            Ok(patch) => patch_object(state, &target, name, &content_type, patch),
            Err(message) => bad_request(message),
        },
        (&Method::DELETE, Some(name)) => {
            let key = key_of(&target, name);
            let mut store = lock(state);
            match store.delete(state, &key) {
                Some(object) => reply(StatusCode::OK, object),
                None => not_found(&key),
            }
        }
        _ => failure(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported here"),
        ),
    }
}

/// Where a custom resource keeps what `/scale` shows, from its stored
/// CustomResourceDefinition (as the API server does): JSON pointers to the
/// spec and status replicas and the label selector.
fn scale_paths(store: &Store, target: &Target) -> Option<[String; 3]> {
    let (group, plural) = target
        .collection
        .strip_prefix("apis/")?
        .split_once('/')
        .and_then(|(group, rest)| Some((group, rest.rsplit_once('/')?.1)))?;
    let crd = store.objects.iter().find_map(|(key, crd)| {
        (key.collection == "apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            && crd["spec"]["group"] == group
            && crd["spec"]["names"]["plural"] == plural)
            .then_some(crd)
    })?;
    let scale = crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find_map(|v| v["subresources"]["scale"].as_object())?;
    let pointer = |field: &str| {
        scale
            .get(field)
            .and_then(Value::as_str)
            .map(|path| path.replace('.', "/"))
            .unwrap_or_default()
    };
    Some([
        pointer("specReplicasPath"),
        pointer("statusReplicasPath"),
        pointer("labelSelectorPath"),
    ])
}

/// The `scale` subresource: an `autoscaling/v1` Scale read from and written
/// to the paths the CRD names.
fn scale(
    state: &State,
    target: &Target,
    name: &str,
    method: &Method,
    content_type: &str,
    body: Value,
) -> Response<Body> {
    let key = key_of(target, name);
    let mut store = lock(state);
    let Some([spec_path, status_path, selector_path]) = scale_paths(&store, target) else {
        return failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} has no scale subresource", target.collection),
        );
    };
    let Some(current) = store.objects.get(&key).cloned() else {
        return not_found(&key);
    };
    let as_scale = |object: &Value| {
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": name,
                "namespace": object["metadata"]["namespace"],
                "resourceVersion": object["metadata"]["resourceVersion"],
                "uid": object["metadata"]["uid"],
            },
            "spec": { "replicas": object.pointer(&spec_path).cloned().unwrap_or(json!(0)) },
            "status": {
                "replicas": object.pointer(&status_path).cloned().unwrap_or(json!(0)),
                "selector": object.pointer(&selector_path).cloned().unwrap_or(Value::Null),
            },
        })
    };
    let mut wanted = as_scale(&current);
    match *method {
        Method::GET => return reply(StatusCode::OK, wanted),
        Method::PUT => wanted = body,
        Method::PATCH if content_type.contains("merge-patch") => merge(&mut wanted, &body),
        _ => {
            return failure(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{method} with {content_type} is not supported on /scale here"),
            );
        }
    }
    let mut next = current.clone();
    let replicas = wanted["spec"]["replicas"].clone();
    let mut parts = spec_path.trim_start_matches('/').split('/').peekable();
    let mut slot = &mut next;
    while let Some(part) = parts.next() {
        slot = &mut slot[part];
        if parts.peek().is_none() {
            *slot = replicas.clone();
        }
    }
    let main = Target {
        collection: target.collection.clone(),
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        subresource: None,
    };
    let next = settle(&main, &current, next);
    let written = store.write(state, key, next);
    reply(StatusCode::OK, as_scale(&written))
}

fn record(
    state: &State,
    request: &Request<Incoming>,
    target: &Target,
    query: &BTreeMap<String, String>,
) {
    let verb = match (request.method(), &target.name) {
        (&Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            "watch"
        }
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    };
    let mut parts = target.collection.split('/');
    let group = match parts.next() {
        Some("apis") => parts.next().unwrap_or_default().to_string(),
        _ => String::new(),
    };
    let plural = target.collection.rsplit('/').next().unwrap_or_default();
    let resource = match &target.subresource {
        Some(sub) => format!("{plural}/{sub}"),
        None => plural.to_string(),
    };
    let agent = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    state
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(ApiRequest {
            agent,
            verb: verb.into(),
            group,
            resource,
            namespace: target.namespace.clone(),
        });
}

fn key_of(target: &Target, name: &str) -> Key {
    Key {
        collection: target.collection.clone(),
        namespace: target.namespace.clone(),
        name: name.to_string(),
    }
}

fn not_found(key: &Key) -> Response<Body> {
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{}\" not found", key.collection, key.name),
    )
}

fn list(state: &State, target: &Target, query: &BTreeMap<String, String>) -> Response<Body> {
    let store = lock(state);
    let items: Vec<Value> = store
        .objects
        .iter()
        .filter(|(key, object)| {
            key.collection == target.collection
                && (target.namespace.is_empty() || key.namespace == target.namespace)
                && labels_match(object, query.get("labelSelector"))
                && fields_match(object, query.get("fieldSelector"))
        })
        .map(|(_, object)| object.clone())
        .collect();
    reply(
        StatusCode::OK,
        json!({
            "apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": store.version.to_string()},
            "items": items
        }),
    )
}

fn watch(state: &State, target: &Target, query: &BTreeMap<String, String>) -> Response<Body> {
    let since: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = Duration::from_secs(
        query
            .get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    );
    let (collection, namespace) = (target.collection.clone(), target.namespace.clone());
    let labels = query.get("labelSelector").cloned();
    let fields = query.get("fieldSelector").cloned();
    let wanted = move |event: &Event| {
        event.collection == collection
            && (namespace.is_empty() || event.namespace == namespace)
            && event.version > since
            && labels_match(&event.object, labels.as_ref())
            && fields_match(&event.object, fields.as_ref())
    };
    // The backlog and the subscription are taken under one lock, so no
    // change falls between them.
    let (backlog, mut live) = {
        let store = lock(state);
        let backlog: Vec<Event> = store
            .history
            .iter()
            .filter(|e| wanted(e))
            .cloned()
            .collect();
        (backlog, state.events.subscribe())
    };
    let line = |event: &Event| {
        let mut text = json!({"type": event.kind, "object": event.object}).to_string();
        text.push('\n');
        Ok::<_, Infallible>(Frame::data(Bytes::from(text)))
    };
    let stream = async_stream(move |sender| async move {
        for event in &backlog {
            if sender.send(line(event)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                event = live.recv() => match event {
                    Ok(event) if wanted(&event) => {
                        if sender.send(line(&event)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A stream fed by a task, for streaming bodies.
fn async_stream<F, Fut>(
    produce: F,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(sender));
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

fn create(state: &State, target: &Target, mut object: Value) -> Response<Body> {
    let Some(name) = object["metadata"]["name"].as_str().map(str::to_string) else {
        return failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name is required".into(),
        );
    };
    let key = key_of(target, &name);
    let mut store = lock(state);
    if store.objects.contains_key(&key) {
        return failure(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", key.collection),
        );
    }
    // Status is written through `/status` only.
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let metadata = &mut object["metadata"];
    if !target.namespace.is_empty() {
        metadata["namespace"] = json!(target.namespace);
    }
    metadata["uid"] = json!(format!("uid-{}-{}", store.version + 1, name));
    metadata["generation"] = json!(1);
    metadata["creationTimestamp"] = json!(now());
    store.stamp(&mut object);
    store.objects.insert(key.clone(), object.clone());
    store.emit(state, &key, "ADDED", object.clone());
    // An object whose owner is already gone is collected, as the garbage
    // collector does (a controller may create one just as its owner goes).
    if store.owner_missing(&object) {
        store.delete(state, &key);
    }
    reply(StatusCode::CREATED, object)
}

/// Carries over what the client may not change through this endpoint:
/// status on the main resource, everything but status on `/status`; and
/// bumps `generation` when the spec changed.
fn settle(target: &Target, current: &Value, mut next: Value) -> Value {
    if target.subresource.as_deref() == Some("status") {
        let mut settled = current.clone();
        settled["status"] = next["status"].take();
        return settled;
    }
    if !current["status"].is_null() {
        next["status"] = current["status"].clone();
    } else if let Some(map) = next.as_object_mut() {
        map.remove("status");
    }
    for field in ["uid", "creationTimestamp", "deletionTimestamp", "namespace"] {
        if !current["metadata"][field].is_null() {
            next["metadata"][field] = current["metadata"][field].clone();
        }
    }
    let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
    next["metadata"]["generation"] = json!(if next["spec"] != current["spec"] {
        generation + 1
    } else {
        generation
    });
    next
}

fn replace(state: &State, target: &Target, name: &str, object: Value) -> Response<Body> {
    let key = key_of(target, name);
    let mut store = lock(state);
    let Some(current) = store.objects.get(&key).cloned() else {
        return not_found(&key);
    };
    let asked = object["metadata"]["resourceVersion"].as_str();
    if asked.is_some_and(|v| Some(v) != current["metadata"]["resourceVersion"].as_str()) {
        return failure(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified",
                key.collection
            ),
        );
    }
    let next = settle(target, &current, object);
    reply(StatusCode::OK, store.write(state, key, next))
}

fn patch_object(
    state: &State,
    target: &Target,
    name: &str,
    content_type: &str,
    patch: Value,
) -> Response<Body> {
    let key = key_of(target, name);
    let mut store = lock(state);
    let apply = content_type.contains("apply-patch");
    let json_patch = content_type.contains("json-patch");
    if !(apply || json_patch || content_type.contains("merge-patch")) {
        return failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("patch type {content_type} is not supported by the fake API server"),
        );
    }
    let Some(current) = store.objects.get(&key).cloned() else {
        if apply && target.subresource.is_none() {
            drop(store);
            return create(state, target, patch);
        }
        return not_found(&key);
    };
    let next = if apply {
        // What other writers added and the applier does not set stays.
        let mut next = patch;
        for kept in ["finalizers", "ownerReferences"] {
            if next["metadata"][kept].is_null() {
                next["metadata"][kept] = current["metadata"][kept].clone();
            }
        }
        next
    } else if json_patch {
        // RFC 6902: a failed `test` (or any failed operation) changes nothing.
        let operations: json_patch::Patch = match serde_json::from_value(patch) {
            Ok(operations) => operations,
            Err(e) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("not a JSON patch: {e}"),
                );
            }
        };
        let mut next = current.clone();
        // The API server's JSON patch takes a missing member as null, so a
        // `test` for null passes where the member is absent (kube's
        // finalizer helper relies on that).
        let operations = json_patch::Patch(
            operations
                .0
                .into_iter()
                .filter(|operation| match operation {
                    json_patch::PatchOperation::Test(test) => {
                        !(test.value.is_null() && next.pointer(test.path.as_str()).is_none())
                    }
                    _ => true,
                })
                .collect(),
        );
        if let Err(e) = json_patch::patch(&mut next, &operations) {
            return failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                format!("the JSON patch does not apply: {e}"),
            );
        }
        next
    } else {
        let mut next = current.clone();
        merge(&mut next, &patch);
        next
    };
    let next = settle(target, &current, next);
    reply(StatusCode::OK, store.write(state, key, next))
}
