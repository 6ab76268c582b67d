//! Hub must not be turned into a weapon: a client's budget of cache misses
//! (`introspection.client_miss_rate`) and the circuit breaker on the backend. Time is paused
//! and moved, never waited out.

mod support;

use std::time::Duration;

use hubgate::auth::limit::{BREAKER_COOLDOWN, BREAKER_FAILURES};
use hubgate::sim::{HubFault, PermStyle, Sim};
use support::{bearer_get, send, Answer, Gateway};

async fn start(introspection: &str) -> (Sim, Gateway) {
    let sim = Sim::start().await.expect("simulator");
    let text = format!(
        "{}\n[introspection]\n{introspection}\n",
        support::config_text(sim.addr(), "")
    );
    let gateway = Gateway::start(&text).await;
    (sim, gateway)
}

async fn with_token(gateway: &Gateway, token: &str) -> Answer {
    send(gateway.addr, bearer_get(gateway.addr, "/api/issues", token)).await
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
    assert_eq!(asked, u64::from(BREAKER_FAILURES));
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
