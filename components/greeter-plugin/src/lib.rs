//! A component plugin serving `example:greeter/api`: a greeting that names
//! the calling workload (read through `wasmcloud:host/identity`), and a
//! counter resource the caller owns.
//!
//! The greeting word is the calling workload's own (its `greeting` in the
//! host interface entry for `example:greeter`, learned in
//! `on-workload-bind`), else the plugin's (`greeting` in its `wasi:config`),
//! else "hello". Greeting `crash` panics and `spin` loops forever, so tests
//! can watch the host contain and restart a failing plugin.

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
        let caller = identity::caller();
        let greeting = GREETINGS
            .with_borrow(|g| g.get(&caller).cloned())
            .or_else(|| config::get("greeting").ok().flatten())
            .unwrap_or_else(|| "hello".into());
        format!("{greeting}, {name}, from the plugin to {caller}")
    }
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
