//! Ambiguous request targets are answered locally with 400 and never reach the upstream; the
//! route is chosen by longest segment-boundary prefix. (The full table lives in `path.rs`.)

mod support;

use support::{config_text, empty, get, raw, send, Gateway, Upstream};

#[tokio::test]
async fn ambiguous_targets_are_refused_before_the_upstream() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    for target in [
        "/api/../hub/api/rest/users",
        "/hub/api/rest/oauth2/../../users",
        "/api/%2e%2e/hub",
        "/api/%2F..%2Fhub",
        "/api/issues;jsessionid=1",
        "/api//issues",
        "/API/issues",
        "/Hub/Api/rest/users",
        "/%61pi/issues",
        "/api/%252e%252e/x",
    ] {
        let answer = send(
            gateway.addr,
            get(gateway.addr, target).body(empty()).expect("req"),
        )
        .await;
        assert_eq!(answer.status, 400, "{target}");
        let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
        assert_eq!(body["error"], "invalid_request", "{target}");
        assert!(answer.headers.get("www-authenticate").is_none(), "{target}");
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
}

#[tokio::test]
async fn connect_asterisk_and_foreign_absolute_targets_are_answered_locally() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let host = gateway.addr;
    for request in [
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".to_string(),
        format!("OPTIONS * HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET http://evil.example/api/issues HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET /api/issues HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n"),
        "GET /api/issues HTTP/1.1\r\n\r\n".to_string(),
    ] {
        let head = raw(gateway.addr, request.as_bytes()).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{request:?} -> {head}");
        // The gateway's own answer, not a parser's bare 400.
        assert!(head.contains("content-type: application/json"), "{head}");
    }
    let same = format!("GET http://{host}/issues HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let head = raw(gateway.addr, same.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].target, "/issues",
        "absolute-form goes out in origin-form"
    );
}

#[tokio::test]
async fn look_alikes_stay_legal_and_a_path_without_route_is_404() {
    let sim = hubgate::sim::Sim::start().await.expect("simulator");
    let gateway = Gateway::start(&config_text(sim.addr(), "")).await;
    let token = format!("Bearer {}", sim.demo().youtrack_only);
    for target in [
        "/apix",
        "/api-internal",
        "/api/",
        "/issue/DEMO-1/%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
    ] {
        let request = get(gateway.addr, target)
            .header("authorization", &token)
            .body(empty())
            .expect("req");
        let answer = send(gateway.addr, request).await;
        assert_eq!(answer.status, 200, "{target}");
        let echoed: serde_json::Value = serde_json::from_slice(&answer.body).expect("echo");
        assert_eq!(echoed["target"], target);
    }
    let upstream = Upstream::start().await;
    let without_root = config_text(upstream.addr, "")
        .replace("[[routes]]\nprefix = \"/\"\nupstream = \"youtrack\"\n", "");
    let gateway = Gateway::start(&without_root).await;
    let answer = send(
        gateway.addr,
        get(gateway.addr, "/favicon.ico")
            .body(empty())
            .expect("req"),
    )
    .await;
    assert_eq!(answer.status, 404);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let huge = "a".repeat(64 * 1024);
    let request = format!("GET /api/issues HTTP/1.1\r\nHost: gw\r\nX-Huge: {huge}\r\n\r\n");
    let head = raw(gateway.addr, request.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /api/issues HTTP/1.1\r\nHost: gw\r\n{many}\r\n");
    let head = raw(gateway.addr, request.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    assert!(upstream.seen().is_empty());
}
