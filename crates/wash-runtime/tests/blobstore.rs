//! `wasi:blobstore`: the same suite against every backend (in-memory,
//! filesystem, NATS object store), through a real component and directly
//! against the backend trait.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::servers::Nats;
use common::{fixture, http_workload, interface, plugin_host, send};
use wash_runtime::host::HostApi;
use wash_runtime::plugin::blobstore::{
    BlobstoreBackend, FilesystemBlobstore, InMemoryBlobstore, NatsBlobstore,
};

enum Backend {
    Memory,
    Filesystem(tempfile::TempDir),
    Nats(Nats),
}

impl Backend {
    fn all() -> Vec<Backend> {
        vec![
            Backend::Memory,
            Backend::Filesystem(tempfile::tempdir().unwrap()),
            Backend::Nats(Nats::start()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Filesystem(_) => "filesystem",
            Backend::Nats(_) => "nats",
        }
    }

    fn config(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Memory => vec![("backend", "memory".into())],
            Backend::Filesystem(dir) => vec![
                ("backend", "filesystem".into()),
                ("path", dir.path().display().to_string()),
            ],
            Backend::Nats(nats) => vec![("backend", "nats".into()), ("url", nats.url())],
        }
    }

    async fn instance(&self) -> Arc<dyn BlobstoreBackend> {
        match self {
            Backend::Memory => Arc::new(InMemoryBlobstore::default()),
            Backend::Filesystem(dir) => Arc::new(FilesystemBlobstore::new(dir.path()).unwrap()),
            Backend::Nats(nats) => Arc::new(NatsBlobstore::connect(&nats.url()).await.unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_suite_on_every_backend() {
    for backend in Backend::all() {
        let name = backend.name();
        let host = plugin_host(wash_runtime::plugin::builtin()).await;
        let id = format!("blobs-{name}");
        let h = format!("{id}.test");
        let mut workload = http_workload(&id, fixture("blob_store"), &[("host", &h)]);
        let config = backend.config();
        let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
        workload
            .host_interfaces
            .push(interface("wasi", "blobstore", &config));
        host.workload_start(&id, workload).await.unwrap();
        let addr = host.http_addr().unwrap();
        let call = |method: &'static str, path: &'static str, body: Bytes| {
            let h = h.clone();
            async move { send(addr, &h, method, path, body).await }
        };
        let ok = |text: &str| (200u16, text.to_string());

        assert_eq!(
            call("PUT", "/photos/cat.txt", "meow".into()).await,
            ok("stored\n"),
            "{name}"
        );
        assert_eq!(
            call("GET", "/photos/cat.txt", Bytes::new()).await,
            ok("meow"),
            "{name}"
        );
        assert_eq!(
            call("GET", "/photos/cat.txt?sync", Bytes::new()).await,
            ok("meow"),
            "{name}"
        );
        assert_eq!(
            call("PUT", "/photos/cat.txt", "purr".into()).await,
            ok("stored\n"),
            "{name}: replace"
        );
        assert_eq!(
            call("GET", "/photos/cat.txt", Bytes::new()).await,
            ok("purr"),
            "{name}"
        );
        call("PUT", "/photos/dog%20photo.txt", "woof".into()).await;
        assert_eq!(
            call("GET", "/photos", Bytes::new()).await,
            ok("cat.txt\ndog%20photo.txt\n"),
            "{name}"
        );
        // copy and move, across containers
        call("PUT", "/archive/keep", "x".into()).await;
        assert_eq!(
            call(
                "POST",
                "/photos/cat.txt?copy=archive/cat-copy",
                Bytes::new()
            )
            .await,
            ok("copied\n"),
            "{name}"
        );
        assert_eq!(
            call("GET", "/archive/cat-copy", Bytes::new()).await,
            ok("purr"),
            "{name}"
        );
        assert_eq!(
            call(
                "POST",
                "/photos/cat.txt?move=archive/cat-moved",
                Bytes::new()
            )
            .await,
            ok("moved\n"),
            "{name}"
        );
        assert_eq!(
            call("GET", "/photos/cat.txt", Bytes::new()).await.0,
            404,
            "{name}: moved away"
        );
        assert_eq!(
            call("GET", "/archive/cat-moved", Bytes::new()).await,
            ok("purr"),
            "{name}"
        );
        let (status, error) = call("POST", "/archive/keep?copy=nowhere/x", Bytes::new()).await;
        assert_eq!(
            status, 404,
            "{name}: copy into a missing container: {error}"
        );

        assert_eq!(
            call("DELETE", "/photos/dog%20photo.txt", Bytes::new()).await,
            ok("deleted\n"),
            "{name}"
        );
        assert_eq!(call("GET", "/photos", Bytes::new()).await, ok(""), "{name}");
        let (status, error) = call("GET", "/missing/x", Bytes::new()).await;
        assert_eq!(status, 404, "{name}");
        assert_eq!(error, "container `missing` does not exist\n", "{name}");

        // An empty container name is refused, the same way on every
        // backend: on a filesystem it would be the root of every container.
        assert_eq!(
            call("DELETE", "/", Bytes::new()).await,
            (500, "error: container name is empty\n".into()),
            "{name}"
        );
        assert_eq!(
            call("GET", "/archive/keep", Bytes::new()).await,
            ok("x"),
            "{name}: the other containers are untouched"
        );
        let (status, error) = call("PUT", "/archive/", "x".into()).await;
        assert_eq!(
            (status, error.as_str()),
            (500, "error: object name is empty\n"),
            "{name}"
        );
        // Names that look like paths stay names.
        for tricky in ["..", "%2e%2e", "a%00b", "..%2f..%2fetc"] {
            let path: &'static str = Box::leak(format!("/tricky/{tricky}").into_boxed_str());
            assert_eq!(
                call("PUT", path, tricky.into()).await,
                ok("stored\n"),
                "{name}"
            );
            assert_eq!(call("GET", path, Bytes::new()).await, ok(tricky), "{name}");
        }

        // A megabyte through the streams, byte for byte.
        let big: Bytes = (0..1_048_576u32)
            .map(|i| (i.wrapping_mul(31) >> 3) as u8)
            .collect::<Vec<_>>()
            .into();
        assert_eq!(call("PUT", "/big/blob", big.clone()).await.0, 200, "{name}");
        let h2 = h.clone();
        let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let response = client
            .request(
                http::Request::get(format!("http://{addr}/big/blob"))
                    .header(http::header::HOST, h2)
                    .body(http_body_util::Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(body == big, "{name}: {} bytes came back", body.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_suite_on_every_backend() {
    for backend in Backend::all() {
        let name = backend.name();
        let store = backend.instance().await;
        assert!(!store.container_exists("c").await.unwrap(), "{name}");
        store.create_container("c").await.unwrap();
        assert!(store.container_exists("c").await.unwrap(), "{name}");
        let again = store.create_container("c").await.unwrap_err();
        assert!(
            again.to_string().contains("already exists"),
            "{name}: {again}"
        );
        assert!(
            store.container_created("c").await.unwrap() > 1_600_000_000,
            "{name}"
        );

        assert_eq!(store.get("c", "none").await.unwrap(), None, "{name}");
        assert_eq!(store.info("c", "none").await.unwrap(), None, "{name}");
        store
            .put("c", "a/b.c", Bytes::from_static(b"12345"))
            .await
            .unwrap();
        assert_eq!(
            store.get("c", "a/b.c").await.unwrap().as_deref(),
            Some(&b"12345"[..]),
            "{name}"
        );
        assert_eq!(
            store.info("c", "a/b.c").await.unwrap().unwrap().size,
            5,
            "{name}"
        );
        assert_eq!(
            store.list("c").await.unwrap(),
            vec!["a/b.c".to_string()],
            "{name}"
        );
        store.delete("c", "a/b.c").await.unwrap();
        store.delete("c", "a/b.c").await.unwrap();
        assert!(store.list("c").await.unwrap().is_empty(), "{name}");
        let missing = store.put("nope", "x", Bytes::new()).await.unwrap_err();
        assert!(
            missing.to_string().contains("does not exist"),
            "{name}: {missing}"
        );
        store.delete_container("c").await.unwrap();
        assert!(!store.container_exists("c").await.unwrap(), "{name}");
    }
}
