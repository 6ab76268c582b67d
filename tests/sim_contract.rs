//! The simulator as an upstream and as a misbehaving Hub: the echo every other path answers
//! with (raw target, headers in order, body hash), the WebSocket echo at `/sim/ws`, every
//! `HubFault` on both probes, and Hub and upstream latency on tokio's paused clock.
//! Tokens and the Hub API are covered in `sim_tokens.rs`, `sim_probes.rs`, `sim_hub_api.rs`.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hubgate::sim::{HubFault, Sim};
use serde_json::{json, Value};
use support::sim::{fetch, json_body, sha256_hex, Auth, HUB_ME, YOUTRACK_ME};
use support::{raw, send, Answer, ChannelBody, HELLO_FRAME};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

fn echoed(answer: &Answer) -> Value {
    let body = json_body(answer, 200);
    assert_eq!(
        answer.headers.get("x-sim").map(|v| v.as_bytes()),
        Some(&b"echo"[..])
    );
    body
}

#[tokio::test]
async fn the_echo_reports_the_raw_target_headers_in_order_and_the_body_hash() {
    let sim = Sim::start().await.expect("sim starts");
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for target in [
        "/api/issues?x=%2F&y=a%20b&z=a+b",
        "/rest/a/../b//c;v=1?%5b=1&q=%7E~",
        "/youtrack/api/admin/projects?$top=-1&fields=id,name(x)",
    ] {
        let request = Request::post(target)
            .header("host", sim.addr().to_string())
            .header("x-second", "2")
            .header("authorization", "Bearer a b;1.c+/=")
            .header("x-first", "1")
            .header("x-first", "one")
            .header("content-length", payload.len())
            .body(Full::new(Bytes::from(payload.clone())))
            .expect("request");
        let body = echoed(&send(sim.addr(), request).await);
        assert_eq!(body["method"], "POST");
        assert_eq!(body["target"], target, "byte-exact");
        assert_eq!(
            body["headers"],
            json!([
                ["host", sim.addr().to_string()],
                ["x-second", "2"],
                ["authorization", "Bearer a b;1.c+/="],
                ["x-first", "1"],
                ["x-first", "one"],
                ["content-length", payload.len().to_string()],
            ])
        );
        assert_eq!(body["body_length"], payload.len());
        assert_eq!(body["body_sha256"], sha256_hex(&payload));
    }
}

#[tokio::test]
async fn the_echo_hashes_a_chunked_body_and_an_empty_one() {
    let sim = Sim::start().await.expect("sim starts");
    let (tx, body) = ChannelBody::new();
    let request = Request::put("/api/upload")
        .header("host", sim.addr().to_string())
        .body(body)
        .expect("request");
    let chunks = [
        Bytes::from_static(b"first,"),
        Bytes::from(vec![b'x'; 70_000]),
    ];
    let whole: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let sending = tokio::spawn(async move {
        for chunk in chunks {
            tx.send(chunk).await.expect("the echo reads");
        }
    });
    let body = echoed(&send(sim.addr(), request).await);
    sending.await.expect("sent");
    assert_eq!(body["method"], "PUT");
    let encoding = json!(["transfer-encoding", "chunked"]);
    assert!(
        body["headers"]
            .as_array()
            .expect("headers")
            .contains(&encoding),
        "{body}"
    );
    assert_eq!(body["body_length"], whole.len());
    assert_eq!(body["body_sha256"], sha256_hex(&whole));

    let empty = echoed(&fetch(sim.addr(), "/api/issues", Auth::Anonymous).await);
    assert_eq!(
        (&empty["method"], &empty["body_length"]),
        (&json!("GET"), &json!(0))
    );
    assert_eq!(empty["body_sha256"], sha256_hex(b""));
}

/// A target written as raw bytes, with characters clients usually escape.
#[tokio::test]
async fn the_echo_reports_targets_byte_for_byte() {
    let sim = Sim::start().await.expect("sim starts");
    let target = "/api/issues?q=%22a%22&s={x}|^`";
    let request = format!("GET {target} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8(answer).expect("utf8");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body: Value = serde_json::from_str(body).expect("JSON echo");
    assert_eq!(body["target"], target);
}

#[tokio::test]
async fn websocket_echo_handshakes_echoes_and_closes() {
    let sim = Sim::start().await.expect("sim starts");
    let mut stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    // The key and accept value of RFC 6455 section 1.3.
    let handshake = "GET /sim/ws HTTP/1.1\r\nHost: sim\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(handshake.as_bytes()).await.expect("write");
    let head = support::read_response_head(&mut stream)
        .await
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");

    stream
        .write_all(&HELLO_FRAME)
        .await
        .expect("send text frame");
    let mut frame = [0u8; 7];
    stream.read_exact(&mut frame).await.expect("echoed frame");
    assert_eq!(frame, *b"\x81\x05Hello", "unmasked, same payload");

    // Close, status 1000, masked with 0x01020304.
    let close = [0x88, 0x82, 0x01, 0x02, 0x03, 0x04, 0x03 ^ 0x01, 0xe8 ^ 0x02];
    stream.write_all(&close).await.expect("send close");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.expect("close answered");
    assert_eq!(rest, [0x88, 0x02, 0x03, 0xe8]);

    let plain = fetch(sim.addr(), "/sim/ws", Auth::Anonymous).await;
    assert_eq!(plain.status, 400);
}

/// Every fault on both probes, and never on the echo.
#[tokio::test]
async fn hub_faults_hit_both_probes_and_spare_the_echo() {
    let sim = Sim::start().await.expect("sim starts");
    let token = sim.demo().both_oauth.clone();
    for probe in [HUB_ME, YOUTRACK_ME] {
        sim.set_hub_fault(Some(HubFault::Down));
        let request =
            format!("GET {probe} HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer {token}\r\n\r\n");
        assert_eq!(
            raw(sim.addr(), request.as_bytes()).await,
            "",
            "closed without an answer"
        );

        sim.set_hub_fault(Some(HubFault::Status(500)));
        let failed = json_body(&fetch(sim.addr(), probe, Auth::Bearer(&token)).await, 500);
        assert_eq!(failed["error_code"], 500);

        sim.set_hub_fault(Some(HubFault::Html));
        let html = fetch(sim.addr(), probe, Auth::Bearer(&token)).await;
        assert_eq!(html.status, 200);
        assert!(content_type(&html).starts_with("text/html"));
        assert!(html.text().contains("<html>"));

        sim.set_hub_fault(Some(HubFault::TruncatedJson));
        let cut = fetch(sim.addr(), probe, Auth::Bearer(&token)).await;
        assert_eq!(cut.status, 200);
        assert!(content_type(&cut).starts_with("application/json"));
        assert!(
            serde_json::from_slice::<Value>(&cut.body).is_err(),
            "{}",
            cut.text()
        );

        sim.set_hub_fault(Some(HubFault::Redirect));
        let moved = fetch(sim.addr(), probe, Auth::Bearer(&token)).await;
        assert_eq!(moved.status, 302);
        assert!(moved.headers.get("location").is_some_and(|l| !l.is_empty()));

        sim.set_hub_fault(None);
        json_body(&fetch(sim.addr(), probe, Auth::Bearer(&token)).await, 200);
    }
    for fault in [
        HubFault::Down,
        HubFault::Status(503),
        HubFault::Html,
        HubFault::Redirect,
    ] {
        sim.set_hub_fault(Some(fault));
        let echo = echoed(&fetch(sim.addr(), "/api/issues", Auth::Bearer(&token)).await);
        assert_eq!(echo["target"], "/api/issues", "{fault:?}");
    }
}

fn content_type(answer: &Answer) -> &str {
    answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// How long a request takes on tokio's clock.
async fn timed(sim: &Sim, target: &str, token: &str) -> Duration {
    let started = Instant::now();
    fetch(sim.addr(), target, Auth::Bearer(token)).await;
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn hub_latency_delays_hub_and_upstream_latency_delays_the_echo() {
    let sim = Sim::start().await.expect("sim starts");
    let token = sim.demo().both_oauth.clone();
    let hub = Duration::from_secs(7);
    sim.set_hub_latency(hub);
    assert!(timed(&sim, HUB_ME, &token).await >= hub);
    assert!(timed(&sim, YOUTRACK_ME, &token).await >= hub);
    assert!(timed(&sim, "/hub/api/rest/services", &token).await >= hub);
    assert!(
        timed(&sim, "/api/issues", &token).await < hub,
        "the echo is not Hub"
    );

    sim.set_hub_latency(Duration::ZERO);
    let upstream = Duration::from_secs(3);
    sim.set_upstream_latency(upstream);
    assert!(timed(&sim, "/api/issues", &token).await >= upstream);
    assert!(
        timed(&sim, HUB_ME, &token).await < upstream,
        "Hub is not the upstream"
    );
}
