//! Connecting to NATS for the plugins that use it (what they connect is
//! kept in the shared [`Backends`](super::Backends) cache), and the name
//! encodings that let any bucket or key through NATS's restricted alphabet.

use std::time::Duration;

use futures::StreamExt;

use super::BackendError;

/// How long a first connection may take before the start fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the server may take to confirm what a client sent.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `url`; the error names the address.
pub(crate) async fn connect(url: &str) -> Result<async_nats::Client, BackendError> {
    async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| BackendError::new(format!("cannot connect to NATS at {url}"), e))
}

/// Returns once the server has processed everything `client` sent before
/// the call, subscriptions included, so a message published right after
/// (by anyone) reaches them.
///
/// `Client::flush` only empties the client's write buffer: a `SUB` can still
/// sit unread in the server's socket while another connection publishes.
/// The server handles one connection's protocol lines in order, so a
/// message to a fresh inbox coming back proves every earlier line was
/// handled.
pub(crate) async fn confirm(client: &async_nats::Client) -> Result<(), BackendError> {
    let inbox = client.new_inbox();
    let mut probe = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| BackendError::new("NATS subscribe", e))?;
    client
        .publish(inbox, bytes::Bytes::new())
        .await
        .map_err(|e| BackendError::new("NATS publish", e))?;
    match tokio::time::timeout(CONFIRM_TIMEOUT, probe.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(BackendError::message(
            "the NATS connection closed before the server confirmed",
        )),
        Err(_) => Err(BackendError::message(format!(
            "the NATS server did not confirm the subscription within {CONFIRM_TIMEOUT:?}"
        ))),
    }
}

/// Escapes everything outside `[A-Za-z0-9-]` as `_XX`, for bucket names
/// (NATS allows `[A-Za-z0-9_-]`).
pub(crate) fn encode_bucket(name: &str) -> String {
    encode(name, '_', |c| c.is_ascii_alphanumeric() || c == '-')
}

/// Escapes everything outside `[A-Za-z0-9_-]` as `=XX`, for keys (NATS
/// allows `[-/_=.A-Za-z0-9]` with rules about dots, which escaping sidesteps).
pub(crate) fn encode_key(key: &str) -> String {
    encode(key, '=', |c| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    })
}

/// The inverse of [`encode_key`].
pub(crate) fn decode_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(byte) = encoded
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str, escape: char, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push(escape);
                out.push_str(&format!("{byte:02X}"));
            }
        }
    }
    if out.is_empty() {
        // NATS names may not be empty.
        out.push(escape);
        out.push_str("00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_the_nats_alphabet() {
        for key in [
            "plain",
            "a.b/c",
            "spaces and = signs",
            "ünïcödé",
            ".leading",
            "x=41",
        ] {
            let encoded = encode_key(key);
            assert!(
                encoded
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c)),
                "{encoded}"
            );
            assert_eq!(decode_key(&encoded), key);
        }
        assert_eq!(encode_bucket("my bucket"), "my_20bucket");
    }
}
