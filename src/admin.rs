//! The admin listener (`[admin] listen`, never the client listener): `GET /healthz`,
//! `GET /readyz`, `GET /metrics` for anyone who can reach it; `POST /reload` and the
//! revocations API (`POST`/`GET /revocations`, `DELETE /revocations/{id}`) with the bearer
//! token of `admin.token_file` (compared in constant time; without the file they are refused).
//! Only requests addressed to an IP literal, `localhost` or a name in `admin.allowed_hosts`
//! are answered (against DNS rebinding, see `admin/host.rs`).

mod host;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::live::Live;
use crate::revocation::fleet::FleetStatus;
use crate::revocation::service::{RevokeError, Revoker};
use crate::server::Phase;

/// Largest request body read (a revocation request).
const MAX_BODY: usize = 64 * 1024;
/// Most admin connections open at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// Most admin connections from one client (see [`Client`]), so one client cannot take every
/// slot.
const MAX_PER_CLIENT: usize = 8;
/// Admin clients (probes, Prometheus, curl) send their headers at once.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a backend reachability answer is reused, so a polling load balancer cannot turn
/// `/readyz` into a flood of Hub requests.
const HUB_CHECK_REUSE: Duration = Duration::from_secs(1);

type AdminResponse = Response<Full<Bytes>>;

/// What the admin endpoints read.
pub struct Admin {
    live: Arc<Live>,
    revoker: Arc<Revoker>,
    phase: watch::Receiver<Phase>,
    /// The last backend reachability check, and when it was made.
    hub_check: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
    connections: Arc<Semaphore>,
    /// Open admin connections by client.
    per_client: Mutex<HashMap<Client, usize>>,
    accept_errors: Mutex<Option<Instant>>,
}

impl Admin {
    pub fn new(live: Arc<Live>, revoker: Arc<Revoker>, phase: watch::Receiver<Phase>) -> Admin {
        Admin {
            live,
            revoker,
            phase,
            hub_check: tokio::sync::Mutex::new(None),
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            per_client: Mutex::new(HashMap::new()),
            accept_errors: Mutex::new(None),
        }
    }

    /// Serves the admin listener until the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    self.accept_failed(&error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.slot(peer.ip()) else {
                tracing::warn!(%peer, "too many admin connections, connection refused");
                continue;
            };
            let admin = self.clone();
            tokio::spawn(async move {
                let service = service_fn(|request| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.answer(request, peer).await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(error) = served {
                    tracing::debug!(%peer, %error, "admin connection ended with an error");
                }
                drop(slot);
            });
        }
    }

    /// A connection slot for `peer`, within both the total and the per-client bound.
    fn slot(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let client = Client::of(peer);
        let permit = self.connections.clone().try_acquire_owned().ok()?;
        let mut open = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= MAX_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(Slot {
            admin: self.clone(),
            client,
            _permit: permit,
        })
    }

    fn accept_failed(&self, error: &std::io::Error) {
        let mut logged = self.accept_errors.lock().unwrap_or_else(|p| p.into_inner());
        if logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            *logged = Some(Instant::now());
            tracing::warn!(%error, "admin accept failed");
        }
    }

    async fn answer(&self, request: Request<Incoming>, peer: SocketAddr) -> AdminResponse {
        if let Some(refusal) = self.misaddressed(&request, peer) {
            return refusal;
        }
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        match path.as_str() {
            "/healthz" if is_read(&method) => return text(StatusCode::OK, "ok\n"),
            "/readyz" if is_read(&method) => return self.readyz().await,
            "/metrics" if is_read(&method) => return self.metrics().await,
            "/healthz" | "/readyz" | "/metrics" => return not_allowed("GET, HEAD"),
            _ => {}
        }
        let revocation = path.strip_prefix("/revocations/");
        let allowed = match (path.as_str(), revocation) {
            ("/reload", _) => "POST",
            ("/revocations", _) => "GET, POST",
            (_, Some(id)) if !id.is_empty() && !id.contains('/') => "DELETE",
            _ => return text(StatusCode::NOT_FOUND, "not found\n"),
        };
        if !allowed.split(", ").any(|m| m == method.as_str()) {
            return not_allowed(allowed);
        }
        if let Some(refusal) = self.refusal(&request) {
            return refusal;
        }
        match (method, revocation) {
            (Method::DELETE, Some(id)) => self.withdraw(id, peer).await,
            (Method::GET, _) => json(
                StatusCode::OK,
                &serde_json::json!({
                    "revocations": self.revoker.list(),
                }),
            ),
            (_, _) if path == "/reload" => self.reload(peer).await,
            (_, _) => self.revoke(request, peer).await,
        }
    }

    async fn revoke(&self, request: Request<Incoming>, peer: SocketAddr) -> AdminResponse {
        let body = match read_body(request).await {
            Ok(body) => body,
            Err(refusal) => return refusal,
        };
        tracing::info!(%peer, "revocation asked on the admin listener");
        match self.revoker.revoke(&body).await {
            Ok(revoked) => json(StatusCode::CREATED, &revoked),
            Err(error) => revoke_error(&error),
        }
    }

    async fn withdraw(&self, id: &str, peer: SocketAddr) -> AdminResponse {
        tracing::info!(%peer, "revocation withdrawal asked on the admin listener");
        match self.revoker.withdraw(id).await {
            Ok((removed, fleet)) => {
                let mut answer = serde_json::json!({ "withdrawn": removed });
                if let Some(fleet) = fleet {
                    answer["fleet"] = fleet.into();
                }
                json(StatusCode::OK, &answer)
            }
            Err(error) => revoke_error(&error),
        }
    }

    /// 200 while serving with a loaded configuration (and, with `readyz_checks_hub`, while the
    /// token-checking backend answers); 503 once a drain has started.
    async fn readyz(&self) -> AdminResponse {
        let phase = *self.phase.borrow();
        let fleet = self.revoker.fleet().map(|fleet| (fleet.status(), fleet));
        match (phase, &fleet) {
            (Phase::Serving, _) => {}
            (Phase::Loading, Some((status, fleet))) => {
                let body = format!(
                    "not ready: loading revocations from the fleet (Redis at {}: {status:?})\n",
                    fleet.redis_addr()
                );
                return text(StatusCode::SERVICE_UNAVAILABLE, body);
            }
            (Phase::Loading, None) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: starting\n");
            }
            _ => return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: draining\n"),
        }
        let fleet_note = match fleet {
            None | Some((FleetStatus::Connected | FleetStatus::Connecting, _)) => String::new(),
            Some((FleetStatus::Disconnected { since_unix, error }, fleet)) => format!(
                " (fleet: Redis at {} unreachable since {since_unix} (Unix time): {error}; \
                 enforcing the {} revocations known)",
                fleet.redis_addr(),
                self.revoker.list().len()
            ),
        };
        let current = self.live.current();
        if current.config.admin.readyz_checks_hub {
            let mut last = self.hub_check.lock().await;
            let reuse = last
                .as_ref()
                .filter(|(at, _)| at.elapsed() < HUB_CHECK_REUSE);
            let result = match reuse {
                Some((_, result)) => result.clone(),
                None => {
                    let result = current
                        .state
                        .auth()
                        .backend_reachable()
                        .await
                        .map_err(|e| e.to_string());
                    *last = Some((Instant::now(), result.clone()));
                    result
                }
            };
            if let Err(error) = result {
                let body = format!("not ready: token backend: {error}\n");
                return text(StatusCode::SERVICE_UNAVAILABLE, body);
            }
        }
        text(StatusCode::OK, format!("ready{fleet_note}\n"))
    }

    async fn metrics(&self) -> AdminResponse {
        let (positive, negative) = self.live.current().state.auth().cache_entries();
        let revocations = self.revoker.list().len();
        let body = self.live.metrics().render(positive, negative, revocations);
        let mut response = text(StatusCode::OK, body);
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        response
    }

    async fn reload(&self, peer: SocketAddr) -> AdminResponse {
        tracing::info!(%peer, "reload asked on the admin listener");
        match self.live.reload().await {
            Ok(()) => text(StatusCode::OK, "reloaded\n"),
            Err(error) => text(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("reload refused, the previous configuration keeps serving:\n{error}\n"),
            ),
        }
    }

    /// The answer to a request not addressed to this listener (400 or 421); `None` for one
    /// that is. Such a request is answered before anything is read or counted.
    fn misaddressed(&self, request: &Request<Incoming>, peer: SocketAddr) -> Option<AdminResponse> {
        let current = self.live.current();
        let allowed = &current.config.admin.allowed_hosts;
        let (status, body) = match host::addressed(
            request.version(),
            request.uri(),
            request.headers(),
            allowed,
        ) {
            host::Addressed::Here => return None,
            host::Addressed::Malformed => (
                StatusCode::BAD_REQUEST,
                "bad request: Host is missing, repeated, malformed or not the target's authority\n",
            ),
            host::Addressed::Elsewhere => (
                StatusCode::MISDIRECTED_REQUEST,
                "misdirected request: the admin listener answers requests addressed to an IP \
                 address, localhost or a name in admin.allowed_hosts\n",
            ),
        };
        tracing::debug!(%peer, status = status.as_u16(), "admin request refused by its Host");
        let mut refusal = text(status, body);
        refusal
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        Some(refusal)
    }

    /// The answer to a request without `Authorization: Bearer <admin token>`; `None` for one
    /// with it.
    fn refusal(&self, request: &Request<Incoming>) -> Option<AdminResponse> {
        let current = self.live.current();
        let Some(expected) = &current.config.admin.token else {
            let body = "admin.token_file is not set: /reload and /revocations are disabled\n";
            return Some(text(StatusCode::FORBIDDEN, body));
        };
        let mut sent = request.headers().get_all(AUTHORIZATION).iter();
        let presented = match (sent.next(), sent.next()) {
            (Some(value), None) => bearer_token(value.as_bytes()),
            _ => None,
        };
        match presented {
            Some(token) if same_secret(token, expected.expose().as_bytes()) => None,
            _ => {
                let mut refusal = text(StatusCode::UNAUTHORIZED, "admin token required\n");
                refusal.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"hubgate-admin\""),
                );
                Some(refusal)
            }
        }
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 7235).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// Who admin connections count against. All of loopback is one client (127.0.0.0/8, `::1`
/// and their IPv4-mapped forms): every local process can use any of those addresses. An IPv6
/// client is its /64, which one host usually holds whole; an IPv4 client is its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Loopback,
    V4(Ipv4Addr),
    /// The first 64 bits.
    V6(u64),
}

impl Client {
    fn of(peer: IpAddr) -> Client {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        match peer {
            _ if peer.is_loopback() => Client::Loopback,
            IpAddr::V4(v4) => Client::V4(v4),
            IpAddr::V6(v6) => Client::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// One open admin connection: gives its place back when dropped.
struct Slot {
    admin: Arc<Admin>,
    client: Client,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .admin
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Compares the SHA-256 of both in constant time: neither the content nor the length of the
/// expected token leaks through timing.
fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    let digest = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA256, bytes);
    let (a, b) = (digest(presented), digest(expected));
    let difference = a
        .as_ref()
        .iter()
        .zip(b.as_ref())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> AdminResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> AdminResponse {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut response = text(status, body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn revoke_error(error: &RevokeError) -> AdminResponse {
    let status = match error {
        RevokeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        RevokeError::NotFound(_) => StatusCode::NOT_FOUND,
    };
    json(status, &serde_json::json!({ "error": error.to_string() }))
}

/// The whole body, up to `MAX_BODY` bytes.
async fn read_body(request: Request<Incoming>) -> Result<Bytes, AdminResponse> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(request.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({ "error": format!("the body is larger than {MAX_BODY} bytes or broken") }),
        )),
    }
}

fn not_allowed(allow: &'static str) -> AdminResponse {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

#[cfg(test)]
mod tests {
    use super::{bearer_token, same_secret, Client};
    use std::net::IpAddr;

    #[test]
    fn all_of_loopback_is_one_client_and_ipv6_counts_per_64() {
        let client = |text: &str| Client::of(text.parse::<IpAddr>().expect("address"));
        for loopback in [
            "127.0.0.1",
            "127.0.0.2",
            "127.255.255.254",
            "::1",
            "::ffff:127.0.0.9",
        ] {
            assert_eq!(client(loopback), Client::Loopback, "{loopback}");
        }
        assert_eq!(client("192.0.2.1"), client("::ffff:192.0.2.1"));
        assert_ne!(client("192.0.2.1"), client("192.0.2.2"));
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff::9"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
        assert_ne!(client("::2"), Client::Loopback);
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abcdef"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
    }

    #[test]
    fn secrets_compare_by_content_only() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!same_secret(b"", b"0123456789abcdef"));
    }
}
