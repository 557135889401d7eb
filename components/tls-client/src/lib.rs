//! TLS from inside a component (WASI P3): connects over `wasi:sockets` to
//! `TLS_ADDR` (an `ip:port`), runs a `wasi:tls` handshake for
//! `TLS_SERVER_NAME`, sends one line and answers the HTTP request with the
//! line the server echoed, or with the step that failed and why.

wit_bindgen::generate!({
    path: "wit",
    world: "tls-client",
});

use std::net::SocketAddrV4;

use wasi::tls::client::Connector;
use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::sockets::types::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket};

wasip3::http::service::export!(TlsClient);

struct TlsClient;

impl wasip3::exports::http::handler::Guest for TlsClient {
    async fn handle(_request: Request) -> Result<Response, ErrorCode> {
        let body = match echo().await {
            Ok(line) => format!("echo: {line}\n"),
            Err(error) => format!("error: {error}\n"),
        };
        let (mut body_tx, body_rx) = wasip3::wit_stream::new();
        let (trailers_tx, trailers_rx) = wasip3::wit_future::new(|| Ok(None));
        let (response, _sent) = Response::new(Fields::new(), Some(body_rx), trailers_rx);
        drop(trailers_tx);
        wasip3::spawn_local(async move {
            body_tx.write_all(body.into_bytes()).await;
        });
        Ok(response)
    }
}

async fn echo() -> Result<String, String> {
    let addr: SocketAddrV4 = std::env::var("TLS_ADDR")
        .map_err(|_| "no TLS_ADDR configured".to_string())?
        .parse()
        .map_err(|e| format!("TLS_ADDR: {e}"))?;
    let server_name = std::env::var("TLS_SERVER_NAME").unwrap_or_else(|_| "localhost".into());
    let message = std::env::var("MESSAGE").unwrap_or_else(|_| "hello over wasi:tls".into());

    let socket = TcpSocket::create(IpAddressFamily::Ipv4).map_err(|e| format!("socket: {e:?}"))?;
    let [a, b, c, d] = addr.ip().octets();
    socket
        .connect(IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: addr.port(),
            address: (a, b, c, d),
        }))
        .await
        .map_err(|e| format!("connect: {e:?}"))?;

    // Wire the TLS transform between our cleartext and the socket.
    let connector = Connector::new();
    let (mut cleartext_tx, cleartext_rx) = wit_stream::new::<u8>();
    let (ciphertext_out, _sent) = connector.send(cleartext_rx);
    let _socket_sent = socket.send(ciphertext_out);
    let (ciphertext_in, _socket_received) = socket.receive();
    let (mut cleartext_in, _received) = connector.receive(ciphertext_in);

    Connector::connect(connector, server_name)
        .await
        .map_err(|e| format!("handshake: {}", e.to_debug_string()))?;

    let rest = cleartext_tx
        .write_all(format!("{message}\n").into_bytes())
        .await;
    if !rest.is_empty() {
        return Err("write: the connection closed".into());
    }
    let mut line = Vec::new();
    while !line.ends_with(b"\n") && line.len() < 4096 {
        match cleartext_in.next().await {
            Some(byte) => line.push(byte),
            None => break,
        }
    }
    if line.is_empty() {
        return Err("read: the server closed the connection without answering".into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}
