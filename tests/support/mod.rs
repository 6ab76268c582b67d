//! Test support: the real gateway in-process on 127.0.0.1:0 in front of an in-process
//! upstream that records what reached it, plus small HTTP/1.1 clients (hyper's and raw bytes).
#![allow(dead_code)]

pub mod redis;
pub mod sim;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hubgate::config::Config;
use hubgate::server::{ReloadHandle, Server, ShutdownHandle};
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
/// on 127.0.0.1:0 (admin too); `server_extra` lines are added to `[server]`.
pub fn config_text(upstream: SocketAddr, server_extra: &str) -> String {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    hubgate::demo::config_text(any, any, upstream, server_extra)
}

/// The shipped `config.example.toml` with only its addresses changed: every upstream and
/// probe at `upstream`, both listeners on 127.0.0.1:0.
pub fn shipped_config(upstream: SocketAddr) -> String {
    let mut text = include_str!("../../config.example.toml").to_owned();
    for (from, to) in [
        ("\"0.0.0.0:8080\"", "\"127.0.0.1:0\"".to_owned()),
        ("\"127.0.0.1:9901\"", "\"127.0.0.1:0\"".to_owned()),
        ("127.0.0.1:8081", upstream.to_string()),
    ] {
        assert!(text.contains(from), "config.example.toml has no {from}");
        text = text.replace(from, &to);
    }
    text
}

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    pub shutdown: ShutdownHandle,
    pub reload: ReloadHandle,
    /// Completes when the server has stopped; yields the number of connections it cut.
    pub stopped: JoinHandle<usize>,
}

impl Gateway {
    pub async fn start(config_text: &str) -> Gateway {
        let config = match Config::parse(config_text, Path::new("test.toml")) {
            Ok(config) => config,
            Err(error) => panic!("test config invalid: {error}"),
        };
        Gateway::serve(config).await
    }

    /// A gateway whose configuration is read from `path`: reloads read it again.
    pub async fn from_file(path: &Path) -> Gateway {
        match Config::load(path) {
            Ok(config) => Gateway::serve(config).await,
            Err(error) => panic!("test config invalid: {error}"),
        }
    }

    async fn serve(config: Config) -> Gateway {
        let server = Server::bind(&config).await.expect("gateway binds");
        let addr = server.local_addr();
        let admin = server.admin_addr();
        let shutdown = server.shutdown_handle();
        let reload = server.reload_handle();
        let stopped = tokio::spawn(server.run());
        Gateway {
            addr,
            admin,
            shutdown,
            reload,
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

/// Writes raw bytes on an open connection and reads one response head.
pub async fn raw_on(stream: &mut TcpStream, bytes: &[u8]) -> String {
    stream.write_all(bytes).await.expect("write request");
    read_response_head(stream).await
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

// ----------------------------------------------------------------------------------------
// Resource limits: an upstream that counts what reaches it and how much of it at once, and
// HTTP/2 frames written byte for byte, for what a well-behaved client library never sends
// (resets in bulk, streams beyond the peer's limit, CONTINUATION floods).

pub mod resources {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use http::{Request, Response};
    use hyper::body::{Frame, Incoming, SizeHint};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};
    use tokio::sync::{watch, Semaphore};

    use super::{full, UpBody};

    /// What has reached a [`CountingUpstream`] so far.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Counts {
        /// Requests whose head reached the upstream.
        pub arrived: usize,
        /// Requests not answered yet.
        pub in_flight: usize,
        /// The most requests ever in flight at once.
        pub max_in_flight: usize,
        /// `/big` body bytes handed to the upstream's HTTP stack.
        pub big_bytes: usize,
        /// `/big` bodies dropped before their last byte: whoever was reading went away.
        pub big_abandoned: usize,
        /// Connections accepted, and those of them still open.
        pub connections: usize,
        pub open_connections: usize,
    }

    type Tally = Arc<watch::Sender<Counts>>;

    /// An upstream that counts requests instead of recording them, listening with a backlog
    /// of 1024:
    /// - `/stall`: never answers;
    /// - `/hold`: answers 200 once the test [`release`](CountingUpstream::release)s it;
    /// - `/big?bytes=N`: N bytes, produced only as fast as they are taken (`/chunked?bytes=N`:
    ///   the same without a length, so chunked);
    /// - `/empty`: 204; `/close`: 200 "ok" with `Connection: close`; `/early`: 200 "early" at
    ///   once, the request body read afterwards;
    /// - anything else: 200 "ok".
    pub struct CountingUpstream {
        pub addr: SocketAddr,
        tally: Tally,
        permits: Arc<Semaphore>,
    }

    impl CountingUpstream {
        pub async fn start() -> CountingUpstream {
            let socket = TcpSocket::new_v4().expect("socket");
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .expect("bind upstream");
            let listener = socket.listen(1024).expect("listen");
            let upstream = CountingUpstream {
                addr: listener.local_addr().expect("upstream addr"),
                tally: Arc::new(watch::channel(Counts::default()).0),
                permits: Arc::new(Semaphore::new(0)),
            };
            let (tally, permits) = (upstream.tally.clone(), upstream.permits.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tally.send_modify(|c| {
                        c.connections += 1;
                        c.open_connections += 1;
                    });
                    let (tally, permits) = (tally.clone(), permits.clone());
                    let closed = tally.clone();
                    let service = service_fn(move |request| {
                        let (tally, permits) = (tally.clone(), permits.clone());
                        async move { Ok::<_, Infallible>(answer(tally, permits, request).await) }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        closed.send_modify(|c| c.open_connections -= 1);
                    });
                }
            });
            upstream
        }

        pub fn counts(&self) -> Counts {
            *self.tally.borrow()
        }

        /// Waits until the counts satisfy `ready`, and returns them.
        pub async fn wait_for(&self, ready: impl FnMut(&Counts) -> bool) -> Counts {
            let mut counts = self.tally.subscribe();
            let counts = *counts.wait_for(ready).await.expect("the tally lives");
            counts
        }

        /// Lets `n` held requests (`/hold`, present or future) answer.
        pub fn release(&self, n: usize) {
            self.permits.add_permits(n);
        }
    }

    async fn answer(
        tally: Tally,
        permits: Arc<Semaphore>,
        request: Request<Incoming>,
    ) -> Response<UpBody> {
        let _in_flight = InFlight::start(&tally);
        match request.uri().path() {
            "/stall" => std::future::pending().await,
            "/hold" => {
                permits.acquire().await.expect("never closed").forget();
                Response::new(full("released"))
            }
            path @ ("/big" | "/chunked") => {
                let left = request
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("bytes="))
                    .and_then(|n| n.parse().ok())
                    .expect("/big?bytes=N");
                let chunked = path == "/chunked";
                let body = BigBody {
                    left,
                    chunked,
                    tally,
                };
                Response::new(http_body_util::BodyExt::boxed(body))
            }
            "/early" => {
                // Answers at once, and reads the upload afterwards.
                tokio::spawn(http_body_util::BodyExt::collect(request.into_body()));
                Response::new(full("early"))
            }
            "/empty" => {
                let mut response = Response::new(full(""));
                *response.status_mut() = http::StatusCode::NO_CONTENT;
                response
            }
            "/close" => {
                let mut response = Response::new(full("ok"));
                let close = http::HeaderValue::from_static("close");
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, close);
                response
            }
            _ => Response::new(full("ok")),
        }
    }

    /// One request at the upstream, from its head until its answer (or until it is dropped).
    struct InFlight(Tally);

    impl InFlight {
        fn start(tally: &Tally) -> InFlight {
            tally.send_modify(|c| {
                c.arrived += 1;
                c.in_flight += 1;
                c.max_in_flight = c.max_in_flight.max(c.in_flight);
            });
            InFlight(tally.clone())
        }
    }

    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.send_modify(|c| c.in_flight -= 1);
        }
    }

    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

    /// `left` more bytes of `x`, in 64 KiB frames made when asked for; without a length when
    /// `chunked`.
    struct BigBody {
        left: usize,
        chunked: bool,
        tally: Tally,
    }

    impl hyper::body::Body for BigBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            let n = CHUNK.len().min(self.left);
            if n == 0 {
                return Poll::Ready(None);
            }
            self.left -= n;
            self.tally.send_modify(|c| c.big_bytes += n);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
        }

        fn is_end_stream(&self) -> bool {
            self.left == 0 && !self.chunked
        }

        fn size_hint(&self) -> SizeHint {
            if self.chunked {
                SizeHint::default()
            } else {
                SizeHint::with_exact(self.left as u64)
            }
        }
    }

    impl Drop for BigBody {
        fn drop(&mut self) {
            if self.left > 0 {
                self.tally.send_modify(|c| c.big_abandoned += 1);
            }
        }
    }

    /// HTTP/2 frame types, flags and error codes (RFC 9113 6, 7).
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const CONTINUATION: u8 = 0x9;
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const CANCEL: u32 = 0x8;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;

    /// Appends one frame to `out`.
    pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = u32::try_from(payload.len()).expect("a frame's length fits 24 bits");
        assert!(len < 1 << 24, "a frame's length fits 24 bits");
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
    }

    pub fn rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
        frame(out, RST_STREAM, 0, stream, &code.to_be_bytes());
    }

    /// An HPACK header block for `method` (`GET` or `POST`) `http://{authority}{path}`, all
    /// literals without indexing: every stream can reuse it unchanged.
    pub fn request_block(method: &str, authority: &str, path: &str) -> Vec<u8> {
        let method = match method {
            "GET" => 0x82,
            "POST" => 0x83,
            other => panic!("no static HPACK entry for {other}"),
        };
        let mut block = vec![method, 0x86]; // :method, :scheme http
        hpack_int(&mut block, 4, 0x00, 4); // :path, name from the static table
        hpack_string(&mut block, path);
        hpack_int(&mut block, 4, 0x00, 1); // :authority
        hpack_string(&mut block, authority);
        block
    }

    /// Appends a header field with a literal name and value, without indexing.
    pub fn hpack_literal(block: &mut Vec<u8>, name: &str, value: &str) {
        block.push(0x00);
        hpack_string(block, name);
        hpack_string(block, value);
    }

    fn hpack_string(block: &mut Vec<u8>, text: &str) {
        hpack_int(block, 7, 0x00, text.len());
        block.extend_from_slice(text.as_bytes());
    }

    /// RFC 7541 5.1: `value` with a `prefix`-bit prefix under `flags`.
    fn hpack_int(block: &mut Vec<u8>, prefix: u32, flags: u8, value: usize) {
        let max = (1usize << prefix) - 1;
        if value < max {
            block.push(flags | value as u8);
            return;
        }
        block.push(flags | max as u8);
        let mut rest = value - max;
        while rest >= 128 {
            block.push((rest % 128) as u8 | 0x80);
            rest /= 128;
        }
        block.push(rest as u8);
    }

    /// One frame as read from the server.
    #[derive(Debug)]
    pub struct H2Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    impl H2Frame {
        /// The error code of a RST_STREAM or GOAWAY.
        pub fn error_code(&self) -> Option<u32> {
            let at = match self.kind {
                RST_STREAM => 0,
                GOAWAY => 4,
                _ => return None,
            };
            let code = self.payload.get(at..at + 4)?;
            Some(u32::from_be_bytes(code.try_into().expect("four bytes")))
        }

        /// The last stream a GOAWAY says the server processed.
        pub fn last_stream(&self) -> Option<u32> {
            let id = self.payload.get(..4).filter(|_| self.kind == GOAWAY)?;
            Some(u32::from_be_bytes(id.try_into().expect("four bytes")) & 0x7fff_ffff)
        }
    }

    /// An HTTP/2 connection with prior knowledge that writes whatever bytes it is given and
    /// reads frames one by one, acknowledging SETTINGS and PINGs on its own.
    pub struct RawH2 {
        stream: TcpStream,
    }

    impl RawH2 {
        /// Connects and sends the preface and an empty SETTINGS frame.
        pub async fn connect(addr: SocketAddr) -> RawH2 {
            let mut stream = TcpStream::connect(addr).await.expect("connect to gateway");
            let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
            frame(&mut hello, SETTINGS, 0, 0, &[]);
            stream.write_all(&hello).await.expect("write preface");
            RawH2 { stream }
        }

        /// Writes `bytes`; `false` once the server has closed the connection.
        pub async fn send(&mut self, bytes: &[u8]) -> bool {
            self.stream.write_all(bytes).await.is_ok()
        }

        /// The next frame that is not SETTINGS or PING, or `None` once the server has closed.
        pub async fn next_frame(&mut self) -> Option<H2Frame> {
            loop {
                let mut head = [0u8; 9];
                self.stream.read_exact(&mut head).await.ok()?;
                let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let mut payload = vec![0u8; len];
                self.stream.read_exact(&mut payload).await.ok()?;
                let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                let (kind, flags) = (head[3], head[4]);
                let reply = match kind {
                    SETTINGS if flags & ACK == 0 => Some((SETTINGS, Vec::new())),
                    PING if flags & ACK == 0 => Some((PING, payload.clone())),
                    SETTINGS | PING => None,
                    _ => {
                        return Some(H2Frame {
                            kind,
                            flags,
                            stream,
                            payload,
                        })
                    }
                };
                if let Some((kind, payload)) = reply {
                    let mut ack = Vec::new();
                    frame(&mut ack, kind, ACK, 0, &payload);
                    let _ = self.stream.write_all(&ack).await;
                }
            }
        }

        /// Every frame until the server closes the connection.
        pub async fn until_closed(&mut self) -> Vec<H2Frame> {
            let mut frames = Vec::new();
            while let Some(frame) = self.next_frame().await {
                frames.push(frame);
            }
            frames
        }
    }
}

// ----------------------------------------------------------------------------------------
// Adversarial tests (`security_*.rs`): raw HTTP/1.1 exchanges whose answers are read by their
// own framing up to their end or the server's close (never by a timer), and a rig with the
// simulator as Hub and a recording upstream, so a test sees at once whether Hub was asked
// and what reached YouTrack.

pub mod adversarial {
    use std::net::SocketAddr;

    use hubgate::sim::Sim;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::{Gateway, Seen, Upstream};

    /// The simulator answers the gateway's token probes; every request the gateway forwards
    /// goes to the recording upstream.
    pub struct Rig {
        pub sim: Sim,
        pub upstream: Upstream,
        pub gateway: Gateway,
    }

    impl Rig {
        pub async fn start() -> Rig {
            Rig::configured(|text| text).await
        }

        /// Like [`Rig::start`], with the configuration text passed through `edit` first.
        pub async fn configured(edit: impl FnOnce(String) -> String) -> Rig {
            let sim = Sim::start().await.expect("simulator");
            let upstream = Upstream::start().await;
            let text = super::config_text(sim.addr(), "");
            let url = format!("url = \"http://{}\"", sim.addr());
            assert!(text.contains(&url), "{text}");
            let text = text.replacen(&url, &format!("url = \"http://{}\"", upstream.addr), 1);
            let gateway = Gateway::start(&edit(text)).await;
            Rig {
                sim,
                upstream,
                gateway,
            }
        }

        pub fn addr(&self) -> SocketAddr {
            self.gateway.addr
        }

        /// The gateway's `host:port`, as a client puts it in `Host`.
        pub fn host(&self) -> String {
            self.gateway.addr.to_string()
        }

        /// A token Hub grants for both services: whatever the route, a request carrying it is
        /// forwarded unless something else stops it.
        pub fn token(&self) -> String {
            self.sim.demo().admin.clone()
        }

        /// Every request that reached the upstream so far.
        pub fn forwarded(&self) -> Vec<Seen> {
            self.upstream.seen()
        }

        /// Sends `bytes` on a fresh connection and reads the first answer.
        pub async fn exchange(&self, bytes: &[u8]) -> Option<RawResponse> {
            let mut conn = RawConn::open(self.addr()).await;
            conn.write(bytes).await;
            conn.response().await
        }

        /// `GET target` with a Host and a token granted for every service: had a check let it
        /// through, it would be forwarded and (the first time) cost a Hub probe.
        pub fn get_with_token(&self, target: &[u8]) -> Vec<u8> {
            let mut bytes = b"GET ".to_vec();
            bytes.extend_from_slice(target);
            let rest = format!(
                " HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
                self.host(),
                self.token()
            );
            bytes.extend_from_slice(rest.as_bytes());
            bytes
        }

        /// Sends each `(case, bytes)` on a fresh connection and expects a target error: 400
        /// from `by` (the gateway's is `invalid_request` without a challenge), no Hub call,
        /// nothing forwarded.
        /// Refuses each target as `GET target` with a token.
        pub async fn assert_targets_refused(&self, by: By, targets: &[&[u8]]) {
            let requests: Vec<(String, Vec<u8>)> = targets
                .iter()
                .map(|t| {
                    (
                        String::from_utf8_lossy(t).into_owned(),
                        self.get_with_token(t),
                    )
                })
                .collect();
            self.assert_bad_targets(by, &requests).await;
        }

        pub async fn assert_bad_targets(&self, by: By, requests: &[(String, Vec<u8>)]) {
            for (case, bytes) in requests {
                let answer = self.exchange(bytes).await;
                let answer = answer.unwrap_or_else(|| panic!("{case}: closed without an answer"));
                assert_eq!(answer.status, 400, "{case}: {}", answer.head);
                if by == By::Gateway {
                    let error = answer.gateway_error();
                    assert_eq!(
                        error.as_deref(),
                        Some("invalid_request"),
                        "{case}: {answer:?}"
                    );
                    let challenge = answer.header("www-authenticate");
                    assert_eq!(challenge, None, "{case}: a target error has no challenge");
                }
                self.assert_untouched(case);
            }
        }

        /// One of the gateway's own answers, with `status` and JSON `error`; no Hub call,
        /// nothing forwarded.
        #[track_caller]
        pub fn assert_refused(
            &self,
            case: &str,
            answer: Option<RawResponse>,
            status: u16,
            error: &str,
        ) {
            let answer = answer.unwrap_or_else(|| panic!("{case}: closed without an answer"));
            assert_eq!(answer.status, status, "{case}: {answer:?}");
            let code = answer.gateway_error();
            assert_eq!(code.as_deref(), Some(error), "{case}: {answer:?}");
            self.assert_untouched(case);
        }

        /// Hub was never asked and nothing reached the upstream.
        #[track_caller]
        pub fn assert_untouched(&self, case: &str) {
            assert_eq!(self.sim.total_probes(), 0, "{case}: Hub was asked");
            let forwarded = self.forwarded();
            assert!(forwarded.is_empty(), "{case}: forwarded {forwarded:?}");
        }
    }

    /// A raw request: the request line, then `headers` (each ending in CRLF), then the blank
    /// line.
    pub fn request(line: &str, headers: &str) -> Vec<u8> {
        format!("{line}\r\n{headers}\r\n").into_bytes()
    }

    /// Who refuses a request: the gateway's own checks (a JSON answer) or hyper's HTTP/1.1
    /// parser before the gateway sees a request (a bare 400).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum By {
        Gateway,
        Parser,
    }

    /// One HTTP/1.1 response as it came off the wire.
    #[derive(Debug, Clone)]
    pub struct RawResponse {
        pub status: u16,
        /// Status line and header lines, without the blank line.
        pub head: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl RawResponse {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        /// The `error` code when this is one of the gateway's own JSON answers.
        pub fn gateway_error(&self) -> Option<String> {
            let json = self
                .header("content-type")
                .is_some_and(|v| v.starts_with("application/json"));
            let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
            let described = body["error_description"].is_string();
            let code = body["error"].as_str().map(str::to_owned);
            code.filter(|_| json && described)
        }
    }

    /// A raw client connection that reads responses by their framing.
    pub struct RawConn {
        stream: TcpStream,
        buffered: Vec<u8>,
        closed: bool,
    }

    impl RawConn {
        pub async fn open(addr: SocketAddr) -> RawConn {
            let stream = TcpStream::connect(addr).await.expect("connect to gateway");
            RawConn {
                stream,
                buffered: Vec::new(),
                closed: false,
            }
        }

        /// Writes `bytes`; false when the server had already closed the connection.
        pub async fn write(&mut self, bytes: &[u8]) -> bool {
            self.stream.write_all(bytes).await.is_ok()
        }

        /// Reads more bytes into the buffer; false at the server's close (or a reset).
        async fn fill(&mut self) -> bool {
            if self.closed {
                return false;
            }
            let mut buf = [0u8; 16 * 1024];
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    self.closed = true;
                    false
                }
                Ok(n) => {
                    self.buffered.extend_from_slice(&buf[..n]);
                    true
                }
            }
        }

        /// The next response (an interim `1xx` counts as one), or `None` when the server
        /// closes the connection before a complete head.
        pub async fn response(&mut self) -> Option<RawResponse> {
            let end = loop {
                if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                    break at;
                }
                if !self.fill().await {
                    return None;
                }
            };
            let head = String::from_utf8_lossy(&self.buffered[..end]).into_owned();
            self.buffered.drain(..end + 4);
            let (status, headers) = parse_head(&head);
            let mut response = RawResponse {
                status,
                head,
                headers,
                body: Vec::new(),
            };
            response.body = self.body(&response).await;
            Some(response)
        }

        /// Whether the server closes the connection without sending another byte.
        pub async fn closes(&mut self) -> bool {
            while self.buffered.is_empty() {
                if !self.fill().await {
                    return true;
                }
            }
            false
        }

        async fn body(&mut self, response: &RawResponse) -> Vec<u8> {
            let chunked = response
                .header("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
            if (100..200).contains(&response.status) || matches!(response.status, 204 | 304) {
                Vec::new()
            } else if chunked {
                self.chunked_body().await
            } else if let Some(length) = response.header("content-length") {
                let length: usize = length.parse().expect("a numeric Content-Length");
                self.exactly(length).await
            } else {
                while self.fill().await {}
                std::mem::take(&mut self.buffered)
            }
        }

        async fn exactly(&mut self, length: usize) -> Vec<u8> {
            while self.buffered.len() < length {
                assert!(self.fill().await, "closed inside a response body");
            }
            self.buffered.drain(..length).collect()
        }

        async fn line(&mut self) -> String {
            loop {
                if let Some(at) = find(&self.buffered, b"\r\n") {
                    let line: Vec<u8> = self.buffered.drain(..at + 2).collect();
                    return String::from_utf8_lossy(&line[..at]).into_owned();
                }
                assert!(self.fill().await, "closed inside a chunked body");
            }
        }

        async fn chunked_body(&mut self) -> Vec<u8> {
            let mut body = Vec::new();
            loop {
                let size = self.line().await;
                let size = size.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16).expect("a chunk size");
                if size == 0 {
                    while !self.line().await.is_empty() {}
                    return body;
                }
                body.extend(self.exactly(size).await);
                assert!(self.line().await.is_empty(), "chunk not followed by CRLF");
            }
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        (status, headers)
    }
}

/// HTTP/2 with prior knowledge (h2c) on the gateway's plain listener, for adversarial tests.
pub mod h2c {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http::Request;
    use http_body_util::Empty;
    use hyper::client::conn::http2::SendRequest;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::net::TcpStream;

    use super::{collect, Answer};

    /// An HTTP/2 connection to `addr`, no TLS, no upgrade: the client speaks HTTP/2 at once.
    pub async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
        let tcp = TcpStream::connect(addr).await.expect("connect to gateway");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2c handshake");
        tokio::spawn(connection);
        sender
    }

    /// Sends `request` on a fresh h2c connection and collects the answer.
    pub async fn send(addr: SocketAddr, request: Request<Empty<Bytes>>) -> Answer {
        let mut sender = connect(addr).await;
        let response = sender.send_request(request).await.expect("h2 response");
        assert_eq!(response.version(), http::Version::HTTP_2);
        collect(response).await
    }
}

// ----------------------------------------------------------------------------------------
// The admin listener.

pub mod admin {
    use super::{empty, get, send, Answer, Gateway};

    /// `GET path` on the admin listener.
    pub async fn get_admin(gateway: &Gateway, path: &str) -> Answer {
        let request = get(gateway.admin, path).body(empty()).expect("request");
        send(gateway.admin, request).await
    }

    /// `POST /reload`, with `Authorization: Bearer {token}` when given.
    pub async fn post_reload(gateway: &Gateway, token: Option<&str>) -> Answer {
        let mut request = get(gateway.admin, "/reload").method("POST");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        send(gateway.admin, request.body(empty()).expect("request")).await
    }

    /// The OpenMetrics text of `/metrics`.
    pub async fn metrics(gateway: &Gateway) -> String {
        let answer = get_admin(gateway, "/metrics").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.text()
    }

    /// The value of the sample written exactly as `series` (`name{labels}`); 0 when absent.
    pub fn sample(metrics: &str, series: &str) -> f64 {
        metrics
            .lines()
            .filter_map(|line| line.strip_prefix(series))
            .find_map(|rest| rest.strip_prefix(' '))
            .map_or(0.0, |value| value.parse().expect("a number"))
    }
}
