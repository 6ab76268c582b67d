//! Graceful shutdown (what SIGTERM and SIGINT trigger): no new connections, in-flight requests
//! finish, and the drain is bounded by `shutdown_timeout`.

mod support;

use std::time::Duration;

use support::{config_text, empty, get, send, Gateway, Upstream};
use tokio::net::TcpStream;

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let request = get(gateway.addr, "/hold").body(empty()).expect("request");
    let in_flight = tokio::spawn(send(gateway.addr, request));
    upstream.arrived.notified().await;
    gateway.shutdown.shutdown();
    // New connections are refused once the listener is closed (bounded polling, no sleep).
    let mut refused = false;
    for _ in 0..10_000 {
        if TcpStream::connect(gateway.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the listener still accepts after shutdown");
    assert!(
        !gateway.stopped.is_finished(),
        "stopped with a request in flight"
    );
    upstream.release.notify_one();
    let answer = in_flight.await.expect("client task");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "released");
    assert_eq!(gateway.stopped.await.expect("server task"), 0);
}

#[tokio::test(start_paused = true)]
async fn the_drain_is_bounded_by_shutdown_timeout() {
    let upstream = Upstream::start().await;
    let text = config_text(upstream.addr, "shutdown_timeout = \"5s\"");
    let gateway = Gateway::start(&text).await;
    stall_one_request(&gateway, &upstream).await;
    let started = tokio::time::Instant::now();
    gateway.shutdown.shutdown();
    let stopped = tokio::time::timeout(Duration::from_secs(3600), gateway.stopped).await;
    let cut = stopped.expect("the server stopped").expect("server task");
    assert_eq!(cut, 1);
    assert!(started.elapsed() >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_forced_shutdown_skips_the_rest_of_the_drain() {
    let upstream = Upstream::start().await;
    let text = config_text(upstream.addr, "shutdown_timeout = \"1h\"");
    let gateway = Gateway::start(&text).await;
    stall_one_request(&gateway, &upstream).await;
    let started = tokio::time::Instant::now();
    gateway.shutdown.shutdown();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        !gateway.stopped.is_finished(),
        "the drain ended with a request in flight"
    );
    gateway.shutdown.force();
    let stopped = tokio::time::timeout(Duration::from_secs(3600), gateway.stopped).await;
    stopped.expect("the server stopped").expect("server task");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// Sends a request the upstream never answers and returns once the upstream has it (bounded
/// polling, no sleep).
async fn stall_one_request(gateway: &Gateway, upstream: &Upstream) {
    let request = get(gateway.addr, "/stall").body(empty()).expect("request");
    tokio::spawn(send(gateway.addr, request));
    for _ in 0..100_000 {
        if !upstream.seen().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        upstream.seen().len(),
        1,
        "the request never reached the upstream"
    );
}
