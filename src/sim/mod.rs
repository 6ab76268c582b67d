//! A YouTrack with its built-in Hub, as `hub-contract.md` describes them: same paths, status
//! codes, JSON error bodies, token shapes and scope rules. It is the Hub and the upstream of
//! the tests, `hubgate demo`, `hubgate sim` and the benchmarks.
//!
//! - `directory` — users, services, tokens (minted in the real shapes, kept by hash)
//! - `hub`       — `/hub/api/rest/…`: `users/me`, users, permanent and refresh tokens, services
//! - `oauth`     — `/hub/api/rest/oauth2/token`
//! - `youtrack`  — `/api/users/me`, the echo every other path answers with, `/sim/ws`
//! - `rfc7662`   — the simulator-only introspection endpoint
//! - `bench`     — fast mode for benchmarks (a small fixed echo, `/sim/stats`), bulk minting
//! - `fields`, `http` — Hub's `fields=` projection and response helpers
//!
//! Test controls (probe counters, Hub faults and latency, upstream latency, guest access) are
//! methods of [`Sim`], never endpoints: nothing a gateway forwards can reach them. The one
//! exception is read-only and opt-in: in fast mode `GET /sim/stats` reports the counters.

// Endpoints return their error answers through `Result<_, Response>` for `?`; a response is
// larger than clippy likes in an `Err`, which costs nothing that matters off the hot path.
#![allow(clippy::result_large_err)]

mod bench;
mod directory;
mod fields;
mod http;
mod hub;
mod oauth;
mod rfc7662;
mod youtrack;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::http::{Request, Response, StatusCode};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use bench::{Stats, STATS_PATH};
pub use directory::{PermStyle, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
pub use oauth::ACCESS_TOKEN_LIFETIME;
pub use rfc7662::PATH as RFC7662_PATH;

use self::http::SimBody;
use directory::{token_key, Directory, Service, TokenKey};

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

/// The tokens and credentials the simulator is seeded with (`hubgate sim` prints them; the
/// README documents them).
#[derive(Debug, Clone)]
pub struct DemoTokens {
    /// alice, permanent `perm:` token granted for YouTrack only.
    pub youtrack_only: String,
    /// alice, permanent `perm-` token granted for Hub (`0-0-0-0-0`) only.
    pub hub_only: String,
    /// alice, OAuth access token granted for YouTrack and Hub (it contains a space).
    pub both_oauth: String,
    /// alice, permanent token that has been deleted in Hub.
    pub revoked: String,
    /// bob (banned), permanent token granted for YouTrack and Hub.
    pub banned: String,
    /// admin, permanent token granted for Hub and YouTrack.
    pub admin: String,
    /// A registered service (client of the token and RFC 7662 endpoints).
    pub client_id: String,
    pub client_secret: String,
}

struct Shared {
    directory: Mutex<Directory>,
    controls: Controls,
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

/// Users: `admin` (password `admin`, may manage everyone), `alice` (`alice`), `bob` (`bob`,
/// banned) and `guest`.
fn seed(directory: &mut Directory) -> DemoTokens {
    let admin = directory.add_user("admin", "Administrator", "admin", true);
    let alice = directory.add_user("alice", "Alice Demo", "alice", false);
    let bob = directory.add_user("bob", "Bob Banned", "bob", false);
    directory.add_user("guest", "Guest", "", false);
    if let Some(user) = directory.user_mut(&bob) {
        user.banned = true;
    }
    let (client_id, client_secret) = directory.register_service(Service {
        id: String::new(),
        name: "hubgate".into(),
        application_name: "hubgate".into(),
        secret: None,
        home_url: None,
        redirect_uris: Vec::new(),
        vendor: Some("hubgate".into()),
        version: None,
    });
    let yt = || vec![YOUTRACK_SERVICE_ID.to_owned()];
    let hub = || vec![HUB_SERVICE_ID.to_owned()];
    let both = || vec![YOUTRACK_SERVICE_ID.to_owned(), HUB_SERVICE_ID.to_owned()];
    let mut perm = |user: &str, name: &str, scope, style| {
        directory
            .mint_permanent(user, name, scope, style)
            .unwrap_or_default()
    };
    let youtrack_only = perm(&alice, "youtrack-cli", yt(), PermStyle::Named).0;
    let hub_only = perm(&alice, "hub-admin-scripts", hub(), PermStyle::Dash).0;
    let (revoked, revoked_id) = perm(&alice, "leaked", both(), PermStyle::EntityId);
    let banned = perm(&bob, "bob-cli", both(), PermStyle::EntityId).0;
    let admin_token = perm(
        &admin,
        "security-team",
        vec![HUB_SERVICE_ID.to_owned(), YOUTRACK_SERVICE_ID.to_owned()],
        PermStyle::EntityId,
    )
    .0;
    directory.delete_token(&alice, &revoked_id);
    let both_oauth = directory.mint_access(&alice, &client_id, both(), ACCESS_TOKEN_LIFETIME);
    DemoTokens {
        youtrack_only,
        hub_only,
        both_oauth,
        revoked,
        banned,
        admin: admin_token,
        client_id,
        client_secret,
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
        let demo = seed(&mut directory);
        let shared = Arc::new(Shared {
            directory: Mutex::new(directory),
            controls: Controls::default(),
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
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { dispatch(&shared, request).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// The connection is dropped without an answer (`HubFault::Down`).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated Hub outage")
    }
}

impl std::error::Error for Dropped {}

fn is_hub_path(path: &str) -> bool {
    path.starts_with("/hub/api/rest/") || path == "/api/users/me" || path == rfc7662::PATH
}

async fn dispatch(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<Response<SimBody>, Dropped> {
    let path = request.uri().path().to_owned();
    count_probe(shared, &request, &path);
    if is_hub_path(&path) {
        delay(&shared.controls.hub_latency).await;
        if let Some(fault) = *lock(&shared.controls.hub_fault) {
            return faulty(fault);
        }
    }
    let response = match path.as_str() {
        "/hub/api/rest/oauth2/token" => oauth::token(shared, request).await,
        "/api/users/me" => youtrack::users_me(shared, &request),
        p if p == rfc7662::PATH => rfc7662::introspect(shared, request).await,
        "/sim/ws" => youtrack::websocket(request),
        bench::STATS_PATH if shared.controls.fast() => bench::stats_response(shared),
        p if p.starts_with("/hub/api/rest/") => {
            hub::handle(shared, request, &p["/hub/api/rest/".len()..]).await
        }
        _ => {
            delay(&shared.controls.upstream_latency).await;
            shared.controls.echoes.fetch_add(1, Ordering::Relaxed);
            if shared.controls.fast() {
                bench::fast_echo(request).await
            } else {
                youtrack::echo(request).await
            }
        }
    };
    Ok(response)
}

/// Waits the configured latency; no timer at all when it is zero.
async fn delay(latency: &Mutex<Duration>) {
    let latency = *lock(latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

fn count_probe(shared: &Shared, request: &Request<Incoming>, path: &str) {
    let service = match path {
        "/hub/api/rest/users/me" => HUB_SERVICE_ID,
        "/api/users/me" => YOUTRACK_SERVICE_ID,
        _ => return,
    };
    let key = token_key(self::http::bearer(request).unwrap_or(""));
    let controls = &shared.controls;
    let before = {
        let mut probes = lock(&controls.probes);
        let count = probes.entry((key, service)).or_default();
        *count += 1;
        *count - 1
    };
    controls.probe_total.fetch_add(1, Ordering::Relaxed);
    if before > 0 {
        controls.probe_repeats.fetch_add(1, Ordering::Relaxed);
    }
}

fn faulty(fault: HubFault) -> Result<Response<SimBody>, Dropped> {
    let text = |status: StatusCode, content_type: &'static str, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response.headers_mut().insert(
            ::http::header::CONTENT_TYPE,
            ::http::HeaderValue::from_static(content_type),
        );
        response
    };
    Ok(match fault {
        HubFault::Down => return Err(Dropped),
        HubFault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            self::http::hub_error(status, "server_error", "Simulated Hub failure")
        }
        HubFault::Html => text(
            StatusCode::OK,
            "text/html;charset=UTF-8",
            "<!doctype html><html><body><h1>Hub is starting</h1></body></html>",
        ),
        HubFault::TruncatedJson => text(
            StatusCode::OK,
            "application/json;charset=UTF-8",
            r#"{"type":"user","id":"1b2c","login":"ali"#,
        ),
        HubFault::Redirect => {
            let mut response = text(StatusCode::FOUND, "text/html;charset=UTF-8", "");
            response.headers_mut().insert(
                ::http::header::LOCATION,
                ::http::HeaderValue::from_static("/hub/auth/login"),
            );
            response
        }
    })
}
