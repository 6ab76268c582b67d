//! A YouTrack with its built-in Hub, as real clients see them: same paths, status codes, JSON
//! error bodies, token shapes, credentials and scope rules. It is the Hub and the upstream of
//! the tests, `hubgate demo`, `hubgate sim` and the benchmarks.
//!
//! - `directory`     — users, services, tokens (minted in the real shapes, kept by hash)
//! - `java_tokens`   — an optional mode that finds permanent tokens by their decoded parts,
//!   as a Java Hub may (padding optional, `perm:` and `perm-` alike)
//! - `credentials`   — what `Authorization` may carry: Bearer, or Basic with a permanent
//!   token, an application password or the account password
//! - `router`        — which endpoint answers; Hub faults and latency, probe counting
//! - `hub`           — `/hub/api/rest/…`: `users/me`, users, tokens, services
//! - `app_passwords` — `/hub/api/rest/users/{id|me}/applicationPasswords`
//! - `oauth`         — `/hub/api/rest/oauth2/token`
//! - `login`         — Hub's login page, session cookie and the implicit flow
//!   (`/hub/auth/login`, `…/oauth2/interactive/login`, `…/oauth2/auth`)
//! - `public`        — what needs no credential: `/api/config`, Hub's `settings/public`, avatars
//! - `attachments`   — `DEMO-1`'s attachment list and `/api/files/…` with signed URLs
//! - `sse`           — live boards: `sseSubscription` tickets and `/api/eventSourceBus`
//! - `youtrack`      — `/api/users/me`, the echo every other path answers with, `/sim/ws`
//! - `webui`         — the web UI page (`/sim/webui`, `/sim/webui.js`, files in `webui/`)
//!   and its `/sim/report`
//! - `rfc7662`       — the simulator-only introspection endpoint
//! - `bench`         — fast mode for benchmarks (a small fixed echo, `/sim/stats`), bulk minting
//! - `seed`          — the demo users, services and tokens
//! - `fields`, `http`, `png` — Hub's `fields=` projection, response helpers, a PNG encoder
//!
//! Test controls (probe counters, Hub faults and latency, upstream latency, guest access,
//! published events, the heartbeat, signed URLs) are methods of [`Sim`], never endpoints:
//! nothing a gateway forwards can change the simulator's behaviour. Two endpoints exist for
//! observers only: in fast mode `GET /sim/stats` reports the counters, and `POST /sim/report`
//! takes the web UI page's results, which tests read with [`Sim::wait_report`].

// Endpoints return their error answers through `Result<_, Response>` for `?`; a response is
// larger than clippy likes in an `Err`, which costs nothing that matters off the hot path.
#![allow(clippy::result_large_err)]

mod app_passwords;
mod attachments;
mod bench;
mod credentials;
mod directory;
mod fields;
mod http;
mod hub;
mod java_tokens;
mod login;
mod oauth;
mod png;
mod public;
mod rfc7662;
mod router;
mod seed;
mod sse;
mod webui;
mod youtrack;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use attachments::{DEMO_ISSUE, SIGN_LIFETIME};
pub use bench::{Stats, STATS_PATH};
pub use directory::{PermStyle, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
pub use oauth::ACCESS_TOKEN_LIFETIME;
pub use public::VERSION;
pub use rfc7662::PATH as RFC7662_PATH;
pub use seed::DemoTokens;
pub use sse::{DEMO_AGILE, DEMO_SPRINT};

use directory::{token_key, Directory, TokenKey};

/// How the simulated Hub misbehaves (`Sim::set_hub_fault`). Applies to everything under
/// `/hub/api/rest`, to `/api/users/me` and to the RFC 7662 endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubFault {
    /// The connection is closed without an answer.
    Down,
    /// An error status with Hub's error body (e.g. 500, 502, 503).
    Status(u16),
    /// 200 with an HTML page (a login page or a proxy's error page).
    Html,
    /// 200 with JSON cut off in the middle.
    TruncatedJson,
    /// 302 to a login page.
    Redirect,
}

/// Knobs and counters for tests.
#[derive(Default)]
struct Controls {
    hub_fault: Mutex<Option<HubFault>>,
    /// A fault only for credentials containing this text (`Sim::set_hub_fault_for`).
    token_fault: Mutex<Option<(String, HubFault)>>,
    hub_latency: Mutex<Duration>,
    upstream_latency: Mutex<Duration>,
    guest_access: AtomicBool,
    /// Benchmark mode: the echo answers a fixed small body; `/sim/stats` answers.
    fast: AtomicBool,
    /// Probe calls per (token hash, service ID).
    probes: Mutex<HashMap<(TokenKey, &'static str), u64>>,
    /// All probe calls, and those for a (token, service) pair asked before.
    probe_total: AtomicU64,
    probe_repeats: AtomicU64,
    /// Requests the echo answered.
    echoes: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Controls {
    fn guest_access(&self) -> bool {
        self.guest_access.load(Ordering::Relaxed)
    }

    fn fast(&self) -> bool {
        self.fast.load(Ordering::Relaxed)
    }
}

struct Shared {
    directory: Mutex<Directory>,
    controls: Controls,
    instance: public::Instance,
    files: attachments::Files,
    sse: sse::Bus,
    sessions: login::Sessions,
    reports: webui::Reports,
}

impl Shared {
    fn directory(&self) -> MutexGuard<'_, Directory> {
        lock(&self.directory)
    }
}

/// A running simulator.
pub struct Sim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    demo: DemoTokens,
    accept: JoinHandle<()>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Sim {
    /// A seeded simulator on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Sim> {
        Sim::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// A seeded simulator on `addr`.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Sim> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mut directory = Directory::new(0x0068_7562_6761_7465);
        let (demo, instance) = seed::seed(&mut directory);
        let shared = Arc::new(Shared {
            directory: Mutex::new(directory),
            controls: Controls::default(),
            instance,
            files: attachments::Files::new(),
            sse: sse::Bus::new(),
            sessions: login::Sessions::default(),
            reports: webui::Reports::default(),
        });
        let accept = tokio::spawn(serve(listener, shared.clone()));
        Ok(Sim {
            addr,
            shared,
            demo,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn demo(&self) -> &DemoTokens {
        &self.demo
    }

    /// How many times `users/me` was asked about `token` for `service_id` (Hub's or YouTrack's).
    /// `token` is a bearer token, or for any other scheme the whole `Authorization` value
    /// (`"Basic dXNlcjpwYXNz"`).
    pub fn probes(&self, token: &str, service_id: &str) -> u64 {
        let key = token_key(token);
        let probes = lock(&self.shared.controls.probes);
        probes
            .iter()
            .filter(|((k, service), _)| *k == key && *service == service_id)
            .map(|(_, count)| *count)
            .sum()
    }

    /// All `users/me` probes so far, whatever the token.
    pub fn total_probes(&self) -> u64 {
        self.shared.controls.probe_total.load(Ordering::Relaxed)
    }

    /// The counters `GET /sim/stats` reports in fast mode.
    pub fn stats(&self) -> Stats {
        bench::stats(&self.shared)
    }

    /// Fast mode, for benchmarks: the echo answers every request with a small fixed body, and
    /// `GET /sim/stats` answers with [`Sim::stats`]. Token checks are unchanged.
    pub fn set_fast(&self, on: bool) {
        self.shared.controls.fast.store(on, Ordering::Relaxed);
    }

    /// Mints `count` permanent tokens for alice, granted for YouTrack only, and writes them to
    /// `out` one per line (benchmark input: many distinct valid tokens at no HTTP cost).
    pub fn mint_bench_tokens(
        &self,
        count: u64,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        bench::mint_tokens(&self.shared, count, out)
    }

    pub fn set_hub_fault(&self, fault: Option<HubFault>) {
        *lock(&self.shared.controls.hub_fault) = fault;
    }

    /// Delay before Hub answers (the probes, the token and RFC 7662 endpoints, the Hub API).
    pub fn set_hub_latency(&self, latency: Duration) {
        *lock(&self.shared.controls.hub_latency) = latency;
    }

    /// Delay before the echo answers.
    pub fn set_upstream_latency(&self, latency: Duration) {
        *lock(&self.shared.controls.upstream_latency) = latency;
    }

    /// With guest access on, YouTrack answers anonymous and bad requests to `/api/users/me`
    /// with the guest user.
    pub fn set_guest_access(&self, on: bool) {
        self.shared
            .controls
            .guest_access
            .store(on, Ordering::Relaxed);
    }

    /// Mints a permanent token for `login` granted for the given service IDs or names.
    pub fn mint_permanent(&self, login: &str, scope: &str, style: PermStyle) -> Option<String> {
        let mut directory = self.shared.directory();
        let user = directory.user_by_login(login)?.id.clone();
        let scope = directory.resolve_scope(scope).ok()?;
        Some(directory.mint_permanent(&user, "minted", scope, style)?.0)
    }

    /// Mints an OAuth access token for `login`, client `hubgate`, living `lifetime`.
    pub fn mint_access(&self, login: &str, scope: &str, lifetime: Duration) -> Option<String> {
        let mut directory = self.shared.directory();
        let user = directory.user_by_login(login)?.id.clone();
        let scope = directory.resolve_scope(scope).ok()?;
        Some(directory.mint_access(&user, &self.demo.client_id, scope, lifetime))
    }

    /// Deletes a token in Hub; effective at once.
    pub fn revoke(&self, token: &str) -> bool {
        self.shared.directory().delete_by_text(token)
    }

    /// A Hub fault only for requests whose `Authorization` value contains `marker` (an odd
    /// token shape Hub chokes on): everyone else's requests, token-less ones included, are
    /// answered as usual.
    pub fn set_hub_fault_for(&self, marker: &str, fault: Option<HubFault>) {
        *lock(&self.shared.controls.token_fault) = fault.map(|fault| (marker.to_owned(), fault));
    }

    /// Whether permanent tokens are found by their decoded parts, the way a Java Hub may read
    /// them: padding optional, `perm:` and `perm-` alike (`java_tokens.rs`).
    pub fn set_java_token_decoding(&self, on: bool) {
        self.shared.directory().java_tokens = on;
    }

    pub fn set_banned(&self, login: &str, banned: bool) {
        let mut directory = self.shared.directory();
        let id = directory.user_by_login(login).map(|u| u.id.clone());
        if let Some(user) = id.and_then(|id| directory.user_mut(&id)) {
            user.banned = banned;
        }
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Like a servlet container's connector: small writes (an event, a heartbeat) go out
        // at once instead of waiting for the previous segment's acknowledgement.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { router::dispatch(&shared, request).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
