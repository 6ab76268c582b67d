//! The simulated Hub's REST API against `hub-contract.md`: user search, permanent and refresh
//! token management (with who may act for whom), and services (lookup and registration).

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::Method;
use hubgate::sim::{Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use serde_json::{json, Value};
use support::sim::{
    assert_error, call, call_json, fetch, json_body, keys, post_form, user_id, Auth, HUB_ME,
    TOKEN_PATH,
};

const TOKEN_FIELDS: &str = "fields=id,name,scope(id,name),creationTime,lastAccessTime";

fn tokens_of(user: &str) -> String {
    format!("/hub/api/rest/users/{user}/permanenttokens")
}

#[tokio::test]
async fn users_are_found_by_login() {
    let sim = Sim::start().await.expect("sim starts");
    let target = "/hub/api/rest/users?query=login:alice&fields=id,login";
    let body = json_body(
        &fetch(sim.addr(), target, Auth::Bearer(&sim.demo().hub_only)).await,
        200,
    );
    assert_eq!(
        (&body["skip"], &body["total"]),
        (&json!(0), &json!(1)),
        "{body}"
    );
    assert!(body["top"].is_u64(), "{body}");
    let users = body["users"].as_array().expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!(keys(&users[0]), ["id", "login", "type"]);
    assert_eq!(users[0]["login"], "alice");

    let nobody = "/hub/api/rest/users?query=login:nobody&fields=id,login";
    let none = json_body(
        &fetch(sim.addr(), nobody, Auth::Bearer(&sim.demo().admin)).await,
        200,
    );
    assert_eq!((&none["total"], &none["users"]), (&json!(0), &json!([])));
    let youtrack_only = Auth::Bearer(&sim.demo().youtrack_only);
    assert_error(
        &fetch(sim.addr(), target, youtrack_only).await,
        401,
        "invalid_token",
    );
}

#[tokio::test]
async fn permanent_tokens_are_listed_created_and_revoked() {
    let sim = Sim::start().await.expect("sim starts");
    let hub_only = sim.demo().hub_only.clone();
    let me = Auth::Bearer(&hub_only);
    // Using a token stamps its lastAccessTime.
    assert_eq!(fetch(sim.addr(), HUB_ME, me).await.status, 200);

    let listed = fetch(
        sim.addr(),
        &format!("{}?{TOKEN_FIELDS}", tokens_of("me")),
        me,
    )
    .await;
    let page = json_body(&listed, 200);
    assert_eq!(
        (&page["skip"], &page["total"]),
        (&json!(0), &json!(2)),
        "{page}"
    );
    assert!(page["top"].is_u64());
    let tokens = page["permanenttokens"].as_array().expect("permanenttokens");
    let names: Vec<&Value> = tokens.iter().map(|t| &t["name"]).collect();
    assert_eq!(names, [&json!("youtrack-cli"), &json!("hub-admin-scripts")]);
    let scripts = &tokens[1];
    let expected_keys = [
        "creationTime",
        "id",
        "lastAccessTime",
        "name",
        "scope",
        "type",
    ];
    assert_eq!(keys(scripts), expected_keys);
    assert_eq!(
        scripts["scope"],
        json!([{"type": "service", "id": HUB_SERVICE_ID, "name": "YouTrack Administration"}])
    );
    assert!(scripts["creationTime"].is_u64());
    assert!(scripts["lastAccessTime"].is_u64(), "used above: {scripts}");
    assert!(
        tokens[0]["lastAccessTime"].is_null(),
        "never used: {}",
        tokens[0]
    );
    // Without fields=, nested objects carry just their id.
    let plain = json_body(&fetch(sim.addr(), &tokens_of("me"), me).await, 200);
    let scope = &plain["permanenttokens"][0]["scope"][0];
    assert_eq!(
        scope,
        &json!({"type": "service", "id": YOUTRACK_SERVICE_ID})
    );

    let wanted =
        json!({"name": "ci", "scope": [{"id": YOUTRACK_SERVICE_ID}, {"id": HUB_SERVICE_ID}]});
    let created = call_json(sim.addr(), Method::POST, &tokens_of("me"), me, &wanted).await;
    let created = json_body(&created, 200);
    assert_eq!(created["name"], "ci");
    let token = created["token"].as_str().expect("the new token").to_owned();
    let entity = created["id"].as_str().expect("its id").to_owned();
    let parts: Vec<&str> = token
        .strip_prefix("perm:")
        .expect("perm:")
        .split('.')
        .collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert_eq!(parts[0], STANDARD.encode("alice"));
    assert_eq!(parts[1], STANDARD.encode(&entity));
    assert!(parts[2].len() == 30 && parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        fetch(sim.addr(), HUB_ME, Auth::Bearer(&token)).await.status,
        200
    );
    let listed = json_body(&fetch(sim.addr(), &tokens_of("me"), me).await, 200);
    assert_eq!(listed["total"], 3);

    let target = format!("{}/{entity}", tokens_of("me"));
    assert_eq!(
        call(sim.addr(), Method::DELETE, &target, me).await.status,
        200
    );
    assert_error(
        &fetch(sim.addr(), HUB_ME, Auth::Bearer(&token)).await,
        401,
        "invalid_token",
    );
    let again = call(sim.addr(), Method::DELETE, &target, me).await;
    assert_error(&again, 404, "not_found");
}

#[tokio::test]
async fn only_admins_act_for_other_users() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    let admin = Auth::Bearer(&demo.admin);
    let alice_token = Auth::Bearer(&demo.hub_only);
    let admin_id = user_id(sim.addr(), &demo.admin, "admin").await;
    let alice_id = user_id(sim.addr(), &demo.admin, "alice").await;
    let wanted = json!({"name": "x", "scope": [{"id": YOUTRACK_SERVICE_ID}]});

    let foreign = tokens_of(&admin_id);
    assert_error(
        &fetch(sim.addr(), &foreign, alice_token).await,
        403,
        "forbidden",
    );
    let created = call_json(sim.addr(), Method::POST, &foreign, alice_token, &wanted).await;
    assert_error(&created, 403, "forbidden");
    let refresh = format!("/hub/api/rest/users/{admin_id}/refreshtokens");
    assert_error(
        &fetch(sim.addr(), &refresh, alice_token).await,
        403,
        "forbidden",
    );

    let listed = json_body(&fetch(sim.addr(), &tokens_of(&alice_id), admin).await, 200);
    assert_eq!(listed["total"], 2);
    let created = call_json(
        sim.addr(),
        Method::POST,
        &tokens_of(&alice_id),
        admin,
        &wanted,
    )
    .await;
    let token = json_body(&created, 200)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let prefix = format!("perm:{}.", STANDARD.encode("alice"));
    assert!(token.starts_with(&prefix), "{token}");

    let unknown = tokens_of("no-such-user");
    assert_error(&fetch(sim.addr(), &unknown, admin).await, 404, "not_found");
    assert_error(
        &fetch(sim.addr(), &unknown, alice_token).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn refresh_tokens_are_listed_and_deleted() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    let client = Auth::Basic(&demo.client_id, &demo.client_secret);
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice"),
        ("scope", "0-0-0-0-0 YouTrack"),
        ("access_type", "offline"),
    ];
    let granted = json_body(&post_form(sim.addr(), TOKEN_PATH, client, &form).await, 200);
    let refresh = granted["refresh_token"].as_str().expect("refresh token");
    let access = granted["access_token"].as_str().expect("access token");
    let alice = user_id(sim.addr(), access, "alice").await;

    let target = format!("/hub/api/rest/users/{alice}/refreshtokens");
    let page = json_body(&fetch(sim.addr(), &target, Auth::Bearer(access)).await, 200);
    assert_eq!(
        (&page["skip"], &page["total"]),
        (&json!(0), &json!(1)),
        "{page}"
    );
    let listed = &page["refreshtokens"][0];
    let entity = listed["id"].as_str().expect("id").to_owned();
    assert_eq!(listed["client"]["id"], demo.client_id);

    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    assert_eq!(
        post_form(sim.addr(), TOKEN_PATH, client, &refresh_form)
            .await
            .status,
        200
    );
    let delete = format!("{target}/{entity}");
    let deleted = call(
        sim.addr(),
        Method::DELETE,
        &delete,
        Auth::Bearer(&demo.admin),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let refused = post_form(sim.addr(), TOKEN_PATH, client, &refresh_form).await;
    assert_error(&refused, 400, "invalid_grant");
    let page = json_body(&fetch(sim.addr(), &target, Auth::Bearer(access)).await, 200);
    assert_eq!(
        (&page["total"], &page["refreshtokens"]),
        (&json!(0), &json!([]))
    );
}

#[tokio::test]
async fn youtrack_is_found_among_the_services() {
    let sim = Sim::start().await.expect("sim starts");
    let token = Auth::Bearer(&sim.demo().hub_only);
    let target =
        "/hub/api/rest/services?query=applicationName:YouTrack&fields=id,name,applicationName";
    let body = json_body(&fetch(sim.addr(), target, token).await, 200);
    let top = body["top"].clone();
    assert!(top.is_u64(), "{body}");
    assert_eq!(
        body,
        json!({"type": "ServicesPage", "skip": 0, "top": top, "total": 1, "services": [
            {"type": "service", "id": YOUTRACK_SERVICE_ID, "name": "YouTrack", "applicationName": "YouTrack"}
        ]})
    );

    let all = json_body(
        &fetch(sim.addr(), "/hub/api/rest/services?fields=id", token).await,
        200,
    );
    let total = all["total"].as_u64().expect("total");
    assert!(total >= 3, "Hub, YouTrack and the demo client: {all}");
    let paged = "/hub/api/rest/services?$skip=1&$top=1&fields=id";
    let paged = json_body(&fetch(sim.addr(), paged, token).await, 200);
    assert_eq!(
        (&paged["skip"], &paged["top"], &paged["total"]),
        (&json!(1), &json!(1), &json!(total))
    );
    assert_eq!(paged["services"], json!([all["services"][1]]));
}

#[tokio::test]
async fn admins_register_clients_that_can_then_get_tokens() {
    let sim = Sim::start().await.expect("sim starts");
    let demo = sim.demo().clone();
    let registration = json!({"name": "gateway", "homeUrl": "https://gw.example",
        "redirectUris": ["https://gw.example/cb"], "applicationName": "Gateway",
        "vendor": "Example", "version": "1.0"});
    let target = "/hub/api/rest/services?fields=id,secret";
    let refused = call_json(
        sim.addr(),
        Method::POST,
        target,
        Auth::Bearer(&demo.hub_only),
        &registration,
    )
    .await;
    assert_error(&refused, 403, "forbidden");

    let answer = call_json(
        sim.addr(),
        Method::POST,
        target,
        Auth::Bearer(&demo.admin),
        &registration,
    )
    .await;
    let registered = json_body(&answer, 200);
    let mut expected_keys = keys(&registered);
    expected_keys.retain(|k| *k != "type");
    assert_eq!(expected_keys, ["id", "secret"]);
    let id = registered["id"].as_str().expect("id");
    let secret = registered["secret"].as_str().expect("secret");

    let form = [("grant_type", "client_credentials"), ("scope", "YouTrack")];
    let granted = post_form(sim.addr(), TOKEN_PATH, Auth::Basic(id, secret), &form).await;
    assert_eq!(json_body(&granted, 200)["scope"], YOUTRACK_SERVICE_ID);

    let lookup = "/hub/api/rest/services?query=applicationName:Gateway&fields=id,name,homeUrl";
    let found = json_body(
        &fetch(sim.addr(), lookup, Auth::Bearer(&demo.admin)).await,
        200,
    );
    assert_eq!(
        found["services"],
        json!([{"type": "service", "id": id, "name": "gateway", "homeUrl": "https://gw.example"}])
    );
}

#[tokio::test]
async fn a_banned_user_cannot_manage_tokens_and_other_hub_paths_echo() {
    let sim = Sim::start().await.expect("sim starts");
    let banned = Auth::Bearer(&sim.demo().banned);
    let answer = fetch(sim.addr(), &tokens_of("me"), banned).await;
    assert_error(&answer, 403, "forbidden");
    let target = "/hub/api/rest/oauth2/auth?response_type=code&client_id=x";
    let answer = fetch(sim.addr(), target, Auth::Anonymous).await;
    let echoed = json_body(&answer, 200);
    assert_eq!(echoed["target"], target);
    assert_eq!(echoed["method"], "GET");
}
