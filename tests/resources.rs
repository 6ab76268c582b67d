//! Resource limits under abuse, proved by counting: what reaches the upstream, how much of it
//! at once, which streams and connections the gateway refuses, and that it keeps serving.
//! HTTP/2 goes through the `h2` client where a well-behaved client will do, and through raw
//! frames where the point is to send what such a client never would. Time is paused and moved
//! only where a limit is a duration, or to let the gateway's tasks run out; never waited out.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::Reason;
use http::{Request, StatusCode};
use support::resources::{
    frame, hpack_literal, request_block, rst_stream, CountingUpstream, Counts, RawH2, CANCEL,
    CONTINUATION, DATA, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, GOAWAY, HEADERS, PING,
    REFUSED_STREAM, RST_STREAM,
};
use support::{config_text, read_response_head, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP/2 connection with prior knowledge, driven in the background.
async fn h2_connect(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect to gateway");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// `GET http://{addr}{path}`, ready for more headers.
fn h2_get(addr: SocketAddr, path: &str) -> http::request::Builder {
    Request::get(format!("http://{addr}{path}"))
}

/// Sends `request` on its own stream and reads the answer to its end: the status, or the
/// stream's or connection's error.
async fn h2_status(
    client: &SendRequest<Bytes>,
    request: Request<()>,
) -> Result<StatusCode, h2::Error> {
    let mut client = client.clone().ready().await?;
    let (response, _) = client.send_request(request, true)?;
    let response = response.await?;
    let status = response.status();
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk?.len());
    }
    Ok(status)
}

/// Reads until the server closes the connection; returns what arrived.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The odd stream ids a client uses for its first `n` streams.
fn stream_ids(n: u32) -> Vec<u32> {
    (0..n).map(|i| 2 * i + 1).collect()
}

/// CVE-2023-44487: a client opens streams and resets them at once, so none counts against
/// `max_concurrent_streams`. The gateway must not pass each of them on: only a bounded number
/// reaches the upstream, the connection is cut, and a new connection is served.
#[tokio::test(start_paused = true)]
async fn rapid_reset_streams_reach_the_upstream_a_bounded_number_of_times() {
    const STREAMS: u32 = 5000;
    const MAX_STREAMS: usize = 10;
    // Streams a peer may reset before the server has taken them up: h2's default, which the
    // gateway leaves as it is.
    const PENDING_RESETS: usize = 20;
    let upstream = CountingUpstream::start().await;
    let extra = format!("max_concurrent_streams = {MAX_STREAMS}");
    let gateway = Gateway::start(&config_text(upstream.addr, &extra)).await;
    let block = request_block("POST", &gateway.addr.to_string(), "/stall");
    let mut attack = Vec::new();
    for id in stream_ids(STREAMS) {
        frame(&mut attack, HEADERS, END_HEADERS, id, &block);
        rst_stream(&mut attack, id, CANCEL);
    }
    let mut client = RawH2::connect(gateway.addr).await;
    // The server may close the connection before it has read all of it.
    let _ = client.send(&attack).await;
    let frames = client.until_closed().await;
    let goaway = frames
        .iter()
        .find(|f| f.kind == GOAWAY)
        .expect("the server closed the connection with GOAWAY");
    assert_eq!(goaway.error_code(), Some(ENHANCE_YOUR_CALM), "{goaway:?}");
    let processed = goaway.last_stream().expect("a GOAWAY").div_ceil(2);
    assert!(
        processed <= STREAMS / 50,
        "the server went through {processed} of {STREAMS} streams before it stopped"
    );
    // Whatever the gateway had started to forward is over once its tasks have run.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reached = upstream.counts().arrived;
    assert!(
        reached <= MAX_STREAMS + PENDING_RESETS,
        "{reached} of {STREAMS} reset streams reached the upstream"
    );
    let client = h2_connect(gateway.addr).await;
    let request = h2_get(gateway.addr, "/after").body(()).expect("request");
    assert_eq!(h2_status(&client, request).await.expect("served"), 200);
    assert_eq!(upstream.counts().arrived, reached + 1);
}

/// A client that honours the server's SETTINGS sees `max_concurrent_streams` and queues the
/// rest: all requests are served, never more than the limit at the upstream at once.
#[tokio::test]
async fn http2_streams_beyond_max_concurrent_streams_wait_their_turn() {
    const LIMIT: usize = 7;
    const REQUESTS: usize = 20;
    let upstream = CountingUpstream::start().await;
    let extra = format!("max_concurrent_streams = {LIMIT}");
    let gateway = Gateway::start(&config_text(upstream.addr, &extra)).await;
    let client = h2_connect(gateway.addr).await;
    // One exchange first: the server's SETTINGS precede its first answer.
    let first = h2_get(gateway.addr, "/first").body(()).expect("request");
    assert_eq!(h2_status(&client, first).await.expect("served"), 200);
    assert_eq!(client.current_max_send_streams(), LIMIT);
    let held: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let client = client.clone();
            let request = h2_get(gateway.addr, "/hold").body(()).expect("request");
            tokio::spawn(async move { h2_status(&client, request).await })
        })
        .collect();
    let counts = upstream.wait_for(|c| c.arrived > LIMIT).await;
    assert_eq!((counts.arrived, counts.in_flight), (1 + LIMIT, LIMIT));
    upstream.release(REQUESTS);
    for request in held {
        let status = request.await.expect("request task").expect("served");
        assert_eq!(status, 200);
    }
    let counts = upstream.counts();
    assert_eq!(counts.arrived, 1 + REQUESTS);
    assert_eq!(counts.max_in_flight, LIMIT);
}

/// A client that ignores the limit and opens all its streams at once: the ones past
/// `max_concurrent_streams` are refused (REFUSED_STREAM, safe to retry) and never forwarded.
#[tokio::test]
async fn streams_opened_past_max_concurrent_streams_are_refused_and_never_forwarded() {
    const LIMIT: usize = 7;
    const STREAMS: u32 = 20;
    let upstream = CountingUpstream::start().await;
    let extra = format!("max_concurrent_streams = {LIMIT}");
    let gateway = Gateway::start(&config_text(upstream.addr, &extra)).await;
    let block = request_block("GET", &gateway.addr.to_string(), "/hold");
    let ids = stream_ids(STREAMS);
    let mut opening = Vec::new();
    for &id in &ids {
        frame(&mut opening, HEADERS, END_HEADERS | END_STREAM, id, &block);
    }
    let mut client = RawH2::connect(gateway.addr).await;
    assert!(client.send(&opening).await, "the connection was closed");
    let mut refused = BTreeSet::new();
    while refused.len() < ids.len() - LIMIT {
        let frame = client
            .next_frame()
            .await
            .expect("the connection stays open");
        assert_ne!(frame.kind, GOAWAY, "{frame:?}");
        if frame.kind == RST_STREAM {
            assert_eq!(frame.error_code(), Some(REFUSED_STREAM), "{frame:?}");
            refused.insert(frame.stream);
        }
    }
    assert_eq!(refused, ids[LIMIT..].iter().copied().collect());
    let counts = upstream.wait_for(|c| c.arrived >= LIMIT).await;
    assert_eq!((counts.arrived, counts.in_flight), (LIMIT, LIMIT));
    upstream.release(LIMIT);
    let mut answered = BTreeSet::new();
    while answered.len() < LIMIT {
        let frame = client
            .next_frame()
            .await
            .expect("the connection stays open");
        assert!(![GOAWAY, RST_STREAM].contains(&frame.kind), "{frame:?}");
        if frame.kind == HEADERS {
            answered.insert(frame.stream);
        }
    }
    assert_eq!(answered, ids[..LIMIT].iter().copied().collect());
    let counts = upstream.counts();
    assert_eq!(counts.arrived, LIMIT);
    assert_eq!(counts.max_in_flight, LIMIT);
}

/// A header list over `max_header_bytes`, or with more fields than `max_headers`, is refused
/// on its stream and never forwarded; the connection goes on. A header block far beyond the
/// limit costs the whole connection. Either way the gateway keeps serving.
#[tokio::test]
async fn oversized_http2_header_lists_are_refused_before_the_upstream() {
    let upstream = CountingUpstream::start().await;
    let extra = "max_header_bytes = 8192\nmax_headers = 100";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let addr = gateway.addr;
    let client = h2_connect(addr).await;
    let large = h2_get(addr, "/large")
        .header("x-filler", "a".repeat(12 * 1024))
        .body(())
        .expect("request");
    match h2_status(&client, large).await {
        Ok(status) => assert_eq!(status, 431),
        Err(error) => assert_eq!(error.reason(), Some(Reason::REFUSED_STREAM), "{error}"),
    }
    let mut many = h2_get(addr, "/many");
    for n in 0..120 {
        many = many.header(format!("x-field-{n}"), "v");
    }
    let many = many.body(()).expect("request");
    assert_eq!(h2_status(&client, many).await.expect("answered"), 431);
    let after = h2_get(addr, "/after").body(()).expect("request");
    assert_eq!(h2_status(&client, after).await.expect("served"), 200);
    assert_eq!(upstream.counts().arrived, 1);

    let flooding = h2_connect(addr).await;
    let mut huge = h2_get(addr, "/huge");
    for n in 0..16 {
        huge = huge.header(format!("x-filler-{n}"), "b".repeat(8 * 1024));
    }
    let huge = huge.body(()).expect("request");
    let error = h2_status(&flooding, huge)
        .await
        .expect_err("a 128 KiB header list was answered");
    assert!(error.is_go_away() || error.is_io(), "{error}");
    let fresh = h2_connect(addr).await;
    let after = h2_get(addr, "/after").body(()).expect("request");
    assert_eq!(h2_status(&fresh, after).await.expect("served"), 200);
    assert_eq!(upstream.counts().arrived, 2);
}

/// CVE-2024-27316 and kin: a header block that never ends, one small CONTINUATION frame after
/// another. The connection is closed long before the flood ends; nothing is forwarded.
#[tokio::test]
async fn a_continuation_flood_closes_the_connection_before_the_upstream() {
    const CONTINUATIONS: usize = 10_000;
    let upstream = CountingUpstream::start().await;
    let gateway = Gateway::start(&config_text(upstream.addr, "")).await;
    let block = request_block("GET", &gateway.addr.to_string(), "/flood");
    let mut flood = Vec::new();
    frame(&mut flood, HEADERS, END_STREAM, 1, &block);
    for n in 0..CONTINUATIONS {
        let mut field = Vec::new();
        hpack_literal(&mut field, "x-more", &n.to_string());
        frame(&mut flood, CONTINUATION, 0, 1, &field);
    }
    let mut client = RawH2::connect(gateway.addr).await;
    let _ = client.send(&flood).await;
    let frames = client.until_closed().await;
    let goaway = frames
        .iter()
        .find(|f| f.kind == GOAWAY)
        .expect("the server closed the connection with GOAWAY");
    assert_eq!(goaway.error_code(), Some(ENHANCE_YOUR_CALM), "{goaway:?}");
    assert!(
        frames.iter().all(|f| f.kind != HEADERS),
        "the flooded request was answered"
    );
    assert_eq!(upstream.counts().arrived, 0);
    let client = h2_connect(gateway.addr).await;
    let request = h2_get(gateway.addr, "/after").body(()).expect("request");
    assert_eq!(h2_status(&client, request).await.expect("served"), 200);
    assert_eq!(upstream.counts().arrived, 1);
}

/// With `max_connections = 4` held, 200 more connections are each closed without a byte and
/// forward nothing, the admitted ones keep working, and the refusals take no slot: once the
/// admitted connections close, exactly four new ones fit again.
#[tokio::test]
async fn connections_beyond_max_connections_are_closed_unanswered_and_take_no_slot() {
    const MAX: usize = 4;
    const EXTRA: usize = 200;
    let upstream = CountingUpstream::start().await;
    let extra = format!("max_connections = {MAX}");
    let gateway = Gateway::start(&config_text(upstream.addr, &extra)).await;
    let request = b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n";
    let mut admitted = Vec::new();
    for _ in 0..MAX {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let head = read_response_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        admitted.push(stream);
    }
    let mut refused = Vec::with_capacity(EXTRA);
    for _ in 0..EXTRA {
        refused.push(TcpStream::connect(gateway.addr).await.expect("tcp connect"));
    }
    for stream in &mut refused {
        let _ = stream.write_all(request).await;
        let answer = read_to_close(stream).await;
        assert!(answer.is_empty(), "a refused connection got an answer");
    }
    assert_eq!(upstream.counts().arrived, MAX);
    for stream in &mut admitted {
        stream.write_all(request).await.expect("write");
        let head = read_response_head(stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    assert_eq!(upstream.counts().arrived, 2 * MAX);

    // The gateway notices the closes asynchronously: until it has, new connections are refused.
    drop(admitted);
    let mut again = Vec::new();
    let mut attempts = 0;
    while again.len() < MAX {
        attempts += 1;
        assert!(attempts <= 10_000, "only {} slots came back", again.len());
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        let _ = stream.write_all(request).await;
        if read_response_head(&mut stream)
            .await
            .starts_with("HTTP/1.1 200")
        {
            again.push(stream);
        } else {
            tokio::task::yield_now().await;
        }
    }
    let mut one_more = TcpStream::connect(gateway.addr).await.expect("connect");
    let _ = one_more.write_all(request).await;
    assert!(
        read_to_close(&mut one_more).await.is_empty(),
        "a connection got past max_connections after the flood"
    );
    assert_eq!(upstream.counts().arrived, 3 * MAX);
}

/// A client asks for a large body and stops reading after the head. No request is in flight
/// once the head is out, so after one `idle_timeout` the connection is asked to close; the
/// body cannot finish, and after a second `idle_timeout` without a byte the connection is
/// dropped, and with it the upstream response.
#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_after_two_idle_periods() {
    const BODY: usize = 256 << 20;
    let upstream = CountingUpstream::start().await;
    let extra = "header_read_timeout = \"600s\"\nidle_timeout = \"30s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let request = format!("GET /big?bytes={BODY} HTTP/1.1\r\nHost: gw\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let head = read_response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    tokio::time::sleep(Duration::from_secs(59)).await;
    let before = upstream.counts();
    assert_eq!(before.big_abandoned, 0, "dropped before two idle periods");
    assert!(before.big_bytes < BODY, "the whole body was taken");

    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = upstream.counts();
    assert_eq!(after.big_abandoned, 1, "still open after two idle periods");
    let rest = read_to_close(&mut stream).await;
    assert!(head.len() + rest.len() < BODY, "the whole body arrived");
}

/// What the upstream's tally says 59 and 61 seconds after an HTTP/2 client (`idle_timeout`
/// 30s) took the head and the first DATA of a large download and then stopped reading,
/// sending a PING every ten seconds when `ping` is set.
async fn stalled_http2_download(ping: bool) -> (Counts, Counts) {
    const BODY: usize = 256 << 20;
    let upstream = CountingUpstream::start().await;
    let extra = "idle_timeout = \"30s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let target = format!("/big?bytes={BODY}");
    let block = request_block("GET", &gateway.addr.to_string(), &target);
    let mut request = Vec::new();
    frame(&mut request, HEADERS, END_HEADERS | END_STREAM, 1, &block);
    let mut client = RawH2::connect(gateway.addr).await;
    assert!(client.send(&request).await, "the connection was closed");
    loop {
        let frame = client.next_frame().await.expect("the download started");
        if frame.kind == DATA {
            break;
        }
    }
    let mut pinging = Vec::new();
    frame(&mut pinging, PING, 0, 0, &[0; 8]);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        if ping {
            assert!(client.send(&pinging).await, "the connection was closed");
        }
    }
    tokio::time::sleep(Duration::from_secs(9)).await;
    let before = upstream.counts();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = upstream.counts();
    assert!(after.big_bytes < BODY, "the whole body was taken");
    (before, after)
}

/// The HTTP/2 form of the slow reader: it takes the head and the first window of DATA and
/// never opens the window again. The connection is dropped after two idle periods.
#[tokio::test(start_paused = true)]
async fn an_http2_client_that_stops_reading_is_dropped_after_two_idle_periods() {
    let (before, after) = stalled_http2_download(false).await;
    assert_eq!(before.big_abandoned, 0, "dropped before two idle periods");
    assert_eq!(after.big_abandoned, 1, "still open after two idle periods");
}

/// The same reader sending a PING every ten seconds: the PINGs and their ACKs move bytes but
/// no part of the response, so they must not keep the stalled download, its upstream
/// connection and its buffers alive.
#[tokio::test(start_paused = true)]
async fn an_http2_client_that_stops_reading_cannot_stay_open_by_pinging() {
    let (before, after) = stalled_http2_download(true).await;
    assert_eq!(before.big_abandoned, 0, "dropped before two idle periods");
    assert_eq!(after.big_abandoned, 1, "still open after two idle periods");
}
