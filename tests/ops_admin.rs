//! The admin listener in-process: exact metric values after a scripted mix of requests,
//! readiness through a drain and with `readyz_checks_hub`, the admin token on `POST /reload`,
//! what a reload keeps (the verdict cache) and drops (when cache settings change), the Host
//! rule against DNS rebinding, and the per-client connection bound.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
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
    // One probe per miss, and one credential-less request after Hub's error answer (does Hub
    // fail every request, or only that token's?).
    assert_eq!(sim.total_probes(), 7, "misses and one health check");
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
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
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

/// `GET /healthz` from 127.0.0.1, or `None` if the connection was closed without an answer.
async fn get_admin_checked(gateway: &Gateway) -> Option<u16> {
    get_admin_from(gateway, Ipv4Addr::LOCALHOST).await
}

/// `GET /healthz` from `source`, or `None` if the connection was closed without an answer.
async fn get_admin_from(gateway: &Gateway, source: Ipv4Addr) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect_from(source, gateway.admin).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    text.get(9..12)?.parse().ok()
}

/// A connection to `to` from `source` (any 127.0.0.0/8 address works on Linux loopback).
async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// Every loopback address is one client: eight connections from 127.0.0.2 to 127.0.0.9 use
/// up the per-client bound, so a ninth from 127.0.0.10 or 127.0.0.1 is closed at once.
#[tokio::test]
async fn all_of_loopback_counts_as_one_admin_client() {
    use tokio::io::AsyncWriteExt;
    let upstream = support::Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let mut held = Vec::new();
    for last in 2..=9 {
        let source = Ipv4Addr::new(127, 0, 0, last);
        let mut stream = connect_from(source, gateway.admin)
            .await
            .unwrap_or_else(|e| panic!("connect from {source}: {e}"));
        // A request head never finished: the connection holds its slot.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(stream);
    }
    for last in [10, 1] {
        let source = Ipv4Addr::new(127, 0, 0, last);
        let served = get_admin_from(&gateway, source).await;
        assert_eq!(served, None, "a ninth loopback connection from {source}");
    }

    drop(held.pop());
    let freed = async {
        loop {
            if let Some(status) = get_admin_from(&gateway, Ipv4Addr::new(127, 0, 0, 10)).await {
                return status;
            }
            tokio::task::yield_now().await;
        }
    };
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), freed).await;
    assert_eq!(status.expect("the freed slot came back"), 200);
}

/// Writes `request` to the admin listener and reads the whole answer (the server closes).
async fn admin_raw(gateway: &Gateway, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gateway.admin)
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .expect("the admin listener closed the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET path` on the admin listener with the given header lines (each ending in CRLF),
/// asking the server to close afterwards; the status code and the body.
async fn admin_with(gateway: &Gateway, version: &str, path: &str, headers: &str) -> (u16, String) {
    let request = format!("GET {path} {version}\r\n{headers}Connection: close\r\n\r\n");
    let answer = admin_raw(gateway, &request).await;
    let status = answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A DNS-rebinding page in an operator's browser sends the admin listener its own name in
/// `Host`: that is refused (421) on every endpoint, so the page reads neither `/metrics` nor
/// `/readyz`; a missing, repeated or malformed `Host` is a 400; IP literals and `localhost`
/// are answered.
#[tokio::test]
async fn admin_answers_only_requests_addressed_to_an_ip_or_localhost() {
    let upstream = support::Upstream::start().await;
    let gateway = Gateway::in_front_of(&upstream).await;
    let port = gateway.admin.port();
    for path in [
        "/metrics",
        "/readyz",
        "/healthz",
        "/revocations",
        "/nothing",
    ] {
        for host in [format!("rebound.example:{port}"), "Rebound.Example".into()] {
            let (status, body) =
                admin_with(&gateway, "HTTP/1.1", path, &format!("Host: {host}\r\n")).await;
            assert_eq!(status, 421, "{path} for {host}: {body}");
            assert!(body.contains("admin.allowed_hosts"), "{body}");
            assert!(
                !body.contains("hubgate_") && !body.contains("ready"),
                "{body}"
            );
        }
    }
    let absolute = format!("http://rebound.example:{port}/metrics");
    let bad = [
        ("HTTP/1.1", "/metrics", String::new()),
        (
            "HTTP/1.1",
            "/metrics",
            "Host: 127.0.0.1\r\nHost: rebound.example\r\n".into(),
        ),
        (
            "HTTP/1.1",
            "/metrics",
            format!("Host: 127.0.0.1:{port}x\r\n"),
        ),
        ("HTTP/1.1", &absolute, format!("Host: 127.0.0.1:{port}\r\n")),
    ];
    for (version, target, headers) in &bad {
        let (status, body) = admin_with(&gateway, version, target, headers).await;
        assert_eq!(status, 400, "{target} with {headers:?}: {body}");
        assert!(!body.contains("hubgate_"), "{body}");
    }
    let (status, _) = admin_with(&gateway, "HTTP/1.0", &absolute, "").await;
    assert_eq!(status, 421, "HTTP/1.0 addressed to a name");

    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".into(),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = admin_with(
            &gateway,
            "HTTP/1.1",
            "/metrics",
            &format!("Host: {host}\r\n"),
        )
        .await;
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.contains("hubgate_build_info"), "{body}");
    }
    let (status, _) = admin_with(&gateway, "HTTP/1.0", "/readyz", "").await;
    assert_eq!(status, 200, "HTTP/1.0 without Host");
    let metrics = metrics(&gateway).await;
    assert!(!metrics.contains("status=\"421\""), "{metrics}");
}

/// A name the operator puts the admin listener behind is answered once it is in
/// `admin.allowed_hosts` (any letter case, any port); other names still are not, and an
/// entry that is not an exact name without a port is refused at load.
#[tokio::test]
async fn admin_allowed_hosts_adds_exact_names() {
    let upstream = support::Upstream::start().await;
    let text = config_text(upstream.addr, "").replace(
        "[admin]\n",
        "[admin]\nallowed_hosts = [\"HubGate-1.internal\"]\n",
    );
    let gateway = Gateway::start(&text).await;
    let port = gateway.admin.port();
    for host in [
        "hubgate-1.internal".to_owned(),
        format!("HUBGATE-1.internal:{port}"),
    ] {
        let (status, body) = admin_with(
            &gateway,
            "HTTP/1.1",
            "/metrics",
            &format!("Host: {host}\r\n"),
        )
        .await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    for host in ["hubgate-2.internal", "hubgate-1.internal.rebound.example"] {
        let (status, _) = admin_with(
            &gateway,
            "HTTP/1.1",
            "/readyz",
            &format!("Host: {host}\r\n"),
        )
        .await;
        assert_eq!(status, 421, "{host}");
    }
    let (status, _) = admin_with(
        &gateway,
        "HTTP/1.1",
        "/readyz",
        &format!("Host: 127.0.0.1:{port}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "IP literals are still answered");

    let refused = config_text(upstream.addr, "").replace(
        "[admin]\n",
        "[admin]\nallowed_hosts = [\"*.internal\", \"hubgate:9901\", \"a/b\", \"\"]\n",
    );
    let error = hubgate::config::Config::parse(&refused, Path::new("test.toml"))
        .expect_err("refused")
        .to_string();
    for problem in [
        r#"admin.allowed_hosts: "*.internal": exact names only, no wildcards"#,
        r#"admin.allowed_hosts: "hubgate:9901": a name without a port (any port is accepted)"#,
        r#"admin.allowed_hosts: "a/b": not a host name"#,
        r#"admin.allowed_hosts: "": not a host name"#,
    ] {
        assert!(error.contains(problem), "{problem} in\n{error}");
    }
}
