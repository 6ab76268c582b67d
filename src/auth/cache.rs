//! The verdict cache (`design.md`, "Cache rules" — they are the product). Keys are the SHA-256
//! of the token and a service; the token itself is never stored. Positive verdicts live `ttl`,
//! never past the token's `exp`; negative ones live `negative_ttl` in a cache of their own, so
//! a flood of bad tokens cannot evict good entries. Concurrent misses for one key make one
//! backend call (single flight). Backend errors are never cached; a positive entry past its
//! TTL may stand in for up to `stale_if_error` while the backend fails, for reads only.
//!
//! Freshness is judged on tokio's clock (tests move it). Both caches are `quick_cache`
//! (CLOCK-PRO, bounded by `max_entries`, about 80 bytes per entry of its own, against moka's
//! 480 with per-entry expiry); entries past the last moment they could still be served are
//! dropped when met, and by a sweep every [`SWEEP_PERIOD`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use quick_cache::sync::Cache;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::introspect::{BackendError, Introspected};
use super::principal::{Principal, Verdict};
use crate::config;

/// SHA-256 of a token: the only form in which the gateway keeps one.
pub type TokenHash = [u8; 32];

pub fn token_hash(token: &str) -> TokenHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// The cache key of HTTP Basic with a login and a password: an HMAC-SHA-256 of the decoded
/// `login:password` under a key drawn when the process starts. Unlike a token, a password may
/// be guessable, and an unkeyed hash in the access log (its fingerprint) could be checked
/// against a word list offline. The key is never stored: verdicts of passwords do not outlive
/// the process, which a cache does not need.
pub fn basic_hash(decoded: &str) -> TokenHash {
    static KEY: std::sync::OnceLock<ring::hmac::Key> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .expect("the system's random number generator works")
    });
    let tag = ring::hmac::sign(key, decoded.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(tag.as_ref());
    hash
}

/// The first 6 bytes of the token's hash; shown as 12 hex digits, all logs may show of a token.
pub fn fingerprint_bytes(hash: &TokenHash) -> [u8; 6] {
    let mut bytes = [0u8; 6];
    bytes.copy_from_slice(&hash[..6]);
    bytes
}

/// The first 12 hex digits of the token's hash: what logs may show of a token.
pub fn fingerprint(hash: &TokenHash) -> String {
    hex(&fingerprint_bytes(hash))
}

/// The lower-case hex digit of the low four bits of `nibble`.
pub fn hex_digit(nibble: u8) -> u8 {
    b"0123456789abcdef"[usize::from(nibble & 0xf)]
}

/// Lower-case hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let digits = bytes
        .iter()
        .flat_map(|b| [hex_digit(b >> 4), hex_digit(*b)]);
    digits.map(char::from).collect()
}

/// Whether the lower-case hex digits of `hash` start with `prefix`, without writing them out.
pub fn starts_with_hex(hash: &TokenHash, prefix: &str) -> bool {
    prefix.len() <= 2 * hash.len()
        && prefix.bytes().enumerate().all(|(i, digit)| {
            let byte = hash[i / 2];
            hex_digit(if i % 2 == 0 { byte >> 4 } else { byte }) == digit
        })
}

/// How a verdict was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    NegativeHit,
    /// This request asked the backend.
    Miss,
    /// Another request was already asking; this one waited for its answer.
    Coalesced,
    /// The backend failed and a positive entry past its TTL stood in.
    Stale,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::NegativeHit => "negative_hit",
            Outcome::Miss => "miss",
            Outcome::Coalesced => "coalesced",
            Outcome::Stale => "stale",
        }
    }
}

/// How often entries that can no longer be served are dropped, if not met before.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(30);

/// A token's hash and a service's index (a `u32`, so that an entry packs into 64 bytes).
type Key = (TokenHash, u32);
type Flight = Arc<OnceCell<Result<Introspected, BackendError>>>;

fn key(hash: TokenHash, service: usize) -> Key {
    // There are as many services as `[services.*]` tables.
    (hash, service as u32)
}

/// Milliseconds since the cache's origin: deadlines in 8 bytes instead of an `Instant`'s 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Deadline(u64);

#[derive(Debug, Clone)]
struct Positive {
    principal: Arc<Principal>,
    fresh_until: Deadline,
    stale_until: Deadline,
}

#[derive(Debug, Clone)]
struct Negative {
    verdict: Verdict,
    until: Deadline,
}

/// Takes a finished (or abandoned) call out of `in_flight`, however its caller leaves —
/// including a request cancelled midway, so random tokens cannot pile up entries.
struct FlightGuard<'a> {
    in_flight: &'a Mutex<HashMap<Key, Flight>>,
    key: Key,
    flight: Flight,
    led: AtomicBool,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if !self.flight.initialized() && !self.led.load(Ordering::Relaxed) {
            return; // still under way for its leader
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if in_flight
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            in_flight.remove(&self.key);
        }
    }
}

pub struct VerdictCache {
    positive: Cache<Key, Positive>,
    negative: Cache<Key, Negative>,
    /// Backend calls under way, by key: later misses wait on the same cell.
    in_flight: Mutex<HashMap<Key, Flight>>,
    /// What deadlines count from.
    origin: Instant,
    ttl: Duration,
    negative_ttl: Duration,
    stale_if_error: Duration,
}

impl VerdictCache {
    /// A cache, swept every [`SWEEP_PERIOD`] for as long as it exists (when made inside a
    /// tokio runtime).
    pub fn new(config: &config::Cache) -> Arc<VerdictCache> {
        let capacity = usize::try_from(config.max_entries).unwrap_or(usize::MAX);
        let cache = Arc::new(VerdictCache {
            positive: Cache::new(capacity),
            negative: Cache::new((capacity / 4).max(1)),
            in_flight: Mutex::new(HashMap::new()),
            origin: Instant::now(),
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
            stale_if_error: config.stale_if_error,
        });
        crate::periodic::every(&cache, SWEEP_PERIOD, VerdictCache::sweep);
        cache
    }

    fn deadline(&self, at: Instant) -> Deadline {
        let since = at.saturating_duration_since(self.origin);
        Deadline(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    fn now(&self) -> Deadline {
        self.deadline(Instant::now())
    }

    /// Drops the entries that can no longer be served.
    pub fn sweep(&self) {
        let now = self.now();
        self.positive.retain(|_, entry| now < entry.stale_until);
        self.negative.retain(|_, entry| now < entry.until);
    }

    /// Entries held, (positive, negative): those that can no longer be served until the next
    /// sweep at the latest.
    pub fn entries(&self) -> (u64, u64) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        (count(self.positive.len()), count(self.negative.len()))
    }

    /// Drops the verdicts of every token whose hash starts with `fingerprint` (lower-case hex).
    pub fn forget_fingerprint(&self, fingerprint: &str) {
        let matches = |key: &Key| starts_with_hex(&key.0, fingerprint);
        self.positive.retain(|key, _| !matches(key));
        self.negative.retain(|key, _| !matches(key));
    }

    /// Drops the positive verdicts of every token of `login` (case-insensitively).
    pub fn forget_login(&self, login: &str) {
        let login = login.to_lowercase();
        self.positive
            .retain(|_, entry| entry.principal.login.to_lowercase() != login);
    }

    /// The verdict for (`hash`, `service`): from the cache, or from `fetch` (run by one caller
    /// per key at a time). `allow_stale` lets a stale positive entry answer a failing backend.
    pub async fn verdict<F>(
        &self,
        hash: TokenHash,
        service: usize,
        allow_stale: bool,
        fetch: F,
    ) -> (Result<Verdict, BackendError>, Outcome)
    where
        F: Future<Output = Result<Introspected, BackendError>>,
    {
        let key = key(hash, service);
        let now = self.now();
        let positive = self.positive.get(&key);
        if let Some(entry) = positive.as_ref().filter(|e| now < e.fresh_until) {
            return (Ok(Verdict::Granted(entry.principal.clone())), Outcome::Hit);
        }
        if let Some(entry) = self.negative.get(&key) {
            if now < entry.until {
                return (Ok(entry.verdict), Outcome::NegativeHit);
            }
            // Unless another request has just stored a fresh one.
            self.negative.remove_if(&key, |entry| now >= entry.until);
        }
        let (result, led) = self.single_flight(key, fetch).await;
        let outcome = if led {
            Outcome::Miss
        } else {
            Outcome::Coalesced
        };
        match result {
            Ok(introspected) => {
                let verdict = introspected
                    .verdicts
                    .iter()
                    .find(|(index, _)| *index == service)
                    .map_or(Verdict::NotGranted, |(_, v)| v.clone());
                (Ok(verdict), outcome)
            }
            Err(error) => match positive.filter(|e| allow_stale && self.now() < e.stale_until) {
                Some(entry) => (
                    Ok(Verdict::Granted(entry.principal.clone())),
                    Outcome::Stale,
                ),
                None => (Err(error), outcome),
            },
        }
    }

    /// Runs `fetch` unless a call for `key` is under way, in which case waits for its answer.
    /// The verdicts are stored before any waiter sees them; returns whether this caller ran it.
    async fn single_flight<F>(
        &self,
        key: Key,
        fetch: F,
    ) -> (Result<Introspected, BackendError>, bool)
    where
        F: Future<Output = Result<Introspected, BackendError>>,
    {
        let flight = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            in_flight.entry(key).or_default().clone()
        };
        let guard = FlightGuard {
            in_flight: &self.in_flight,
            key,
            flight,
            led: AtomicBool::new(false),
        };
        let result = guard
            .flight
            .get_or_init(|| {
                guard.led.store(true, Ordering::Relaxed);
                async {
                    let result = fetch.await;
                    if let Ok(introspected) = &result {
                        self.store(key.0, introspected);
                    }
                    result
                }
            })
            .await
            .clone();
        (result, guard.led.load(Ordering::Relaxed))
    }

    fn store(&self, hash: TokenHash, introspected: &Introspected) {
        let now = Instant::now();
        let expires = introspected.expires_at.map(|exp| {
            let left = exp
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            now + left
        });
        let cap = |at: Instant| self.deadline(expires.map_or(at, |exp| at.min(exp)));
        for (service, verdict) in &introspected.verdicts {
            let key = key(hash, *service);
            match verdict {
                Verdict::Granted(principal) => {
                    let entry = Positive {
                        principal: principal.clone(),
                        fresh_until: cap(now + self.ttl),
                        stale_until: cap(now + self.ttl + self.stale_if_error),
                    };
                    self.negative.remove(&key);
                    self.positive.insert(key, entry);
                }
                other => {
                    let entry = Negative {
                        verdict: other.clone(),
                        until: self.deadline(now + self.negative_ttl),
                    };
                    self.positive.remove(&key);
                    self.negative.insert(key, entry);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Arc<VerdictCache> {
        VerdictCache::new(&config::Cache {
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            max_entries: 100,
            stale_if_error: Duration::ZERO,
        })
    }

    fn granted() -> Introspected {
        let principal = Arc::new(Principal {
            id: "1".into(),
            login: "alice".into(),
        });
        Introspected {
            verdicts: vec![(0, Verdict::Granted(principal))],
            expires_at: None,
        }
    }

    fn in_flight(cache: &VerdictCache) -> usize {
        cache
            .in_flight
            .lock()
            .map(|m| m.len())
            .unwrap_or(usize::MAX)
    }

    #[tokio::test]
    async fn a_call_abandoned_midway_leaves_nothing_in_flight() {
        let cache = cache();
        let hash = token_hash("t");
        let abandoned = cache.verdict(hash, 0, false, std::future::pending());
        tokio::select! {
            biased;
            _ = abandoned => panic!("a pending backend call completed"),
            _ = tokio::task::yield_now() => {}
        }
        assert_eq!(in_flight(&cache), 0);
        let (verdict, outcome) = cache.verdict(hash, 0, false, async { Ok(granted()) }).await;
        assert!(matches!(verdict, Ok(Verdict::Granted(_))));
        assert_eq!(outcome, Outcome::Miss);
        assert_eq!(in_flight(&cache), 0);
        let (_, outcome) = cache.verdict(hash, 0, false, std::future::pending()).await;
        assert_eq!(outcome, Outcome::Hit);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_call_and_errors_are_not_kept() {
        let cache = cache();
        let hash = token_hash("t");
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let leader = cache.verdict(hash, 0, false, async {
            calls.fetch_add(1, Ordering::Relaxed);
            let _ = released.await;
            Err(BackendError::Timeout)
        });
        let waiter = cache.verdict(hash, 0, false, async {
            calls.fetch_add(1, Ordering::Relaxed);
            Ok(granted())
        });
        let (led, waited, ()) = tokio::join!(leader, waiter, async {
            tokio::task::yield_now().await;
            let _ = release.send(());
        });
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(led, (Err(BackendError::Timeout), Outcome::Miss));
        assert_eq!(waited, (Err(BackendError::Timeout), Outcome::Coalesced));
        let (verdict, outcome) = cache.verdict(hash, 0, false, async { Ok(granted()) }).await;
        assert!(
            matches!(verdict, Ok(Verdict::Granted(_))),
            "the error was kept"
        );
        assert_eq!(outcome, Outcome::Miss);
    }

    fn invalid() -> Introspected {
        Introspected {
            verdicts: vec![(0, Verdict::Invalid)],
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_max_entries() {
        let cache = cache();
        for n in 0..1000 {
            let hash = token_hash(&format!("token {n}"));
            let (verdict, _) = cache.verdict(hash, 0, false, async { Ok(granted()) }).await;
            assert!(matches!(verdict, Ok(Verdict::Granted(_))));
            let (verdict, _) = cache
                .verdict(token_hash(&format!("bad {n}")), 0, false, async {
                    Ok(invalid())
                })
                .await;
            assert_eq!(verdict, Ok(Verdict::Invalid));
        }
        let (positive, negative) = cache.entries();
        assert!((1..=100).contains(&positive), "{positive} positive entries");
        assert!((1..=25).contains(&negative), "{negative} negative entries");
    }

    #[tokio::test(start_paused = true)]
    async fn entries_leave_once_they_can_no_longer_be_served() {
        let cache = cache();
        for n in 0..3 {
            let hash = token_hash(&format!("token {n}"));
            let (verdict, outcome) = cache.verdict(hash, 0, false, async { Ok(granted()) }).await;
            assert!(matches!(verdict, Ok(Verdict::Granted(_))));
            assert_eq!(outcome, Outcome::Miss);
        }
        let bad = token_hash("bad");
        let (verdict, _) = cache.verdict(bad, 0, false, async { Ok(invalid()) }).await;
        assert_eq!(verdict, Ok(Verdict::Invalid));
        assert_eq!(cache.entries(), (3, 1));
        // Negative verdicts live 5 s, positive ones 30 s (no stale_if_error): an expired
        // entry met is dropped.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let (verdict, outcome) = cache.verdict(bad, 0, false, async { Ok(invalid()) }).await;
        assert_eq!((verdict, outcome), (Ok(Verdict::Invalid), Outcome::Miss));
        tokio::time::sleep(Duration::from_secs(23)).await;
        assert_eq!(cache.entries(), (3, 1));
        // At 30 s the sweep drops the rest without anyone asking.
        assert_eq!(SWEEP_PERIOD, Duration::from_secs(30));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(cache.entries(), (0, 0));
    }

    #[test]
    fn hash_prefixes_compare_as_hex_digits() {
        assert_eq!(hex(&[0x00, 0x7f, 0xab, 0xff, 0x10]), "007fabff10");
        let hash = token_hash("t");
        let digits = hex(&hash);
        for n in [0, 1, 11, 12, 13, 64] {
            assert!(starts_with_hex(&hash, &digits[..n]), "{n} digits");
        }
        let mut wrong = digits[..13].to_owned();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(12..13, last);
        assert!(!starts_with_hex(&hash, &wrong));
        assert!(!starts_with_hex(&hash, &format!("{digits}0")));
    }
}
