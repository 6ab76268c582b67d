//! The admin listener in-process: exact metric values after a scripted mix of requests,
//! readiness through a drain and with `readyz_checks_hub`, the admin token on `POST /reload`,
//! and what a reload keeps (the verdict cache) and drops (when cache settings change).

mod support;

use std::net::SocketAddr;
use std::path::Path;

use hubgate::sim::{HubFault, Sim, HUB_SERVICE_ID};
use support::admin::{get_admin, metrics, post_reload, sample};
use support::{config_text, get, send, start_with_sim, with_token, youtrack_token, Gateway};

const ADMIN_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A port on 127.0.0.1 that nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

async fn plain_get(gateway: &Gateway, target: &str) -> u16 {
    let request = get(gateway.addr, target)
        .body(support::empty())
        .expect("request");
    send(gateway.addr, request).await.status.as_u16()
}

#[track_caller]
fn assert_samples(metrics: &str, expected: &[(&str, f64)]) {
    for (series, value) in expected {
        assert_eq!(sample(metrics, series), *value, "{series} in\n{metrics}");
    }
}

#[tokio::test]
async fn metrics_count_a_scripted_mix_exactly() {
    let dead = closed_port().await;
    let (sim, gateway) = start_with_sim(&format!(
        "[upstreams.dead]\nurl = \"http://{dead}\"\n\n[[routes]]\nprefix = \"/dead\"\nupstream = \"dead\"\n"
    ))
    .await;
    let youtrack = youtrack_token(&sim);
    let hub_only = sim
        .mint_permanent("alice", HUB_SERVICE_ID, hubgate::sim::PermStyle::EntityId)
        .expect("alice");
    let failing = youtrack_token(&sim);

    for _ in 0..3 {
        assert_eq!(
            with_token(&gateway, "/api/issues", &youtrack).await.status,
            200
        );
    }
    assert_eq!(plain_get(&gateway, "/api/issues").await, 401);
    assert_eq!(
        with_token(&gateway, "/api/issues", &hub_only).await.status,
        403
    );
    let garbage = "perm:YWxpY2U=.NDUtMQ==.bm90LWEtdG9rZW4=";
    assert_eq!(with_token(&gateway, "/rest/x", garbage).await.status, 401);
    sim.set_hub_fault(Some(HubFault::Status(500)));
    assert_eq!(
        with_token(&gateway, "/api/issues", &failing).await.status,
        503
    );
    sim.set_hub_fault(None);
    assert_eq!(plain_get(&gateway, "/").await, 200);
    assert_eq!(plain_get(&gateway, "/api/../hub/api").await, 400);
    assert_eq!(plain_get(&gateway, "/dead/x").await, 502);

    let text = metrics(&gateway).await;
    let requests = |route: &str, status: u16| {
        format!("hubgate_requests_total{{route=\"{route}\",method=\"GET\",status=\"{status}\"}}")
    };
    let decisions = |route: &str, outcome: &str| {
        format!("hubgate_auth_decisions_total{{route=\"{route}\",outcome=\"{outcome}\"}}")
    };
    let introspections = |service: &str, result: &str| {
        format!("hubgate_introspection_requests_total{{service=\"{service}\",result=\"{result}\"}}")
    };
    assert_samples(
        &text,
        &[
            (&requests("/api", 200), 3.0),
            (&requests("/api", 401), 1.0),
            (&requests("/api", 403), 1.0),
            (&requests("/api", 503), 1.0),
            (&requests("/rest", 401), 1.0),
            (&requests("/", 200), 1.0),
            (&requests("none", 400), 1.0),
            (&requests("/dead", 502), 1.0),
            (
                "hubgate_request_duration_seconds_count{route=\"/api\"}",
                6.0,
            ),
            (&decisions("/api", "allowed"), 3.0),
            (&decisions("/api", "missing"), 1.0),
            (&decisions("/api", "insufficient_scope"), 1.0),
            (&decisions("/api", "backend_error"), 1.0),
            (&decisions("/rest", "invalid"), 1.0),
            (&decisions("/", "anonymous"), 1.0),
            (&decisions("/dead", "anonymous"), 1.0),
            // The first YouTrack request asks Hub, the next two are hits; the Hub-only and
            // the garbage token are asked for both services; the failing call is a miss too.
            ("hubgate_cache_lookups_total{result=\"hit\"}", 2.0),
            ("hubgate_cache_lookups_total{result=\"miss\"}", 6.0),
            ("hubgate_cache_lookups_total{result=\"negative_hit\"}", 0.0),
            (&introspections("youtrack", "ok"), 3.0),
            (&introspections("hub", "ok"), 2.0),
            (&introspections("youtrack", "error"), 1.0),
            (
                "hubgate_introspection_duration_seconds_count{service=\"youtrack\"}",
                4.0,
            ),
            // alice's YouTrack grant and the Hub-only token's Hub grant; the Hub-only token's
            // YouTrack refusal and the garbage token's two.
            ("hubgate_cache_entries{kind=\"positive\"}", 2.0),
            ("hubgate_cache_entries{kind=\"negative\"}", 3.0),
            (
                "hubgate_upstream_errors_total{upstream=\"dead\",kind=\"connect\"}",
                1.0,
            ),
            ("hubgate_config_reloads_total{result=\"success\"}", 0.0),
        ],
    );
    assert_eq!(sim.total_probes(), 6, "one probe per miss");
    assert!(text.contains("hubgate_build_info{version=\""), "{text}");
    for token in [&youtrack, &hub_only, &failing] {
        assert!(!text.contains(token.as_str()), "a token in the metrics");
    }
}

#[tokio::test]
async fn readyz_is_503_while_draining_and_healthz_stays_up() {
    let upstream = support::Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let ready = get_admin(&gateway, "/readyz").await;
    assert_eq!(
        (ready.status.as_u16(), ready.text()),
        (200, "ready\n".into())
    );

    let arrived = upstream.arrived.notified();
    let held = tokio::spawn(send(
        gateway.addr,
        get(gateway.addr, "/hold")
            .body(support::empty())
            .expect("request"),
    ));
    arrived.await;
    gateway.shutdown.shutdown();
    let draining = get_admin(&gateway, "/readyz").await;
    assert_eq!(
        (draining.status.as_u16(), draining.text()),
        (503, "not ready: draining\n".into())
    );
    assert_eq!(get_admin(&gateway, "/healthz").await.status, 200);

    upstream.release.notify_one();
    assert_eq!(held.await.expect("held request").status, 200);
    assert_eq!(gateway.stopped.await.expect("server task"), 0);
}

#[tokio::test]
async fn readyz_checks_hub_when_asked() {
    let sim = Sim::start().await.expect("simulator");
    let text =
        config_text(sim.addr(), "").replace("[admin]\n", "[admin]\nreadyz_checks_hub = true\n");
    let gateway = Gateway::start(&text).await;
    sim.set_hub_fault(Some(HubFault::Status(502)));
    let answer = get_admin(&gateway, "/readyz").await;
    assert_eq!(answer.status, 503);
    assert!(answer.text().contains("token backend"), "{}", answer.text());

    let healthy = Sim::start().await.expect("simulator");
    let text =
        config_text(healthy.addr(), "").replace("[admin]\n", "[admin]\nreadyz_checks_hub = true\n");
    let gateway = Gateway::start(&text).await;
    assert_eq!(get_admin(&gateway, "/readyz").await.status, 200);
    assert_eq!(
        healthy.total_probes(),
        2,
        "one request without a token per service probe"
    );
}

/// A configuration file for `sim` with the admin token; `cache` goes into `[cache]`.
fn write_config(dir: &Path, sim: &Sim, cache: &str) -> std::path::PathBuf {
    let token_file = dir.join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).expect("token file");
    let text = config_text(sim.addr(), "").replace(
        "[admin]\n",
        &format!("[cache]\n{cache}\n\n[admin]\ntoken_file = {token_file:?}\n"),
    );
    let path = dir.join("hubgate.toml");
    std::fs::write(&path, text).expect("config file");
    path
}

#[tokio::test]
async fn reload_needs_the_admin_token() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = Gateway::from_file(&write_config(dir.path(), &sim, "")).await;

    let missing = post_reload(&gateway, None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.headers.get("www-authenticate").expect("challenge"),
        "Bearer realm=\"hubgate-admin\""
    );
    assert_eq!(
        post_reload(&gateway, Some("0123456789abcdef")).await.status,
        401
    );
    let wrong_case = ADMIN_TOKEN.to_uppercase();
    assert_eq!(post_reload(&gateway, Some(&wrong_case)).await.status, 401);
    let done = post_reload(&gateway, Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (done.status.as_u16(), done.text()),
        (200, "reloaded\n".into())
    );
    assert_eq!(get_admin(&gateway, "/reload").await.status, 405);
    assert_eq!(get_admin(&gateway, "/nothing").await.status, 404);
    let text = metrics(&gateway).await;
    assert_eq!(
        sample(&text, "hubgate_config_reloads_total{result=\"success\"}"),
        1.0
    );

    let without = Gateway::start(&config_text(sim.addr(), "")).await;
    let refused = post_reload(&without, Some(ADMIN_TOKEN)).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("admin.token_file"),
        "{}",
        refused.text()
    );
}

#[tokio::test]
async fn reload_keeps_cached_verdicts_unless_cache_settings_change() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(dir.path(), &sim, "ttl = \"1h\"");
    let gateway = Gateway::from_file(&path).await;
    let token = youtrack_token(&sim);
    assert_eq!(
        with_token(&gateway, "/api/issues", &token).await.status,
        200
    );
    assert_eq!(sim.total_probes(), 1);

    assert_eq!(post_reload(&gateway, Some(ADMIN_TOKEN)).await.status, 200);
    assert_eq!(
        with_token(&gateway, "/api/issues", &token).await.status,
        200
    );
    assert_eq!(sim.total_probes(), 1, "the same settings keep the cache");

    write_config(dir.path(), &sim, "ttl = \"2h\"");
    assert_eq!(post_reload(&gateway, Some(ADMIN_TOKEN)).await.status, 200);
    assert_eq!(
        with_token(&gateway, "/api/issues", &token).await.status,
        200
    );
    assert_eq!(sim.total_probes(), 2, "a new ttl starts a new cache");
}

#[tokio::test]
async fn a_broken_reload_is_refused_with_every_problem_and_counted() {
    let sim = Sim::start().await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(dir.path(), &sim, "");
    let gateway = Gateway::from_file(&path).await;
    let good = std::fs::read_to_string(&path).expect("config");
    let broken = good.replace("[cache]\n", "[cache]\nttl = \"soon\"\nmax_entires = 5\n");
    std::fs::write(&path, broken).expect("config");

    let refused = post_reload(&gateway, Some(ADMIN_TOKEN)).await;
    assert_eq!(refused.status, 422);
    let body = refused.text();
    assert!(body.contains("cache.ttl"), "{body}");
    assert!(body.contains("unknown key cache.max_entires"), "{body}");
    assert_eq!(
        plain_get(&gateway, "/").await,
        200,
        "the old configuration serves"
    );
    let text = metrics(&gateway).await;
    assert_samples(
        &text,
        &[
            ("hubgate_config_reloads_total{result=\"error\"}", 1.0),
            ("hubgate_config_reloads_total{result=\"success\"}", 0.0),
        ],
    );
}

/// One client cannot hold every admin slot: past 8 open connections from one address, more
/// are closed at once, and a slot freed is usable again.
#[tokio::test]
async fn one_client_holds_at_most_eight_admin_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = support::Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(gateway.admin)
            .await
            .expect("connect");
        // A request head never finished: the connection holds its slot.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(stream);
    }
    // Accepted in order: by the ninth, the eight before hold their slots.
    let mut ninth = tokio::net::TcpStream::connect(gateway.admin)
        .await
        .expect("connect");
    let _ = ninth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = ninth.read(&mut buf).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a ninth connection was served: {read:?}"
    );

    drop(held.pop());
    // The freed slot is given back when the server notices the close: retry until then.
    let freed = async {
        loop {
            if let Some(status) = get_admin_checked(&gateway).await {
                return status;
            }
            tokio::task::yield_now().await;
        }
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), freed).await;
    assert_eq!(status.expect("the freed slot came back"), 200);
}

/// `GET /healthz`, or `None` if the connection was closed without an answer.
async fn get_admin_checked(gateway: &Gateway) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gateway.admin).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    text.get(9..12)?.parse().ok()
}
