//! The verdict cache seen from outside (`design.md`, "Cache rules"): one probe per token and
//! service however many requests, one probe for a burst of concurrent first requests, bad
//! tokens remembered for `negative_ttl`, a deleted token served from the cache until `ttl`
//! and refused after it, and the route's service checked again on every hit. Time is tokio's,
//! paused and moved by the tests; the cache judges freshness on the same clock.

mod support;

use std::time::Duration;

use http::Method;
use hubgate::sim::{Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use support::token_checks::{bearer_request, get_as, send_timed, wide_upstream};
use support::{config_text, start_with_sim as start, youtrack_token, Answer, Gateway};
use tokio::net::TcpStream;
use tokio::time::{advance, Instant};

/// A token Hub never issued, in the shape of a permanent one.
const UNKNOWN: &str = "perm:YWxpY2U=.bm90LWlzc3VlZA==.q3VhYkX0V1mGmQ8Lr0ZkKcQWn2vTtE";

fn assert_forwarded(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
}

fn assert_refused(answer: &Answer, status: u16, challenge: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text());
    let sent = answer
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(sent.contains(challenge), "{what}: challenge {sent:?}");
}

#[tokio::test(start_paused = true)]
async fn many_requests_with_one_token_make_one_probe() {
    let (sim, gateway) = start("").await;
    let token = youtrack_token(&sim);
    for n in 0..20 {
        let answer = get_as(gateway.addr, &format!("/api/issues/{n}"), &token).await;
        assert_forwarded(&answer, &format!("request {n}"));
    }
    assert_eq!(sim.probes(&token, YOUTRACK_SERVICE_ID), 1);
    assert_eq!(sim.probes(&token, HUB_SERVICE_ID), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_requests_with_one_token_make_one_probe() {
    const BURST: usize = 500;
    // Below the default introspection timeout (2s): the one probe must succeed.
    const LATENCY: Duration = Duration::from_secs(1);
    let sim = Sim::start().await.expect("simulator");
    // The 500 are forwarded at the same moment: to an upstream whose backlog takes them all.
    let upstream = wide_upstream().await;
    let text = config_text(sim.addr(), "");
    let upstream_url = format!("url = \"http://{}\"", sim.addr());
    assert!(text.contains(&upstream_url));
    let text = text.replace(&upstream_url, &format!("url = \"http://{upstream}\""));
    let gateway = Gateway::start(&text).await;
    let mut connections = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        connections.push(TcpStream::connect(gateway.addr).await.expect("connect"));
    }

    let token = youtrack_token(&sim);
    sim.set_hub_latency(LATENCY);
    let started = Instant::now();
    let sends: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            let request = bearer_request(gateway.addr, Method::GET, "/api/issues", &token);
            tokio::spawn(send_timed(connection, request))
        })
        .collect();
    for send in sends {
        let (answer, sent) = send.await.expect("request task");
        assert_forwarded(&answer, "a request of the burst");
        // With the clock paused, the probe's latency only elapses once nothing else can run:
        // a request written before then has reached the gateway while the probe was out.
        assert!(
            sent.duration_since(started) < LATENCY,
            "a request left after the probe was answered, so it did not test single flight"
        );
    }
    assert!(
        started.elapsed() >= LATENCY,
        "the probe was not slowed down"
    );
    assert_eq!(sim.probes(&token, YOUTRACK_SERVICE_ID), 1);
    assert_eq!(sim.probes(&token, HUB_SERVICE_ID), 0);
}

#[tokio::test(start_paused = true)]
async fn a_bad_token_is_remembered_for_negative_ttl() {
    let (sim, gateway) = start("\n[cache]\nnegative_ttl = \"5s\"\n").await;
    // Ten requests over 4s of the 5s.
    for n in 0..10 {
        let answer = get_as(gateway.addr, "/api/issues", UNKNOWN).await;
        assert_refused(&answer, 401, "error=\"invalid_token\"", &format!("try {n}"));
        advance(Duration::from_millis(400)).await;
    }
    // Checked once against each service: granted by none is 401, not 403.
    assert_eq!(sim.probes(UNKNOWN, YOUTRACK_SERVICE_ID), 1);
    assert_eq!(sim.probes(UNKNOWN, HUB_SERVICE_ID), 1);

    advance(Duration::from_millis(1500)).await;
    let answer = get_as(gateway.addr, "/api/issues", UNKNOWN).await;
    assert_refused(
        &answer,
        401,
        "error=\"invalid_token\"",
        "after negative_ttl",
    );
    assert_eq!(sim.probes(UNKNOWN, YOUTRACK_SERVICE_ID), 2);
    assert_eq!(sim.probes(UNKNOWN, HUB_SERVICE_ID), 2);
}

#[tokio::test(start_paused = true)]
async fn a_deleted_token_works_from_the_cache_until_ttl_then_is_refused() {
    let (sim, gateway) = start("\n[cache]\nttl = \"30s\"\n").await;
    let token = youtrack_token(&sim);
    assert_forwarded(&get_as(gateway.addr, "/api/issues", &token).await, "before");
    assert!(sim.revoke(&token), "the simulator knew the token");

    assert_forwarded(
        &get_as(gateway.addr, "/api/issues", &token).await,
        "at once",
    );
    advance(Duration::from_secs(29)).await;
    assert_forwarded(&get_as(gateway.addr, "/api/issues", &token).await, "at 29s");
    assert_eq!(sim.probes(&token, YOUTRACK_SERVICE_ID), 1);

    advance(Duration::from_secs(2)).await;
    let answer = get_as(gateway.addr, "/api/issues", &token).await;
    assert_refused(&answer, 401, "error=\"invalid_token\"", "past ttl");
    assert_eq!(sim.probes(&token, YOUTRACK_SERVICE_ID), 2);
}

#[tokio::test(start_paused = true)]
async fn the_routes_service_is_checked_on_every_cache_hit() {
    let (sim, gateway) = start("").await;
    let token = youtrack_token(&sim);
    assert_forwarded(&get_as(gateway.addr, "/api/issues", &token).await, "/api");
    let hub_scope = format!("error=\"insufficient_scope\", scope=\"{HUB_SERVICE_ID}\"");
    for n in 0..3 {
        let answer = get_as(gateway.addr, "/hub/api/rest/users", &token).await;
        assert_refused(&answer, 403, &hub_scope, &format!("/hub/api, try {n}"));
        let answer = get_as(gateway.addr, "/api/issues", &token).await;
        assert_forwarded(&answer, &format!("/api again, try {n}"));
    }
    assert_eq!(sim.probes(&token, YOUTRACK_SERVICE_ID), 1);
    let hub_probes = sim.probes(&token, HUB_SERVICE_ID);
    assert!(hub_probes <= 1, "{hub_probes} Hub probes");
}
