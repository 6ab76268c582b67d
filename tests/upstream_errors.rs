//! When the upstream fails: refused → 502, stalled → 504 at `response_timeout`.

mod support;

use std::time::Duration;

use support::{config_text, empty, get, send, Gateway, Upstream};
use tokio::net::TcpListener;

#[tokio::test]
async fn an_upstream_that_refuses_connections_is_a_502() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let gateway = Gateway::start(&config_text(closed, "")).await;
    let answer = send(
        gateway.addr,
        get(gateway.addr, "/issues").body(empty()).expect("req"),
    )
    .await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json body");
    assert_eq!(body["error"], "bad_gateway");
    assert!(
        !answer.text().contains(&closed.to_string()),
        "leaks the upstream address"
    );
    assert!(answer.headers.get("www-authenticate").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_stalled_upstream_is_a_504_at_response_timeout() {
    let upstream = Upstream::start().await;
    let text = config_text(upstream.addr, "").replace(
        "[services.youtrack]",
        "response_timeout = \"7s\"\n\n[services.youtrack]",
    );
    let gateway = Gateway::start(&text).await;
    let started = tokio::time::Instant::now();
    let answer = send(
        gateway.addr,
        get(gateway.addr, "/stall").body(empty()).expect("req"),
    )
    .await;
    assert_eq!(answer.status, 504);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json body");
    assert_eq!(body["error"], "gateway_timeout");
    assert!(started.elapsed() >= Duration::from_secs(7));
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(upstream.last().target, "/stall");
}
