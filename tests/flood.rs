//! Hub must not be turned into a weapon: a client's budget of cache misses
//! (`introspection.client_miss_rate`) and the circuit breaker on the backend. Time is paused
//! and moved, never waited out.

mod support;

use std::time::Duration;

use hubgate::auth::limit::{BREAKER_COOLDOWN, BREAKER_FAILURES};
use hubgate::sim::{HubFault, PermStyle, Sim};
use support::{bearer_get, Answer, Gateway};

async fn start(introspection: &str) -> (Sim, Gateway) {
    support::start_with_sim(&format!("\n[introspection]\n{introspection}\n")).await
}

async fn with_token(gateway: &Gateway, token: &str) -> Answer {
    support::with_token(gateway, "/api/issues", token).await
}

#[tokio::test(start_paused = true)]
async fn a_client_past_its_miss_budget_gets_429_and_costs_hub_nothing_more() {
    let (sim, gateway) = start("client_miss_rate = 6").await;
    let cached = sim.demo().youtrack_only.clone();
    assert_eq!(with_token(&gateway, &cached).await.status, 200);
    // A bad token costs one probe per service (YouTrack, then Hub to tell 401 from 403):
    // the 5 misses left in the burst cover two bad tokens and half of a third.
    for n in 0..2 {
        let answer = with_token(&gateway, &format!("perm:bad.{n}")).await;
        assert_eq!(answer.status, 401);
    }
    let answer = with_token(&gateway, "perm:bad.2").await;
    assert_eq!(answer.status, 429, "{}", answer.text());
    assert_eq!(answer.json_error(), "too_many_requests");
    let retry: u64 = answer.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!(retry >= 1);
    let probes = sim.total_probes();
    for n in 3..50 {
        assert_eq!(
            with_token(&gateway, &format!("perm:bad.{n}")).await.status,
            429
        );
    }
    assert_eq!(
        sim.total_probes(),
        probes,
        "a client over budget still reached Hub"
    );
    assert_eq!(
        with_token(&gateway, &cached).await.status,
        200,
        "cached tokens are unaffected"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        with_token(&gateway, "perm:bad.after").await.status,
        401,
        "the budget refills"
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_of_zero_is_no_budget() {
    let (sim, gateway) = start("client_miss_rate = 0").await;
    for n in 0..40 {
        assert_eq!(
            with_token(&gateway, &format!("perm:bad.{n}")).await.status,
            401
        );
    }
    assert_eq!(sim.total_probes(), 80);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_fails_fast_after_consecutive_failures_then_lets_one_probe_through() {
    let (sim, gateway) = start("client_miss_rate = 0").await;
    let token = || {
        sim.mint_permanent("alice", "YouTrack", PermStyle::EntityId)
            .expect("alice")
    };
    sim.set_hub_fault(Some(HubFault::Status(500)));
    for _ in 0..BREAKER_FAILURES {
        assert_eq!(with_token(&gateway, &token()).await.status, 503);
    }
    let asked = sim.total_probes();
    // One more: the request without a credential that tells a failing Hub from an error only
    // some tokens provoke (made once, its answer reused for a second).
    assert_eq!(asked, u64::from(BREAKER_FAILURES) + 1);
    let waiting = token();
    let answer = with_token(&gateway, &waiting).await;
    assert_eq!(answer.status, 503);
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(
        sim.total_probes(),
        asked,
        "an open breaker still called Hub"
    );
    sim.set_hub_fault(None);
    assert_eq!(
        with_token(&gateway, &waiting).await.status,
        503,
        "open until the cool-down"
    );
    assert_eq!(sim.total_probes(), asked);
    tokio::time::advance(BREAKER_COOLDOWN).await;
    assert_eq!(
        with_token(&gateway, &waiting).await.status,
        200,
        "one probe, and it closed"
    );
    assert_eq!(sim.total_probes(), asked + 1);
    assert_eq!(with_token(&gateway, &token()).await.status, 200);
}

/// One keep-alive HTTP/1.1 connection from `local` (a loopback address of the test's choice).
async fn connect_from(
    local: [u8; 4],
    gateway: &Gateway,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((local, 0)))
        .expect("bind a loopback address");
    let stream = socket.connect(gateway.addr).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    sender
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_random_tokens_costs_hub_its_budget_and_spares_other_clients() {
    const RATE: u64 = 20;
    let (sim, gateway) = start(&format!("client_miss_rate = {RATE}")).await;
    let cached = sim.demo().youtrack_only.clone();
    let mut bystander = connect_from([127, 0, 0, 2], &gateway).await;
    let request = || bearer_get(gateway.addr, "/api/issues", &cached);
    let primed = bystander.send_request(request()).await.expect("response");
    assert_eq!(primed.status(), 200);
    let before = sim.total_probes();
    let started = tokio::time::Instant::now();
    let flood = async {
        let mut attacker = connect_from([127, 0, 0, 1], &gateway).await;
        let mut statuses = std::collections::BTreeMap::new();
        for _ in 0..5_000 {
            let token = format!("perm:{:032x}", fastrand::u128(..));
            let answer = attacker
                .send_request(bearer_get(gateway.addr, "/api/issues", &token))
                .await
                .expect("response");
            *statuses.entry(answer.status().as_u16()).or_insert(0u32) += 1;
        }
        statuses
    };
    let bystanding = async {
        let mut statuses = Vec::new();
        for _ in 0..500 {
            let answer = bystander.send_request(request()).await.expect("response");
            statuses.push(answer.status().as_u16());
            tokio::task::yield_now().await;
        }
        statuses
    };
    let (flooded, bystood) = tokio::join!(flood, bystanding);
    let seconds = started.elapsed().as_secs_f64();
    let probes = sim.total_probes() - before;
    let allowance = (RATE as f64 * seconds).ceil() as u64 + RATE;
    assert!(
        probes <= allowance,
        "{probes} probes in {seconds}s: more than {allowance}"
    );
    assert!(
        flooded.get(&429).copied().unwrap_or(0) >= 4_900,
        "{flooded:?}"
    );
    assert!(bystood.iter().all(|status| *status == 200), "{bystood:?}");
}
