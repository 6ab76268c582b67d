//! The life of a request, top to bottom in [`handle`]: check the target, pick the route,
//! authenticate, forward. Each phase is a named call; every failure becomes a response in
//! `error.rs` and nowhere else.

use std::collections::HashMap;

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::auth::{bearer, Auth};
use crate::config::{Config, Route};
use crate::error::GatewayError;
use crate::forward::{self, ClientConn, Upstream, X_REQUEST_ID};
use crate::path::{self, RouteTable};
use crate::tls::TlsError;
use crate::GatewayBody;

/// What every request needs, built once from a `Config` and shared by all connections.
pub struct State {
    routes: RouteTable,
    auth: Auth,
    upstreams: HashMap<String, Upstream>,
    realm: String,
    max_headers: usize,
}

impl State {
    pub fn new(config: &Config) -> Result<State, TlsError> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|(name, upstream)| Ok((name.clone(), Upstream::new(name, upstream)?)))
            .collect::<Result<_, TlsError>>()?;
        Ok(State {
            routes: RouteTable::new(config.routes.clone()),
            auth: Auth::new(config)?,
            upstreams,
            realm: config.server.realm.clone(),
            max_headers: config.server.max_headers,
        })
    }
}

/// Answers one request: the gateway's own error response or the upstream's.
pub async fn handle(
    state: &State,
    client: &ClientConn,
    request: Request<Incoming>,
) -> Response<GatewayBody> {
    let request_id = request_id(&request);
    let method = request.method().clone();
    let mut response = match process(state, client, request, &request_id).await {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::warn!(request_id = ?request_id, %method, %error, "request failed");
            } else {
                tracing::debug!(request_id = ?request_id, %method, %error, "request refused");
            }
            error.into_response(&state.realm)
        }
    };
    response
        .headers_mut()
        .entry(X_REQUEST_ID)
        .or_insert(request_id);
    response
}

async fn process(
    state: &State,
    client: &ClientConn,
    request: Request<Incoming>,
    request_id: &HeaderValue,
) -> Result<Response<GatewayBody>, GatewayError> {
    let route = select_route(state, &request)?;
    forward::check_headers(request.headers(), state.max_headers)?;
    let (authorization, n) = up_to_two(request.headers(), AUTHORIZATION);
    let credential = bearer::credential(&authorization[..n], request.uri().query())?;
    let _principal = state
        .auth
        .authenticate(route, credential, request.method(), client.peer.ip())
        .await?;
    let upstream = state
        .upstreams
        .get(&route.upstream)
        .ok_or(GatewayError::NoRoute)?;
    forward::forward(upstream, request, client, request_id).await
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

fn new_request_id() -> HeaderValue {
    HeaderValue::from_str(&format!("{:032x}", fastrand::u128(..)))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}
