//! Connection limits: slow headers cut at `header_read_timeout`, idle connections closed at
//! `idle_timeout`, connections beyond `max_connections` refused. Time is paused and moved by
//! tokio, never waited out.

mod support;

use std::time::Duration;

use support::{config_text, read_response_head, Gateway, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Reads until the server closes the connection; returns what arrived.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
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
}
