//! Central revocation at one instance: the admin API puts a revocation in force for the very
//! next request (by token, by the fingerprint the access log shows, by login), withdraws it,
//! keeps it across a restart in `admin.state_dir`, and refuses to start on a damaged state file.

mod support;

use std::path::{Path, PathBuf};

use hubgate::auth::cache::{hex, token_hash};
use hubgate::config::Config;
use hubgate::server::{Server, StartError};
use hubgate::sim::{Sim, YOUTRACK_SERVICE_ID};
use serde_json::Value;
use support::admin::{get_admin, metrics, sample};
use support::{assert_refused, config_text, send, with_token, youtrack_token, Answer, Gateway};

const ADMIN_TOKEN: &str = "fedcba9876543210fedcba9876543210";
const INVALID: &str = "Bearer realm=\"youtrack\", error=\"invalid_token\"";

/// A configuration file for `sim` with the admin token and, if given, a state directory.
fn write_config(dir: &Path, sim: &Sim, state_dir: Option<&Path>) -> PathBuf {
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, ADMIN_TOKEN).expect("token file");
    let mut admin = format!("[admin]\ntoken_file = {token_file:?}\n");
    if let Some(state) = state_dir {
        admin.push_str(&format!("state_dir = {state:?}\n"));
    }
    let text = config_text(sim.addr(), "").replace("[admin]\n", &admin);
    let path = dir.join("hubgate.toml");
    std::fs::write(&path, text).expect("config file");
    path
}

/// `method path` on the admin listener with the admin token and a JSON body.
async fn admin_call(gateway: &Gateway, method: &str, path: &str, body: Value) -> Answer {
    let request = support::get(gateway.admin, path)
        .method(method)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .expect("request");
    send(gateway.admin, request).await
}

async fn revoke(gateway: &Gateway, body: Value) -> Value {
    let answer = admin_call(gateway, "POST", "/revocations", body).await;
    assert_eq!(answer.status, 201, "{}", answer.text());
    serde_json::from_slice(&answer.body).expect("JSON")
}

async fn start(sim: &Sim, dir: &Path, state: Option<&Path>) -> Gateway {
    Gateway::from_file(&write_config(dir, sim, state)).await
}

#[tokio::test]
async fn a_revoked_token_is_refused_on_the_very_next_request_until_withdrawn() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start(&sim, dir.path(), None).await;
    let (leaked, other) = (youtrack_token(&sim), youtrack_token(&sim));
    assert_eq!(
        with_token(&gateway, "/api/issues", &leaked).await.status,
        200
    );
    assert_eq!(
        with_token(&gateway, "/api/issues", &other).await.status,
        200
    );
    let probes = sim.total_probes();

    let created = revoke(
        &gateway,
        serde_json::json!({"token": leaked, "reason": "leaked"}),
    )
    .await;
    let revocation = &created["revocation"];
    assert_eq!(revocation["fingerprint"], hex(&token_hash(&leaked)));
    assert_eq!(revocation["reason"], "leaked");
    assert_eq!(
        revocation["expires"],
        Value::Null,
        "tokens are revoked for good"
    );
    assert_eq!(created["persisted"], false, "no state_dir");
    assert!(
        !created.to_string().contains(&leaked),
        "the token came back"
    );

    let refused = with_token(&gateway, "/api/issues", &leaked).await;
    assert_refused(&refused, 401, INVALID, "invalid_token");
    assert_eq!(
        with_token(&gateway, "/hub/api/rest/users/me", &leaked)
            .await
            .status,
        401
    );
    assert_eq!(
        with_token(&gateway, "/api/issues", &other).await.status,
        200
    );
    assert_eq!(sim.total_probes(), probes, "refused by the gateway itself");

    let text = metrics(&gateway).await;
    assert_eq!(sample(&text, "hubgate_revocations_active"), 1.0, "{text}");
    let revoked = "hubgate_auth_decisions_total{route=\"/api\",outcome=\"revoked\"}";
    assert_eq!(sample(&text, revoked), 1.0, "{text}");
    assert_eq!(
        sample(&text, "hubgate_revocations_applied_total{source=\"local\"}"),
        1.0
    );

    let listed = admin_call(&gateway, "GET", "/revocations", Value::Null).await;
    let listed: Value = serde_json::from_slice(&listed.body).expect("JSON");
    assert_eq!(listed["revocations"][0]["id"], revocation["id"]);

    let id = revocation["id"].as_str().expect("id");
    let withdrawn = admin_call(
        &gateway,
        "DELETE",
        &format!("/revocations/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.text());
    assert_eq!(
        with_token(&gateway, "/api/issues", &leaked).await.status,
        200
    );
    let again = admin_call(
        &gateway,
        "DELETE",
        &format!("/revocations/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn the_fingerprint_from_the_access_log_and_a_login_revoke_too() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start(&sim, dir.path(), None).await;
    let token = youtrack_token(&sim);
    let logged = hex(&token_hash(&token))[..12].to_owned();
    revoke(
        &gateway,
        serde_json::json!({"fingerprint": logged.to_uppercase()}),
    )
    .await;
    assert_eq!(
        with_token(&gateway, "/api/issues", &token).await.status,
        401
    );

    let oauth = sim.demo().both_oauth.clone();
    let admins = sim
        .mint_permanent(
            "admin",
            YOUTRACK_SERVICE_ID,
            hubgate::sim::PermStyle::EntityId,
        )
        .expect("admin");
    assert_eq!(
        with_token(&gateway, "/api/issues", &oauth).await.status,
        200
    );
    let created = revoke(
        &gateway,
        serde_json::json!({"login": "ALICE", "ttl": "24h"}),
    )
    .await;
    let expires = created["revocation"]["expires"].as_u64().expect("expires");
    let created_at = created["revocation"]["created"].as_u64().expect("created");
    assert_eq!(expires - created_at, 24 * 3600);
    assert_eq!(
        with_token(&gateway, "/api/issues", &oauth).await.status,
        401
    );
    assert_eq!(
        with_token(&gateway, "/hub/api/rest/users/me", &oauth)
            .await
            .status,
        401
    );
    assert_eq!(
        with_token(&gateway, "/api/issues", &admins).await.status,
        200
    );
}

#[tokio::test]
async fn the_admin_api_refuses_bad_requests_clearly() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start(&sim, dir.path(), None).await;
    for (body, why) in [
        (serde_json::json!({"login": "alice"}), "needs a ttl"),
        (
            serde_json::json!({"fingerprint": "abc"}),
            "12 to 64 hex digits",
        ),
        (
            serde_json::json!({"token": "a", "login": "b"}),
            "exactly one",
        ),
        (
            serde_json::json!({"token": "perm:x", "ttl": "soon"}),
            "not a duration",
        ),
        (
            serde_json::json!({"token": "perm:x", "color": "red"}),
            "expected {",
        ),
    ] {
        let answer = admin_call(&gateway, "POST", "/revocations", body).await;
        assert_eq!(answer.status, 400, "{}", answer.text());
        assert!(answer.text().contains(why), "{why}: {}", answer.text());
    }
    let unauthenticated = support::get(gateway.admin, "/revocations")
        .body(support::empty())
        .expect("request");
    assert_eq!(send(gateway.admin, unauthenticated).await.status, 401);
    assert_eq!(get_admin(&gateway, "/revocations/a/b").await.status, 404);
    let answer = admin_call(&gateway, "PUT", "/revocations", Value::Null).await;
    assert_eq!(answer.status, 405);
    assert!(
        with_token(&gateway, "/api/issues", &youtrack_token(&sim))
            .await
            .status
            == 200
    );
}

#[tokio::test]
async fn revocations_survive_a_restart_before_the_first_request() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("state dir");
    let token = youtrack_token(&sim);
    let gateway = start(&sim, dir.path(), Some(state.path())).await;
    let created = revoke(&gateway, serde_json::json!({"token": token})).await;
    assert_eq!(created["persisted"], true);
    gateway.shutdown.shutdown();
    gateway.stopped.await.expect("stopped");
    let kept = std::fs::read_to_string(state.path().join("revocations.state")).expect("state");
    assert!(!kept.contains(&token), "a raw token in the state file");

    let restarted = start(&sim, dir.path(), Some(state.path())).await;
    let probes = sim.total_probes();
    let first = with_token(&restarted, "/api/issues", &token).await;
    assert_refused(&first, 401, INVALID, "invalid_token");
    assert_eq!(sim.total_probes(), probes, "refused before Hub was asked");
}

#[tokio::test]
async fn a_torn_state_file_stops_the_start_and_names_the_file() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("state dir");
    let gateway = start(&sim, dir.path(), Some(state.path())).await;
    revoke(&gateway, serde_json::json!({"token": youtrack_token(&sim)})).await;
    revoke(&gateway, serde_json::json!({"login": "bob", "ttl": 3600})).await;
    gateway.shutdown.shutdown();
    gateway.stopped.await.expect("stopped");

    let file = state.path().join("revocations.state");
    let whole = std::fs::read(&file).expect("state");
    std::fs::write(&file, &whole[..whole.len() * 2 / 3]).expect("tear");
    let config = Config::load(&write_config(dir.path(), &sim, Some(state.path()))).expect("config");
    let Err(error) = Server::bind(&config).await else {
        panic!("started without its revocations");
    };
    assert!(matches!(error, StartError::Revocations(_)), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("revocations.state is damaged"),
        "{message}"
    );
    assert!(message.contains("will not start"), "{message}");
}

/// `hubgate revoke` as a process: `args`, with `stdin` piped in; (exit success, stdout, stderr).
async fn revoke_cli(args: Vec<String>, stdin: String) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_hubgate"))
            .arg("revoke")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hubgate revoke");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        let output = child.wait_with_output().expect("hubgate revoke exits");
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            output.status.success(),
            text(&output.stdout),
            text(&output.stderr),
        )
    })
    .await
    .expect("revoke task")
}

/// `GET /api/users/me` straight at the simulator: what Hub itself says of `token`.
async fn hub_says(sim: &Sim, token: &str) -> u16 {
    support::send(
        sim.addr(),
        support::bearer_get(sim.addr(), "/api/users/me", token),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn the_revoke_command_reads_the_token_from_stdin_and_deletes_it_in_hub() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let hub_token = dir.path().join("hub-admin-token");
    std::fs::write(&hub_token, &sim.demo().admin).expect("hub token");
    let path = write_config(dir.path(), &sim, None);
    let text = std::fs::read_to_string(&path).expect("config")
        + &format!(
            "\n[hub]\nurl = \"http://{}/hub\"\nadmin_token_file = {hub_token:?}\n",
            sim.addr()
        );
    std::fs::write(&path, text).expect("config");
    let gateway = Gateway::from_file(&path).await;
    let leaked = youtrack_token(&sim);
    assert_eq!(
        with_token(&gateway, "/api/issues", &leaked).await.status,
        200
    );

    let admin = format!("http://{}", gateway.admin);
    let token_file = dir.path().join("admin-token").display().to_string();
    let args = |extra: &[&str]| {
        let mut args = vec!["--admin".to_owned(), admin.clone()];
        args.extend(["--admin-token-file".to_owned(), token_file.clone()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let (ok, stdout, stderr) = revoke_cli(
        args(&[
            "--token-file",
            "-",
            "--in-hub",
            "--reason",
            "pasted in a chat",
        ]),
        format!("{leaked}\n"),
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        !stdout.contains(&leaked) && !stderr.contains(&leaked),
        "the token was printed"
    );
    let answer: Value = serde_json::from_str(&stdout).expect("JSON answer");
    assert_eq!(
        answer["revocation"]["fingerprint"],
        hex(&token_hash(&leaked))
    );
    assert_eq!(answer["revocation"]["reason"], "pasted in a chat");
    assert_eq!(answer["hub"]["deleted"]["login"], "alice", "{answer}");
    assert_eq!(
        with_token(&gateway, "/api/issues", &leaked).await.status,
        401
    );
    assert_eq!(hub_says(&sim, &leaked).await, 401, "still valid in Hub");

    let admins = sim
        .mint_permanent("admin", YOUTRACK_SERVICE_ID, hubgate::sim::PermStyle::Named)
        .expect("admin token");
    let (ok, stdout, stderr) = revoke_cli(
        args(&["--login", "admin", "--ttl", "1h", "--in-hub"]),
        String::new(),
    )
    .await;
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("JSON answer");
    let items = answer["hub"]["items"].as_array().expect("items");
    assert!(
        !items.is_empty() && items.iter().all(|i| i["ok"] == true),
        "{answer}"
    );
    assert_eq!(
        hub_says(&sim, &admins).await,
        401,
        "the user's tokens live on in Hub"
    );

    // A string shaped like alice's token (her login, the real token's ID, a made-up secret)
    // revokes that string at the gateway, but deletes nothing in Hub.
    let real = sim
        .mint_permanent(
            "alice",
            YOUTRACK_SERVICE_ID,
            hubgate::sim::PermStyle::EntityId,
        )
        .expect("alice");
    let mut parts = real.splitn(3, '.');
    let (head, id) = (parts.next().expect("head"), parts.next().expect("id"));
    let forged = format!("{head}.{id}.{}", "A".repeat(30));
    let (ok, stdout, stderr) = revoke_cli(args(&["--token-file", "-", "--in-hub"]), forged).await;
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).expect("JSON answer");
    assert_eq!(
        answer["hub"]["error"], "nothing deleted in Hub: the token is not valid there",
        "{answer}"
    );
    assert_eq!(
        hub_says(&sim, &real).await,
        200,
        "a forged token deleted a real one"
    );

    let (ok, _, stderr) = revoke_cli(args(&["--fingerprint", "abc"]), String::new()).await;
    assert!(!ok);
    assert!(
        stderr.contains("400") && stderr.contains("12 to 64 hex digits"),
        "{stderr}"
    );
    let (ok, _, stderr) = revoke_cli(args(&["--token-file", "-"]), String::new()).await;
    assert!(!ok);
    assert!(stderr.contains("holds no token"), "{stderr}");
}

/// Spellings a Java Hub may read as the same permanent token: no padding, the other prefix.
fn respellings(token: &str) -> Vec<String> {
    let other_prefix = if token.starts_with("perm:") {
        token.replacen("perm:", "perm-", 1)
    } else {
        token.replacen("perm-", "perm:", 1)
    };
    let spellings = vec![
        token.replace('=', ""),
        other_prefix.clone(),
        other_prefix.replace('=', ""),
    ];
    assert!(
        spellings.iter().all(|s| s != token),
        "{token} has no padding"
    );
    spellings
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_however_it_is_spelled() {
    let sim = Sim::start().await.expect("simulator");
    sim.set_java_token_decoding(true);
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start(&sim, dir.path(), None).await;
    // alice's perm- token: its ID "47-2" encodes with padding.
    let token = sim.demo().hub_only.clone();
    let me = "/hub/api/rest/services?fields=id";
    let probes = sim.total_probes();
    for spelling in std::iter::once(token.clone()).chain(respellings(&token)) {
        let answer = with_token(&gateway, me, &spelling).await;
        assert_eq!(answer.status, 200, "{spelling}: {}", answer.text());
    }
    // Every spelling is one token to the gateway: one check with Hub for all of them.
    assert_eq!(sim.total_probes(), probes + 1);

    revoke(&gateway, serde_json::json!({"token": token})).await;
    for spelling in std::iter::once(token.clone()).chain(respellings(&token)) {
        let answer = with_token(&gateway, me, &spelling).await;
        assert_refused(&answer, 401, INVALID, "invalid_token");
    }
    // Revoked by one of the other spellings, the original is refused too.
    let other = sim
        .mint_permanent("alice", YOUTRACK_SERVICE_ID, hubgate::sim::PermStyle::Dash)
        .expect("minted");
    revoke(
        &gateway,
        serde_json::json!({"token": respellings(&other)[2]}),
    )
    .await;
    let answer = with_token(&gateway, "/api/issues", &other).await;
    assert_refused(&answer, 401, INVALID, "invalid_token");
}

#[tokio::test]
async fn a_fingerprint_recorded_before_identities_still_refuses_its_spelling() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start(&sim, dir.path(), None).await;
    // A perm- token is not in canonical spelling: its fingerprint used to be the hash of
    // its bytes, and revocations recorded then hold that.
    let token = sim.demo().hub_only.clone();
    assert!(token.starts_with("perm-"));
    let fingerprint = hex(&token_hash(&token));
    assert_ne!(fingerprint, hex(&hubgate::auth::identity::identity(&token)));
    revoke(&gateway, serde_json::json!({"fingerprint": fingerprint})).await;
    let answer = with_token(&gateway, "/hub/api/rest/users/me", &token).await;
    assert_refused(&answer, 401, INVALID, "invalid_token");
}

/// Opens a WebSocket tunnel to the simulator's echo through `gateway` with `token`.
async fn tunnel_with(gateway: &Gateway, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /sim/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        gateway.addr
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let head = support::read_response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Whether the gateway closes `stream` within a few seconds (a bound on a hang, not a wait:
/// it returns as soon as the connection ends).
async fn closed_soon(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    let until_closed = async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), until_closed)
        .await
        .is_ok()
}

#[tokio::test]
async fn revocation_closes_open_tunnels_and_long_responses() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = start(&sim, dir.path(), None).await;
    let (leaked, innocent) = (youtrack_token(&sim), youtrack_token(&sim));
    let mut revoked_tunnel = tunnel_with(&gateway, &leaked).await;
    let mut kept_tunnel = tunnel_with(&gateway, &innocent).await;
    // The tunnels work.
    revoked_tunnel
        .write_all(&support::HELLO_FRAME)
        .await
        .expect("write");
    let mut echo = [0u8; 7];
    revoked_tunnel.read_exact(&mut echo).await.expect("echo");

    revoke(&gateway, serde_json::json!({"token": leaked})).await;
    assert!(
        closed_soon(&mut revoked_tunnel).await,
        "the revoked token's tunnel stayed open"
    );
    kept_tunnel
        .write_all(&support::HELLO_FRAME)
        .await
        .expect("write");
    kept_tunnel
        .read_exact(&mut echo)
        .await
        .expect("another token's tunnel is untouched");

    // A live board opened with a bearer token ends when its user is revoked.
    let board = format!(
        "/api/agiles/{}/sprints/{}/sseSubscription?fields=ticket",
        hubgate::sim::DEMO_AGILE,
        hubgate::sim::DEMO_SPRINT
    );
    let subscribe = support::get(gateway.addr, &board)
        .method("POST")
        .header("authorization", format!("Bearer {innocent}"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .expect("request");
    let ticket: Value =
        serde_json::from_slice(&send(gateway.addr, subscribe).await.body).expect("ticket JSON");
    let ticket = ticket["ticket"].as_str().expect("ticket");
    let mut stream = tokio::net::TcpStream::connect(gateway.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /api/eventSourceBus?ticket={ticket} HTTP/1.1\r\nHost: gw\r\n\
         Authorization: Bearer {innocent}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let head = support::read_response_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    revoke(&gateway, serde_json::json!({"login": "alice", "ttl": "1h"})).await;
    assert!(
        closed_soon(&mut stream).await,
        "the revoked user's stream stayed open"
    );
    assert!(
        closed_soon(&mut kept_tunnel).await,
        "the revoked user's tunnel stayed open"
    );
}
