//! The two probes real clients validate tokens with, `GET /hub/api/rest/users/me` and
//! `GET /api/users/me`, against `hub-contract.md`: scope rules, 401 bodies without a challenge,
//! banned and guest users, `fields=`, and the life of a token (revoked, deleted, expired).

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hubgate::sim::{PermStyle, Sim, ACCESS_TOKEN_LIFETIME, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use serde_json::Value;
use support::sim::{
    assert_error, call, fetch, json_body, keys, user_id, Auth, HUB_ME, YOUTRACK_ME,
};
use support::Answer;

const SCOPE_REFUSAL: &str = "Token is granted for [YouTrack] and can't be used for 0-0-0-0-0";

async fn hub_me(sim: &Sim, token: &str) -> Answer {
    fetch(sim.addr(), HUB_ME, Auth::Bearer(token)).await
}

async fn youtrack_me(sim: &Sim, token: &str) -> Answer {
    fetch(sim.addr(), YOUTRACK_ME, Auth::Bearer(token)).await
}

/// Hub's 401 for an unknown, deleted or expired token (not the scope refusal).
fn assert_invalid_token(answer: &Answer) {
    let body = assert_error(answer, 401, "invalid_token");
    assert_ne!(body["error_description"], SCOPE_REFUSAL, "{body}");
}

/// YouTrack's 401: `{"error":"Unauthorized","error_description":…}`, no challenge.
fn assert_youtrack_401(answer: &Answer) {
    let body = json_body(answer, 401);
    assert_eq!(body["error"], "Unauthorized", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(answer.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn hub_me_answers_only_tokens_granted_for_hub() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    for token in [&demo.hub_only, &demo.both_oauth, &demo.admin] {
        let body = json_body(&hub_me(&sim, token).await, 200);
        assert_eq!(
            keys(&body),
            ["banned", "guest", "id", "login", "name", "type"]
        );
        assert_eq!(body["type"], "user");
        assert_eq!(body["guest"], false);
        assert_eq!(body["banned"], false);
    }
    assert_eq!(
        json_body(&hub_me(&sim, &demo.hub_only).await, 200)["login"],
        "alice"
    );
    assert!(demo.hub_only.starts_with("perm-"), "{}", demo.hub_only);
    assert!(demo.both_oauth.contains(' '), "{}", demo.both_oauth);

    let refused = hub_me(&sim, &demo.youtrack_only).await;
    let body = assert_error(&refused, 401, "invalid_token");
    assert_eq!(body["error_description"], SCOPE_REFUSAL);

    for token in [
        demo.revoked.as_str(),
        "perm:YWxpY2U=.eA==.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_invalid_token(&hub_me(&sim, token).await);
    }
    let anonymous = fetch(sim.addr(), HUB_ME, Auth::Anonymous).await;
    assert_error(&anonymous, 401, "invalid_token");
}

#[tokio::test]
async fn youtrack_me_answers_only_tokens_granted_for_youtrack() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    for token in [&demo.youtrack_only, &demo.both_oauth, &demo.admin] {
        let body = json_body(&youtrack_me(&sim, token).await, 200);
        assert_eq!(
            keys(&body),
            ["$type", "banned", "guest", "id", "login", "name"]
        );
        assert_eq!(body["guest"], false);
    }
    for token in [demo.hub_only.as_str(), demo.revoked.as_str(), "nonsense"] {
        assert_youtrack_401(&youtrack_me(&sim, token).await);
    }
    assert_youtrack_401(&fetch(sim.addr(), YOUTRACK_ME, Auth::Anonymous).await);
}

#[tokio::test]
async fn guest_access_answers_anonymous_and_bad_requests_with_the_guest() {
    let sim = Sim::start().await.expect("sim starts");
    sim.set_guest_access(true);
    let demo = sim.demo().clone();
    for auth in [
        Auth::Anonymous,
        Auth::Bearer("nonsense"),
        Auth::Bearer(&demo.revoked),
        Auth::Bearer(&demo.hub_only),
    ] {
        let body = json_body(&fetch(sim.addr(), YOUTRACK_ME, auth).await, 200);
        assert_eq!(body["guest"], true, "{auth:?}: {body}");
        assert_eq!(body["$type"], "Me");
    }
    let alice = json_body(&youtrack_me(&sim, &demo.youtrack_only).await, 200);
    assert_eq!(
        (&alice["login"], &alice["guest"]),
        (&Value::from("alice"), &Value::from(false))
    );
    // Hub has no guest.
    assert_error(
        &fetch(sim.addr(), HUB_ME, Auth::Anonymous).await,
        401,
        "invalid_token",
    );
    sim.set_guest_access(false);
    assert_youtrack_401(&fetch(sim.addr(), YOUTRACK_ME, Auth::Anonymous).await);
}

#[tokio::test]
async fn banned_users_are_reported_not_refused() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    for answer in [
        hub_me(&sim, &demo.banned).await,
        youtrack_me(&sim, &demo.banned).await,
    ] {
        let body = json_body(&answer, 200);
        assert_eq!(
            (&body["login"], &body["banned"]),
            (&Value::from("bob"), &Value::from(true))
        );
    }
    sim.set_banned("alice", true);
    assert_eq!(
        json_body(&hub_me(&sim, &demo.hub_only).await, 200)["banned"],
        true
    );
    sim.set_banned("alice", false);
    assert_eq!(
        json_body(&hub_me(&sim, &demo.hub_only).await, 200)["banned"],
        false
    );
}

#[tokio::test]
async fn fields_select_keys_plus_the_type() {
    let sim = Sim::start().await.expect("sim starts");
    let token = sim.demo().both_oauth.clone();
    let hub = fetch(
        sim.addr(),
        "/hub/api/rest/users/me?fields=login",
        Auth::Bearer(&token),
    )
    .await;
    let hub = json_body(&hub, 200);
    assert_eq!(hub, serde_json::json!({"type": "user", "login": "alice"}));
    let yt = fetch(
        sim.addr(),
        "/api/users/me?fields=id,banned",
        Auth::Bearer(&token),
    )
    .await;
    let yt = json_body(&yt, 200);
    assert_eq!(keys(&yt), ["$type", "banned", "id"]);
    let id = user_id(sim.addr(), &token, "alice").await;
    assert_eq!(yt["id"], id);
}

#[tokio::test]
async fn minted_permanent_tokens_have_the_real_shapes() {
    let sim = Sim::start().await.expect("sim starts");
    for (style, prefix) in [
        (PermStyle::Named, "perm:"),
        (PermStyle::EntityId, "perm:"),
        (PermStyle::Dash, "perm-"),
    ] {
        let token = sim
            .mint_permanent("alice", "YouTrack 0-0-0-0-0", style)
            .expect("alice exists");
        let parts: Vec<&str> = token
            .strip_prefix(prefix)
            .expect("prefix")
            .split('.')
            .collect();
        assert_eq!(parts.len(), 3, "{token}");
        assert_eq!(parts[0], STANDARD.encode("alice"));
        let middle = String::from_utf8(STANDARD.decode(parts[1]).expect("base64")).expect("utf8");
        if style == PermStyle::Named {
            assert_eq!(middle, "minted");
        } else {
            assert!(middle.starts_with("47-"), "entity id {middle}");
        }
        assert!(parts[2].len() == 30 && parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(hub_me(&sim, &token).await.status, 200, "{token}");
        assert_eq!(youtrack_me(&sim, &token).await.status, 200, "{token}");
    }
    assert!(sim
        .mint_permanent("nobody", "YouTrack", PermStyle::Named)
        .is_none());
    assert!(sim
        .mint_permanent("alice", "NoSuchService", PermStyle::Named)
        .is_none());
}

#[tokio::test]
async fn deleted_tokens_fail_at_once() {
    let sim = Sim::start().await.expect("sim starts");
    let admin = sim.demo().admin.clone();
    let token = sim
        .mint_permanent("alice", HUB_SERVICE_ID, PermStyle::EntityId)
        .expect("alice exists");
    assert_eq!(hub_me(&sim, &token).await.status, 200);
    let alice = user_id(sim.addr(), &admin, "alice").await;
    let middle = token.split('.').nth(1).expect("entity id part");
    let entity = String::from_utf8(STANDARD.decode(middle).expect("base64")).expect("utf8");
    let target = format!("/hub/api/rest/users/{alice}/permanenttokens/{entity}");
    let deleted = call(
        sim.addr(),
        http::Method::DELETE,
        &target,
        Auth::Bearer(&admin),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_invalid_token(&hub_me(&sim, &token).await);

    let access = sim
        .mint_access("alice", "YouTrack", ACCESS_TOKEN_LIFETIME)
        .expect("alice exists");
    assert_eq!(youtrack_me(&sim, &access).await.status, 200);
    assert!(sim.revoke(&access));
    assert!(!sim.revoke(&access), "already gone");
    assert_youtrack_401(&youtrack_me(&sim, &access).await);
}

#[tokio::test(start_paused = true)]
async fn access_tokens_expire_after_their_lifetime_and_permanent_ones_do_not() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    let short = sim
        .mint_access(
            "alice",
            "0-0-0-0-0 YouTrack",
            std::time::Duration::from_secs(60),
        )
        .expect("alice exists");
    tokio::time::advance(std::time::Duration::from_secs(59)).await;
    assert_eq!(hub_me(&sim, &short).await.status, 200);
    assert_eq!(hub_me(&sim, &demo.both_oauth).await.status, 200);
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    assert_invalid_token(&hub_me(&sim, &short).await);

    tokio::time::advance(ACCESS_TOKEN_LIFETIME).await;
    assert_invalid_token(&hub_me(&sim, &demo.both_oauth).await);
    assert_youtrack_401(&youtrack_me(&sim, &demo.both_oauth).await);
    assert_eq!(hub_me(&sim, &demo.hub_only).await.status, 200);
    assert_eq!(youtrack_me(&sim, &demo.youtrack_only).await.status, 200);
}

#[tokio::test]
async fn probes_are_counted_per_token_and_service() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    assert_eq!(sim.probes(&demo.both_oauth, HUB_SERVICE_ID), 0);
    hub_me(&sim, &demo.both_oauth).await;
    hub_me(&sim, &demo.both_oauth).await;
    youtrack_me(&sim, &demo.both_oauth).await;
    youtrack_me(&sim, &demo.revoked).await;
    fetch(sim.addr(), "/api/issues", Auth::Bearer(&demo.both_oauth)).await;
    assert_eq!(sim.probes(&demo.both_oauth, HUB_SERVICE_ID), 2);
    assert_eq!(sim.probes(&demo.both_oauth, YOUTRACK_SERVICE_ID), 1);
    assert_eq!(sim.probes(&demo.revoked, YOUTRACK_SERVICE_ID), 1);
    assert_eq!(sim.probes(&demo.revoked, HUB_SERVICE_ID), 0);
    assert_eq!(sim.probes(&demo.hub_only, HUB_SERVICE_ID), 0);
    assert_eq!(sim.total_probes(), 4);
}
