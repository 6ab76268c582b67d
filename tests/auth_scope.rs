//! Which token gets through where (`design.md`, the route table and "Responses the gateway
//! itself makes"): the route's Hub service against the token's scope, with the `hub` backend
//! probing the simulator's `users/me` endpoints; the credential rules of `security.md` (one
//! credential, the whole header value is the token, syntax checked before Hub is asked);
//! public routes, `allow_anonymous`, the OAuth token endpoint, and 503 when Hub fails.

mod support;

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{Empty, Full};
use hubgate::sim::{HubFault, PermStyle, Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use support::{
    assert_refused, bearer_get, empty, get, send, with_token, Answer, Gateway, SimEcho, Upstream,
};

const NO_TOKEN: &str = r#"Bearer realm="youtrack""#;
const INVALID_TOKEN: &str = r#"Bearer realm="youtrack", error="invalid_token""#;
const INVALID_REQUEST: &str = r#"Bearer realm="youtrack", error="invalid_request", "#;

/// A well-formed permanent token Hub never issued.
const UNKNOWN_TOKEN: &str = "perm:YWxpY2U=.bm9ib2R5.abcdefghijklmnopqrstuvwxyz0123";

fn insufficient_scope(service_id: &str) -> String {
    format!(r#"Bearer realm="youtrack", error="insufficient_scope", scope="{service_id}""#)
}

/// The simulator as YouTrack and Hub, and a gateway with design.md's routes in front of it.
async fn start() -> (Sim, Gateway) {
    let sim = Sim::start().await.expect("simulator");
    let gateway = Gateway::start(&support::config_text(sim.addr(), "")).await;
    (sim, gateway)
}

/// design.md's routes, probing the simulator, but forwarding to `upstream`: a test can then
/// tell that a refused request never reached YouTrack.
fn forwarding_to(sim: SocketAddr, upstream: SocketAddr) -> String {
    let text = support::config_text(sim, "");
    let url = format!("url = \"http://{sim}\"");
    assert!(text.contains(&url), "{text}");
    text.replacen(&url, &format!("url = \"http://{upstream}\""), 1)
}

async fn without_token(gateway: &Gateway, target: &str) -> Answer {
    send(
        gateway.addr,
        get(gateway.addr, target).body(empty()).expect("request"),
    )
    .await
}

#[tokio::test]
async fn a_youtrack_only_token_reaches_youtrack_and_not_hub() {
    let (sim, gateway) = start().await;
    let token = sim.demo().youtrack_only.clone();
    for target in ["/api/issues", "/rest/issues"] {
        let answer = with_token(&gateway, target, &token).await;
        assert_eq!(SimEcho::of(&answer).target(), target);
    }
    for target in ["/hub/api/rest/users", "/hub/rest/x"] {
        let answer = with_token(&gateway, target, &token).await;
        let challenge = insufficient_scope(HUB_SERVICE_ID);
        assert_refused(&answer, 403, &challenge, "insufficient_scope");
    }
}

#[tokio::test]
async fn a_hub_only_perm_dash_token_reaches_hub_and_not_youtrack() {
    let (sim, gateway) = start().await;
    let token = sim.demo().hub_only.clone();
    assert!(token.starts_with("perm-"), "{token}");
    let answer = with_token(&gateway, "/hub/api/rest/users?fields=login", &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let page: serde_json::Value = serde_json::from_slice(&answer.body).expect("Hub's JSON");
    assert_eq!(page["type"], "UsersPage", "Hub itself answered");
    let answer = with_token(&gateway, "/hub/rest/x", &token).await;
    assert_eq!(SimEcho::of(&answer).target(), "/hub/rest/x");
    for target in ["/api/issues", "/rest/issues"] {
        let answer = with_token(&gateway, target, &token).await;
        let challenge = insufficient_scope(YOUTRACK_SERVICE_ID);
        assert_refused(&answer, 403, &challenge, "insufficient_scope");
    }
}

#[tokio::test]
async fn an_oauth_token_for_both_services_passes_everywhere_untouched() {
    let (sim, gateway) = start().await;
    let token = sim.demo().both_oauth.clone();
    assert!(
        token.contains(' '),
        "a multi-scope OAuth token has a space: {token}"
    );
    let authorization = format!("Bearer {token}");
    for target in ["/api/issues", "/rest/issues", "/hub/api/x", "/hub/rest/x"] {
        let answer = with_token(&gateway, target, &token).await;
        let echoed = SimEcho::of(&answer);
        assert_eq!(echoed.target(), target);
        assert_eq!(echoed.headers("authorization"), [authorization.as_str()]);
    }
    // The scheme in any case, any number of spaces: still the whole rest is the token.
    let spaced = format!("bearer   {token}");
    let request = get(gateway.addr, "/api/issues")
        .header("authorization", &spaced)
        .body(empty())
        .expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(
        SimEcho::of(&answer).headers("authorization"),
        [spaced.as_str()]
    );
    let answer = with_token(&gateway, "/hub/api/rest/users/me?fields=login", &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let me: serde_json::Value = serde_json::from_slice(&answer.body).expect("Hub's JSON");
    assert_eq!(me["login"], "alice");
}

#[tokio::test]
async fn unknown_revoked_and_banned_tokens_are_invalid_everywhere() {
    let (sim, gateway) = start().await;
    let demo = sim.demo().clone();
    for token in [UNKNOWN_TOKEN, demo.revoked.as_str(), demo.banned.as_str()] {
        for target in [
            "/api/issues",
            "/rest/issues",
            "/hub/api/rest/users",
            "/hub/rest/x",
        ] {
            let answer = with_token(&gateway, target, token).await;
            assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
        }
        // Hub was asked (the verdict is Hub's, not a guess from the token's shape).
        assert!(sim.probes(token, YOUTRACK_SERVICE_ID) >= 1, "{token}");
        assert!(sim.probes(token, HUB_SERVICE_ID) >= 1, "{token}");
    }
}

#[tokio::test]
async fn no_token_on_a_protected_route_is_a_bare_challenge() {
    let (sim, gateway) = start().await;
    for target in [
        "/api/issues",
        "/rest/issues",
        "/hub/api/rest/users",
        "/hub/rest/x",
    ] {
        let answer = without_token(&gateway, target).await;
        assert_eq!(answer.status, 401, "{target}: {}", answer.text());
        assert_eq!(answer.www_authenticate(), Some(NO_TOKEN), "{target}");
        assert!(!answer.is_echo(), "{target} was forwarded");
    }
    assert_eq!(sim.total_probes(), 0, "Hub was asked about no token at all");
}

#[tokio::test]
async fn youtrack_answering_the_guest_user_is_not_authentication() {
    let (sim, gateway) = start().await;
    sim.set_guest_access(true);
    // With guest access on, YouTrack itself answers a bad token with the guest user...
    let probe = "/api/users/me?fields=login,guest";
    let direct = send(sim.addr(), bearer_get(sim.addr(), probe, UNKNOWN_TOKEN)).await;
    assert_eq!(direct.status, 200, "{}", direct.text());
    let me: serde_json::Value = serde_json::from_slice(&direct.body).expect("JSON");
    assert_eq!(me["guest"], true);
    let asked = sim.probes(UNKNOWN_TOKEN, YOUTRACK_SERVICE_ID);
    // ...and the gateway, which asks the same question, still refuses it.
    let answer = with_token(&gateway, "/api/issues", UNKNOWN_TOKEN).await;
    assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    assert!(sim.probes(UNKNOWN_TOKEN, YOUTRACK_SERVICE_ID) > asked);
    let revoked = sim.demo().revoked.clone();
    let answer = with_token(&gateway, "/api/issues", &revoked).await;
    assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    let answer = without_token(&gateway, "/api/issues").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.www_authenticate(), Some(NO_TOKEN));
}

#[tokio::test]
async fn the_oauth_token_endpoint_is_reached_without_a_bearer_and_its_token_works() {
    let (sim, gateway) = start().await;
    let demo = sim.demo().clone();
    let client = STANDARD.encode(format!("{}:{}", demo.client_id, demo.client_secret));
    let request = Request::post("/hub/api/rest/oauth2/token")
        .header("host", gateway.addr.to_string())
        .header("authorization", format!("Basic {client}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))
        .expect("request");
    let answer = send(gateway.addr, request).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let granted: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(granted["token_type"], "Bearer");
    let token = granted["access_token"]
        .as_str()
        .expect("an access_token")
        .to_owned();
    assert_eq!(
        sim.total_probes(),
        0,
        "the token endpoint needs no token check"
    );
    let answer = with_token(&gateway, "/hub/api/rest/users/me?fields=login", &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let me: serde_json::Value = serde_json::from_slice(&answer.body).expect("Hub's JSON");
    assert_eq!(me["login"], "hubgate");
    // The simulator counts every `users/me` it answers: the gateway's check of the new token,
    // then the request itself.
    assert_eq!(sim.probes(&token, HUB_SERVICE_ID), 2);
}

#[tokio::test]
async fn public_routes_need_no_token_but_check_one_that_is_sent() {
    let (sim, gateway) = start().await;
    let demo = sim.demo().clone();
    for target in ["/", "/favicon.ico"] {
        let answer = without_token(&gateway, target).await;
        assert_eq!(SimEcho::of(&answer).target(), target);
        for valid in [&demo.youtrack_only, &demo.hub_only] {
            let answer = with_token(&gateway, target, valid).await;
            assert_eq!(SimEcho::of(&answer).target(), target);
        }
        for bad in [demo.revoked.as_str(), UNKNOWN_TOKEN] {
            let answer = with_token(&gateway, target, bad).await;
            assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
        }
    }
}

#[tokio::test]
async fn allow_anonymous_lets_no_token_through_but_still_checks_a_sent_one() {
    let sim = Sim::start().await.expect("simulator");
    let route = "prefix = \"/api\"\nupstream = \"youtrack\"\nservice = \"youtrack\"\n";
    let text = support::config_text(sim.addr(), "");
    assert!(text.contains(route), "{text}");
    let text = text.replacen(route, &format!("{route}allow_anonymous = true\n"), 1);
    let gateway = Gateway::start(&text).await;
    let demo = sim.demo().clone();
    let answer = without_token(&gateway, "/api/issues").await;
    assert_eq!(SimEcho::of(&answer).target(), "/api/issues");
    // Only the route that says so.
    let answer = without_token(&gateway, "/rest/issues").await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.www_authenticate(), Some(NO_TOKEN));
    for bad in [demo.revoked.as_str(), UNKNOWN_TOKEN] {
        let answer = with_token(&gateway, "/api/issues", bad).await;
        assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    }
    let answer = with_token(&gateway, "/api/issues", &demo.hub_only).await;
    let challenge = insufficient_scope(YOUTRACK_SERVICE_ID);
    assert_refused(&answer, 403, &challenge, "insufficient_scope");
    let answer = with_token(&gateway, "/api/issues", &demo.youtrack_only).await;
    assert_eq!(SimEcho::of(&answer).target(), "/api/issues");
}

/// A request to the gateway with the given `Authorization` values (in order).
fn request_with(addr: SocketAddr, target: &str, authorization: &[&str]) -> Request<Empty<Bytes>> {
    let mut request = get(addr, target);
    for value in authorization {
        request = request.header("authorization", *value);
    }
    request.body(empty()).expect("request")
}

#[tokio::test]
async fn malformed_and_doubled_credentials_stop_before_hub_and_youtrack() {
    let sim = Sim::start().await.expect("simulator");
    let upstream = Upstream::start().await;
    let gateway = Gateway::start(&forwarding_to(sim.addr(), upstream.addr)).await;
    // A valid token throughout: what is refused is the way it is sent.
    let token = sim.demo().youtrack_only.clone();
    let bearer = format!("Bearer {token}");
    let query = format!("/api/issues?access_token={token}");
    let encoded_query = format!("/api/issues?x=1&access%5Ftoken={token}");
    let (head, tail) = token.split_at(10);
    let tab_after_scheme = format!("Bearer\t{token}");
    let tab_inside = format!("Bearer {head}\t{tail}");
    let too_long = format!("Bearer {}", "a".repeat(4097));
    // Basic that is not base64 of `user:password` (a well-formed one is checked with Hub).
    let basic = format!("Basic {}", STANDARD.encode("alice"));
    let addr = gateway.addr;
    // (case, target, Authorization values, status)
    let cases: [(&str, &str, &[&str], u16); 8] = [
        ("access_token alone", &query, &[], 401),
        ("access%5Ftoken alone", &encoded_query, &[], 401),
        ("header and access_token", &query, &[&bearer], 400),
        ("two headers", "/api/x", &[&bearer, &bearer], 400),
        ("tab after Bearer", "/api/x", &[&tab_after_scheme], 400),
        ("tab in the token", "/api/x", &[&tab_inside], 400),
        ("4097-byte token", "/api/x", &[&too_long], 400),
        ("malformed Basic", "/api/x", &[&basic], 400),
    ];
    for (case, target, authorization, status) in cases {
        let answer = send(addr, request_with(addr, target, authorization)).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text());
        let challenge = answer.www_authenticate().expect("a challenge");
        match status {
            400 => assert!(
                challenge.starts_with(INVALID_REQUEST),
                "{case}: {challenge}"
            ),
            _ => assert_eq!(challenge, NO_TOKEN, "{case}"),
        }
        assert_eq!(sim.total_probes(), 0, "{case}: Hub was asked");
        assert!(upstream.seen().is_empty(), "{case}: YouTrack saw it");
    }
    // The length cap is 4096 bytes: one byte less than refused is a token Hub is asked about.
    let longest = format!("Bearer {}", "a".repeat(4096));
    let answer = send(addr, request_with(addr, "/api/x", &[&longest])).await;
    assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    assert!(sim.total_probes() > 0);
    // And the token itself was fine all along.
    let answer = send(addr, request_with(addr, "/api/x", &[&bearer])).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        upstream.last().header("authorization"),
        Some(bearer.as_str())
    );
}

#[tokio::test]
async fn a_failing_hub_is_a_503_with_retry_after_never_an_invalid_token() {
    let (sim, gateway) = start().await;
    let faults = [
        HubFault::Status(500),
        HubFault::Status(502),
        HubFault::Down,
        HubFault::Html,
        HubFault::TruncatedJson,
        HubFault::Redirect,
    ];
    for fault in faults {
        let token = sim
            .mint_permanent("alice", "YouTrack", PermStyle::Named)
            .expect("alice exists");
        sim.set_hub_fault(Some(fault));
        let answer = with_token(&gateway, "/api/issues", &token).await;
        assert_eq!(answer.status, 503, "{fault:?}: {}", answer.text());
        let retry_after = answer.headers.get("retry-after").expect("Retry-After");
        let seconds: u64 = retry_after
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("Retry-After in seconds");
        assert!(seconds > 0, "{fault:?}");
        assert_eq!(answer.www_authenticate(), None, "{fault:?}");
        assert!(!answer.is_echo(), "{fault:?}");
        // The failure was not cached: Hub back, the same token passes at once.
        sim.set_hub_fault(None);
        let answer = with_token(&gateway, "/api/issues", &token).await;
        assert_eq!(SimEcho::of(&answer).target(), "/api/issues", "{fault:?}");
    }
}
