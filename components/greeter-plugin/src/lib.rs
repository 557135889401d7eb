//! A component plugin serving `example:greeter/api`: a greeting that names
//! the calling workload (read through `wasmcloud:host/identity`), and a
//! counter resource the caller owns.
//!
//! The greeting word is the calling workload's own (its `greeting` in the
//! host interface entry for `example:greeter`, learned in
//! `on-workload-bind`), else the plugin's (`greeting` in its `wasi:config`),
//! else "hello". Greeting `crash` panics and `spin` loops forever, so tests
//! can watch the host contain and restart a failing plugin; `fetch=HOST:PORT`
//! makes an outbound HTTP request under the plugin's own egress policy and
//! answers with the outcome (it also holds the call until the upstream
//! answers, so tests can keep an instance busy). Further words use the
//! host's native capabilities from inside the plugin: `log` writes a
//! `wasi:logging` line, `secret` reveals the secret `token`, `remember=V` /
//! `recall` set and get `last` in the host's key-value store, and `bomb`
//! asks for more memory than a plugin should get.

wit_bindgen::generate!({ path: "wit", world: "plugin", generate_all });

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use exports::example::greeter::api::{Guest, GuestCounter};
use exports::wasmcloud::host::lifecycle;
use wasi::config::store as config;
use wasmcloud::host::identity;

thread_local! {
    /// Each bound workload's greeting, by workload id.
    static GREETINGS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

struct Greeter;

impl Guest for Greeter {
    type Counter = Counter;

    fn greet(name: String) -> String {
        match name.as_str() {
            "crash" => panic!("asked to crash"),
            "spin" => loop {
                std::hint::spin_loop();
            },
            _ => {}
        }
        if let Some(addr) = name.strip_prefix("fetch=") {
            return fetch(addr);
        }
        if let Some(answer) = capability(&name) {
            return answer;
        }
        let caller = identity::caller();
        let greeting = GREETINGS
            .with_borrow(|g| g.get(&caller).cloned())
            .or_else(|| config::get("greeting").ok().flatten())
            .unwrap_or_else(|| "hello".into());
        format!("{greeting}, {name}, from the plugin to {caller}")
    }
}

/// The words that exercise the host's native capabilities.
fn capability(word: &str) -> Option<String> {
    use wasi::keyvalue::store as kv;
    use wasi::logging::logging::{Level, log};
    use wasmcloud::secrets::{reveal, store as secrets};
    let bucket = || kv::open("greeter").map_err(|e| format!("kv: {e:?}"));
    let answer = match word {
        "log" => {
            log(
                Level::Info,
                "greeter",
                &format!("greeted for {}", identity::caller()),
            );
            Ok("logged".to_string())
        }
        "secret" => secrets::get("token")
            .map_err(|e| format!("secret: {e:?}"))
            .map(|secret| match reveal::reveal(&secret) {
                secrets::SecretValue::String(value) => format!("secret {value}"),
                secrets::SecretValue::Bytes(value) => format!("secret of {} bytes", value.len()),
            }),
        "recall" => bucket().and_then(|b| {
            b.get("last").map_err(|e| format!("kv: {e:?}")).map(|v| {
                format!(
                    "recalled {}",
                    String::from_utf8_lossy(&v.unwrap_or_default())
                )
            })
        }),
        "bomb" => {
            let hoard = vec![7u8; 512 << 20];
            Ok(format!(
                "hoarded {} bytes",
                hoard.iter().map(|b| *b as usize).sum::<usize>()
            ))
        }
        _ => match word.strip_prefix("remember=") {
            Some(value) => bucket().and_then(|b| {
                b.set("last", value.as_bytes())
                    .map_err(|e| format!("kv: {e:?}"))
                    .map(|()| "remembered".to_string())
            }),
            None => return None,
        },
    };
    Some(answer.unwrap_or_else(|e| e))
}

/// `GET http://<addr>/`: the upstream's status and body, or why not.
fn fetch(addr: &str) -> String {
    use wstd::http::{Body, BodyExt, Client, ErrorCode, Request};
    let code = |error: wstd::http::Error| match error
        .chain()
        .find_map(|e| e.downcast_ref::<ErrorCode>())
    {
        // The bindings print `ErrorCode::X`; keep just the variant.
        Some(code) => format!("{code:?}")
            .trim_start_matches("ErrorCode::")
            .to_string(),
        None => format!("{error:#}"),
    };
    wstd::runtime::block_on(async {
        let request = match Request::get(format!("http://{addr}/")).body(Body::empty()) {
            Ok(request) => request,
            Err(e) => return format!("fetch failed: {e}"),
        };
        let response = match Client::new().send(request).await {
            Ok(response) => response,
            Err(e) => return format!("fetch failed: {}", code(e)),
        };
        let status = response.status().as_u16();
        match response.into_body().into_boxed_body().collect().await {
            Ok(body) => format!(
                "fetched {status}: {}",
                String::from_utf8_lossy(&body.to_bytes())
            ),
            Err(e) => format!("fetch failed: {}", code(e)),
        }
    })
}

impl lifecycle::Guest for Greeter {
    fn on_workload_bind(workload_id: String, config: Vec<(String, String)>) -> Result<(), String> {
        if let Some((_, greeting)) = config.iter().find(|(k, _)| k == "greeting") {
            if greeting.is_empty() || greeting.contains(char::is_whitespace) {
                return Err(format!("greeting `{greeting}` must be one word"));
            }
            GREETINGS.with_borrow_mut(|g| g.insert(workload_id, greeting.clone()));
        }
        Ok(())
    }

    fn on_workload_unbind(workload_id: String) {
        GREETINGS.with_borrow_mut(|g| g.remove(&workload_id));
    }
}

struct Counter(Cell<u32>);

impl GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter(Cell::new(start))
    }

    fn bump(&self) -> u32 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

export!(Greeter);
