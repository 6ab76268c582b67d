//! The simulator's token endpoint, `POST /hub/api/rest/oauth2/token`, against
//! `hub-contract.md`: grants, client authentication, RFC 6749 error codes, the answer's fields
//! and the observed access-token shape; and the simulator-only RFC 7662 endpoint.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hubgate::sim::{Sim, ACCESS_TOKEN_LIFETIME, HUB_SERVICE_ID, RFC7662_PATH, YOUTRACK_SERVICE_ID};
use serde_json::Value;
use support::sim::{
    assert_error, fetch, json_body, keys, post_form, user_id, Auth, HUB_ME, TOKEN_PATH, YOUTRACK_ME,
};

fn client(sim: &Sim) -> Auth<'_> {
    Auth::Basic(&sim.demo().client_id, &sim.demo().client_secret)
}

/// A successful grant: the contract's fields, `Bearer`, 3600 s.
fn granted(answer: &support::Answer) -> Value {
    let body = json_body(answer, 200);
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(ACCESS_TOKEN_LIFETIME.as_secs(), 3600);
    body
}

#[tokio::test]
async fn client_credentials_with_basic_or_body_authentication() {
    let sim = Sim::start().await.expect("sim starts");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", HUB_SERVICE_ID),
    ];
    let basic = granted(&post_form(sim.addr(), TOKEN_PATH, client(&sim), &form).await);
    assert_eq!(basic["scope"], HUB_SERVICE_ID);
    assert!(basic.get("refresh_token").is_none(), "{basic}");

    let demo = sim.demo();
    let in_body = [
        ("grant_type", "client_credentials"),
        ("scope", YOUTRACK_SERVICE_ID),
        ("client_id", demo.client_id.as_str()),
        ("client_secret", demo.client_secret.as_str()),
    ];
    let body = granted(&post_form(sim.addr(), TOKEN_PATH, Auth::Anonymous, &in_body).await);
    assert_eq!(body["scope"], YOUTRACK_SERVICE_ID);
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        fetch(sim.addr(), YOUTRACK_ME, Auth::Bearer(token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn password_grant_mints_the_observed_token_shape_and_scope_names_resolve() {
    let sim = Sim::start().await.expect("sim starts");
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice"),
        ("scope", "YouTrack 0-0-0-0-0"),
    ];
    let body = granted(&post_form(sim.addr(), TOKEN_PATH, client(&sim), &form).await);
    assert_eq!(
        body["scope"],
        format!("{YOUTRACK_SERVICE_ID} {HUB_SERVICE_ID}")
    );
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token without offline: {body}"
    );
    let token = body["access_token"].as_str().expect("token");

    // <issuedAtMs>.<client>.<user>.<scope ids space-separated>;1.<base64 signature>
    let (head, signature) = token.split_once(";1.").expect("signature part");
    let parts: Vec<&str> = head.splitn(4, '.').collect();
    assert_eq!(parts.len(), 4, "{token}");
    assert!(
        parts[0].len() >= 13 && parts[0].bytes().all(|b| b.is_ascii_digit()),
        "{token}"
    );
    assert_eq!(parts[1], sim.demo().client_id);
    assert_eq!(parts[2], user_id(sim.addr(), token, "alice").await);
    assert_eq!(parts[3], format!("{YOUTRACK_SERVICE_ID} {HUB_SERVICE_ID}"));
    assert!(token.contains(' '));
    assert!(STANDARD.decode(signature).is_ok(), "{signature}");

    for probe in [HUB_ME, YOUTRACK_ME] {
        let me = json_body(&fetch(sim.addr(), probe, Auth::Bearer(token)).await, 200);
        assert_eq!(me["login"], "alice", "{probe}");
    }

    let by_name = [("scope", "YouTrack"), ("grant_type", "client_credentials")];
    let body = granted(&post_form(sim.addr(), TOKEN_PATH, client(&sim), &by_name).await);
    assert_eq!(
        body["scope"], YOUTRACK_SERVICE_ID,
        "the name resolves to the ID"
    );
}

#[tokio::test]
async fn offline_password_grant_adds_a_refresh_token_bound_to_its_client() {
    let sim = Sim::start().await.expect("sim starts");
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice"),
        ("scope", YOUTRACK_SERVICE_ID),
        ("access_type", "offline"),
    ];
    let body = granted(&post_form(sim.addr(), TOKEN_PATH, client(&sim), &form).await);
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let renewed = granted(&post_form(sim.addr(), TOKEN_PATH, client(&sim), &refresh_form).await);
    assert_eq!(renewed["scope"], YOUTRACK_SERVICE_ID);
    let access = renewed["access_token"].as_str().expect("token");
    assert_eq!(
        fetch(sim.addr(), YOUTRACK_ME, Auth::Bearer(access))
            .await
            .status,
        200
    );

    // A refresh token is no bearer credential.
    let as_bearer = fetch(sim.addr(), YOUTRACK_ME, Auth::Bearer(&refresh)).await;
    assert_eq!(as_bearer.status, 401);

    // Another registered client may not use it.
    let admin = sim.demo().admin.clone();
    let registered = support::sim::call_json(
        sim.addr(),
        http::Method::POST,
        "/hub/api/rest/services?fields=id,secret",
        Auth::Bearer(&admin),
        &serde_json::json!({"name": "other-app", "applicationName": "Other"}),
    )
    .await;
    let other = json_body(&registered, 200);
    let (id, secret) = (
        other["id"].as_str().expect("id"),
        other["secret"].as_str().expect("secret"),
    );
    let foreign = post_form(
        sim.addr(),
        TOKEN_PATH,
        Auth::Basic(id, secret),
        &refresh_form,
    )
    .await;
    assert_error(&foreign, 400, "invalid_grant");
}

#[tokio::test]
async fn client_authentication_failures_are_invalid_client_401() {
    let sim = Sim::start().await.expect("sim starts");
    let form = [("grant_type", "client_credentials")];
    let id = sim.demo().client_id.clone();
    for auth in [
        Auth::Anonymous,
        Auth::Basic(&id, "wrong-secret"),
        Auth::Basic("no-such-client", "x"),
        Auth::Basic(YOUTRACK_SERVICE_ID, ""),
    ] {
        let answer = post_form(sim.addr(), TOKEN_PATH, auth, &form).await;
        assert_error(&answer, 401, "invalid_client");
    }
    let bad_body = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", "wrong"),
    ];
    let answer = post_form(sim.addr(), TOKEN_PATH, Auth::Anonymous, &bad_body).await;
    assert_error(&answer, 401, "invalid_client");
}

#[tokio::test]
async fn every_rfc_6749_error_code() {
    let sim = Sim::start().await.expect("sim starts");
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("scope", HUB_SERVICE_ID)], "invalid_request"),
        (
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "nope"),
            ],
            "invalid_grant",
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "bob"),
            ],
            "invalid_grant",
        ),
        (
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "1.not.issued"),
            ],
            "invalid_grant",
        ),
        (
            &[("grant_type", "urn:example:magic")],
            "unsupported_grant_type",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("scope", "NoSuchService"),
            ],
            "invalid_scope",
        ),
    ];
    for (form, error) in cases {
        let answer = post_form(sim.addr(), TOKEN_PATH, client(&sim), form).await;
        let body = assert_error(&answer, 400, error);
        assert!(body.get("access_token").is_none(), "{body}");
    }
}

async fn introspect(sim: &Sim, auth: Auth<'_>, token: &str) -> support::Answer {
    post_form(sim.addr(), RFC7662_PATH, auth, &[("token", token)]).await
}

#[tokio::test]
async fn rfc_7662_needs_client_authentication() {
    let sim = Sim::start().await.expect("sim starts");
    let token = sim.demo().both_oauth.clone();
    let id = sim.demo().client_id.clone();
    for auth in [
        Auth::Anonymous,
        Auth::Basic(&id, "wrong"),
        Auth::Bearer(&token),
    ] {
        assert_error(&introspect(&sim, auth, &token).await, 401, "invalid_client");
    }
}

#[tokio::test(start_paused = true)]
async fn rfc_7662_reports_active_tokens_and_nothing_about_others() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();

    let access = json_body(&introspect(&sim, client(&sim), &demo.both_oauth).await, 200);
    assert_eq!(access["active"], true);
    assert_eq!(
        access["scope"],
        format!("{YOUTRACK_SERVICE_ID} {HUB_SERVICE_ID}")
    );
    assert_eq!(access["username"], "alice");
    assert_eq!(
        access["sub"],
        user_id(sim.addr(), &demo.admin, "alice").await
    );
    let exp = access["exp"].as_u64().expect("exp for an access token");
    assert!(
        (now + 3590..=now + 3700).contains(&exp),
        "exp {exp}, now {now}"
    );

    let permanent = json_body(
        &introspect(&sim, client(&sim), &demo.youtrack_only).await,
        200,
    );
    assert_eq!(permanent["active"], true);
    assert_eq!(permanent["scope"], YOUTRACK_SERVICE_ID);
    assert_eq!(permanent["username"], "alice");
    assert!(
        permanent.get("exp").is_none(),
        "permanent tokens never expire: {permanent}"
    );

    for token in [
        demo.revoked.as_str(),
        "perm:bm9ib2R5.eA==.unknown",
        demo.banned.as_str(),
    ] {
        let body = json_body(&introspect(&sim, client(&sim), token).await, 200);
        assert_eq!(body, serde_json::json!({"active": false}), "{token}");
    }

    tokio::time::advance(ACCESS_TOKEN_LIFETIME).await;
    let expired = json_body(&introspect(&sim, client(&sim), &demo.both_oauth).await, 200);
    assert_eq!(keys(&expired), ["active"]);
    assert_eq!(expired["active"], false);
}
