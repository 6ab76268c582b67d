//! What a client can hold at the upstream is bounded: a request body that stops arriving is
//! cut at `server.request_body_timeout` (408) and its upstream connection closed; an upstream
//! has at most `max_connections` connections, and a request that finds them all busy waits
//! `queue_timeout` for one, then gets 503 — HTTP/2 streams waiting on their bodies included.
//! Time is tokio's, paused and moved.

mod support;

use std::time::Duration;

use http::Request;
use support::resources::CountingUpstream;
use support::{config_text, read_response_head, Gateway};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The test configuration in front of `upstream` with `server_extra` in `[server]` and
/// `upstream_extra` in `[upstreams.youtrack]`.
fn configured(upstream: &CountingUpstream, server_extra: &str, upstream_extra: &str) -> String {
    config_text(upstream.addr, server_extra).replace(
        "[upstreams.youtrack]\n",
        &format!("[upstreams.youtrack]\n{upstream_extra}\n"),
    )
}

#[tokio::test(start_paused = true)]
async fn a_request_body_that_never_arrives_is_cut_and_frees_the_upstream() {
    const CLIENTS: usize = 5;
    let upstream = CountingUpstream::start().await;
    let extra = "request_body_timeout = \"10s\"\nidle_timeout = \"600s\"";
    // Exactly as many upstream connections as stalled uploads: the next request is served
    // only if the gateway closed theirs.
    let limits = format!("max_connections = {CLIENTS}\nqueue_timeout = \"1s\"");
    let gateway = Gateway::start(&configured(&upstream, extra, &limits)).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = TcpStream::connect(gateway.addr).await.expect("connect");
        stream
            .write_all(b"POST /stall HTTP/1.1\r\nHost: gw\r\nContent-Length: 10000000\r\n\r\n")
            .await
            .expect("write");
        clients.push(stream);
    }
    upstream.wait_for(|c| c.in_flight == CLIENTS).await;
    let started = Instant::now();
    for stream in &mut clients {
        let head = tokio::time::timeout(Duration::from_secs(30), read_response_head(stream))
            .await
            .expect("an answer well before the upstream's response_timeout");
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(11),
        "cut after {waited:?}"
    );
    let mut next = TcpStream::connect(gateway.addr).await.expect("connect");
    let head = support::raw_on(&mut next, b"GET /after HTTP/1.1\r\nHost: gw\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(upstream.counts().connections, CLIENTS + 1);
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_an_upstreams_connections_wait_then_get_503() {
    let upstream = CountingUpstream::start().await;
    let limits = "max_connections = 2\nqueue_timeout = \"1s\"";
    let gateway = Gateway::start(&configured(&upstream, "", limits)).await;
    let get = |path: &'static str| {
        let addr = gateway.addr;
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let request = format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n");
            stream.write_all(request.as_bytes()).await.expect("write");
            let head = read_response_head(&mut stream).await;
            (head, stream)
        })
    };
    let held = [get("/hold"), get("/hold")];
    upstream.wait_for(|c| c.in_flight == 2).await;
    // A third waits for a connection; freed within queue_timeout, it is served.
    let waiting = get("/after");
    tokio::time::advance(Duration::from_millis(500)).await;
    upstream.release(1);
    let (head, _kept) = waiting.await.expect("task");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Both connections busy again: the next one waits a second, then gets 503.
    let again = get("/hold");
    upstream.wait_for(|c| c.in_flight == 2).await;
    let started = Instant::now();
    let (head, _) = get("/refused").await.expect("task");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        upstream.counts().connections,
        2,
        "never more than two connections"
    );
    upstream.release(2);
    for task in held.into_iter().chain([again]) {
        let _ = task.await;
    }
}

#[tokio::test(start_paused = true)]
async fn http2_streams_waiting_on_their_bodies_count_against_the_upstream() {
    const STREAMS: usize = 10;
    let upstream = CountingUpstream::start().await;
    let server = "request_body_timeout = \"10s\"\nidle_timeout = \"600s\"";
    let limits = "max_connections = 3\nqueue_timeout = \"1s\"";
    let gateway = Gateway::start(&configured(&upstream, server, limits)).await;
    let tcp = TcpStream::connect(gateway.addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut pending = Vec::new();
    for _ in 0..STREAMS {
        let request = Request::post(format!("http://{}/stall", gateway.addr))
            .header("content-length", "1000000")
            .body(())
            .expect("request");
        let mut ready = client.clone().ready().await.expect("h2 ready");
        // The body is announced and never sent: the stream stays open.
        let (response, body) = ready.send_request(request, false).expect("stream");
        pending.push((response, body));
    }
    let mut statuses = Vec::new();
    let mut bodies = Vec::new();
    for (response, body) in pending {
        bodies.push(body);
        statuses.push(response.await.expect("an answer").status().as_u16());
    }
    statuses.sort_unstable();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    let cut = statuses.iter().filter(|s| **s == 408).count();
    assert_eq!((cut, busy), (3, STREAMS - 3), "{statuses:?}");
    assert!(
        upstream.counts().connections <= 3,
        "{:?}",
        upstream.counts()
    );
    drop(bodies);
}
