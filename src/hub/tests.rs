//! The Hub admin client against the simulator: each deletion is checked the way a gateway
//! would see it, by asking the simulator's `users/me` probes with the deleted token.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::*;
use crate::sim::{HubFault, PermStyle, Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};

const HUB_ME: &str = "/hub/api/rest/users/me?fields=id,login,name,banned,guest";
const YOUTRACK_ME: &str = "/api/users/me?fields=id,login,name,banned,guest";
/// Scope for minted tokens: both probes answer 200 until the token is deleted.
const BOTH: &str = "0-0-0-0-0 YouTrack";

fn client_as(sim: &Sim, admin_token: &str) -> HubClient {
    let hub = config::Hub {
        url: format!("{}/hub", sim.url()).parse().expect("hub url"),
        admin_token: Secret::new(admin_token),
    };
    HubClient::new(&hub, None).expect("client")
}

fn admin_client(sim: &Sim) -> HubClient {
    client_as(sim, &sim.demo().admin)
}

/// The status of `GET path` on the simulator with `token`.
async fn status_with(hub: &HubClient, sim: &Sim, path: &str, token: &str) -> StatusCode {
    let request = Request::get(format!("{}{path}", sim.url()))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = hub
        .client
        .request(request)
        .await
        .expect("simulator answers");
    response.status()
}

/// Both probes: (Hub's, YouTrack's).
async fn probes(hub: &HubClient, sim: &Sim, token: &str) -> (StatusCode, StatusCode) {
    (
        status_with(hub, sim, HUB_ME, token).await,
        status_with(hub, sim, YOUTRACK_ME, token).await,
    )
}

const OK: (StatusCode, StatusCode) = (StatusCode::OK, StatusCode::OK);
const GONE: (StatusCode, StatusCode) = (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED);

/// A refresh token for `login` from the password grant with `access_type=offline`.
async fn refresh_token(hub: &HubClient, sim: &Sim, login: &str) -> String {
    let demo = sim.demo();
    let basic = STANDARD.encode(format!("{}:{}", demo.client_id, demo.client_secret));
    let form = format!(
        "grant_type=password&username={login}&password={login}&scope=0-0-0-0-0&access_type=offline"
    );
    let request = Request::post(format!("{}/hub/api/rest/oauth2/token", sim.url()))
        .header(AUTHORIZATION, format!("Basic {basic}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .expect("request");
    let response = hub.client.request(request).await.expect("token endpoint");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    answer["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

#[tokio::test]
async fn an_entity_id_token_is_deleted_and_only_it() {
    let sim = Sim::start().await.expect("sim");
    let hub = admin_client(&sim);
    for style in [PermStyle::EntityId, PermStyle::Dash] {
        let token = sim.mint_permanent("alice", BOTH, style).expect("minted");
        let kept = sim.mint_permanent("alice", BOTH, style).expect("minted");
        assert_eq!(probes(&hub, &sim, &token).await, OK);
        let deleted = hub.delete_permanent_token(&token).await.expect("deleted");
        assert_eq!(deleted.login, "alice");
        assert_eq!(deleted.status, 200);
        assert_eq!(deleted.token_name.as_deref(), Some("minted"));
        let reference = decode_permanent(&token).expect("decodes").reference;
        assert_eq!(deleted.token_id, reference, "{style:?}");
        assert_eq!(probes(&hub, &sim, &token).await, GONE, "{style:?}");
        assert_eq!(probes(&hub, &sim, &kept).await, OK, "{style:?}");
    }
}

#[tokio::test]
async fn a_named_token_is_deleted_when_its_name_is_unique() {
    let sim = Sim::start().await.expect("sim");
    let hub = admin_client(&sim);
    let token = sim.demo().youtrack_only.clone();
    let yt = status_with(&hub, &sim, YOUTRACK_ME, &token).await;
    assert_eq!(yt, StatusCode::OK);
    let deleted = hub.delete_permanent_token(&token).await.expect("deleted");
    assert_eq!(deleted.token_name.as_deref(), Some("youtrack-cli"));
    assert_ne!(deleted.token_id, "youtrack-cli");
    assert_eq!(probes(&hub, &sim, &token).await, GONE);
    assert_eq!(probes(&hub, &sim, &sim.demo().both_oauth).await, OK);
}

#[tokio::test]
async fn a_shared_name_is_ambiguous_and_nothing_is_deleted() {
    let sim = Sim::start().await.expect("sim");
    let hub = admin_client(&sim);
    let first = sim
        .mint_permanent("alice", BOTH, PermStyle::Named)
        .expect("minted");
    let second = sim
        .mint_permanent("alice", BOTH, PermStyle::Named)
        .expect("minted");
    let error = hub
        .delete_permanent_token(&first)
        .await
        .expect_err("ambiguous");
    assert!(
        matches!(error, HubError::AmbiguousToken { count: 2, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("\"minted\""), "{error}");
    assert_eq!(probes(&hub, &sim, &first).await, OK);
    assert_eq!(probes(&hub, &sim, &second).await, OK);
}

#[tokio::test]
async fn unknown_users_deleted_tokens_and_oauth_tokens_are_reported() {
    let sim = Sim::start().await.expect("sim");
    let hub = admin_client(&sim);
    let demo = sim.demo().clone();
    let nobody =
        demo.youtrack_only
            .replacen(&STANDARD.encode("alice"), &STANDARD.encode("nobody"), 1);
    for token in [&demo.revoked, &demo.both_oauth, &nobody] {
        let error = hub
            .delete_permanent_token(token)
            .await
            .expect_err("refused");
        let expected = match error {
            HubError::TokenNotFound { .. } => token == &demo.revoked,
            HubError::NotPermanentToken => token == &demo.both_oauth,
            HubError::UserNotFound { .. } => token == &nobody,
            _ => false,
        };
        let shown = format!("{error} {error:?}");
        assert!(expected, "{shown}");
        assert!(!shown.contains(token.as_str()), "{shown}");
    }
}

#[tokio::test]
async fn every_permanent_and_refresh_token_and_application_password_of_a_user_is_deleted() {
    let sim = Sim::start().await.expect("sim");
    let hub = admin_client(&sim);
    let demo = sim.demo().clone();
    let refresh = refresh_token(&hub, &sim, "alice").await;
    let minted = sim
        .mint_permanent("alice", BOTH, PermStyle::Named)
        .expect("minted");
    let password = sim
        .create_app_password("alice", "tasks")
        .expect("application password");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("alice:{password}")
        )
    );
    assert_eq!(basic_probe(&sim, &basic).await, StatusCode::OK);
    let results = hub.delete_user_tokens("alice").await.expect("deleted");
    let kinds = |kind| results.iter().filter(|r| r.kind == kind).count();
    assert_eq!(kinds(ItemKind::Permanent), 3, "{results:?}");
    assert_eq!(kinds(ItemKind::Refresh), 1, "{results:?}");
    assert_eq!(kinds(ItemKind::AppPassword), 1, "{results:?}");
    assert_eq!(basic_probe(&sim, &basic).await, StatusCode::UNAUTHORIZED);
    assert!(
        results.iter().all(|r| r.ok && r.status == Some(200)),
        "{results:?}"
    );
    for token in [&demo.youtrack_only, &demo.hub_only, &minted] {
        assert_eq!(probes(&hub, &sim, token).await, GONE);
    }
    assert_eq!(
        probes(&hub, &sim, &demo.admin).await,
        OK,
        "other users untouched"
    );
    assert_eq!(probes(&hub, &sim, &demo.banned).await.0, StatusCode::OK);
    let again = hub.delete_user_tokens("alice").await.expect("listed");
    assert!(again.is_empty(), "{again:?}");
    let json = serde_json::to_value(&results).expect("serializes");
    assert_eq!(json[0]["kind"], "permanent");
    assert!(json.to_string().find(&refresh).is_none());
}

/// The status of Hub's `users/me` asked with `authorization` as it is.
async fn basic_probe(sim: &Sim, authorization: &str) -> StatusCode {
    let stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = http::Request::get("/hub/api/rest/users/me?fields=id")
        .header("host", sim.addr().to_string())
        .header("authorization", authorization)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    sender.send_request(request).await.expect("answer").status()
}

#[tokio::test]
async fn hub_refusals_name_the_step_and_say_what_hub_said_never_the_tokens() {
    let sim = Sim::start().await.expect("sim");
    let demo = sim.demo().clone();
    let alice = client_as(&sim, &demo.hub_only);
    let error = alice
        .delete_user_tokens("bob")
        .await
        .expect_err("not an admin");
    let shown = format!("{error} {error:?} {alice:?}");
    assert!(
        matches!(error, HubError::Status { status: 403, .. }),
        "{shown}"
    );
    assert!(shown.contains("listing permanent tokens"), "{shown}");
    assert!(shown.contains("Access denied"), "{shown}");
    assert!(!shown.contains(&demo.hub_only), "{shown}");
    let yt_only = client_as(&sim, &demo.youtrack_only);
    let error = yt_only.services().await.expect_err("no Hub scope");
    let shown = format!("{error}");
    assert!(
        shown.contains("401") && shown.contains("can't be used for 0-0-0-0-0"),
        "{shown}"
    );
    let error = yt_only
        .delete_permanent_token(&demo.banned)
        .await
        .expect_err("no Hub scope");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("finding the user"), "{shown}");
    assert!(
        !shown.contains(&demo.youtrack_only) && !shown.contains(&demo.banned),
        "{shown}"
    );
}

#[tokio::test]
async fn hub_faults_are_errors_not_answers() {
    let sim = Sim::start().await.expect("sim");
    let hub = admin_client(&sim);
    for (fault, expected) in [
        (HubFault::Html, "not JSON"),
        (HubFault::TruncatedJson, "not JSON"),
        (
            HubFault::Status(503),
            "503 Service Unavailable (server_error: Simulated Hub failure)",
        ),
        (HubFault::Redirect, "a redirect"),
        (HubFault::Down, "unreachable"),
    ] {
        sim.set_hub_fault(Some(fault));
        let error = hub.services().await.expect_err("fault");
        assert!(error.to_string().contains(expected), "{fault:?}: {error}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_hub_times_out() {
    let sim = Sim::start().await.expect("sim");
    sim.set_hub_latency(Duration::from_secs(60));
    let error = admin_client(&sim).services().await.expect_err("timeout");
    assert!(
        matches!(
            error,
            HubError::Timeout {
                step: Step::ListServices
            }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn services_are_listed_over_every_page_and_registration_adds_one() {
    let sim = Sim::start().await.expect("sim");
    let mut hub = admin_client(&sim);
    let registered = hub
        .register("ci-bot", "https://ci.example.com")
        .await
        .expect("registered");
    assert!(!registered.secret.expose().is_empty());
    assert!(!format!("{registered:?}").contains(registered.secret.expose()));
    hub.page_size = 1;
    let services = hub.services().await.expect("listed");
    let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    assert!(
        ids.contains(&HUB_SERVICE_ID) && ids.contains(&YOUTRACK_SERVICE_ID),
        "{ids:?}"
    );
    let ours = services
        .iter()
        .find(|s| s.id == registered.id)
        .expect("listed");
    assert_eq!(ours.name.as_deref(), Some("ci-bot"));
    assert_eq!(ours.application_name.as_deref(), Some("hubgate"));
    assert_eq!(ours.home_url.as_deref(), Some("https://ci.example.com"));
    assert_eq!(services.len(), 5, "{ids:?}");
}

#[test]
fn the_base_url_never_ends_in_a_slash() {
    for (url, base) in [
        ("https://yt.example.com/hub", "https://yt.example.com/hub"),
        ("https://yt.example.com", "https://yt.example.com"),
        (
            "http://127.0.0.1:8081/youtrack/hub/",
            "http://127.0.0.1:8081/youtrack/hub",
        ),
    ] {
        let uri: Uri = url.parse().expect("uri");
        assert_eq!(base_url(&uri).ok().as_deref(), Some(base));
    }
}
