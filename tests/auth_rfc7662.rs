//! The `rfc7662` introspection backend against the simulator's RFC 7662 endpoint: the same
//! scope rules and challenges as the `hub` backend, one introspection answering for every
//! service, client authentication that fails closed, and a token's `exp` ending its cached
//! verdict before `ttl` does (paused time, moved by the test).

mod support;

use std::io::Write;
use std::time::Duration;

use hubgate::sim::{HubFault, PermStyle, Sim, HUB_SERVICE_ID, RFC7662_PATH, YOUTRACK_SERVICE_ID};
use support::{assert_refused, empty, get, send, with_token, Gateway, SimEcho};
use tempfile::NamedTempFile;

const NO_TOKEN: &str = r#"Bearer realm="youtrack""#;
const INVALID_TOKEN: &str = r#"Bearer realm="youtrack", error="invalid_token""#;

/// A well-formed permanent token Hub never issued.
const UNKNOWN_TOKEN: &str = "perm:YWxpY2U=.bm9ib2R5.abcdefghijklmnopqrstuvwxyz0123";

fn insufficient_scope(service_id: &str) -> String {
    format!(r#"Bearer realm="youtrack", error="insufficient_scope", scope="{service_id}""#)
}

/// A gateway with design.md's routes whose tokens are checked at the simulator's RFC 7662
/// endpoint, authenticating as the demo client with `secret`; `extra` is appended (a
/// `[cache]` table, say). The secret file only needs to outlive the configuration parse.
async fn start_gateway(sim: &Sim, secret: &str, extra: &str) -> Gateway {
    let mut secret_file = NamedTempFile::new().expect("temp file");
    secret_file
        .write_all(secret.as_bytes())
        .expect("write the secret");
    let routes: String = support::config_text(sim.addr(), "")
        .lines()
        .filter(|line| !line.starts_with("probe = "))
        .map(|line| format!("{line}\n"))
        .collect();
    let text = format!(
        "{routes}\n[introspection]\nbackend = \"rfc7662\"\nendpoint = \"http://{sim}{RFC7662_PATH}\"\n\
         client_id = \"{client}\"\nclient_secret_file = '{file}'\n\n{extra}",
        sim = sim.addr(),
        client = sim.demo().client_id,
        file = secret_file.path().display(),
    );
    Gateway::start(&text).await
}

#[tokio::test]
async fn the_scope_rules_and_challenges_are_the_same_as_with_hub_probes() {
    let sim = Sim::start().await.expect("simulator");
    let demo = sim.demo().clone();
    let gateway = start_gateway(&sim, &demo.client_secret, "").await;
    let youtrack = ["/api/issues", "/rest/issues"];
    let hub = ["/hub/api/x", "/hub/rest/x"];
    for (token, allowed, refused, missing) in [
        (&demo.youtrack_only, &youtrack, &hub, HUB_SERVICE_ID),
        (&demo.hub_only, &hub, &youtrack, YOUTRACK_SERVICE_ID),
    ] {
        for target in allowed {
            let answer = with_token(&gateway, target, token).await;
            assert_eq!(SimEcho::of(&answer).target(), *target);
        }
        for target in refused {
            let answer = with_token(&gateway, target, token).await;
            let challenge = insufficient_scope(missing);
            assert_refused(&answer, 403, &challenge, "insufficient_scope");
        }
    }
    let authorization = format!("Bearer {}", demo.both_oauth);
    for target in youtrack.iter().chain(&hub) {
        let answer = with_token(&gateway, target, &demo.both_oauth).await;
        let echoed = SimEcho::of(&answer);
        assert_eq!(echoed.headers("authorization"), [authorization.as_str()]);
    }
    for bad in [UNKNOWN_TOKEN, demo.revoked.as_str(), demo.banned.as_str()] {
        for target in ["/api/issues", "/hub/api/rest/users", "/"] {
            let answer = with_token(&gateway, target, bad).await;
            assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
        }
    }
    let answer = send(
        gateway.addr,
        get(gateway.addr, "/api/issues")
            .body(empty())
            .expect("request"),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.www_authenticate(), Some(NO_TOKEN));
    assert_eq!(
        sim.total_probes(),
        0,
        "no users/me probe: the endpoint decided"
    );
}

#[tokio::test]
async fn one_introspection_answers_for_every_service() {
    let sim = Sim::start().await.expect("simulator");
    let demo = sim.demo().clone();
    let gateway = start_gateway(&sim, &demo.client_secret, "").await;
    let answer = with_token(&gateway, "/api/issues", &demo.youtrack_only).await;
    assert_eq!(SimEcho::of(&answer).target(), "/api/issues");
    let answer = with_token(&gateway, "/api/issues", UNKNOWN_TOKEN).await;
    assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    // From here on the endpoint fails: only what the first calls established can answer.
    sim.set_hub_fault(Some(HubFault::Status(500)));
    let fresh = sim
        .mint_permanent("alice", "YouTrack", PermStyle::Named)
        .expect("alice exists");
    let answer = with_token(&gateway, "/api/issues", &fresh).await;
    assert_eq!(answer.status, 503, "the fault is real: {}", answer.text());
    assert!(answer.headers.contains_key("retry-after"));
    // The Hub route was never asked about these tokens, yet has its verdicts.
    let answer = with_token(&gateway, "/hub/api/x", &demo.youtrack_only).await;
    let challenge = insufficient_scope(HUB_SERVICE_ID);
    assert_refused(&answer, 403, &challenge, "insufficient_scope");
    let answer = with_token(&gateway, "/hub/api/x", UNKNOWN_TOKEN).await;
    assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    let answer = with_token(&gateway, "/api/issues", &demo.youtrack_only).await;
    assert_eq!(SimEcho::of(&answer).target(), "/api/issues");
}

#[tokio::test]
async fn a_refused_client_secret_fails_closed() {
    let sim = Sim::start().await.expect("simulator");
    let demo = sim.demo().clone();
    let gateway = start_gateway(&sim, "not-the-secret", "").await;
    for token in [&demo.youtrack_only, &demo.revoked] {
        let answer = with_token(&gateway, "/api/issues", token).await;
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert!(answer.headers.contains_key("retry-after"));
        assert_eq!(answer.www_authenticate(), None);
        assert!(!answer.is_echo());
    }
}

#[tokio::test(start_paused = true)]
async fn an_exp_shorter_than_the_ttl_ends_the_cached_verdict() {
    let sim = Sim::start().await.expect("simulator");
    let secret = sim.demo().client_secret.clone();
    let gateway = start_gateway(&sim, &secret, "[cache]\nttl = \"300s\"\n").await;
    let access = sim
        .mint_access("alice", "YouTrack", Duration::from_secs(10))
        .expect("alice exists");
    let permanent = sim
        .mint_permanent("alice", "YouTrack", PermStyle::Named)
        .expect("alice exists");
    for token in [&access, &permanent] {
        let answer = with_token(&gateway, "/api/issues", token).await;
        assert_eq!(SimEcho::of(&answer).target(), "/api/issues");
    }
    // Revoked in Hub: only the cache can still let the permanent token in.
    assert!(sim.revoke(&permanent));
    tokio::time::advance(Duration::from_secs(11)).await;
    let answer = with_token(&gateway, "/api/issues", &access).await;
    assert_refused(&answer, 401, INVALID_TOKEN, "invalid_token");
    // The permanent token has no exp: its verdict lives the whole ttl.
    let answer = with_token(&gateway, "/api/issues", &permanent).await;
    assert_eq!(SimEcho::of(&answer).target(), "/api/issues");
}
