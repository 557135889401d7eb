//! A pair of WASI P3 byte streams (a TCP connection, or the cleartext side
//! of a wasi:tls session) as tokio `AsyncRead`/`AsyncWrite`, so that
//! tokio-postgres can speak the Postgres protocol over it.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasip3::sockets::types::{
    IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, TcpSocket,
};
use wasip3::wit_bindgen::rt::async_support::{StreamReader, StreamResult, StreamWriter};

type ReadFut = Pin<Box<dyn Future<Output = (StreamReader<u8>, StreamResult, Vec<u8>)>>>;
/// What outlives a connection's streams.
pub type Keep = Vec<Box<dyn Any>>;
type WriteFut = Pin<Box<dyn Future<Output = (StreamWriter<u8>, StreamResult, usize)>>>;

enum ReadState {
    Idle(StreamReader<u8>),
    Reading(ReadFut),
    Done,
}
enum WriteState {
    Idle(StreamWriter<u8>),
    Writing(WriteFut),
    Done,
}

/// Two P3 byte streams as one tokio AsyncRead/AsyncWrite.
pub struct Duplex {
    /// What must live as long as the streams (the socket, the TLS
    /// connector and the futures of its pumps).
    #[cfg_attr(
        not(feature = "tls"),
        allow(dead_code, reason = "only TLS takes it back")
    )]
    keep: Keep,
    read: ReadState,
    /// Bytes read from the stream but not yet handed to the reader.
    pending: Vec<u8>,
    write: WriteState,
}

impl Duplex {
    pub fn new(reader: StreamReader<u8>, writer: StreamWriter<u8>, keep: Keep) -> Self {
        Self {
            keep,
            read: ReadState::Idle(reader),
            pending: Vec::new(),
            write: WriteState::Idle(writer),
        }
    }

    /// The streams back, to layer TLS on them; `None` when a read or write
    /// is in flight or read bytes are waiting (they would be lost).
    #[cfg(feature = "tls")]
    pub fn into_parts(self) -> Option<(StreamReader<u8>, StreamWriter<u8>, Keep)> {
        match (self.read, self.write) {
            (ReadState::Idle(reader), WriteState::Idle(writer)) if self.pending.is_empty() => {
                Some((reader, writer, self.keep))
            }
            _ => None,
        }
    }
}

impl AsyncRead for Duplex {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.drain(..n);
                return Poll::Ready(Ok(()));
            }
            match std::mem::replace(&mut this.read, ReadState::Done) {
                ReadState::Done => return Poll::Ready(Ok(())),
                ReadState::Idle(mut reader) => {
                    let want = buf.remaining().max(1);
                    this.read = ReadState::Reading(Box::pin(async move {
                        let (result, data) = reader.read(Vec::with_capacity(want)).await;
                        (reader, result, data)
                    }));
                }
                ReadState::Reading(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.read = ReadState::Reading(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((reader, result, data)) => {
                        this.pending = data;
                        this.read = match result {
                            StreamResult::Complete(_) => ReadState::Idle(reader),
                            _ => ReadState::Done,
                        };
                    }
                },
            }
        }
    }
}

impl AsyncWrite for Duplex {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.write, WriteState::Done) {
                WriteState::Done => return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into())),
                WriteState::Idle(mut writer) => {
                    let bytes = data.to_vec();
                    this.write = WriteState::Writing(Box::pin(async move {
                        let n = bytes.len();
                        let rest = writer.write_all(bytes).await;
                        let result = if rest.is_empty() {
                            StreamResult::Complete(n)
                        } else {
                            StreamResult::Dropped
                        };
                        (writer, result, n - rest.len())
                    }));
                }
                WriteState::Writing(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.write = WriteState::Writing(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((writer, result, n)) => {
                        this.write = match result {
                            StreamResult::Complete(_) => WriteState::Idle(writer),
                            _ => WriteState::Done,
                        };
                        return Poll::Ready(Ok(n));
                    }
                },
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Connects to `address:port` over TCP.
pub async fn connect(address: IpAddress, port: u16) -> Result<Duplex, String> {
    let (family, remote) = match address {
        IpAddress::Ipv4(address) => (
            IpAddressFamily::Ipv4,
            IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address }),
        ),
        IpAddress::Ipv6(address) => (
            IpAddressFamily::Ipv6,
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port,
                flow_info: 0,
                address,
                scope_id: 0,
            }),
        ),
    };
    let socket = TcpSocket::create(family).map_err(|e| format!("socket: {e:?}"))?;
    socket
        .connect(remote)
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let (reader, received) = socket.receive();
    let (writer, outgoing) = wasip3::wit_stream::new::<u8>();
    let sent = socket.send(outgoing);
    Ok(Duplex::new(
        reader,
        writer,
        vec![Box::new(socket), Box::new(received), Box::new(sent)],
    ))
}
