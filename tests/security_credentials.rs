//! Adversarial credentials over real sockets (`security.md`, "Headers and credentials" and
//! "Secrets"): malformed, oversized and doubled `Authorization` headers, tokens in the query,
//! tokens on unprotected paths, and where a token may never show up (the log, the gateway's
//! answers). Raw bytes wherever hyper's client would refuse or tidy up the header. The
//! rule → test table is in `security_paths.rs`.

mod support;

use std::sync::{Arc, Mutex};

use hubgate::auth::cache::{fingerprint, token_hash};
use hubgate::sim::{HubFault, PermStyle};
use support::adversarial::{request, Rig};

/// A well-formed permanent token Hub never issued.
const UNKNOWN_TOKEN: &str = "perm:YWxpY2U=.bm9ib2R5.abcdefghijklmnopqrstuvwxyz0123";

#[tokio::test]
async fn token_syntax_is_checked_before_hub_is_asked() {
    let rig = Rig::start().await;
    let host = rig.host();
    let long = format!("Bearer {}", "a".repeat(4097));
    let gateway: [(&str, &[u8]); 7] = [
        ("4097 bytes", long.as_bytes()),
        ("a tab inside", b"Bearer perm:abc\tdef"),
        ("a tab after the scheme", b"Bearer\tperm:abc"),
        ("two spaces inside", b"Bearer perm:abc  def"),
        ("a byte >= 0x80", b"Bearer perm:abc\x80def"),
        ("nothing after the scheme", b"Bearer"),
        ("a colon after the scheme", b"Bearer:perm:abc"),
    ];
    let parser: [(&str, &[u8]); 4] = [
        ("a control character", b"Bearer perm:abc\x01def"),
        ("DEL", b"Bearer perm:abc\x7fdef"),
        ("NUL", b"Bearer perm:abc\x00def"),
        ("a bare CR", b"Bearer perm:abc\rdef"),
    ];
    for (by_gateway, cases) in [(true, &gateway[..]), (false, &parser[..])] {
        for (case, value) in cases {
            let mut bytes = format!("GET /api/issues HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
            bytes.extend_from_slice(b"Authorization: ");
            bytes.extend_from_slice(value);
            bytes.extend_from_slice(b"\r\n\r\n");
            let answer = rig.exchange(&bytes).await;
            if by_gateway {
                rig.assert_refused(case, answer, 400, "invalid_request");
            } else {
                let answer = answer.unwrap_or_else(|| panic!("{case}: no answer"));
                assert_eq!(answer.status, 400, "{case}: {answer:?}");
                assert_eq!(rig.sim.total_probes(), 0, "{case}");
                assert!(rig.forwarded().is_empty(), "{case}");
            }
        }
    }
    // The cap is 4096 bytes: that long a token is Hub's to judge.
    let longest = format!(
        "Authorization: Bearer {}\r\nHost: {host}\r\n",
        "a".repeat(4096)
    );
    let answer = rig
        .exchange(&request("GET /api/x HTTP/1.1", &longest))
        .await;
    assert_eq!(answer.expect("an answer").status, 401);
    assert!(rig.sim.total_probes() > 0);
    // The scheme in any case, several spaces, a token with spaces: forwarded untouched.
    let value = format!("bEaReR   {}", rig.sim.demo().both_oauth);
    let headers = format!("Host: {host}\r\nAuthorization: {value}\r\n");
    let answer = rig
        .exchange(&request("GET /api/x HTTP/1.1", &headers))
        .await;
    assert_eq!(answer.expect("an answer").status, 200);
    assert_eq!(
        rig.upstream.last().header("authorization"),
        Some(value.as_str())
    );
}

#[tokio::test]
async fn a_token_in_the_query_never_reaches_youtrack() {
    let route = "prefix = \"/api\"\nupstream = \"youtrack\"\nservice = \"youtrack\"\n";
    let anonymous =
        |text: String| text.replacen(route, &format!("{route}allow_anonymous = true\n"), 1);
    let rig = Rig::configured(anonymous).await;
    let (host, token) = (rig.host(), rig.token());
    // `/` is public and `/api` lets anonymous requests through: only this rule stops these.
    for target in [
        format!("/api/issues?access_token={token}"),
        format!("/api/issues?ACCESS_TOKEN={token}"),
        format!("/api/issues?x=1&access%5Ftoken={token}"),
        format!("/api/issues?x=1;access_token={token}"),
        format!("/?access_token={token}"),
        format!("/rest/issues?access_token={token}"),
    ] {
        let line = format!("GET {target} HTTP/1.1");
        let answer = rig
            .exchange(&request(&line, &format!("Host: {host}\r\n")))
            .await;
        rig.assert_refused(&target, answer, 401, "unauthorized");
    }
    let header = format!("Host: {host}\r\nAuthorization: Bearer {token}\r\n");
    for target in [
        format!("/api/issues?access_token={token}"),
        "/?access_token=a&access_token=b".to_owned(),
    ] {
        let line = format!("GET {target} HTTP/1.1");
        let answer = rig.exchange(&request(&line, &header)).await;
        rig.assert_refused(&target, answer, 400, "invalid_request");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let basic = "Authorization: Basic YWxpY2U6YWxpY2U=\r\n";
    for (case, target, pair) in [
        (
            "the same bearer twice",
            "/api/issues",
            format!("{bearer}{bearer}"),
        ),
        (
            "bearer then basic",
            "/api/issues",
            format!("{bearer}{basic}"),
        ),
        (
            "basic then bearer",
            "/hub/api/rest/users",
            format!("{basic}{bearer}"),
        ),
        ("two on a public route", "/", format!("{bearer}{bearer}")),
    ] {
        let line = format!("GET {target} HTTP/1.1");
        let answer = rig
            .exchange(&request(&line, &format!("Host: {host}\r\n{pair}")))
            .await;
        rig.assert_refused(case, answer, 400, "invalid_request");
    }
}

#[tokio::test]
async fn a_token_on_an_unprotected_path_is_still_checked() {
    let rig = Rig::start().await;
    let revoked = rig.sim.demo().revoked.clone();
    for token in [revoked.as_str(), UNKNOWN_TOKEN] {
        for target in [
            "/",
            "/apix",
            "/api-internal",
            "/favicon.ico",
            "/hub/api/rest/oauth2/auth",
        ] {
            let headers = format!("Host: {}\r\nAuthorization: Bearer {token}\r\n", rig.host());
            let answer = rig
                .exchange(&request(&format!("GET {target} HTTP/1.1"), &headers))
                .await;
            let answer = answer.expect("an answer");
            assert_eq!(answer.status, 401, "{target}: {answer:?}");
            assert_eq!(
                answer.gateway_error().as_deref(),
                Some("invalid_token"),
                "{target}"
            );
        }
    }
    assert!(rig.forwarded().is_empty(), "{:?}", rig.forwarded());
}

/// Log lines written while a test runs on this thread (tokio's test runtime runs every task
/// of the test on it).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_reach_neither_the_log_nor_the_answers() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "hubgate=trace,hubgate::sim=off",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // tracing caches whether a log line is wanted per call site, for all threads. With one
    // registered subscriber it asks the thread that first reaches the line, which may be
    // another test's, with none; with two registered it asks both.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let _log = tracing::subscriber::set_default(subscriber);
    let rig = Rig::start().await;
    let demo = rig.sim.demo().clone();
    let failing = rig
        .sim
        .mint_permanent("alice", "YouTrack", PermStyle::Named);
    let failing = failing.expect("alice exists");
    let mut answers = String::new();
    let ask = |target: String, authorization: String| {
        let headers = format!("Host: {}\r\n{authorization}", rig.host());
        request(&format!("GET {target} HTTP/1.1"), &headers)
    };
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    let requests = [
        ask("/api/issues".into(), bearer(&demo.youtrack_only)),
        ask("/hub/api/rest/users".into(), bearer(&demo.youtrack_only)),
        ask("/api/issues".into(), bearer(&demo.revoked)),
        ask(
            "/api/issues".into(),
            format!("Authorization: Bearer {}\tx\r\n", demo.admin),
        ),
        ask(
            format!("/api/issues?access_token={}", demo.hub_only),
            String::new(),
        ),
    ];
    for bytes in &requests {
        let answer = rig.exchange(bytes).await.expect("an answer");
        answers.push_str(&answer.head);
        answers.push_str(&answer.text());
    }
    rig.sim.set_hub_fault(Some(HubFault::Status(500)));
    let answer = rig
        .exchange(&ask("/api/issues".into(), bearer(&failing)))
        .await;
    let answer = answer.expect("an answer");
    assert_eq!(answer.status, 503);
    answers.push_str(&answer.text());
    let log = String::from_utf8_lossy(&captured.0.lock().expect("log lock")).into_owned();
    let expected = fingerprint(&token_hash(&demo.youtrack_only));
    assert!(log.contains(&expected), "the fingerprint is logged: {log}");
    assert!(log.contains("alice"), "the login is logged: {log}");
    for token in [
        &demo.youtrack_only,
        &demo.revoked,
        &demo.admin,
        &demo.hub_only,
        &failing,
    ] {
        // The token, and its 30 random characters on their own.
        let secret = &token[token.len() - 30..];
        assert!(!log.contains(secret), "a token reached the log: {log}");
        assert!(
            !answers.contains(secret),
            "a token reached an answer: {answers}"
        );
    }
}
