//! Every official YouTrack client through a gateway started from the shipped
//! `config.example.toml` (only its addresses changed): the requests they send without any
//! credential (discovery, public settings, avatars, signed attachments, event streams), HTTP
//! Basic from JetBrains' IDE clients, and each client's request sequence in order.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hubgate::sim::{Sim, DEMO_AGILE, DEMO_SPRINT, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use support::sim::{call_with_body, fetch, post_form, Auth, TOKEN_PATH};
use support::{send, Answer, Gateway};
use tokio::net::TcpStream;

const ADMIN_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The shipped configuration in front of `sim` and, if `admin_token_file` is given, with the
/// admin token enabled.
fn shipped_config(sim: SocketAddr, admin_token_file: Option<&Path>) -> String {
    let text = support::shipped_config(sim);
    let Some(file) = admin_token_file else {
        return text;
    };
    let line = "# token_file = \"/etc/hubgate/admin-token\"";
    assert!(text.contains(line), "config.example.toml has no {line}");
    text.replace(line, &format!("token_file = {file:?}"))
}

/// The simulator and a gateway from the shipped configuration in front of it.
struct Rig {
    sim: Sim,
    gateway: Gateway,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start() -> Rig {
        let sim = Sim::start().await.expect("simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("admin-token");
        std::fs::write(&token_file, ADMIN_TOKEN).expect("admin token file");
        let gateway = Gateway::start(&shipped_config(sim.addr(), Some(&token_file))).await;
        Rig {
            sim,
            gateway,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    async fn get(&self, target: &str, auth: Auth<'_>) -> Answer {
        fetch(self.addr(), target, auth).await
    }

    /// A request with exactly this `Authorization` value.
    async fn get_with(&self, target: &str, authorization: &str) -> Answer {
        let request = support::get(self.addr(), target)
            .header("authorization", authorization)
            .body(Empty::<Bytes>::new())
            .expect("request");
        send(self.addr(), request).await
    }

    async fn revoke(&self, body: Value) {
        let request = support::get(self.gateway.admin, "/revocations")
            .method("POST")
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        let answer = send(self.gateway.admin, request).await;
        assert_eq!(answer.status, 201, "{}", answer.text());
    }

    /// alice's user ID, as Hub reports it.
    async fn alice_id(&self) -> String {
        let token = &self.sim.demo().both_oauth;
        let me = self
            .get("/hub/api/rest/users/me?fields=id", Auth::Bearer(token))
            .await;
        json(&me, 200)["id"].as_str().expect("user id").to_owned()
    }
}

#[track_caller]
fn json(answer: &Answer, status: u16) -> Value {
    assert_eq!(answer.status, status, "{}", answer.text());
    serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.text()))
}

/// The gateway's own 401 for a request without a credential: nothing reached YouTrack.
#[track_caller]
fn assert_gateway_401(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert!(
        answer.www_authenticate().is_some(),
        "not the gateway's 401: {}",
        answer.text()
    );
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

#[tokio::test]
async fn the_shipped_configuration_passes_what_clients_send_without_a_credential() {
    let rig = Rig::start().await;
    // The mobile app's discovery, before any login.
    let config = rig
        .get(
            "/api/config?fields=ring(url,serviceId),mobile(serviceSecret,serviceId),version",
            Auth::Anonymous,
        )
        .await;
    let config = json(&config, 200);
    assert_eq!(config["ring"]["serviceId"], YOUTRACK_SERVICE_ID, "{config}");
    assert!(config["mobile"]["serviceId"].is_string(), "{config}");
    // The web UI's auth library, on login, logout and token refresh.
    let settings = rig
        .get("/hub/api/rest/settings/public?fields=id", Auth::Anonymous)
        .await;
    assert!(json(&settings, 200)["id"].is_string());
    // An avatar, as an <img> loads it.
    let avatar = format!(
        "/hub/api/rest/avatar/{}?etag=1&dpr=2&size=32",
        rig.alice_id().await
    );
    let image = rig.get(&avatar, Auth::Anonymous).await;
    assert_eq!(image.status, 200, "{}", image.text());
    assert_eq!(image.headers["content-type"], "image/png");
    assert!(image.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    // A signed attachment link (its sign contains %0D%0A).
    let signed = rig.sim.signed_file_url("alice", Duration::from_secs(3600));
    assert!(signed.contains("%0D%0A"), "{signed}");
    let file = rig.get(&signed, Auth::Anonymous).await;
    assert_eq!(file.status, 200, "{}", file.text());
    assert!(file.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    // Everything else under the protected prefixes still needs a credential.
    assert_gateway_401(&rig.get("/api/issues", Auth::Anonymous).await);
    assert_gateway_401(&rig.get("/hub/api/rest/users", Auth::Anonymous).await);
    assert_gateway_401(&rig.get("/api/configuration", Auth::Anonymous).await);
}

#[tokio::test]
async fn youtrack_judges_the_capability_the_gateway_lets_through() {
    let rig = Rig::start().await;
    let signed = rig.sim.signed_file_url("alice", Duration::from_secs(3600));
    let (path, query) = signed.split_once('?').expect("a query");
    // No sign, an empty sign, or the sign in another method: the gateway's 401.
    assert_gateway_401(&rig.get(path, Auth::Anonymous).await);
    let empty_sign = format!("{path}?sign=&updated=1");
    assert_gateway_401(&rig.get(&empty_sign, Auth::Anonymous).await);
    let upload = call_with_body(
        rig.addr(),
        Method::POST,
        &signed,
        Auth::Anonymous,
        Some(("text/plain", Bytes::from_static(b"x"))),
    )
    .await;
    assert_gateway_401(&upload);
    // A sign that YouTrack refuses: its own answer, passed through untouched.
    let forged = format!(
        "{path}?sign=Zm9yZ2Vk&{}",
        query.split_once('&').expect("updated").1
    );
    let refused = rig.get(&forged, Auth::Anonymous).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.www_authenticate().is_none(), "the gateway answered");
    let expired = rig.sim.signed_file_url("alice", Duration::ZERO);
    let gone = rig.get(&expired, Auth::Anonymous).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert!(gone.www_authenticate().is_none(), "the gateway answered");
    // A token in the query is never a capability.
    let query_token = format!("/api/config?access_token={}", rig.sim.demo().admin);
    assert_gateway_401(&rig.get(&query_token, Auth::Anonymous).await);
    // A capability route checks a credential that is sent.
    let deleted = rig
        .get("/api/config", Auth::Bearer(&rig.sim.demo().revoked))
        .await;
    assert_eq!(deleted.status, 401, "{}", deleted.text());
}

#[tokio::test]
async fn a_revoked_token_is_refused_however_it_is_sent() {
    let rig = Rig::start().await;
    let token = rig.sim.demo().admin.clone();
    let me = "/api/users/me?fields=login";
    assert_eq!(rig.get_with(me, &basic("random", &token)).await.status, 200);
    rig.revoke(serde_json::json!({"token": token, "reason": "leaked"}))
        .await;
    for authorization in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER  {token}"),
        basic("random", &token),
        basic("admin", &token),
    ] {
        let answer = rig.get_with(me, &authorization).await;
        assert_eq!(answer.status, 401, "{}", answer.text());
        // On a capability route, and on a public one, too.
        for target in [
            "/api/config?fields=version",
            "/",
            "/hub/api/rest/oauth2/auth",
        ] {
            let answer = rig.get_with(target, &authorization).await;
            assert_eq!(answer.status, 401, "{target}: {}", answer.text());
        }
    }
}

#[tokio::test]
async fn basic_with_a_token_is_that_token_and_basic_with_a_password_asks_hub() {
    let rig = Rig::start().await;
    let token = rig
        .sim
        .mint_permanent("alice", YOUTRACK_SERVICE_ID, hubgate::sim::PermStyle::Dash)
        .expect("token");
    let me = "/api/users/me?fields=login";
    // The IDE plugin: any user name, the token as password; one Hub call for both forms.
    let plugin = rig.get_with(me, &basic("random", &token)).await;
    assert_eq!(json(&plugin, 200)["login"], "alice");
    let probes = rig.sim.total_probes();
    let bearer = rig.get("/api/issues", Auth::Bearer(&token)).await;
    assert_eq!(bearer.status, 200);
    assert_eq!(
        rig.sim.total_probes(),
        probes,
        "the Basic check's verdict was reused"
    );
    // A Hub route with a YouTrack-only token: insufficient scope, as with Bearer.
    let hub = rig
        .get_with("/hub/api/rest/users/me", &basic("random", &token))
        .await;
    assert_eq!(hub.status, 403, "{}", hub.text());

    // IntelliJ's Tasks connector: a login and an application password.
    let password = rig
        .sim
        .create_app_password("alice", "IntelliJ tasks")
        .expect("application password");
    let tasks = basic("alice", &password);
    let first = rig.get_with("/api/issues?query=for:me", &tasks).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.is_echo());
    let probes = rig.sim.total_probes();
    let again = rig.get_with("/api/issues/DEMO-1", &tasks).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        rig.sim.total_probes(),
        probes,
        "the second request was cached"
    );
    // The header reaches YouTrack unchanged.
    assert_eq!(
        support::SimEcho::of(&again).headers("authorization"),
        [tasks.as_str()]
    );
    let wrong = rig.get_with(me, &basic("alice", "not-the-password")).await;
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let malformed = rig.get_with(me, "Basic !!!").await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    // Malformed Basic is refused on a public route too: a lenient decoder might find a
    // credential in it that nobody checked.
    let public = rig.get_with("/", "Basic !!!").await;
    assert_eq!(public.status, 400, "{}", public.text());

    // Revoked by login: every credential of the user stops, the password too.
    rig.revoke(serde_json::json!({"login": "alice", "ttl": "1h"}))
        .await;
    assert_eq!(rig.get_with(me, &tasks).await.status, 401);
    assert_eq!(rig.get_with(me, &basic("x", &token)).await.status, 401);
}

#[tokio::test]
async fn operators_can_refuse_either_form_of_basic() {
    let sim = Sim::start().await.expect("simulator");
    let token = sim.demo().admin.clone();
    let password = sim.create_app_password("alice", "tasks").expect("password");
    let me = "/api/users/me?fields=login";
    for (forms, token_status, password_status) in [
        (r#"["token"]"#, 200, 401),
        (r#"["password"]"#, 401, 200),
        ("[]", 401, 401),
    ] {
        let text = shipped_config(sim.addr(), None).replace(
            "basic_credentials = [\"token\", \"password\"]",
            &format!("basic_credentials = {forms}"),
        );
        let gateway = Gateway::start(&text).await;
        let get = |authorization: String| {
            let request = support::get(gateway.addr, me)
                .header("authorization", authorization)
                .body(Empty::<Bytes>::new())
                .expect("request");
            send(gateway.addr, request)
        };
        let by_token = get(basic("random", &token)).await;
        assert_eq!(
            by_token.status,
            token_status,
            "{forms}: {}",
            by_token.text()
        );
        let by_password = get(basic("alice", &password)).await;
        assert_eq!(by_password.status, password_status, "{forms}");
        // Bearer is unaffected.
        let bearer = fetch(gateway.addr, me, Auth::Bearer(&token)).await;
        assert_eq!(bearer.status, 200, "{forms}");
    }
}

/// Opens `target` on a fresh HTTP/1.1 connection and returns the response head and body.
async fn open_stream(addr: SocketAddr, target: &str) -> http::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let request = Request::get(target)
        .header("host", addr.to_string())
        .header("accept", "text/event-stream")
        .body(Empty::<Bytes>::new())
        .expect("request");
    sender.send_request(request).await.expect("response head")
}

/// The next data frame of a streaming body, as text; `None` when the stream ended or broke.
async fn next_chunk(body: &mut Incoming) -> Option<String> {
    loop {
        match body.frame().await? {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(String::from_utf8_lossy(&data).into_owned());
                }
            }
            Err(_) => return None,
        }
    }
}

/// A ticket for the live agile board, as the web UI and the mobile app get it.
async fn sse_ticket(addr: SocketAddr, token: &str) -> String {
    let subscription = call_with_body(
        addr,
        Method::POST,
        &format!("/api/agiles/{DEMO_AGILE}/sprints/{DEMO_SPRINT}/sseSubscription?fields=ticket"),
        Auth::Bearer(token),
        Some(("application/json", Bytes::from_static(b"{}"))),
    )
    .await;
    json(&subscription, 200)["ticket"]
        .as_str()
        .expect("ticket")
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_quiet_event_stream_with_heartbeats_stays_open_for_hours() {
    let rig = Rig::start().await;
    rig.sim.set_sse_heartbeat(Duration::from_secs(300));
    let ticket = sse_ticket(rig.addr(), &rig.sim.demo().both_oauth).await;
    let target = format!("/api/eventSourceBus?ticket={ticket}&fields=id");
    let response = open_stream(rig.addr(), &target).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().expect("ASCII");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut body = response.into_body();
    let first = next_chunk(&mut body).await.expect("the first event");
    assert!(first.contains("data:"), "{first}");
    // Twenty minutes without an event: heartbeats every five keep it open, far beyond the
    // gateway's idle_timeout (120 s), because the route has its own.
    let started = tokio::time::Instant::now();
    let mut heartbeats = 0;
    while started.elapsed() < Duration::from_secs(20 * 60) {
        let chunk = next_chunk(&mut body).await.expect("the stream stays open");
        assert!(!chunk.contains("data:"), "no event was published: {chunk}");
        heartbeats += 1;
    }
    assert!(heartbeats >= 4, "{heartbeats} heartbeats in 20 minutes");
    // An event published now arrives as it happens.
    rig.sim.publish_event(r#"{"card":"DEMO-1"}"#);
    let event = next_chunk(&mut body).await.expect("the event");
    assert!(event.contains("DEMO-1"), "{event}");
    assert_eq!(rig.sim.sse_streams(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_its_own_idle_timeout_the_stream_would_be_cut() {
    let sim = Sim::start().await.expect("simulator");
    sim.set_sse_heartbeat(Duration::from_secs(300));
    let text = shipped_config(sim.addr(), None).replace("idle_timeout = \"1h\"\n", "");
    let gateway = Gateway::start(&text).await;
    let ticket = sse_ticket(gateway.addr, &sim.demo().both_oauth).await;
    let target = format!("/api/eventSourceBus?ticket={ticket}");
    let response = open_stream(gateway.addr, &target).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    next_chunk(&mut body).await.expect("the first event");
    let started = tokio::time::Instant::now();
    assert_eq!(next_chunk(&mut body).await, None, "the stream was cut");
    let cut_after = started.elapsed();
    assert!(
        cut_after < Duration::from_secs(300),
        "cut after {cut_after:?}, before the first heartbeat"
    );
}

#[tokio::test]
async fn event_streams_share_one_http2_connection() {
    let rig = Rig::start().await;
    let token = rig.sim.demo().both_oauth.clone();
    let stream = TcpStream::connect(rig.addr()).await.expect("connect");
    let (sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(connection);
    let mut bodies = Vec::new();
    for _ in 0..8 {
        let ticket = sse_ticket(rig.addr(), &token).await;
        let request = Request::get(format!(
            "http://{}/api/eventSourceBus?ticket={ticket}",
            rig.addr()
        ))
        .body(Empty::<Bytes>::new())
        .expect("request");
        let response = sender
            .clone()
            .send_request(request)
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        next_chunk(&mut body).await.expect("first event");
        bodies.push(body);
    }
    assert_eq!(rig.sim.sse_streams(), 8);
    rig.sim.publish_event(r#"{"card":"DEMO-2"}"#);
    for body in &mut bodies {
        let event = next_chunk(body).await.expect("the event on every stream");
        assert!(event.contains("DEMO-2"), "{event}");
    }
}

// ---------------------------------------------------------------------------------------
// Each client's sequence, in the order the client sends it.

#[tokio::test]
async fn the_mobile_app_adds_the_server_logs_in_and_follows_a_board() {
    let rig = Rig::start().await;
    let addr = rig.addr();
    // 1. Discovery, with only User-Agent and Accept.
    let config = rig
        .get(
            "/api/config?fields=ring(url,serviceId),mobile(serviceSecret,serviceId),version,build,statisticsEnabled",
            Auth::Anonymous,
        )
        .await;
    let config = json(&config, 200);
    let client_id = config["mobile"]["serviceId"].as_str().expect("client id");
    let secret = config["mobile"]["serviceSecret"].as_str().expect("secret");
    // 2. The password grant with the app's client credentials (public OAuth route).
    let scope = format!("{HUB_SERVICE_ID} {YOUTRACK_SERVICE_ID}");
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice"),
        ("scope", scope.as_str()),
        ("access_type", "offline"),
    ];
    let granted = post_form(addr, TOKEN_PATH, Auth::Basic(client_id, secret), &form).await;
    let granted = json(&granted, 200);
    let (scheme, token) = (
        granted["token_type"].as_str().expect("token_type"),
        granted["access_token"].as_str().expect("token"),
    );
    let authorization = format!("{scheme} {token}");
    // 3. API calls with the scheme word Hub returned, echoed as is.
    let hub_me = rig
        .get_with("/hub/api/rest/users/me?fields=id,login", &authorization)
        .await;
    let alice = json(&hub_me, 200)["id"].as_str().expect("id").to_owned();
    for target in [
        "/api/permissions/cache",
        "/api/issues?$top=10",
        "/api/agiles",
    ] {
        let answer = rig.get_with(target, &authorization).await;
        assert_eq!(answer.status, 200, "{target}: {}", answer.text());
    }
    let refresh = granted["refresh_token"].as_str().expect("refresh token");
    let refreshed = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let again = post_form(addr, TOKEN_PATH, Auth::Basic(client_id, secret), &refreshed).await;
    assert_eq!(again.status, 200, "{}", again.text());
    // 4. The live board: a ticket with the token, the stream with no header at all.
    let ticket = sse_ticket(addr, token).await;
    let response = open_stream(addr, &format!("/api/eventSourceBus?ticket={ticket}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    // 5. An avatar by an image view, and an attachment opened in the browser.
    let avatar = rig
        .get(
            &format!("/hub/api/rest/avatar/{alice}?dpr=3&size=40"),
            Auth::Anonymous,
        )
        .await;
    assert_eq!(avatar.status, 200);
    let signed = rig.sim.signed_file_url("alice", Duration::from_secs(600));
    assert_eq!(rig.get(&signed, Auth::Anonymous).await.status, 200);
}

#[tokio::test]
async fn the_idea_plugin_connects_with_a_token_as_its_password() {
    let rig = Rig::start().await;
    let credentials = basic("random", &rig.sim.demo().admin);
    let version = rig
        .get("/api/config?fields=version,uuid", Auth::Anonymous)
        .await;
    assert!(json(&version, 200)["version"].is_string());
    let me = rig
        .get_with("/api/users/me?fields=name", &credentials)
        .await;
    assert_eq!(json(&me, 200)["name"], "Administrator");
    for target in [
        "/api/issues?query=for:me&$top=20",
        "/api/debug/scripts/json",
    ] {
        let answer = rig.get_with(target, &credentials).await;
        assert_eq!(answer.status, 200, "{target}");
        assert!(answer.is_echo());
    }
}

#[tokio::test]
async fn intellij_tasks_works_with_a_login_and_an_application_password() {
    let rig = Rig::start().await;
    let password = rig
        .sim
        .create_app_password("alice", "tasks")
        .expect("password");
    let credentials = basic("alice", &password);
    for (method, target) in [
        (Method::GET, "/api/issues?query=%23Unresolved&$top=50"),
        (Method::GET, "/api/issues/DEMO-1"),
        (Method::POST, "/api/commands"),
        (Method::POST, "/api/commands/assist"),
        (Method::POST, "/api/issues/DEMO-1/timeTracking/workItems"),
    ] {
        let request = support::get(rig.addr(), target)
            .method(method)
            .header("authorization", &credentials)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        let answer = send(rig.addr(), request).await;
        assert_eq!(answer.status, 200, "{target}: {}", answer.text());
        assert!(answer.is_echo());
    }
}

#[tokio::test]
async fn the_web_ui_auth_library_checks_the_backend_without_a_token() {
    let rig = Rig::start().await;
    let settings = "/hub/api/rest/settings/public?fields=id";
    assert_eq!(rig.get(settings, Auth::Anonymous).await.status, 200);
    let login_settings = "/hub/api/rest/oauth2/interactive/login/settings?client_id=x";
    assert_ne!(rig.get(login_settings, Auth::Anonymous).await.status, 401);
    let auth = format!(
        "/hub/api/rest/oauth2/auth?response_type=token&client_id={}&redirect_uri=%2Fsim%2Fwebui&scope={HUB_SERVICE_ID}&state=s1",
        rig.sim.demo().client_id
    );
    let redirect = rig.get(&auth, Auth::Anonymous).await;
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    // After the token comes back in the fragment: Bearer on both APIs.
    let token = &rig.sim.demo().both_oauth;
    assert_eq!(
        rig.get("/api/users/me?fields=id", Auth::Bearer(token))
            .await
            .status,
        200
    );
    let hub = rig
        .get("/hub/api/rest/users/me?fields=id", Auth::Bearer(token))
        .await;
    assert_eq!(hub.status, 200);
    // On logout and forced refresh, the same token-less check again.
    assert_eq!(rig.get(settings, Auth::Anonymous).await.status, 200);
}

#[tokio::test]
async fn youtrack_sharp_calls_both_users_me_with_bearer() {
    let rig = Rig::start().await;
    let token = &rig.sim.demo().admin;
    let yt = rig
        .get("/api/users/me?fields=id,login", Auth::Bearer(token))
        .await;
    assert_eq!(json(&yt, 200)["login"], "admin");
    let hub = rig
        .get(
            "/hub/api/rest/users/me?fields=id,login",
            Auth::Bearer(token),
        )
        .await;
    assert_eq!(json(&hub, 200)["login"], "admin");
    let issues = rig
        .get("/api/issues?fields=idReadable", Auth::Bearer(token))
        .await;
    assert!(issues.is_echo());
}

#[tokio::test]
async fn a_capability_request_carries_no_other_credential_to_youtrack() {
    let rig = Rig::start().await;
    // Under the /api/config prefix, a path the simulator does not know is echoed back.
    let target = "/api/config/extra?fields=version";
    let request = |authorization: Option<String>| {
        let mut builder = support::get(rig.addr(), target).header("cookie", "YTJSESSIONID=abc");
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder.body(Empty::<Bytes>::new()).expect("request")
    };
    let tokenless = send(rig.addr(), request(None)).await;
    assert!(tokenless.is_echo(), "{}", tokenless.text());
    assert!(support::SimEcho::of(&tokenless)
        .headers("cookie")
        .is_empty());
    let token = &rig.sim.demo().admin;
    let with_token = send(rig.addr(), request(Some(format!("Bearer {token}")))).await;
    assert!(with_token.is_echo(), "{}", with_token.text());
    assert_eq!(
        support::SimEcho::of(&with_token).headers("cookie"),
        ["YTJSESSIONID=abc"]
    );
}

#[tokio::test]
async fn odd_answers_to_passwords_never_open_the_breaker_for_everyone() {
    let rig = Rig::start().await;
    // Hub answers passwords with a status that is neither a user nor 401/403 (a lockout).
    rig.sim
        .set_hub_fault(Some(hubgate::sim::HubFault::Status(429)));
    for n in 0..8 {
        let answer = rig
            .get_with("/api/issues", &basic("alice", &format!("guess-{n}")))
            .await;
        assert_eq!(answer.status, 401, "{}", answer.text());
    }
    rig.sim.set_hub_fault(None);
    let fresh = rig
        .sim
        .mint_permanent("admin", YOUTRACK_SERVICE_ID, hubgate::sim::PermStyle::Dash)
        .expect("token");
    let answer = rig.get("/api/issues", Auth::Bearer(&fresh)).await;
    assert_eq!(answer.status, 200, "the breaker opened: {}", answer.text());
}
