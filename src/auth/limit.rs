//! What keeps Hub from being turned into a weapon (`security.md`): a per-client budget of
//! cache misses, and a circuit breaker on the introspection backend. Both run on tokio's
//! clock, so tests move time instead of waiting it out.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Most client addresses whose budgets are remembered; the least recently seen are forgotten
/// first, so a million source addresses cannot exhaust memory.
const MAX_CLIENTS: u64 = 100_000;
/// A client's budget is forgotten after this long without a miss (it would be full again).
const CLIENT_IDLE: Duration = Duration::from_secs(60);

/// Per-client token buckets of cache misses: `rate` per second, bursts of `rate`.
pub struct MissBudget {
    rate: f64,
    clients: moka::sync::Cache<IpAddr, Arc<Mutex<Bucket>>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl MissBudget {
    /// `None` when `rate` is 0 (no budget).
    pub fn new(rate: u32) -> Option<MissBudget> {
        (rate > 0).then(|| MissBudget {
            rate: f64::from(rate),
            clients: moka::sync::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(CLIENT_IDLE)
                .build(),
        })
    }

    /// Misses per second (and burst) per client.
    pub fn rate(&self) -> u32 {
        self.rate as u32
    }

    /// Spends one miss of `client`'s budget; `Err(retry_after)` when it is spent.
    pub fn spend(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let bucket = self.clients.get_with(client, || {
            Arc::new(Mutex::new(Bucket {
                tokens: self.rate,
                at: now,
            }))
        });
        let mut bucket = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// Consecutive backend failures that open the breaker.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open breaker fails fast before it lets one probe call through.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(5);

/// A circuit breaker: after `BREAKER_FAILURES` consecutive failures, calls fail fast for
/// `BREAKER_COOLDOWN`; then one call is let through, and its outcome closes or reopens it.
#[derive(Default)]
pub struct Breaker(Mutex<BreakerState>);

#[derive(Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Permission to make one backend call; report how it went.
pub struct Attempt<'a> {
    breaker: &'a Breaker,
}

impl Breaker {
    /// `None` while the breaker is open (or its one probe call is under way).
    pub fn attempt(&self) -> Option<Attempt<'_>> {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = state.open_until {
            if Instant::now() < until || state.probing {
                return None;
            }
            state.probing = true;
        }
        Some(Attempt { breaker: self })
    }

    #[cfg(test)]
    fn is_open(&self) -> bool {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        state.open_until.is_some()
    }
}

impl Attempt<'_> {
    pub fn succeeded(self) {
        let mut state = self.breaker.0.lock().unwrap_or_else(|p| p.into_inner());
        *state = BreakerState::default();
    }

    pub fn failed(self) {
        let mut state = self.breaker.0.lock().unwrap_or_else(|p| p.into_inner());
        state.failures = state.failures.saturating_add(1);
        state.probing = false;
        if state.failures >= BREAKER_FAILURES {
            state.open_until = Some(Instant::now() + BREAKER_COOLDOWN);
        }
    }
}

impl Drop for Attempt<'_> {
    /// An attempt abandoned midway (the request went away) frees the probe slot.
    fn drop(&mut self) {
        if let Ok(mut state) = self.breaker.0.lock() {
            state.probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_client_spends_its_burst_then_refills_at_the_rate() {
        let budget = MissBudget::new(4).expect("a budget");
        let client = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..4 {
            assert!(budget.spend(client).is_ok());
        }
        let retry = budget.spend(client).expect_err("burst spent");
        assert_eq!(retry, Duration::from_millis(250));
        assert!(
            budget.spend(IpAddr::from([192, 0, 2, 2])).is_ok(),
            "budgets are per client"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(budget.spend(client).is_ok());
        assert!(budget.spend(client).is_ok());
        assert!(budget.spend(client).is_err());
        assert!(MissBudget::new(0).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_fails_fast_and_lets_one_probe_through() {
        let breaker = Breaker::default();
        for _ in 0..BREAKER_FAILURES {
            breaker.attempt().expect("closed").failed();
        }
        assert!(breaker.is_open());
        assert!(breaker.attempt().is_none(), "open: fail fast");
        tokio::time::advance(BREAKER_COOLDOWN).await;
        let probe = breaker.attempt().expect("one probe after the cool-down");
        assert!(breaker.attempt().is_none(), "only one probe at a time");
        probe.failed();
        assert!(breaker.attempt().is_none(), "reopened");
        tokio::time::advance(BREAKER_COOLDOWN).await;
        breaker.attempt().expect("probe").succeeded();
        assert!(!breaker.is_open());
        assert!(breaker.attempt().is_some());
    }
}
