//! The life of a request, top to bottom in [`handle`]: check the target, pick the route,
//! authenticate, forward. Each phase is a named call; every failure becomes a response in
//! `error.rs` and nowhere else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, COOKIE, HOST};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access::Record;
use crate::activity::Held;
use crate::auth::cache::hex_digit;
use crate::auth::principal::Principal;
use crate::auth::{bearer, Auth, Trace};
use crate::config::{Config, Route};
use crate::error::GatewayError;
use crate::forward::{self, ClientConn, Upstream, X_REQUEST_ID};
use crate::live::Common;
use crate::metrics::{AuthOutcome, Metrics, Name, RouteMetrics};
use crate::path::{self, RouteTable};
use crate::tls::TlsError;
use crate::GatewayBody;

/// What every request needs, built from a `Config` and shared by all connections; a reload
/// builds a new one while requests in flight finish with theirs.
pub struct State {
    routes: RouteTable,
    /// The series of each route, in no particular order (there are few).
    route_metrics: Vec<RouteMetrics>,
    auth: Auth,
    upstreams: HashMap<String, Upstream>,
    realm: String,
    max_headers: usize,
    /// Address grouping and the trusted proxies that may name the client.
    clients: crate::client_addr::Clients,
    access_log: bool,
    metrics: Arc<Metrics>,
}

impl State {
    /// `previous`: the state being replaced, whose verdict cache may carry over.
    pub fn new(
        config: &Config,
        common: &Common,
        previous: Option<&State>,
    ) -> Result<State, TlsError> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|(name, upstream)| {
                let body_timeout = config.server.request_body_timeout;
                Ok((name.clone(), Upstream::new(name, upstream, body_timeout)?))
            })
            .collect::<Result<_, TlsError>>()?;
        Ok(State {
            routes: RouteTable::new(config.routes.clone()),
            route_metrics: config
                .routes
                .iter()
                .map(|route| RouteMetrics::new(&route.prefix))
                .collect(),
            auth: Auth::new(config, common, previous.map(|p| &p.auth))?,
            upstreams,
            realm: config.server.realm.clone(),
            max_headers: config.server.max_headers,
            clients: config.server.clients.clone(),
            access_log: config.log.access_log,
            metrics: common.metrics.clone(),
        })
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// A request's `requests`, `request_duration` and `auth_decisions` samples.
    fn count(&self, note: &Note, method: &Method, status: u16, elapsed: Duration) {
        let metrics = &self.metrics;
        let series = note
            .route
            .as_ref()
            .and_then(|route| self.route_metrics.iter().find(|m| m.is_for(route)));
        match series {
            Some(series) => {
                metrics.route_request(series, method, status, elapsed);
                if let Some(outcome) = note.auth {
                    metrics.route_auth_decision(series, outcome);
                }
            }
            None => {
                let route = note.route.as_ref().unwrap_or(&NO_ROUTE);
                metrics.request(route, method, status, elapsed);
                if let Some(outcome) = note.auth {
                    metrics.auth_decision(route, outcome);
                }
            }
        }
    }
}

/// A route's own `idle_timeout` for its response body, carried to the connection in the
/// response's extensions (never sent).
#[derive(Debug, Clone, Copy)]
pub struct BodyIdleTimeout(pub Duration);

/// What handling a request found out, for its metrics and access line.
#[derive(Default)]
struct Note {
    /// The client's address, once known (a trusted proxy may name it).
    client: Option<IpAddr>,
    route: Option<Name>,
    upstream: Option<Name>,
    auth: Option<AuthOutcome>,
    trace: Trace,
    principal: Option<Arc<Principal>>,
    upstream_time: Option<Duration>,
}

/// The `route` label of requests refused before a route was chosen.
static NO_ROUTE: LazyLock<Name> = LazyLock::new(|| Arc::from("none"));

/// Answers one request: the gateway's own error response or the upstream's, and the access
/// line to write once its body is done (`None` when the access log is off).
pub async fn handle(
    state: &State,
    client: &ClientConn,
    request: Request<Incoming>,
) -> (Response<GatewayBody>, Option<Record>) {
    let started = Instant::now();
    let request_id = request_id(&request);
    let method = request.method().clone();
    let uri = state.access_log.then(|| request.uri().clone());
    let mut note = Note::default();
    let mut response = match process(state, client, request, &request_id, &mut note).await {
        Ok(response) => response,
        Err(error) => {
            let id = request_id.to_str().unwrap_or("-");
            if error.status().is_server_error() {
                tracing::warn!(request_id = id, %method, %error, "request failed");
            } else {
                tracing::debug!(request_id = id, %method, %error, "request refused");
            }
            if let (Some(kind), Some(upstream)) = (error.upstream_kind(), &note.upstream) {
                state.metrics.upstream_error(upstream, kind);
            }
            error.into_response(&state.realm)
        }
    };
    let status = response.status().as_u16();
    state.count(&note, &method, status, started.elapsed());
    let record = uri.map(|uri| Record {
        started,
        request_id: request_id.clone(),
        client: note.client.unwrap_or(client.peer.ip()),
        method,
        uri,
        route: note.route,
        status,
        auth: note.auth,
        cache: note.trace.cache,
        login: note.principal,
        token: note.trace.token,
        upstream_time: note.upstream_time,
    });
    response
        .headers_mut()
        .entry(X_REQUEST_ID)
        .or_insert(request_id);
    (response, record)
}

async fn process(
    state: &State,
    client: &ClientConn,
    mut request: Request<Incoming>,
    request_id: &HeaderValue,
    note: &mut Note,
) -> Result<Response<GatewayBody>, GatewayError> {
    let peer = client.peer.ip();
    let (client_ip, forwarded_for) = if state.clients.is_trusted(peer) {
        let headers = request.headers();
        let named = state
            .clients
            .client(peer, forward::forwarded_for_values(headers));
        (named, forward::appended_forwarded_for(headers, peer))
    } else {
        (peer, None)
    };
    note.client = Some(client_ip);
    let route = select_route(state, &request)?;
    note.route = Some(route.prefix.clone());
    forward::check_headers(request.headers(), state.max_headers)?;
    let (authorization, n) = up_to_two(request.headers(), AUTHORIZATION);
    let credential = bearer::credential(&authorization[..n], request.uri().query())
        .inspect_err(|_| note.auth = Some(AuthOutcome::bad_request))?;
    let authenticated = state
        .auth
        .authenticate(
            route,
            credential,
            request.method(),
            request.uri().query(),
            state.clients.key(client_ip),
            &mut note.trace,
        )
        .await;
    note.auth = Some(auth_outcome(&authenticated, &note.trace));
    note.principal = authenticated?;
    if note.trace.capability {
        // Let through on the strength of its URL alone, it carries no other credential to
        // YouTrack either: a session cookie (of a user since revoked, say) is not passed on.
        request.headers_mut().remove(COOKIE);
    }
    let upstream = state
        .upstreams
        .get(&route.upstream)
        .ok_or(GatewayError::NoRoute)?;
    note.upstream = Some(upstream.label().clone());
    let asked = Instant::now();
    let response = forward::forward(
        upstream,
        request,
        client,
        request_id,
        route.response_timeout,
        forwarded_for,
    )
    .await;
    note.upstream_time = Some(asked.elapsed());
    let mut response = response?;
    if let Some(limit) = route.idle_timeout {
        response.extensions_mut().insert(BodyIdleTimeout(limit));
    }
    let stays_open =
        route.idle_timeout.is_some() || response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if let (true, Some(hash), Some(principal)) = (stays_open, note.trace.hash, &note.principal) {
        let login = principal.login.clone();
        response.extensions_mut().insert(Held { hash, login });
    }
    Ok(response)
}

/// The `outcome` label of a credential decision.
fn auth_outcome(
    result: &Result<Option<Arc<Principal>>, GatewayError>,
    trace: &Trace,
) -> AuthOutcome {
    match result {
        Ok(Some(_)) => AuthOutcome::allowed,
        Ok(None) if trace.capability => AuthOutcome::capability,
        Ok(None) => AuthOutcome::anonymous,
        Err(
            GatewayError::MissingToken | GatewayError::QueryToken | GatewayError::BasicRefused(_),
        ) => AuthOutcome::missing,
        Err(GatewayError::InvalidToken) => AuthOutcome::invalid,
        Err(GatewayError::Revoked) => AuthOutcome::revoked,
        Err(GatewayError::InsufficientScope(_)) => AuthOutcome::insufficient_scope,
        Err(GatewayError::AuthUnavailable(_)) => AuthOutcome::backend_error,
        Err(GatewayError::RateLimited(_)) => AuthOutcome::rate_limited,
        Err(_) => AuthOutcome::bad_request,
    }
}

/// Checks the request target (method, form, Host, path) and picks the route for it.
fn select_route<'s>(
    state: &'s State,
    request: &Request<Incoming>,
) -> Result<&'s Route, GatewayError> {
    let (hosts, n) = up_to_two(request.headers(), HOST);
    let target = path::check_target(
        request.method(),
        request.version(),
        request.uri(),
        &hosts[..n],
    )?;
    state
        .routes
        .select(target.path)?
        .ok_or(GatewayError::NoRoute)
}

/// Up to two values of a header, without allocating: enough to tell none, one and several.
fn up_to_two(headers: &HeaderMap, name: HeaderName) -> ([&HeaderValue; 2], usize) {
    static NONE: HeaderValue = HeaderValue::from_static("");
    let mut found = [&NONE, &NONE];
    let mut n = 0;
    for value in headers.get_all(name).iter().take(2) {
        found[n] = value;
        n += 1;
    }
    (found, n)
}

/// The client's `X-Request-Id` when it is sane (1 to 128 of `A-Za-z0-9._:-`), else a new one.
fn request_id(request: &Request<Incoming>) -> HeaderValue {
    let sane = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    };
    let mut sent = request.headers().get_all(X_REQUEST_ID).iter();
    match (sent.next(), sent.next()) {
        (Some(value), None) if sane(value) => value.clone(),
        _ => new_request_id(),
    }
}

/// 32 random hex digits.
fn new_request_id() -> HeaderValue {
    let mut id = [0u8; 32];
    let mut bits = fastrand::u128(..);
    for digit in &mut id {
        *digit = hex_digit(bits as u8);
        bits >>= 4;
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}
