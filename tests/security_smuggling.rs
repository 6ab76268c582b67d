//! Request smuggling over real sockets: ambiguous framing (`Content-Length` with
//! `Transfer-Encoding`, doubled or malformed lengths, codings hyper cannot pass on), malformed
//! request lines and folded headers, and pipelines in which a second request rides on the
//! first one's connection or inside its body. One request in must be at most one request
//! out, and each request is authenticated on its own. The rule → test table is in
//! `security_paths.rs`.

mod support;

use support::adversarial::{request, RawConn, Rig};

/// A public request the gateway forwards without a token: if it ever came out of another
/// request's bytes, the upstream would show it.
fn smuggled(host: &str) -> String {
    format!("GET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// A public request sent after the one under test: its answer shows the connection is still
/// in step (or it gets none because the gateway closed the connection).
fn sentinel(host: &str) -> String {
    format!("GET /sentinel HTTP/1.1\r\nHost: {host}\r\n\r\n")
}

/// The targets the upstream received, in order.
fn targets(rig: &Rig) -> Vec<String> {
    rig.forwarded().into_iter().map(|s| s.target).collect()
}

/// Sends each `(case, bytes)` on a fresh connection: a 400 (from the gateway or hyper's
/// parser), no Hub call, nothing forwarded.
async fn assert_all_refused(rig: &Rig, cases: &[(&str, Vec<u8>)]) {
    for (case, bytes) in cases {
        let answer = rig.exchange(bytes).await;
        let answer = answer.unwrap_or_else(|| panic!("{case}: closed without an answer"));
        assert_eq!(answer.status, 400, "{case}: {answer:?}");
        assert_eq!(rig.sim.total_probes(), 0, "{case}: Hub was asked");
        assert!(rig.forwarded().is_empty(), "{case}: {:?}", targets(rig));
    }
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_never_read_two_ways() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let chunked = "5\r\nhello\r\n0\r\n\r\n";
    let hidden = smuggled(&host);
    // By `Content-Length` the body swallows the hidden request; by the chunks, it follows.
    let long = chunked.len() + hidden.len();
    for (case, framing) in [
        (
            "CL then TE",
            format!("Content-Length: {long}\r\nTransfer-Encoding: chunked\r\n"),
        ),
        (
            "TE then CL",
            format!("Transfer-Encoding: chunked\r\nContent-Length: {long}\r\n"),
        ),
        (
            "short CL",
            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n".to_owned(),
        ),
    ] {
        let before = rig.forwarded().len();
        let headers = format!("Host: {host}\r\nAuthorization: Bearer {token}\r\n{framing}");
        let mut bytes = request("POST /api/issues HTTP/1.1", &headers);
        bytes.extend_from_slice(format!("{chunked}{hidden}").as_bytes());
        let mut conn = RawConn::open(rig.addr()).await;
        conn.write(&bytes).await;
        let answer = conn.response().await.expect("an answer");
        let forwarded = &rig.forwarded()[before..];
        // RFC 9112 6.1: refuse, or frame by Transfer-Encoding alone; either way, close.
        match answer.status {
            400 => assert!(forwarded.is_empty(), "{case}: {forwarded:?}"),
            200 => {
                assert_eq!(forwarded.len(), 1, "{case}: {forwarded:?}");
                assert_eq!(forwarded[0].body_len, 5, "{case}");
                assert_eq!(forwarded[0].header("content-length"), None, "{case}");
                assert_eq!(answer.header("connection"), Some("close"), "{case}");
            }
            other => panic!("{case}: {other} {answer:?}"),
        }
        assert!(conn.closes().await, "{case}: the connection stayed open");
        assert!(!targets(&rig).contains(&"/smuggled".to_owned()), "{case}");
    }
}

#[tokio::test]
async fn equal_duplicate_content_lengths_frame_one_body() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    for lengths in [
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\ncontent-length: 5\r\n",
    ] {
        let before = rig.forwarded().len();
        let headers = format!("Host: {host}\r\nAuthorization: Bearer {token}\r\n{lengths}");
        let mut bytes = request("POST /api/issues HTTP/1.1", &headers);
        bytes.extend_from_slice(format!("hello{}", sentinel(&host)).as_bytes());
        let mut conn = RawConn::open(rig.addr()).await;
        conn.write(&bytes).await;
        let answer = conn.response().await.expect("an answer");
        if answer.status == 400 {
            assert_eq!(rig.forwarded().len(), before, "{lengths}");
            continue;
        }
        assert_eq!(answer.status, 200, "{lengths}: {answer:?}");
        let next = conn.response().await.expect("the sentinel's answer");
        assert_eq!(next.status, 200, "{next:?}");
        let forwarded = &rig.forwarded()[before..];
        assert_eq!(forwarded.len(), 2, "{forwarded:?}");
        assert_eq!(
            forwarded[0].header_count("content-length"),
            1,
            "{forwarded:?}"
        );
        assert_eq!(forwarded[0].header("content-length"), Some("5"));
        assert_eq!(forwarded[0].body_len, 5);
        assert_eq!(forwarded[1].target, "/sentinel");
    }
}

#[tokio::test]
async fn conflicting_or_malformed_content_lengths_are_refused() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let cases: Vec<(&str, Vec<u8>)> = [
        "Content-Length: 5\r\nContent-Length: 6",
        "Content-Length: +5",
        "Content-Length: -5",
        "Content-Length: 5,5",
        "Content-Length: 5, 5",
        "Content-Length: 0x5",
        "Content-Length: 5 5",
        "Content-Length: 5.0",
        "Content-Length: 1e1",
        "Content-Length: 18446744073709551616",
        "Content-Length:",
    ]
    .into_iter()
    .map(|length| {
        let headers = format!("Host: {host}\r\nAuthorization: Bearer {token}\r\n{length}\r\n");
        let mut bytes = request("POST /api/issues HTTP/1.1", &headers);
        bytes.extend_from_slice(b"hello");
        (length, bytes)
    })
    .collect();
    assert_all_refused(&rig, &cases).await;
}

/// Every case has a body that is valid chunked framing, so only the header can be blamed.
fn with_transfer_encoding(rig: &Rig, version: &str, encoding: &str) -> Vec<u8> {
    let headers = format!(
        "Host: {}\r\nAuthorization: Bearer {}\r\n{encoding}\r\n",
        rig.host(),
        rig.token()
    );
    let mut bytes = request(&format!("POST /api/issues {version}"), &headers);
    bytes.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
    bytes
}

#[tokio::test]
async fn transfer_encodings_that_are_not_chunked_last_are_refused() {
    let rig = Rig::start().await;
    let cases: Vec<(&str, Vec<u8>)> = [
        ("HTTP/1.1", "Transfer-Encoding: chunked, identity"),
        ("HTTP/1.1", "Transfer-Encoding: xchunked"),
        (
            "HTTP/1.1",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity",
        ),
        ("HTTP/1.1", "Transfer-Encoding: identity"),
        ("HTTP/1.1", "Transfer-Encoding: gzip"),
        ("HTTP/1.1", "Transfer-Encoding : chunked"),
        ("HTTP/1.1", "Transfer-Encoding: \x0bchunked"),
        ("HTTP/1.1", "Transfer-Encoding:\r\n chunked"),
        ("HTTP/1.0", "Transfer-Encoding: chunked"),
    ]
    .into_iter()
    .map(|(version, te)| (te, with_transfer_encoding(&rig, version, te)))
    .collect();
    assert_all_refused(&rig, &cases).await;
}

/// hyper accepts any list that ends in `chunked` and undoes only the chunking; the gateway
/// then drops `Transfer-Encoding` as hop-by-hop, so a declared `gzip` (or a second
/// `chunked`) silently vanishes and the upstream gets bytes framed differently from what the
/// client declared — the TE.TE ambiguity request smuggling feeds on.
#[tokio::test]
async fn a_transfer_coding_the_gateway_cannot_pass_on_is_refused() {
    let rig = Rig::start().await;
    for te in [
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: identity, chunked",
    ] {
        let answer = rig
            .exchange(&with_transfer_encoding(&rig, "HTTP/1.1", te))
            .await;
        let answer = answer.unwrap_or_else(|| panic!("{te}: closed without an answer"));
        // 501 is RFC 9112's answer to a coding the server does not implement; 400 will do.
        assert!(matches!(answer.status, 400 | 501), "{te}: {answer:?}");
        assert_eq!(rig.sim.total_probes(), 0, "{te}");
        assert!(rig.forwarded().is_empty(), "{te}: {:?}", targets(&rig));
    }
}

#[tokio::test]
async fn malformed_request_lines_and_folded_headers_are_refused() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let auth = format!("Host: {host}\r\nAuthorization: Bearer {token}\r\n");
    let cases: Vec<(&str, Vec<u8>)> = [
        (
            "two spaces before the target",
            "GET  /api/issues HTTP/1.1",
            auth.clone(),
        ),
        (
            "two spaces after the target",
            "GET /api/issues  HTTP/1.1",
            auth.clone(),
        ),
        (
            "a tab before the target",
            "GET\t/api/issues HTTP/1.1",
            auth.clone(),
        ),
        (
            "a tab after the target",
            "GET /api/issues\tHTTP/1.1",
            auth.clone(),
        ),
        (
            "a trailing space",
            "GET /api/issues HTTP/1.1 ",
            auth.clone(),
        ),
        ("a leading space", " GET /api/issues HTTP/1.1", auth.clone()),
        ("no version", "GET /api/issues", auth.clone()),
        ("HTTP/1.2", "GET /api/issues HTTP/1.2", auth.clone()),
        (
            "lower-case version",
            "GET /api/issues http/1.1",
            auth.clone(),
        ),
        ("a bad method", "G@T /api/issues HTTP/1.1", auth.clone()),
        (
            "obs-fold",
            "GET /api/issues HTTP/1.1",
            format!("{auth}X-A: 1\r\n X-B: 2\r\n"),
        ),
        (
            "obs-fold, tab",
            "GET /api/issues HTTP/1.1",
            format!("{auth}X-A: 1\r\n\tmore\r\n"),
        ),
        (
            "a folded Authorization",
            "GET /api/issues HTTP/1.1",
            format!("Host: {host}\r\nAuthorization: Bearer\r\n {token}\r\n"),
        ),
        (
            "a space before the colon",
            "GET /api/issues HTTP/1.1",
            format!("Host : {host}\r\n"),
        ),
        (
            "no colon",
            "GET /api/issues HTTP/1.1",
            format!("{auth}X-A 1\r\n"),
        ),
        (
            "CR in a value",
            "GET /api/issues HTTP/1.1",
            format!("{auth}X-A: 1\r2\r\n"),
        ),
        (
            "NUL in a value",
            "GET /api/issues HTTP/1.1",
            format!("{auth}X-A: 1\x002\r\n"),
        ),
    ]
    .into_iter()
    .map(|(case, line, headers)| (case, request(line, &headers)))
    .collect();
    assert_all_refused(&rig, &cases).await;
}

#[tokio::test]
async fn pipelined_requests_are_each_authenticated() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let youtrack_only = rig.sim.demo().youtrack_only.clone();
    let with = |target: &str, token: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n")
    };
    let pipeline = [
        with("/api/issues", &token),
        format!("GET /api/admin HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        with("/hub/api/rest/users", &youtrack_only),
        with("/api/../hub/api/rest/users", &token),
        format!("GET /api/issues?access_token={token} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        with("/api/last", &token),
    ];
    let mut conn = RawConn::open(rig.addr()).await;
    conn.write(pipeline.concat().as_bytes()).await;
    let mut statuses = Vec::new();
    for _ in &pipeline {
        let answer = conn.response().await.expect("one answer per request");
        statuses.push(answer.status);
    }
    assert_eq!(statuses, [200, 401, 403, 400, 401, 200]);
    assert_eq!(targets(&rig), ["/api/issues", "/api/last"]);
    let bearer = format!("Bearer {token}");
    for seen in rig.forwarded() {
        assert_eq!(seen.header_count("authorization"), 1, "{seen:?}");
        assert_eq!(seen.header("authorization"), Some(bearer.as_str()));
    }
}

#[tokio::test]
async fn a_request_hidden_in_a_body_is_not_a_second_request() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let hidden = smuggled(&host);
    let auth = format!("Host: {host}\r\nAuthorization: Bearer {token}\r\n");
    let by_length = format!("{auth}Content-Length: {}\r\n", hidden.len());
    let by_chunks = format!("{auth}Transfer-Encoding: chunked\r\n");
    let chunks = format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len());
    for (case, headers, body) in [
        ("Content-Length", by_length, hidden.clone()),
        ("chunked", by_chunks, chunks),
    ] {
        let before = rig.forwarded().len();
        let mut bytes = request("POST /api/issues HTTP/1.1", &headers);
        bytes.extend_from_slice(body.as_bytes());
        bytes.extend_from_slice(sentinel(&host).as_bytes());
        let mut conn = RawConn::open(rig.addr()).await;
        conn.write(&bytes).await;
        for expected in ["the upload", "the sentinel"] {
            let answer = conn.response().await.expect(expected);
            assert_eq!(answer.status, 200, "{case}, {expected}: {answer:?}");
        }
        let forwarded = &rig.forwarded()[before..];
        assert_eq!(forwarded.len(), 2, "{case}: {forwarded:?}");
        assert_eq!(forwarded[0].target, "/api/issues", "{case}");
        assert_eq!(forwarded[0].body_len, hidden.len(), "{case}");
        assert_eq!(forwarded[1].target, "/sentinel", "{case}");
    }
}
