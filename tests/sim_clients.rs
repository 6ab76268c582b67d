//! The simulator against what real YouTrack clients send (the mobile app, the IDE plugin and
//! Tasks connector, the web UI): the public endpoints here; signed attachment URLs in `files`,
//! Server-Sent Events with tickets in `events`, application passwords and HTTP Basic in
//! `credentials`, Hub's browser login, the implicit flow and the web UI page in `browser`.

mod support;

#[path = "sim_clients/browser.rs"]
mod browser;
#[path = "sim_clients/credentials.rs"]
mod credentials;
#[path = "sim_clients/events.rs"]
mod events;
#[path = "sim_clients/files.rs"]
mod files;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hubgate::sim::{Sim, YOUTRACK_SERVICE_ID};
use support::sim::{assert_error, fetch, json_body, keys, post_form, user_id, Auth};
use support::{empty, get, send, Answer};

pub fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// YouTrack's error body: `error` and `error_description`, no challenge.
pub fn assert_youtrack_error(answer: &Answer, status: u16, error: &str) {
    let body = json_body(answer, status);
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(answer.headers.get("www-authenticate").is_none());
}

/// Width and height of a PNG, after checking its signature and chunk layout.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    assert!(bytes.ends_with(b"IEND\xaeB`\x82"), "ends with IEND");
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (number(16), number(20))
}

pub fn basic(login: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{login}:{password}")))
}

pub async fn me_with(sim: &Sim, target: &str, authorization: &str) -> Answer {
    let request = get(sim.addr(), target)
        .header("authorization", authorization)
        .body(empty())
        .expect("request");
    send(sim.addr(), request).await
}

#[tokio::test]
async fn config_and_public_settings_answer_without_a_credential() {
    let sim = Sim::start().await.expect("sim starts");
    let config = json_body(
        &fetch(sim.addr(), "/api/config", Auth::Anonymous).await,
        200,
    );
    assert_eq!(config["$type"], "AppConfig");
    assert_eq!(config["version"], "2026.2");
    assert_eq!(config["statisticsEnabled"], false);
    assert!(
        config["build"].is_string() && config["uuid"].is_string(),
        "{config}"
    );
    let fields = "/api/config?fields=ring(url,serviceId),mobile(serviceSecret,serviceId),version";
    let config = json_body(&fetch(sim.addr(), fields, Auth::Anonymous).await, 200);
    assert_eq!(keys(&config), ["$type", "mobile", "ring", "version"]);
    assert_eq!(config["ring"]["url"], format!("http://{}/hub", sim.addr()));
    assert_eq!(config["ring"]["serviceId"], YOUTRACK_SERVICE_ID);
    // The mobile client is a registered service: its secret gets tokens.
    let (id, secret) = (
        &config["mobile"]["serviceId"],
        &config["mobile"]["serviceSecret"],
    );
    let client = Auth::Basic(id.as_str().expect("id"), secret.as_str().expect("secret"));
    let form = [("grant_type", "client_credentials")];
    let granted = post_form(sim.addr(), "/hub/api/rest/oauth2/token", client, &form).await;
    json_body(&granted, 200);
    // Behind TLS termination, Hub's URL follows the scheme the client used.
    let request = get(sim.addr(), "/api/config?fields=ring(url)")
        .header("x-forwarded-proto", "https")
        .body(empty())
        .expect("request");
    let config = json_body(&send(sim.addr(), request).await, 200);
    assert_eq!(config["ring"]["url"], format!("https://{}/hub", sim.addr()));

    let target = "/hub/api/rest/settings/public?fields=id";
    let settings = json_body(&fetch(sim.addr(), target, Auth::Anonymous).await, 200);
    assert_eq!(keys(&settings), ["id", "type"]);
    assert_eq!(settings["type"], "publicsettings");
}

#[tokio::test]
async fn avatars_are_public_pngs_of_known_users() {
    let sim = Sim::start().await.expect("sim starts");
    let alice = user_id(sim.addr(), &sim.demo().hub_only, "alice").await;
    let target = format!("/hub/api/rest/avatar/{alice}?etag=abc&dpr=2&size=32");
    let answer = fetch(sim.addr(), &target, Auth::Anonymous).await;
    assert_eq!(answer.status, 200);
    assert_eq!(header(&answer, "content-type"), "image/png");
    assert_eq!(png_size(&answer.body), (64, 64));
    let small = format!("/hub/api/rest/avatar/{alice}?s=20");
    let small = fetch(sim.addr(), &small, Auth::Anonymous).await;
    assert_eq!(png_size(&small.body), (20, 20));
    let unknown = "/hub/api/rest/avatar/00000000-0000-0000-0000-000000000000?size=32";
    assert_error(
        &fetch(sim.addr(), unknown, Auth::Anonymous).await,
        404,
        "not_found",
    );
}
