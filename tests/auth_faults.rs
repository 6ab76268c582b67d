//! When Hub fails (`design.md`, "Cache rules"; `security.md`, "Hub must not be turned into a
//! weapon"): a token the gateway has no verdict for gets 503 with `Retry-After`, never 401; a
//! cached token keeps working; the failure is not remembered; reads may use a stale entry
//! within `stale_if_error`; calls beyond `max_concurrent` are refused at once. Time is tokio's,
//! paused and moved by the tests.

mod support;

use std::time::Duration;

use http::Method;
use hubgate::sim::{HubFault, Sim, YOUTRACK_SERVICE_ID};
use support::token_checks::{bearer_request, get_as};
use support::{send, start_with_sim as start, youtrack_token, Answer};
use tokio::sync::mpsc;
use tokio::time::{advance, Instant};

/// A token Hub never issued, in the shape of a permanent one.
const UNKNOWN: &str = "perm:YWxpY2U=.bm90LWlzc3VlZA==.q3VhYkX0V1mGmQ8Lr0ZkKcQWn2vTtE";

const TIMEOUT: Duration = Duration::from_secs(2);

fn assert_forwarded(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.text());
}

/// 503, `Retry-After` in seconds, `temporarily_unavailable`, and no challenge: the token is
/// not judged.
fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {}", answer.text());
    let retry_after = answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "{what}: Retry-After {:?}",
        answer.headers.get("retry-after")
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("{what}: not JSON: {}", answer.text()));
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    assert!(
        answer.headers.get("www-authenticate").is_none(),
        "{what}: a 503 judges no token"
    );
}

/// How Hub is made to fail, and how it is made well again.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Fault(HubFault),
    /// Answers only after 5 times the introspection timeout.
    Slow,
}

impl Failure {
    fn start(self, sim: &Sim) {
        match self {
            Failure::Fault(fault) => sim.set_hub_fault(Some(fault)),
            Failure::Slow => sim.set_hub_latency(TIMEOUT * 5),
        }
    }

    fn end(self, sim: &Sim) {
        sim.set_hub_fault(None);
        sim.set_hub_latency(Duration::ZERO);
    }
}

async fn a_failing_hub_is_503_and_not_remembered(failure: Failure) {
    let introspection = format!("\n[introspection]\ntimeout = \"{}s\"\n", TIMEOUT.as_secs());
    let (sim, gateway) = start(&introspection).await;
    let cached = youtrack_token(&sim);
    let uncached = youtrack_token(&sim);
    assert_forwarded(
        &get_as(gateway.addr, "/api/issues", &cached).await,
        "before",
    );

    failure.start(&sim);
    for token in [uncached.as_str(), UNKNOWN] {
        let asked = Instant::now();
        let answer = get_as(gateway.addr, "/api/issues", token).await;
        assert_unavailable(&answer, &format!("{failure:?}"));
        if let Failure::Slow = failure {
            let waited = asked.elapsed();
            assert!(waited >= TIMEOUT && waited < TIMEOUT * 2, "{waited:?}");
        }
    }
    let answer = get_as(gateway.addr, "/api/issues", &cached).await;
    assert_forwarded(&answer, &format!("cached token, {failure:?}"));
    assert_eq!(sim.probes(&cached, YOUTRACK_SERVICE_ID), 1);
    let asked = sim.probes(&uncached, YOUTRACK_SERVICE_ID);
    assert!(asked >= 1, "{failure:?}: Hub was never asked");

    failure.end(&sim);
    let answer = get_as(gateway.addr, "/api/issues", &uncached).await;
    assert_forwarded(&answer, &format!("after {failure:?}"));
    assert_eq!(sim.probes(&uncached, YOUTRACK_SERVICE_ID), asked + 1);
    let answer = get_as(gateway.addr, "/api/issues", UNKNOWN).await;
    assert_eq!(answer.status, 401, "after {failure:?}: {}", answer.text());
}

#[tokio::test(start_paused = true)]
async fn hub_down() {
    a_failing_hub_is_503_and_not_remembered(Failure::Fault(HubFault::Down)).await;
}

#[tokio::test(start_paused = true)]
async fn hub_answering_500() {
    a_failing_hub_is_503_and_not_remembered(Failure::Fault(HubFault::Status(500))).await;
}

#[tokio::test(start_paused = true)]
async fn hub_answering_html() {
    a_failing_hub_is_503_and_not_remembered(Failure::Fault(HubFault::Html)).await;
}

#[tokio::test(start_paused = true)]
async fn hub_answering_truncated_json() {
    a_failing_hub_is_503_and_not_remembered(Failure::Fault(HubFault::TruncatedJson)).await;
}

#[tokio::test(start_paused = true)]
async fn hub_redirecting_to_its_login_page() {
    a_failing_hub_is_503_and_not_remembered(Failure::Fault(HubFault::Redirect)).await;
}

#[tokio::test(start_paused = true)]
async fn hub_slower_than_the_introspection_timeout() {
    a_failing_hub_is_503_and_not_remembered(Failure::Slow).await;
}

#[tokio::test(start_paused = true)]
async fn a_stale_entry_answers_reads_within_stale_if_error() {
    let (sim, gateway) = start("\n[cache]\nttl = \"30s\"\nstale_if_error = \"300s\"\n").await;
    let token = youtrack_token(&sim);
    let revoked = youtrack_token(&sim);
    for t in [&token, &revoked] {
        assert_forwarded(&get_as(gateway.addr, "/api/issues", t).await, "caching");
    }
    advance(Duration::from_secs(31)).await;

    sim.set_hub_fault(Some(HubFault::Status(500)));
    let answer = get_as(gateway.addr, "/api/issues", &token).await;
    assert_forwarded(&answer, "a GET past ttl while Hub fails");
    assert_eq!(
        sim.probes(&token, YOUTRACK_SERVICE_ID),
        2,
        "Hub asked again"
    );
    let post = bearer_request(gateway.addr, Method::POST, "/api/issues", &token);
    assert_unavailable(
        &send(gateway.addr, post).await,
        "a POST is never served stale",
    );

    // A stale entry stands in for a failing Hub only, never for Hub's answer.
    sim.set_hub_fault(None);
    assert!(sim.revoke(&revoked));
    let answer = get_as(gateway.addr, "/api/issues", &revoked).await;
    assert_eq!(answer.status, 401, "{}", answer.text());

    sim.set_hub_fault(Some(HubFault::Status(500)));
    advance(Duration::from_secs(300)).await;
    let answer = get_as(gateway.addr, "/api/issues", &token).await;
    assert_unavailable(&answer, "a GET past ttl + stale_if_error");
}

#[tokio::test(start_paused = true)]
async fn calls_beyond_max_concurrent_are_refused_at_once() {
    const LATENCY: Duration = Duration::from_secs(30);
    let (sim, gateway) = start("\n[introspection]\ntimeout = \"60s\"\nmax_concurrent = 2\n").await;
    let tokens: Vec<String> = (0..6).map(|_| youtrack_token(&sim)).collect();
    sim.set_hub_latency(LATENCY);
    let started = Instant::now();
    let (done, mut answers) = mpsc::unbounded_channel();
    for token in tokens {
        let done = done.clone();
        let addr = gateway.addr;
        tokio::spawn(async move {
            let answer = get_as(addr, "/api/issues", &token).await;
            let _ = done.send((answer, started.elapsed()));
        });
    }
    drop(done);

    for n in 0..4 {
        let (answer, at) = answers.recv().await.expect("an answer");
        assert_unavailable(&answer, &format!("refused call {n}"));
        assert!(at < LATENCY, "refused only after {at:?}");
    }
    assert!(started.elapsed() < LATENCY, "the two probes are still out");
    assert!(sim.total_probes() <= 2, "{} probes", sim.total_probes());
    for n in 0..2 {
        let (answer, at) = answers.recv().await.expect("an answer");
        assert_forwarded(&answer, &format!("admitted call {n}"));
        assert!(at >= LATENCY, "answered at {at:?}");
    }
    assert!(answers.recv().await.is_none());
    assert_eq!(sim.total_probes(), 2, "refused calls are not retried");
}

#[tokio::test(start_paused = true)]
async fn a_token_shape_hub_chokes_on_cannot_open_the_breaker_for_everyone() {
    // One client sends every request here: its miss budget must not be what answers.
    let (sim, gateway) = start("[introspection]\nclient_miss_rate = 1000\n").await;
    // Hub answers 500 to one odd token shape, and to nothing else.
    sim.set_hub_fault_for("odd", Some(HubFault::Status(500)));
    for n in 0..12 {
        let odd = format!("odd-token-{n}");
        let answer = get_as(gateway.addr, "/api/issues", &odd).await;
        assert_unavailable(&answer, "the odd token");
    }
    // Far past the breaker's threshold of consecutive failures, everyone else is checked.
    for _ in 0..3 {
        let answer = get_as(gateway.addr, "/api/issues", &youtrack_token(&sim)).await;
        assert_forwarded(&answer, "a valid token after the odd ones");
    }
    // A Hub that fails every request still opens it, once its last credential-less answer
    // (reused for a second) is stale.
    sim.set_hub_fault_for("odd", None);
    sim.set_hub_fault(Some(HubFault::Status(500)));
    advance(Duration::from_secs(2)).await;
    for n in 0..6 {
        let answer = get_as(gateway.addr, "/api/issues", &format!("any-{n}")).await;
        assert_unavailable(&answer, "a failing Hub");
    }
    sim.set_hub_fault(None);
    let answer = get_as(gateway.addr, "/api/issues", &youtrack_token(&sim)).await;
    assert_unavailable(&answer, "the breaker is open for a few seconds");
}
