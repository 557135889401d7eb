//! A component plugin whose only function, `example:noop/api.noop`, does
//! nothing: a call to it costs what crossing into a plugin costs.

wit_bindgen::generate!({ path: "wit", world: "plugin", generate_all });

struct Noop;

impl exports::example::noop::api::Guest for Noop {
    fn noop() {}
}

export!(Noop);
