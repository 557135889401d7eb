//! Handles messages: replies to requests with the request's body; when
//! `FORWARD_TO` is set, also publishes `<REPLICA>:<body>` there; when the
//! body contains `PANIC_ON`, panics (to test redelivery).

wit_bindgen::generate!({ path: "wit", world: "messaging-echo", generate_all });

use exports::wasmcloud::messaging::handler::Guest;
use wasmcloud::messaging::consumer;
use wasmcloud::messaging::types::BrokerMessage;

struct Echo;

impl Guest for Echo {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        if let Ok(trigger) = std::env::var("PANIC_ON")
            && String::from_utf8_lossy(&msg.body).contains(&trigger)
        {
            panic!("messaging-echo: told to fail on `{trigger}`");
        }
        if let Some(reply_to) = &msg.reply_to {
            consumer::publish(&BrokerMessage {
                subject: reply_to.clone(),
                body: msg.body.clone(),
                reply_to: None,
            })?;
        }
        if let Ok(forward_to) = std::env::var("FORWARD_TO") {
            let replica = std::env::var("REPLICA").unwrap_or_default();
            let mut body = format!("{replica}:").into_bytes();
            body.extend_from_slice(&msg.body);
            consumer::publish(&BrokerMessage {
                subject: forward_to,
                body,
                reply_to: None,
            })?;
        }
        Ok(())
    }
}

export!(Echo);
