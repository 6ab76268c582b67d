//! Application passwords, and HTTP Basic wherever a bearer token is accepted.

use http::Method;
use hubgate::sim::{Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use serde_json::json;

use super::files::ATTACHMENTS;
use super::{assert_youtrack_error, basic, me_with};
use crate::support::sim::{
    assert_error, call, call_json, fetch, json_body, keys, user_id, Auth, HUB_ME, YOUTRACK_ME,
};

const APP_PASSWORDS: &str = "/hub/api/rest/users/me/applicationPasswords";
const APP_FIELDS: &str = "fields=id,name,creationTime,lastAccessTime";

#[tokio::test]
async fn application_passwords_are_created_listed_used_and_deleted() {
    let sim = Sim::start().await.expect("sim starts");
    let me = Auth::Bearer(&sim.demo().hub_only);
    let target = format!("{APP_PASSWORDS}?fields=id,name,password,creationTime");
    let created = call_json(
        sim.addr(),
        Method::POST,
        &target,
        me,
        &json!({"name": "ide"}),
    )
    .await;
    let created = json_body(&created, 200);
    assert_eq!(
        keys(&created),
        ["creationTime", "id", "name", "password", "type"]
    );
    let password = created["password"].as_str().expect("password").to_owned();
    let listed = json_body(
        &fetch(sim.addr(), &format!("{APP_PASSWORDS}?{APP_FIELDS}"), me).await,
        200,
    );
    assert_eq!(
        (&listed["skip"], &listed["total"]),
        (&json!(0), &json!(1)),
        "{listed}"
    );
    let entry = &listed["applicationPasswords"][0];
    assert_eq!(
        keys(entry),
        ["creationTime", "id", "lastAccessTime", "name", "type"]
    );
    assert!(entry["lastAccessTime"].is_null());

    // login + application password: every service.
    let credential = basic("alice", &password);
    for probe in [HUB_ME, YOUTRACK_ME] {
        let body = json_body(&me_with(&sim, probe, &credential).await, 200);
        assert_eq!(body["login"], "alice", "{probe}");
    }
    assert_eq!(sim.probes(&credential, YOUTRACK_SERVICE_ID), 1);
    assert_eq!(sim.probes(&credential, HUB_SERVICE_ID), 1);
    let listed = json_body(
        &fetch(sim.addr(), &format!("{APP_PASSWORDS}?{APP_FIELDS}"), me).await,
        200,
    );
    assert!(
        listed["applicationPasswords"][0]["lastAccessTime"].is_u64(),
        "{listed}"
    );
    // Deleting it is effective at once.
    let id = created["id"].as_str().expect("id");
    let delete = format!("{APP_PASSWORDS}/{id}");
    assert_eq!(
        call(sim.addr(), Method::DELETE, &delete, me).await.status,
        200
    );
    assert_error(
        &me_with(&sim, HUB_ME, &credential).await,
        401,
        "invalid_token",
    );
    assert_youtrack_error(
        &me_with(&sim, YOUTRACK_ME, &credential).await,
        401,
        "Unauthorized",
    );
    assert_error(
        &call(sim.addr(), Method::DELETE, &delete, me).await,
        404,
        "not_found",
    );

    // Who may: the user or an admin, with a credential valid for Hub.
    let youtrack_only = Auth::Bearer(&sim.demo().youtrack_only);
    assert_error(
        &fetch(sim.addr(), APP_PASSWORDS, youtrack_only).await,
        401,
        "invalid_token",
    );
    let banned = Auth::Bearer(&sim.demo().banned);
    assert_error(
        &fetch(sim.addr(), APP_PASSWORDS, banned).await,
        403,
        "forbidden",
    );
    let admin = user_id(sim.addr(), &sim.demo().admin, "admin").await;
    let of_admin = format!("/hub/api/rest/users/{admin}/applicationPasswords");
    assert_error(&fetch(sim.addr(), &of_admin, me).await, 403, "forbidden");
    let alice = user_id(sim.addr(), &sim.demo().admin, "alice").await;
    let of_alice = format!("/hub/api/rest/users/{alice}/applicationPasswords");
    json_body(
        &fetch(sim.addr(), &of_alice, Auth::Bearer(&sim.demo().admin)).await,
        200,
    );
    let nameless = call_json(sim.addr(), Method::POST, APP_PASSWORDS, me, &json!({})).await;
    assert_error(&nameless, 400, "invalid_request");
    // One made by the test control works for the Hub API too.
    let password = sim
        .create_app_password("alice", "ci")
        .expect("alice exists");
    json_body(
        &fetch(sim.addr(), APP_PASSWORDS, Auth::Basic("alice", &password)).await,
        200,
    );
    assert_eq!(sim.create_app_password("nobody", "ci"), None);
}

#[tokio::test]
async fn basic_credentials_are_accepted_wherever_a_bearer_token_is() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    let refusal = "Token is granted for [YouTrack] and can't be used for 0-0-0-0-0";
    // A permanent token as the password: exactly that token, the user name ignored.
    let ide = basic("random", &demo.youtrack_only);
    assert_eq!(
        json_body(&me_with(&sim, YOUTRACK_ME, &ide).await, 200)["login"],
        "alice"
    );
    let hub = assert_error(&me_with(&sim, HUB_ME, &ide).await, 401, "invalid_token");
    assert_eq!(hub["error_description"], refusal);
    let dash = basic("admin", &demo.hub_only);
    assert_eq!(
        json_body(&me_with(&sim, HUB_ME, &dash).await, 200)["login"],
        "alice"
    );
    assert_youtrack_error(
        &me_with(&sim, YOUTRACK_ME, &dash).await,
        401,
        "Unauthorized",
    );
    let revoked = basic("alice", &demo.revoked);
    assert_error(&me_with(&sim, HUB_ME, &revoked).await, 401, "invalid_token");
    // The account password (no 2FA here): every service; a wrong one is an invalid token.
    let account = basic("alice", "alice");
    for probe in [HUB_ME, YOUTRACK_ME] {
        assert_eq!(
            json_body(&me_with(&sim, probe, &account).await, 200)["login"],
            "alice"
        );
    }
    for wrong in [
        basic("alice", "wrong"),
        basic("nobody", "alice"),
        basic("guest", ""),
    ] {
        let hub = assert_error(&me_with(&sim, HUB_ME, &wrong).await, 401, "invalid_token");
        assert_eq!(hub["error_description"], "Token is invalid");
        assert_youtrack_error(
            &me_with(&sim, YOUTRACK_ME, &wrong).await,
            401,
            "Unauthorized",
        );
    }
    assert_eq!(sim.probes(&basic("alice", "wrong"), HUB_SERVICE_ID), 1);
    // Banned users authenticate and are reported banned, as with their tokens.
    let bob = json_body(&me_with(&sim, HUB_ME, &basic("bob", "bob")).await, 200);
    assert_eq!(
        (&bob["login"], &bob["banned"]),
        (&json!("bob"), &json!(true))
    );
    // The Hub API and YouTrack's endpoints take them too.
    let users = "/hub/api/rest/users?query=login:alice&fields=id";
    json_body(
        &fetch(sim.addr(), users, Auth::Basic("admin", "admin")).await,
        200,
    );
    json_body(
        &fetch(sim.addr(), ATTACHMENTS, Auth::Basic("alice", "alice")).await,
        200,
    );
}
