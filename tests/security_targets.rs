//! Adversarial request targets and authorities over real sockets (`security.md`, "The path"
//! and the `Host` rules of "Headers and credentials"): `*`, `CONNECT`, authority- and
//! absolute-form targets, fragments, missing, doubled and malformed `Host`, and HTTP/2's
//! `:authority` (h2c with prior knowledge, which the plain listener serves). Raw bytes for
//! HTTP/1.1. The rule → test table is in `security_paths.rs`.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use support::adversarial::{request, By, Rig};
use support::h2c;

#[tokio::test]
async fn asterisk_connect_and_authority_forms_are_refused() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let requests: Vec<(String, Vec<u8>)> = [
        format!("OPTIONS * HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET * HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"),
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".to_owned(),
        format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"),
        format!(
            "CONNECT /api/issues HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
        format!("GET {host} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"),
        format!("OPTIONS evil.example:80 HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    ]
    .into_iter()
    .map(|r| {
        (
            r.lines().next().unwrap_or_default().to_owned(),
            r.into_bytes(),
        )
    })
    .collect();
    rig.assert_bad_targets(By::Gateway, &requests).await;
}

#[tokio::test]
async fn absolute_form_naming_another_host_is_refused() {
    let rig = Rig::start().await;
    let host = rig.host();
    let other_port = format!("127.0.0.1:{}", rig.addr().port().wrapping_add(1));
    let targets = [
        "http://evil.example/api/issues".to_owned(),
        "http://evil.example/".to_owned(),
        "HTTP://EVIL.EXAMPLE/x".to_owned(),
        "https://evil.example/hub/api/rest/users".to_owned(),
        format!("http://{other_port}/api/issues"),
        format!("http://user@{host}/api/issues"),
        format!("http://{host}@evil.example/api/issues"),
        format!("http://{host}/api/../hub/api/rest/users"),
        format!("http://{host}/API/issues"),
    ];
    let targets: Vec<&[u8]> = targets.iter().map(|t| t.as_bytes()).collect();
    rig.assert_targets_refused(By::Gateway, &targets).await;
}

#[tokio::test]
async fn absolute_form_naming_the_gateway_goes_out_in_origin_form() {
    let rig = Rig::start().await;
    let host = rig.host();
    for (target, origin_form) in [
        (
            format!("http://{host}/api/issues?fields=id"),
            "/api/issues?fields=id",
        ),
        (format!("HTTP://{host}/x"), "/x"),
    ] {
        let answer = rig.exchange(&rig.get_with_token(target.as_bytes())).await;
        let answer = answer.expect("an answer");
        assert_eq!(answer.status, 200, "{target}: {answer:?}");
        let seen = rig.upstream.last();
        assert_eq!(seen.target, origin_form, "{target}");
        assert_eq!(seen.header("host"), Some(host.as_str()), "{target}");
        assert_eq!(seen.header_count("host"), 1, "{target}");
    }
}

/// A `#` cannot reach hubgate's check: hyper's parser cuts the target there. What follows it
/// therefore never reaches the upstream, and the route is chosen by what does: the bytes
/// routed and the bytes forwarded are the same.
#[tokio::test]
async fn nothing_after_a_fragment_reaches_the_upstream() {
    let rig = Rig::start().await;
    let host = rig.host();
    for (target, before) in [
        ("/x#/../api/issues", "/x"),
        ("/x/#/../../hub/api/rest/users", "/x/"),
        ("/x?q=1#/../api", "/x?q=1"),
    ] {
        // No token: if the part after `#` chose the route, this would be a 401.
        let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let answer = rig.exchange(request.as_bytes()).await.expect("an answer");
        let forwarded = rig.forwarded();
        match answer.status {
            400 => assert!(forwarded.is_empty(), "{target}: {forwarded:?}"),
            200 => assert_eq!(forwarded.last().map(|s| s.target.as_str()), Some(before)),
            other => panic!("{target}: {other} {answer:?}"),
        }
        assert!(
            forwarded.iter().all(|s| !s.target.contains('#')),
            "{forwarded:?}"
        );
    }
    assert_eq!(rig.sim.total_probes(), 0);
}

#[tokio::test]
async fn host_must_be_sent_once_and_name_only_a_host() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let hosts = [
        ("no Host", String::new()),
        (
            "two Hosts",
            format!("Host: {host}\r\nHost: evil.example\r\n"),
        ),
        (
            "the same Host twice",
            format!("Host: {host}\r\nHost: {host}\r\n"),
        ),
        ("an empty Host", "Host:\r\n".to_owned()),
        ("a Host with a path", format!("Host: {host}/api\r\n")),
        ("a Host with userinfo", format!("Host: user@{host}\r\n")),
        ("a Host with @", format!("Host: evil.example@{host}\r\n")),
        ("a Host with ?", format!("Host: {host}?x\r\n")),
        ("a Host with a space", format!("Host: {host} evil\r\n")),
        ("a Host with \\", format!("Host: evil\\{host}\r\n")),
    ];
    let auth = format!("Authorization: Bearer {token}\r\n");
    let mut requests: Vec<(String, Vec<u8>)> = hosts
        .into_iter()
        .map(|(case, lines)| {
            let bytes = request("GET /api/issues HTTP/1.1", &format!("{lines}{auth}"));
            (case.to_owned(), bytes)
        })
        .collect();
    // HTTP/1.0 may leave `Host` out only when an absolute-form target names the host.
    let bytes = request("GET /api/issues HTTP/1.0", &auth);
    requests.push(("HTTP/1.0 without Host".to_owned(), bytes));
    rig.assert_bad_targets(By::Gateway, &requests).await;
}

/// `X-Forwarded-Host` is a list: a comma in `Host` would let a client add a host of its
/// choosing to the one the gateway vouches for.
#[tokio::test]
async fn a_host_that_reads_as_a_list_is_refused() {
    let rig = Rig::start().await;
    let headers = format!("Host: {},evil.example\r\n", rig.host());
    let answer = rig.exchange(&request("GET /x HTTP/1.1", &headers)).await;
    rig.assert_refused("Host with a comma", answer, 400, "invalid_request");
}

fn h2_get(uri: &str, hosts: &[&str], token: &str) -> Request<Empty<Bytes>> {
    let mut builder = Request::get(uri).header("authorization", format!("Bearer {token}"));
    for host in hosts {
        builder = builder.header("host", *host);
    }
    builder.body(Empty::new()).expect("request")
}

#[tokio::test]
async fn http2_authority_and_host_must_agree() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    let uri = format!("http://{host}/api/issues");
    for (case, hosts) in [
        ("conflicting Host", vec!["evil.example"]),
        ("two Hosts", vec![host.as_str(), host.as_str()]),
        ("Host with a path", vec!["evil.example/x"]),
    ] {
        let answer = h2c::send(rig.addr(), h2_get(&uri, &hosts, &token)).await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text());
        assert_eq!(answer.json_error(), "invalid_request", "{case}");
        assert!(rig.forwarded().is_empty(), "{case}");
        assert_eq!(rig.sim.total_probes(), 0, "{case}");
    }
    for hosts in [vec![host.as_str()], vec![]] {
        let answer = h2c::send(rig.addr(), h2_get(&uri, &hosts, &token)).await;
        assert_eq!(answer.status, 200, "{hosts:?}: {}", answer.text());
        let seen = rig.upstream.last();
        assert_eq!(seen.version, http::Version::HTTP_11);
        assert_eq!(seen.target, "/api/issues");
        assert_eq!(seen.header("host"), Some(host.as_str()));
        assert_eq!(seen.header_count("host"), 1);
    }
}

#[tokio::test]
async fn http2_targets_are_checked_like_http1_ones() {
    let rig = Rig::start().await;
    let (host, token) = (rig.host(), rig.token());
    for path in [
        "/api/../hub/api/rest/users",
        "/api/%2e%2e/hub",
        "/api//issues",
        "/api;/issues",
        "/API/issues",
        "/hub/API/rest/users",
        "/%61pi/issues",
        "/re%C5%BFt/issues",
        "/api/%c0%ae",
    ] {
        let request = h2_get(&format!("http://{host}{path}"), &[], &token);
        let answer = h2c::send(rig.addr(), request).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text());
        assert_eq!(answer.json_error(), "invalid_request", "{path}");
    }
    assert!(rig.forwarded().is_empty());
    assert_eq!(rig.sim.total_probes(), 0);
}
