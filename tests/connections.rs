//! Connection limits: slow headers cut at `header_read_timeout`, idle connections closed at
//! `idle_timeout`, connections beyond `max_connections` refused. Time is paused and moved by
//! tokio, never waited out.

mod support;

use std::time::Duration;

use support::{config_text, read_response_head, Gateway, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Reads until the server closes the connection (within an hour of paused time, so a gateway
/// that never closes fails the test instead of hanging it); returns what arrived.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), read_all)
        .await
        .expect("the gateway closed the connection");
    got
}

#[tokio::test(start_paused = true)]
async fn a_client_trickling_headers_is_cut_at_header_read_timeout() {
    let upstream = Upstream::start().await;
    let extra = "header_read_timeout = \"4s\"\nidle_timeout = \"600s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(b"GET /api/issues HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .expect("write");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stream.write_all(b"a").await.expect("trickle");
    }
    until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(upstream.seen().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_at_idle_timeout() {
    let upstream = Upstream::start().await;
    let extra = "header_read_timeout = \"600s\"\nidle_timeout = \"30s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream
        .write_all(b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .expect("write");
    let head = read_response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answered = Instant::now();
    until_closed(&mut stream).await;
    let idle = answered.elapsed();
    assert!(idle >= Duration::from_secs(30), "{idle:?}");
    assert!(idle < Duration::from_secs(31), "{idle:?}");
}

#[tokio::test]
async fn connections_beyond_max_connections_are_refused() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&config_text(upstream.addr, "max_connections = 2")).await;
    let request = b"GET /x HTTP/1.1\r\nHost: gw\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let head = read_response_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        open.push(stream);
    }
    let mut third = TcpStream::connect(gateway.addr).await.expect("tcp connect");
    let _ = third.write_all(request).await;
    assert!(
        until_closed(&mut third).await.is_empty(),
        "the third connection was served"
    );
    assert_eq!(upstream.seen().len(), 2);
    // The two admitted connections keep working.
    for stream in &mut open {
        stream.write_all(request).await.expect("write");
        let head = read_response_head(stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    // Closing one frees its slot (the gateway notices the close asynchronously: retry).
    drop(open.pop());
    let mut served = false;
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("tcp connect");
        let _ = stream.write_all(request).await;
        if read_response_head(&mut stream)
            .await
            .starts_with("HTTP/1.1 200")
        {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "the freed slot was never reused");
}

#[tokio::test(start_paused = true)]
async fn a_response_the_upstream_stalls_mid_body_is_dropped_after_two_idle_periods() {
    let upstream = Upstream::start().await;
    let extra = "header_read_timeout = \"600s\"\nidle_timeout = \"30s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
    stream
        .write_all(b"GET /big?bytes=1048576 HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .expect("write");
    let head = read_response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let started = Instant::now();
    let rest = until_closed(&mut stream).await;
    assert!(
        head.len() + rest.len() < 1024 * 1024,
        "the whole body arrived"
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(60), "{waited:?}");
    assert!(waited < Duration::from_secs(61), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_websocket_tunnel_holds_its_connection_slot_until_it_goes_silent() {
    let upstream = Upstream::start().await;
    let extra = "max_connections = 1\nidle_timeout = \"45s\"";
    let gateway = Gateway::start(&config_text(upstream.addr, extra)).await;
    let mut tunnel = support::open_websocket(gateway.addr)
        .await
        .expect("websocket");
    tunnel
        .write_all(&support::HELLO_FRAME)
        .await
        .expect("frame");
    let mut echo = [0u8; 11];
    tunnel.read_exact(&mut echo).await.expect("echo");
    let silent_since = Instant::now();
    assert!(
        support::open_websocket(gateway.addr).await.is_err(),
        "a second connection got past max_connections = 1 while the tunnel was open"
    );
    until_closed(&mut tunnel).await;
    let silent = silent_since.elapsed();
    assert!(silent >= Duration::from_secs(45), "{silent:?}");
    assert!(silent < Duration::from_secs(46), "{silent:?}");
}
