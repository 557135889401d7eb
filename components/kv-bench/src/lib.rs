//! Times calls into whatever provides `wasi:keyvalue` (a native plugin or
//! a component plugin): `GET /<op>/<n>` makes `n` calls of `op` (`exists`,
//! near a no-op; `get`, of a 100-byte value) and answers the mean
//! nanoseconds per call and that of the fastest batch of 1,000 calls
//! ([`bench_timing::time`]).
//! `GET /verify` checks that what the provider returns is right (values,
//! deletes, key listing) and answers `verified`.

wit_bindgen::generate!({ path: "wit", world: "bench", generate_all });

use wasi::keyvalue::store;
use wstd::http::{Body, Request, Response, StatusCode};

/// Set, get, exists, delete and list-keys agree with each other.
fn verify(bucket: &store::Bucket) -> Result<String, String> {
    let fail = |what: &str| Err(format!("{what}\n"));
    let e = |e: store::Error| format!("{e:?}");
    if bucket.get("value").map_err(e)? != Some(vec![7u8; 100]) {
        return fail("get does not return what was set");
    }
    if !bucket.exists("value").map_err(e)? {
        return fail("a set key does not exist");
    }
    bucket.delete("value").map_err(e)?;
    if bucket.exists("value").map_err(e)? || bucket.get("value").map_err(e)?.is_some() {
        return fail("a deleted key is still there");
    }
    bucket.set("a", b"1").map_err(e)?;
    bucket.set("b", b"2").map_err(e)?;
    let listed = bucket.list_keys(None).map_err(e)?;
    if !(listed.keys.contains(&"a".to_string()) && listed.keys.contains(&"b".to_string())) {
        return fail("list-keys misses a key");
    }
    Ok("verified\n".into())
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().trim_start_matches('/').to_string();
    let (op, n) = path.split_once('/').unwrap_or((path.as_str(), "1000"));
    let n: u32 = n.parse().unwrap_or(1000).max(1);
    let answer = (|| -> Result<String, String> {
        let bucket = store::open("bench").map_err(|e| format!("{e:?}"))?;
        bucket
            .set("value", &[7u8; 100])
            .map_err(|e| format!("{e:?}"))?;
        if op == "verify" {
            return verify(&bucket);
        }
        let (mean, fastest) = bench_timing::time(n, || -> Result<(), String> {
            match op {
                "exists" => bucket.exists("value").map(drop),
                "get" => bucket.get("value").map(drop),
                other => return Err(format!("unknown op `{other}` (exists, get)")),
            }
            .map_err(|e| format!("{e:?}"))
        })?;
        Ok(format!("{mean} {fastest}\n"))
    })();
    match answer {
        Ok(ns) => Ok(Response::new(ns.into())),
        Err(e) => Ok(Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(format!("{e}\n").into())?),
    }
}
