//! Real upstream servers for egress tests: certificates made here with
//! rcgen, HTTPS (HTTP/1.1 and HTTP/2) and plain HTTP servers that count
//! connections and record requests, and TLS / plain TCP echo servers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{CertificateParams, CertifiedIssuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate for `localhost` / 127.0.0.1 signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivatePkcs8KeyDer<'static>,
    _dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wash test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let server = server_params.signed_by(&server_key, &ca).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Self {
            ca_pem: ca.pem(),
            ca_file,
            server_chain: vec![server.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
            _dir: dir,
        }
    }

    /// SHA-256 of the server's end-entity certificate.
    pub fn server_cert_sha256(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.server_chain[0].as_ref()).into()
    }

    /// A server-side TLS acceptor offering `alpn`.
    pub fn acceptor(&self, alpn: &[&[u8]]) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            self.server_chain.clone(),
            PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
        )
        .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// What an upstream saw.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicUsize,
    pub requests: Mutex<Vec<http::request::Parts>>,
}

impl Seen {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn last_header(&self, name: &str) -> Option<String> {
        let requests = self.requests.lock().unwrap();
        let parts = requests.last()?;
        Some(parts.headers.get(name)?.to_str().ok()?.to_string())
    }
}

/// How an upstream answers.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// `hello from upstream <version>` at once.
    Hello,
    /// Headers only after this delay.
    SlowHeaders(Duration),
    /// Headers and one chunk, then a pause this long before the rest.
    StallBody(Duration),
}

/// A plain HTTP upstream that holds every request until the gate opens:
/// each request's arrival is sent on the receiver; `true` on the sender
/// opens the gate, and every request (held or later) is answered `held
/// answer`.
pub async fn gated_upstream() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<()>,
    tokio::sync::watch::Sender<bool>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let (open, gate) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (arrived, gate) = (arrived.clone(), gate.clone());
            tokio::spawn(async move {
                let service = service_fn(move |_: http::Request<hyper::body::Incoming>| {
                    let (arrived, mut gate) = (arrived.clone(), gate.clone());
                    async move {
                        let _ = arrived.send(());
                        let _ = gate.wait_for(|open| *open).await;
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"held answer",
                        ))))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, arrivals, open)
}

/// An HTTP upstream on loopback; TLS when `tls` is given.
pub async fn http_upstream(
    tls: Option<TlsAcceptor>,
    behaviour: Behaviour,
) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            record.connections.fetch_add(1, Ordering::SeqCst);
            let seen = record.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let (parts, _) = request.into_parts();
                        let version = format!("{:?}", parts.version);
                        seen.requests.lock().unwrap().push(parts);
                        Ok::<_, Infallible>(respond(behaviour, version).await)
                    }
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

type UpstreamBody = http_body_util::Either<Full<Bytes>, StreamBody<Chunks>>;

async fn respond(behaviour: Behaviour, version: String) -> http::Response<UpstreamBody> {
    match behaviour {
        Behaviour::Hello => http::Response::new(http_body_util::Either::Left(Full::new(
            Bytes::from(format!("hello from upstream {version}")),
        ))),
        Behaviour::SlowHeaders(delay) => {
            tokio::time::sleep(delay).await;
            http::Response::new(http_body_util::Either::Left(Full::new(Bytes::from("late"))))
        }
        Behaviour::StallBody(pause) => http::Response::new(http_body_util::Either::Right(
            StreamBody::new(Chunks::new(pause)),
        )),
    }
}

/// Two body chunks with a pause between them.
pub struct Chunks {
    step: u8,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Chunks {
    fn new(pause: Duration) -> Self {
        Self {
            step: 0,
            pause: Box::pin(tokio::time::sleep(pause)),
        }
    }
}

impl futures::Stream for Chunks {
    type Item = Result<Frame<Bytes>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.step {
            0 => {
                self.step = 1;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from("first chunk;")))))
            }
            1 => match self.pause.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.step = 2;
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from("second chunk")))))
                }
                Poll::Pending => Poll::Pending,
            },
            _ => Poll::Ready(None),
        }
    }
}

/// A line echo server on loopback, behind TLS when `tls` is given.
pub async fn echo_server(tls: Option<TlsAcceptor>) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            record.connections.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            echo_lines(stream).await;
                        }
                    }
                    None => echo_lines(stream).await,
                }
            });
        }
    });
    (addr, seen)
}

async fn echo_lines<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: S) {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        let _ = write.flush().await;
    }
}

/// A loopback address whose accept queue is full, so connects to it hang.
/// Keep the returned listener and streams alive while it is needed.
pub fn black_hole() -> (
    SocketAddr,
    tokio::net::TcpListener,
    Vec<std::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let held = (0..8)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()
        })
        .collect();
    (addr, listener, held)
}
