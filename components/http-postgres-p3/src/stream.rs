//! A WASI P3 TCP connection as tokio `AsyncRead`/`AsyncWrite`, so that
//! tokio-postgres can speak the Postgres protocol over it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasip3::sockets::types::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket};
use wasip3::wit_bindgen::rt::async_support::{StreamReader, StreamResult, StreamWriter};

type ReadFut = Pin<Box<dyn Future<Output = (StreamReader<u8>, StreamResult, Vec<u8>)>>>;
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

/// A P3 TCP connection as tokio AsyncRead/AsyncWrite.
pub struct P3Stream {
    _socket: TcpSocket,
    read: ReadState,
    pending: Vec<u8>,
    write: WriteState,
}

impl AsyncRead for P3Stream {
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

impl AsyncWrite for P3Stream {
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

/// Connects to `address:port` (IPv4).
pub async fn connect(address: (u8, u8, u8, u8), port: u16) -> Result<P3Stream, String> {
    let socket = TcpSocket::create(IpAddressFamily::Ipv4).map_err(|e| format!("{e:?}"))?;
    socket
        .connect(IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address }))
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let (reader, _done) = socket.receive();
    let (writer, outgoing) = wasip3::wit_stream::new::<u8>();
    let _sent = socket.send(outgoing);
    Ok(P3Stream {
        _socket: socket,
        read: ReadState::Idle(reader),
        pending: Vec::new(),
        write: WriteState::Idle(writer),
    })
}
