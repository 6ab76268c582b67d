//! Forwarding: byte-exact targets and credentials, streamed bodies, header hygiene both ways,
//! `X-Forwarded-*`, WebSocket upgrades.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hubgate::sim::Sim;
use support::{empty, get, send, ChannelBody, Gateway, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the simulator's echo says arrived.
struct Echoed(serde_json::Value);

impl Echoed {
    async fn of(answer: support::Answer) -> Echoed {
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.headers["x-sim"], "echo");
        Echoed(serde_json::from_slice(&answer.body).expect("echo JSON"))
    }
    fn target(&self) -> &str {
        self.0["target"].as_str().expect("target")
    }
    fn headers(&self, name: &str) -> Vec<&str> {
        let all = self.0["headers"].as_array().expect("headers");
        all.iter()
            .filter(|pair| pair[0] == name)
            .filter_map(|pair| pair[1].as_str())
            .collect()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).first().copied()
    }
}

#[tokio::test]
async fn path_query_and_authorization_arrive_byte_for_byte() {
    let sim = Sim::start().await.expect("simulator");
    let gateway = Gateway::start(&support::config_text(sim.addr(), "")).await;
    let targets = [
        "/api/issues?fields=id,summary,customFields(name,value(name))&query=%23Unresolved%20for:%20me&$top=10",
        "/issue/DEMO-1/%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
        "/api/admin/users?q=a%2Fb&x=..&y=%zz&z=+",
        "/hub/api/rest/oauth2/auth?response_type=code&client_id=x",
        "/api/",
    ];
    // A real-shape permanent token (`:` and `=`) and a multi-scope OAuth token (spaces, `;`,
    // `+`, `/`, `=`), as the simulated Hub minted them.
    let demo = sim.demo();
    let tokens = [&demo.youtrack_only, &demo.both_oauth];
    for (target, token) in targets.iter().zip(tokens.iter().cycle()) {
        let authorization = format!("Bearer {token}");
        let request = get(gateway.addr, target)
            .header("authorization", &authorization)
            .body(empty())
            .expect("request");
        let echoed = Echoed::of(send(gateway.addr, request).await).await;
        assert_eq!(echoed.target(), *target);
        assert_eq!(echoed.headers("authorization"), [authorization.as_str()]);
    }
}

#[tokio::test]
async fn a_request_body_streams_to_the_upstream_before_it_is_complete() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let (tx, body) = ChannelBody::new();
    let request = Request::post("/attachments/DEMO-1")
        .header("host", gateway.addr.to_string())
        .header("content-length", (1024 * 1024).to_string())
        .body(body)
        .expect("request");
    let response = tokio::spawn(send(gateway.addr, request));
    let chunk = Bytes::from(vec![b'a'; 64 * 1024]);
    tx.send(chunk.clone()).await.expect("first chunk");
    // Only a gateway that streams lets the upstream see bytes while the client still holds
    // back fifteen sixteenths of the body.
    upstream.first_bytes.notified().await;
    for _ in 1..16 {
        tx.send(chunk.clone()).await.expect("next chunk");
    }
    drop(tx);
    let answer = response.await.expect("client task");
    assert_eq!(answer.status, 200);
    assert_eq!(upstream.last().body_len, 1024 * 1024);
}

#[tokio::test]
async fn a_ten_megabyte_response_streams_to_the_client() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let total = 10 * 1024 * 1024;
    let stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = get(gateway.addr, &format!("/big?bytes={total}"))
        .body(empty())
        .expect("request");
    let response = sender.send_request(request).await.expect("response head");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    // The upstream holds the rest until the client has the first chunk: a gateway that
    // buffered the whole body would never deliver it.
    let first = body.frame().await.expect("a first frame").expect("frame");
    let mut received = first.data_ref().map_or(0, Bytes::len);
    assert!(received > 0);
    upstream.release.notify_one();
    while let Some(frame) = body.frame().await {
        received += frame.expect("frame").data_ref().map_or(0, Bytes::len);
    }
    assert_eq!(received, total);
}

#[tokio::test]
async fn hop_by_hop_and_spoofed_headers_never_reach_the_upstream() {
    let sim = Sim::start().await.expect("simulator");
    let gateway = Gateway::start(&support::config_text(sim.addr(), "")).await;
    let host = gateway.addr.to_string();
    let authorization = format!("Bearer {}", sim.demo().youtrack_only);
    let request = get(gateway.addr, "/api/issues")
        .header("authorization", &authorization)
        .header("connection", "keep-alive, X-Client-Secret")
        .header("x-client-secret", "s3cret")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("trailer", "x-checksum")
        .header("proxy-authorization", "Basic dXNlcjpwYXNz")
        .header("proxy-connection", "keep-alive")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQAAP__")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-prefix", "/admin")
        .header("forwarded", "for=6.6.6.6;proto=https")
        .header("x-real-ip", "6.6.6.6")
        .header("x_forwarded_for", "7.7.7.7")
        .header("x-request-id", "client-id-42")
        .header("x-kept", "yes")
        .body(empty())
        .expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.headers["x-request-id"], "client-id-42");
    let echoed = Echoed::of(answer).await;
    for name in [
        "connection",
        "x-client-secret",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "upgrade",
        "http2-settings",
        "forwarded",
        "x-real-ip",
        "x_forwarded_for",
        "x-forwarded-prefix",
    ] {
        assert_eq!(echoed.header(name), None, "{name} reached the upstream");
    }
    assert_eq!(echoed.headers("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(echoed.headers("x-forwarded-proto"), ["http"]);
    assert_eq!(echoed.headers("x-forwarded-host"), [host.as_str()]);
    assert_eq!(echoed.headers("host"), [host.as_str()]);
    assert_eq!(echoed.headers("x-request-id"), ["client-id-42"]);
    assert_eq!(echoed.headers("authorization"), [authorization.as_str()]);
    assert_eq!(echoed.headers("x-kept"), ["yes"]);
}

#[tokio::test]
async fn an_insane_request_id_is_replaced() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let request = get(gateway.addr, "/")
        .header("x-request-id", "a b\"<script>")
        .body(empty())
        .expect("request");
    let answer = send(gateway.addr, request).await;
    let sent = upstream.last();
    let id = sent.header("x-request-id").expect("a request id");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(answer.headers["x-request-id"], id);
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_stripped() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let request = get(gateway.addr, "/hop").body(empty()).expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.status, 200);
    for name in [
        "x-upstream-secret",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "trailer",
        "upgrade",
    ] {
        assert!(
            answer.headers.get(name).is_none(),
            "{name} reached the client"
        );
    }
    assert_eq!(answer.headers["x-kept"], "yes");
    assert!(answer.headers.get("connection").is_none());
    assert_eq!(answer.text(), "hop");
}

#[tokio::test]
async fn connection_naming_a_forwarded_header_is_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    for listed in ["Authorization", "host", "Content-Length", "X-Forwarded-For"] {
        let request = get(gateway.addr, "/api/issues")
            .header(
                "authorization",
                "Bearer perm:cm9vdA==.NDctMQ==.AbCdEfGhIjKlMnOpQrStUvWxYz0123",
            )
            .header("connection", format!("keep-alive, {listed}"))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let answer = send(gateway.addr, request).await;
        assert_eq!(answer.status, 400, "Connection: {listed}");
        let challenge = answer.headers["www-authenticate"].to_str().expect("ascii");
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{challenge}"
        );
    }
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn websocket_upgrade_round_trip() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        gateway.addr
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let head = support::read_response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    assert!(lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="));
    stream
        .write_all(&support::HELLO_FRAME)
        .await
        .expect("frame");
    let mut echo = [0u8; 11];
    stream.read_exact(&mut echo).await.expect("echo");
    assert_eq!(echo, support::HELLO_FRAME);
    let seen = upstream.last();
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(seen.header("connection"), Some("upgrade"));
    assert_eq!(
        seen.header("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
}

#[tokio::test]
async fn an_h2c_upgrade_is_forwarded_as_a_plain_request() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let request = get(gateway.addr, "/")
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQAAP__")
        .body(empty())
        .expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.header("upgrade"), None);
    assert_eq!(seen.header("http2-settings"), None);
}

#[tokio::test]
async fn a_connection_header_with_non_ascii_bytes_is_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let mut request = get(gateway.addr, "/api/issues")
        .header("x-client-secret", "s3cret")
        .body(empty())
        .expect("request");
    let value = http::HeaderValue::from_bytes(b"x-client-secret, \x80").expect("obs-text value");
    request.headers_mut().insert("connection", value);
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.status, 400);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn expect_100_continue_is_honoured_and_other_expectations_are_417() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let request = Request::post("/issues/new")
        .header("host", gateway.addr.to_string())
        .header("expect", "100-continue")
        .body(Full::new(Bytes::from_static(b"{\"summary\":\"x\"}")))
        .expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.body_len, 15);
    assert_eq!(
        seen.header("expect"),
        None,
        "the gateway answers Expect itself"
    );
    let request = Request::post("/issues/new")
        .header("host", gateway.addr.to_string())
        .header("expect", "magic")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.status, 417);
    assert_eq!(upstream.seen().len(), 1);
}

/// An upstream that frames its body with chunked encoding and also sends a (wrong)
/// Content-Length: the gateway must not pass the length on with a re-framed body.
#[tokio::test]
async fn a_response_with_transfer_encoding_and_content_length_is_reframed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upstream = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let head = support::read_response_head(&mut stream).await;
        assert!(head.starts_with("GET /"), "{head}");
        let response =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n\
            5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        stream.write_all(response).await.expect("write response");
    });
    let gateway = Gateway::start(&support::config_text(upstream, "")).await;
    let answer = send(
        gateway.addr,
        get(gateway.addr, "/x").body(empty()).expect("req"),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "hello world");
    assert_ne!(
        answer.headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"3"[..])
    );
}
