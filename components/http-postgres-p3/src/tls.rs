//! `sslmode=require` through `wasi:tls`: after Postgres agrees to TLS on the
//! plain connection, the host runs the handshake and verifies the server's
//! certificate against the CAs it trusts; the component only ever sees
//! cleartext.

use std::future::Future;
use std::pin::Pin;

use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use wasip3::wit_bindgen::rt::async_support::StreamResult;

use crate::bindings::wasi::tls::client::Connector;
use crate::bindings::wit_stream;
use crate::stream::Duplex;

/// How much ciphertext one pump read asks for: a full TLS record.
const RECORD: usize = 16 * 1024 + 256;

/// Connects TLS for the server `name` (as the certificate must name it).
pub struct WasiTls {
    pub server_name: String,
}

impl TlsConnect<Duplex> for WasiTls {
    type Stream = Duplex;
    type Error = String;
    type Future = Pin<Box<dyn Future<Output = Result<Duplex, String>>>>;

    fn connect(self, plain: Duplex) -> Self::Future {
        Box::pin(async move {
            let (ciphertext_in, mut socket_out, mut keep) = plain
                .into_parts()
                .ok_or("the connection was in use when TLS started")?;
            let connector = Connector::new();
            let (cleartext_out, cleartext_rx) = wit_stream::new::<u8>();
            let (mut ciphertext_out, sent) = connector.send(cleartext_rx);
            let (cleartext_in, received) = connector.receive(ciphertext_in);
            // The socket already sends what its writer gets: pump the TLS
            // records into it.
            wasip3::spawn_local(async move {
                loop {
                    let (result, records) = ciphertext_out.read(Vec::with_capacity(RECORD)).await;
                    if !records.is_empty() && !socket_out.write_all(records).await.is_empty() {
                        break;
                    }
                    if !matches!(result, StreamResult::Complete(_)) {
                        break;
                    }
                }
            });
            Connector::connect(connector, self.server_name.clone())
                .await
                .map_err(|e| format!("with {}: {}", self.server_name, e.to_debug_string()))?;
            keep.push(Box::new(sent));
            keep.push(Box::new(received));
            Ok(Duplex::new(cleartext_in, cleartext_out, keep))
        })
    }
}

impl TlsStream for Duplex {
    /// No channel binding: the handshake (and its keys) live in the host.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
