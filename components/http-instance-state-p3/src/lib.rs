//! Test fixture (WASI P3): `GET /<ms>` waits `ms` milliseconds, then answers
//! `<served> <most in flight at once>` for this instance, so a test can see
//! reuse and how many requests one instance handled concurrently.
//! `GET /stream/<ms>` streams `first`, waits `ms` milliseconds, then
//! streams `second`: a body that must not be held back. `GET /trap` panics
//! and `GET /bomb` allocates until its memory limit stops it, taking down
//! whatever else the instance was serving.

use std::sync::atomic::{AtomicU64, Ordering};

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(InstanceState);

static SERVED: AtomicU64 = AtomicU64::new(0);
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static MOST_IN_FLIGHT: AtomicU64 = AtomicU64::new(0);

struct InstanceState;

impl wasip3::exports::http::handler::Guest for InstanceState {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let path = request.get_path_with_query().unwrap_or_default();
        if let Some(ms) = path.strip_prefix("/stream/") {
            return Ok(stream_slowly(ms.parse().unwrap_or(0)));
        }
        if path == "/trap" {
            panic!("asked to trap");
        }
        if path == "/bomb" {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0xAB; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        let ms: u64 = path.trim_matches('/').parse().unwrap_or(0);
        let now = IN_FLIGHT.fetch_add(1, Ordering::Relaxed) + 1;
        MOST_IN_FLIGHT.fetch_max(now, Ordering::Relaxed);
        wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
        let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        let body = format!("{served} {}\n", MOST_IN_FLIGHT.load(Ordering::Relaxed));

        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
        drop(trailers_tx);
        wit_bindgen::spawn_local(async move {
            let rest = body_tx.write_all(body.into_bytes()).await;
            debug_assert!(rest.is_empty());
        });
        Ok(response)
    }
}

/// A response whose body arrives in two parts, `ms` milliseconds apart.
fn stream_slowly(ms: u64) -> Response {
    let (mut body_tx, body_rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
    drop(trailers_tx);
    wit_bindgen::spawn_local(async move {
        body_tx.write_all(b"first\n".to_vec()).await;
        wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
        body_tx.write_all(b"second\n".to_vec()).await;
    });
    response
}
