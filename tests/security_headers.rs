//! Adversarial headers over real sockets (`security.md`, "Headers and credentials"):
//! hop-by-hop abuse through `Connection`, hop-by-hop headers and `h2c` upgrades, spoofed
//! forwarding headers, oversized header sections, and uploads refused before their body is
//! read. Raw bytes wherever hyper's client would tidy up. The rule → test table is in
//! `security_paths.rs`.

mod support;

use support::adversarial::{request, RawConn, Rig};

/// A well-formed permanent token Hub never issued.
const UNKNOWN_TOKEN: &str = "perm:YWxpY2U=.bm9ib2R5.abcdefghijklmnopqrstuvwxyz0123";

#[tokio::test]
async fn connection_naming_a_header_the_gateway_must_forward_is_refused() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    for listed in [
        "X-Forwarded-For",
        "x-forwarded-host",
        "X-FORWARDED-PROTO",
        "X-Forwarded-Prefix",
        "Authorization",
        "AUTHORIZATION",
        "Host",
        "Content-Length",
        "keep-alive, Authorization",
        "close,host",
        "keep-alive\r\nConnection: X-Forwarded-For",
    ] {
        let headers = format!(
            "Host: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 2\r\n\
             Connection: {listed}\r\n"
        );
        let mut bytes = request("POST /api/issues HTTP/1.1", &headers);
        bytes.extend_from_slice(b"{}");
        let answer = rig.exchange(&bytes).await;
        rig.assert_refused(listed, answer.clone(), 400, "invalid_request");
        let challenge = answer.and_then(|a| a.header("www-authenticate").map(str::to_owned));
        let challenge = challenge.unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{listed}: {challenge}"
        );
    }
}

#[tokio::test]
async fn headers_named_in_connection_are_stripped() {
    let rig = Rig::start().await;
    let headers = format!(
        "Host: {}\r\nAuthorization: Bearer {}\r\nConnection: x-secret\r\nx-secret: s3cret\r\n\
         Connection: X-Other, keep-alive\r\nX-Other: 1\r\nX-Kept: yes\r\n",
        rig.host(),
        rig.token()
    );
    let answer = rig
        .exchange(&request("GET /api/issues HTTP/1.1", &headers))
        .await;
    assert_eq!(answer.expect("an answer").status, 200);
    let seen = rig.upstream.last();
    for name in ["x-secret", "x-other", "connection"] {
        assert_eq!(seen.header(name), None, "{name} reached the upstream");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
}

#[tokio::test]
async fn hop_by_hop_headers_and_h2c_never_reach_the_upstream() {
    let rig = Rig::start().await;
    let host = rig.host();
    let headers = format!(
        "Host: {host}\r\nAuthorization: Bearer {}\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\
         Proxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
         Trailer: X-Checksum\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         HTTP2-Settings: AAMAAABkAAQAAP__\r\nTransfer-Encoding: chunked\r\n",
        rig.token()
    );
    let mut conn = RawConn::open(rig.addr()).await;
    let mut bytes = request("POST /api/issues HTTP/1.1", &headers);
    bytes.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
    conn.write(&bytes).await;
    let answer = conn.response().await.expect("an answer");
    assert_eq!(answer.status, 200, "no switch to h2c: {answer:?}");
    // Still HTTP/1.1 on this connection.
    let next = format!("GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n");
    conn.write(next.as_bytes()).await;
    let answer = conn.response().await.expect("a second answer");
    assert!(answer.head.starts_with("HTTP/1.1 200"), "{answer:?}");
    let seen = rig.forwarded();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for name in [
        "proxy-authorization",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "connection",
        "http2-settings",
    ] {
        assert_eq!(seen[0].header(name), None, "{name} reached the upstream");
    }
    assert_eq!(seen[0].body_len, 5);
    // The upstream sees the gateway's own framing, once.
    assert!(
        seen[0].header_count("transfer-encoding") <= 1,
        "{:?}",
        seen[0]
    );
    assert_eq!(seen[0].header("content-length"), None);
}

#[tokio::test]
async fn a_refused_upload_is_answered_before_its_body_is_read() {
    let rig = Rig::start().await;
    let host = rig.host();
    // The body is itself a request: if the gateway ever read it as one, the upstream would
    // see `/smuggled`.
    let hidden = format!("GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let revoked = rig.sim.demo().revoked.clone();
    for (case, authorization, status, error, probes) in [
        ("no token", String::new(), 401, "unauthorized", false),
        (
            "a tab in the token",
            "Bearer ab\tcd".into(),
            400,
            "invalid_request",
            false,
        ),
        (
            "an unknown token",
            format!("Bearer {UNKNOWN_TOKEN}"),
            401,
            "invalid_token",
            true,
        ),
        (
            "a revoked token",
            format!("Bearer {revoked}"),
            401,
            "invalid_token",
            true,
        ),
    ] {
        let authorization = match authorization.as_str() {
            "" => String::new(),
            value => format!("Authorization: {value}\r\n"),
        };
        let headers = format!(
            "Host: {host}\r\n{authorization}Expect: 100-continue\r\nContent-Length: {}\r\n",
            hidden.len()
        );
        let probes_before = rig.sim.total_probes();
        let mut conn = RawConn::open(rig.addr()).await;
        conn.write(&request("POST /api/issues HTTP/1.1", &headers))
            .await;
        // Only the head was sent: the answer cannot depend on the body, and comes first.
        let answer = conn.response().await.expect("an answer without the body");
        assert_eq!(
            answer.status, status,
            "{case}: no 100 Continue first: {answer:?}"
        );
        assert_eq!(answer.gateway_error().as_deref(), Some(error), "{case}");
        assert_eq!(
            rig.sim.total_probes() > probes_before,
            probes,
            "{case}: Hub asked?"
        );
        // A client that sends the body anyway, then another request.
        let sentinel = format!("GET /sentinel HTTP/1.1\r\nHost: {host}\r\n\r\n");
        if conn.write(hidden.as_bytes()).await && conn.write(sentinel.as_bytes()).await {
            if let Some(next) = conn.response().await {
                assert_eq!(next.status, 200, "{case}: {next:?}");
                assert_eq!(rig.upstream.last().target, "/sentinel", "{case}");
            }
        }
        let targets: Vec<String> = rig.forwarded().into_iter().map(|s| s.target).collect();
        assert!(
            targets.iter().all(|t| t == "/sentinel"),
            "{case}: {targets:?}"
        );
    }
}

#[tokio::test]
async fn an_authorized_upload_gets_100_continue_after_the_check() {
    let rig = Rig::start().await;
    let headers = format!(
        "Host: {}\r\nAuthorization: Bearer {}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n",
        rig.host(),
        rig.token()
    );
    let mut conn = RawConn::open(rig.addr()).await;
    conn.write(&request("POST /api/issues HTTP/1.1", &headers))
        .await;
    let interim = conn.response().await.expect("100 Continue");
    assert_eq!(interim.status, 100, "{interim:?}");
    assert!(
        rig.sim.total_probes() > 0,
        "the token was checked before the body was asked for"
    );
    conn.write(b"hello").await;
    let answer = conn.response().await.expect("the upstream's answer");
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = rig.upstream.last();
    assert_eq!(seen.body_len, 5);
    assert_eq!(seen.header("expect"), None);
}

#[tokio::test]
async fn oversized_or_too_many_headers_are_431_before_hub() {
    let rig = Rig::start().await;
    let base = format!(
        "Host: {}\r\nAuthorization: Bearer {}\r\n",
        rig.host(),
        rig.token()
    );
    let line = "GET /api/issues HTTP/1.1";
    let huge = format!("{base}X-Huge: {}\r\n", "a".repeat(40 * 1024));
    let answer = rig
        .exchange(&request(line, &huge))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 431, "{answer:?}");
    // max_headers = 100: one field more is refused.
    let extra = |n: usize| -> String { (0..n).map(|i| format!("X-H{i}: v\r\n")).collect() };
    let too_many = format!("{base}{}", extra(99));
    let answer = rig
        .exchange(&request(line, &too_many))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(rig.sim.total_probes(), 0);
    assert!(rig.forwarded().is_empty());
    // 96 pass (the upstream, with hyper's default cap of 100, gets them plus the gateway's 4).
    let just_enough = format!("{base}{}", extra(94));
    let answer = rig
        .exchange(&request(line, &just_enough))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn client_forwarding_headers_never_reach_the_upstream() {
    let rig = Rig::start().await;
    let host = rig.host();
    let headers = format!(
        "Host: {host}\r\nForwarded: for=6.6.6.6;proto=https;host=evil.example\r\n\
         X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n\
         x-FORWARDED-host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n\
         X-Forwarded-Prefix: /admin\r\nX-Forwarded-Ssl: on\r\nX_Forwarded_For: 8.8.8.8\r\n\
         X_Real_IP: 8.8.8.8\r\nRemote_User: admin\r\nX-Kept: yes\r\n"
    );
    let answer = rig.exchange(&request("GET /x HTTP/1.1", &headers)).await;
    assert_eq!(answer.expect("an answer").status, 200);
    let seen = rig.upstream.last();
    for name in [
        "forwarded",
        "x-real-ip",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-ssl",
    ] {
        assert_eq!(seen.header(name), None, "{name} reached the upstream");
    }
    assert!(
        !seen.headers.iter().any(|(n, _)| n.contains('_')),
        "{seen:?}"
    );
    for (name, value) in [
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", host.as_str()),
    ] {
        assert_eq!(seen.header_count(name), 1, "{name}: {seen:?}");
        assert_eq!(seen.header(name), Some(value), "{name}");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
}

#[tokio::test]
async fn override_headers_that_backends_trust_never_reach_the_upstream() {
    let rig = Rig::start().await;
    let host = rig.host();
    let overrides = [
        ("X-Original-URL", "/hub/api/rest/users"),
        ("X-Rewrite-URL", "/hub/api/rest/users"),
        ("X-Original-URI", "/hub/api/rest/users"),
        ("X-Original-Host", "internal.example"),
        ("X-Original-Method", "DELETE"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "DELETE"),
        ("X-Host", "internal.example"),
    ];
    let mut headers = format!("Host: {host}\r\nX-Kept: yes\r\n");
    for (name, value) in overrides {
        headers.push_str(&format!("{name}: {value}\r\n"));
    }
    let answer = rig.exchange(&request("GET /x HTTP/1.1", &headers)).await;
    assert_eq!(answer.expect("an answer").status, 200);
    let seen = rig.upstream.last();
    for (name, _) in overrides {
        assert_eq!(
            seen.header(&name.to_ascii_lowercase()),
            None,
            "{name} reached the upstream"
        );
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
}
