//! Test support: the real gateway in-process on 127.0.0.1:0 in front of an in-process
//! upstream that records what reached it, plus small HTTP/1.1 clients (hyper's and raw bytes).
#![allow(dead_code)]

pub mod sim;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hubgate::config::Config;
use hubgate::server::{Server, ShutdownHandle};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

pub type UpBody = BoxBody<Bytes, Infallible>;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub version: http::Version,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Upstream paths:
/// - `/stall`: never answers;
/// - `/hold`: answers once `release` is notified (signals `arrived` first);
/// - `/big?bytes=N`: N bytes in 64 KiB chunks; after the first chunk it waits for `release`;
/// - `/upload`: counts the body, signals `first_bytes` at the first frame;
/// - `/hop`: a response full of hop-by-hop headers;
/// - `/ws`: WebSocket-style upgrade, then echoes bytes;
/// - anything else: 200 with the method and target in the body.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub arrived: Arc<Notify>,
    pub release: Arc<Notify>,
    pub first_bytes: Arc<Notify>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let upstream = Upstream {
            addr: listener.local_addr().expect("upstream addr"),
            seen: Arc::default(),
            arrived: Arc::default(),
            release: Arc::default(),
            first_bytes: Arc::default(),
        };
        let shared = Arc::new(upstream.handles());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(shared.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        upstream
    }

    fn handles(&self) -> Handles {
        Handles {
            seen: self.seen.clone(),
            arrived: self.arrived.clone(),
            release: self.release.clone(),
            first_bytes: self.first_bytes.clone(),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream received a request")
    }
}

struct Handles {
    seen: Arc<Mutex<Vec<Seen>>>,
    arrived: Arc<Notify>,
    release: Arc<Notify>,
    first_bytes: Arc<Notify>,
}

fn full(body: impl Into<Bytes>) -> UpBody {
    Full::new(body.into()).boxed()
}

impl Handles {
    async fn answer(&self, mut req: Request<Incoming>) -> Response<UpBody> {
        let mut seen = Seen {
            method: req.method().to_string(),
            target: req.uri().to_string(),
            version: req.version(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body_len: 0,
        };
        let path = req.uri().path().to_string();
        if path == "/ws" {
            self.seen.lock().expect("seen lock").push(seen);
            return upgrade_and_echo(&mut req);
        }
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Some(data) = frame.data_ref() {
                if seen.body_len == 0 {
                    self.first_bytes.notify_one();
                }
                seen.body_len += data.len();
            }
        }
        let body_len = seen.body_len;
        let target = seen.target.clone();
        self.seen.lock().expect("seen lock").push(seen);
        match path.as_str() {
            "/stall" => std::future::pending().await,
            "/hold" => {
                self.arrived.notify_one();
                self.release.notified().await;
                Response::new(full("released"))
            }
            "/big" => self.big(&target),
            "/hop" => hop_response(),
            _ => Response::new(full(format!("{body_len} bytes for {target}"))),
        }
    }

    fn big(&self, target: &str) -> Response<UpBody> {
        let total: usize = target
            .split("bytes=")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("/big?bytes=N");
        let (tx, body) = ChannelBody::new();
        let release = self.release.clone();
        tokio::spawn(async move {
            const CHUNK: usize = 64 * 1024;
            let mut sent = 0;
            while sent < total {
                let n = CHUNK.min(total - sent);
                if tx.send(Bytes::from(vec![b'x'; n])).await.is_err() {
                    return;
                }
                if sent == 0 {
                    release.notified().await;
                }
                sent += n;
            }
        });
        let mut response = Response::new(body.boxed());
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, total.into());
        response
    }
}

/// A body fed through a channel: lets a test hold a stream half-sent.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl ChannelBody {
    pub fn new() -> (mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = mpsc::channel(4);
        (tx, ChannelBody(rx))
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}

fn hop_response() -> Response<UpBody> {
    let mut response = Response::new(full("hop"));
    let headers = response.headers_mut();
    for (name, value) in [
        ("connection", "x-upstream-secret, keep-alive"),
        ("x-upstream-secret", "internal"),
        ("keep-alive", "timeout=5"),
        ("proxy-authenticate", "Basic realm=\"internal\""),
        ("proxy-connection", "keep-alive"),
        ("trailer", "x-checksum"),
        ("upgrade", "h2c"),
        ("x-kept", "yes"),
    ] {
        headers.append(name, http::HeaderValue::from_static(value));
    }
    response
}

/// Answers a WebSocket-style upgrade with 101, then echoes every byte back.
fn upgrade_and_echo(req: &mut Request<Incoming>) -> Response<UpBody> {
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0u8; 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("connection", http::HeaderValue::from_static("upgrade"));
    headers.insert("upgrade", http::HeaderValue::from_static("websocket"));
    headers.insert(
        "sec-websocket-accept",
        http::HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    );
    response
}

/// The design.md configuration with every upstream and probe pointing at `upstream`, listening
/// on 127.0.0.1:0; `server_extra` lines are added to `[server]`.
pub fn config_text(upstream: SocketAddr, server_extra: &str) -> String {
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    hubgate::demo::config_text(listen, upstream, server_extra)
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    /// Completes when the server has stopped; yields the number of connections it cut.
    pub stopped: JoinHandle<usize>,
}

impl Gateway {
    pub async fn start(config_text: &str) -> Gateway {
        let config = match Config::parse(config_text, Path::new("test.toml")) {
            Ok(config) => config,
            Err(error) => panic!("test config invalid: {error}"),
        };
        let server = Server::bind(&config).await.expect("gateway binds");
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let stopped = tokio::spawn(server.run());
        Gateway {
            addr,
            shutdown,
            stopped,
        }
    }

    /// A gateway with the default test configuration in front of `upstream`.
    pub async fn in_front_of(upstream: &Upstream) -> Gateway {
        Gateway::start(&config_text(upstream.addr, "")).await
    }
}

/// A collected response.
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request over a fresh HTTP/1.1 connection (hyper's client: headers go out as
/// given, no Host added) and collects the answer.
pub async fn send<B>(addr: SocketAddr, request: Request<B>) -> Answer
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("http1 handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("response");
    collect(response).await
}

pub async fn collect(response: Response<Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A GET with a Host header, ready to send.
pub fn get(addr: SocketAddr, target: &str) -> http::request::Builder {
    Request::get(target).header("host", addr.to_string())
}

pub fn empty() -> Empty<Bytes> {
    Empty::new()
}

/// Writes raw bytes to the gateway and reads until the server closes or `until` is seen.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect to gateway");
    stream.write_all(bytes).await.expect("write request");
    read_response_head(&mut stream).await
}

/// Reads one response head (up to the blank line) or whatever arrives before the close.
pub async fn read_response_head(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Opens a WebSocket through the gateway to the upstream's `/ws` echo; returns the stream
/// after the 101, or the response head when there was none.
pub async fn open_websocket(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(addr).await.expect("connect to gateway");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Err(String::new());
    }
    let head = read_response_head(&mut stream).await;
    if head.starts_with("HTTP/1.1 101") {
        Ok(stream)
    } else {
        Err(head)
    }
}

/// A masked WebSocket text frame "Hello" (RFC 6455 5.7).
pub const HELLO_FRAME: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

// ----------------------------------------------------------------------------------------
// Authentication tests: requests carrying a bearer token, the parts of the gateway's own
// answers they read, and the simulator's echo of what reached YouTrack.

/// A GET with a Host header and `Authorization: Bearer {token}`, ready to send.
pub fn bearer_get(addr: SocketAddr, target: &str, token: &str) -> Request<Empty<Bytes>> {
    get(addr, target)
        .header("authorization", format!("Bearer {token}"))
        .body(empty())
        .expect("request")
}

impl Answer {
    /// The `WWW-Authenticate` value, if the answer has exactly one.
    pub fn www_authenticate(&self) -> Option<&str> {
        let mut values = self.headers.get_all("www-authenticate").iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.to_str().expect("visible ASCII challenge")),
            (None, None) => None,
            _ => panic!("more than one WWW-Authenticate"),
        }
    }

    /// The `error` code of one of the gateway's own JSON answers.
    pub fn json_error(&self) -> String {
        let body: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not the gateway's JSON: {}", self.text()));
        body["error"].as_str().expect("error code").to_owned()
    }

    /// Whether the answer came from the simulator's echo (the request reached YouTrack).
    pub fn is_echo(&self) -> bool {
        self.headers.get("x-sim").is_some_and(|v| v == "echo")
    }
}

/// What the simulator's echo says reached YouTrack.
pub struct SimEcho(serde_json::Value);

impl SimEcho {
    pub fn of(answer: &Answer) -> SimEcho {
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(answer.is_echo(), "not the echo: {}", answer.text());
        SimEcho(serde_json::from_slice(&answer.body).expect("echo JSON"))
    }

    pub fn target(&self) -> &str {
        self.0["target"].as_str().expect("target")
    }

    /// Every value of the header `name` (lower case) in the order it arrived.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let all = self.0["headers"].as_array().expect("headers");
        all.iter()
            .filter(|pair| pair[0] == name)
            .filter_map(|pair| pair[1].as_str())
            .collect()
    }
}

// ----------------------------------------------------------------------------------------
// Token checks and the verdict cache: bearer requests of any method, a send that notes when
// the request left (so a test with paused time can tell what was sent before a deadline), and
// an upstream that takes hundreds of connections at once.

pub mod token_checks {
    use std::convert::Infallible;
    use std::io;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::{Method, Request, Response};
    use http_body_util::{Empty, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio::net::{TcpSocket, TcpStream};
    use tokio::time::Instant;

    use super::{collect, empty, Answer};

    /// `method target` with a Host header and `Authorization: Bearer {token}`.
    pub fn bearer_request(
        addr: SocketAddr,
        method: Method,
        target: &str,
        token: &str,
    ) -> Request<Empty<Bytes>> {
        Request::builder()
            .method(method)
            .uri(target)
            .header("host", addr.to_string())
            .header("authorization", format!("Bearer {token}"))
            .body(empty())
            .expect("a valid request")
    }

    /// Sends `GET target` with `token` over a fresh connection.
    pub async fn get_as(addr: SocketAddr, target: &str, token: &str) -> Answer {
        super::send(addr, bearer_request(addr, Method::GET, target, token)).await
    }

    /// Like [`super::send`] over an already connected `stream`, and also returns when (on
    /// tokio's clock) the last byte of the request was handed to the socket. Connecting first
    /// matters for bursts: tokio listens with a backlog of 128, so hundreds of connections
    /// opened in one go overflow it and wait for SYN retries in real time.
    pub async fn send_timed(
        stream: TcpStream,
        request: Request<Empty<Bytes>>,
    ) -> (Answer, Instant) {
        let written = Arc::new(Mutex::new(None));
        let io = Stamped {
            stream,
            written: written.clone(),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .expect("http1 handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("response");
        let answer = collect(response).await;
        let sent = written
            .lock()
            .expect("stamp lock")
            .expect("the request was written");
        (answer, sent)
    }

    /// An upstream that answers every request 200 and listens with a backlog of 1024, so the
    /// gateway can forward hundreds of requests to it at the same moment.
    pub async fn wide_upstream() -> SocketAddr {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind upstream");
        let listener = socket.listen(1024).expect("listen");
        let addr = listener.local_addr().expect("upstream addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(|_| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    /// A TCP stream that notes the time of its latest successful write.
    struct Stamped {
        stream: TcpStream,
        written: Arc<Mutex<Option<Instant>>>,
    }

    impl Stamped {
        fn stamp(&self, polled: &Poll<io::Result<usize>>) {
            if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
                *self.written.lock().expect("stamp lock") = Some(Instant::now());
            }
        }
    }

    impl AsyncRead for Stamped {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Stamped {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
            self.stamp(&polled);
            polled
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
            self.stamp(&polled);
            polled
        }

        fn is_write_vectored(&self) -> bool {
            self.stream.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.stream).poll_shutdown(cx)
        }
    }
}

// ----------------------------------------------------------------------------------------
// Shared by the token-check tests: a simulator with a gateway in front, and the assertions
// they all make.

/// A simulator and a gateway in front of it; `sections` are appended to the configuration.
pub async fn start_with_sim(sections: &str) -> (hubgate::sim::Sim, Gateway) {
    let sim = hubgate::sim::Sim::start().await.expect("simulator");
    let gateway = Gateway::start(&(config_text(sim.addr(), "") + sections)).await;
    (sim, gateway)
}

/// A new permanent token of alice's granted for YouTrack only.
pub fn youtrack_token(sim: &hubgate::sim::Sim) -> String {
    sim.mint_permanent(
        "alice",
        hubgate::sim::YOUTRACK_SERVICE_ID,
        hubgate::sim::PermStyle::EntityId,
    )
    .expect("alice exists")
}

/// `GET target` with `Authorization: Bearer {token}` on a fresh connection.
pub async fn with_token(gateway: &Gateway, target: &str, token: &str) -> Answer {
    send(gateway.addr, bearer_get(gateway.addr, target, token)).await
}

/// A refusal by the gateway itself: status, exact challenge, JSON `error`, nothing forwarded.
#[track_caller]
pub fn assert_refused(answer: &Answer, status: u16, challenge: &str, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(answer.www_authenticate(), Some(challenge));
    assert_eq!(answer.json_error(), error);
    assert!(!answer.is_echo(), "the request was forwarded");
}
