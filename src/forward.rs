//! Forwarding to an upstream: a keep-alive connection pool per upstream (`pool`), the header
//! hygiene of `security.md` ("Headers and credentials") in one function each way,
//! `X-Forwarded-*`, and WebSocket upgrades passed through deliberately. Bodies stream both
//! ways; nothing is buffered whole. The path and query go out as the exact bytes that were
//! checked, `Authorization` untouched: YouTrack authorizes the request again.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, COOKIE, EXPECT, HOST,
    PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::{Scheme, Uri};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;

use crate::config;
use crate::error::GatewayError;
use crate::metrics::Name;
use crate::tls::{self, TlsError};
use crate::GatewayBody;

pub mod pool;

use self::pool::{Pool, PooledBody};

/// How long an unused pooled upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Hop-by-hop headers (RFC 9110 7.6.1 plus the proxy-era ones): never forwarded either way.
const HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    HeaderName::from_static("http2-settings"),
    PROXY_AUTHORIZATION,
    PROXY_AUTHENTICATE,
];

/// The client connection a request came on, as the gateway saw it (never what the client
/// claims), and the tunnel an upgrade leaves behind for the connection's task to run.
#[derive(Debug)]
pub struct ClientConn {
    pub peer: SocketAddr,
    pub https: bool,
    /// `X-Forwarded-For`, made once per connection.
    forwarded_for: HeaderValue,
    tunnel: Mutex<Option<Tunnel>>,
}

impl ClientConn {
    pub fn new(peer: SocketAddr, https: bool) -> ClientConn {
        ClientConn {
            peer,
            https,
            forwarded_for: peer_header(peer),
            tunnel: Mutex::new(None),
        }
    }

    /// The tunnel of an upgrade this connection answered with 101, if any. The connection's
    /// task runs it, so a tunnel stays within the connection's limits and shutdown.
    pub fn take_tunnel(&self) -> Option<Tunnel> {
        self.tunnel.lock().ok()?.take()
    }
}

/// Both ends of a switched connection, waiting for hyper to let go of them.
#[derive(Debug)]
pub struct Tunnel {
    upstream_name: String,
    client: OnUpgrade,
    upstream: OnUpgrade,
}

impl Tunnel {
    /// Copies bytes both ways until either side closes.
    pub async fn run(self) {
        let name = self.upstream_name;
        match tokio::try_join!(self.client, self.upstream) {
            Ok((client, upstream)) => {
                let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    tracing::debug!(upstream = %name, %error, "tunnel closed");
                }
            }
            Err(error) => tracing::debug!(upstream = %name, %error, "upgrade failed"),
        }
    }
}

/// One named upstream: where it is and a keep-alive connection pool to it.
pub struct Upstream {
    /// Also its label in metrics.
    name: Name,
    response_timeout: Duration,
    pool: Pool,
}

impl Upstream {
    /// `body_timeout`: how long a request body may go without a byte (`server.request_body_timeout`).
    pub fn new(
        name: &str,
        config: &config::Upstream,
        body_timeout: Duration,
    ) -> Result<Upstream, TlsError> {
        let https = config.url.scheme() == Some(&Scheme::HTTPS);
        let tls = tls::upstream_config(config.ca_file.as_deref(), https)?;
        let connector = connector(tls, config.connect_timeout);
        let mut target = http::uri::Parts::default();
        target.scheme = config.url.scheme().cloned();
        target.authority = config.url.authority().cloned();
        target.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        let target = Uri::from_parts(target).expect("validated: upstream url is absolute");
        Ok(Upstream {
            name: name.into(),
            response_timeout: config.response_timeout,
            pool: Pool::new(
                connector,
                target,
                pool::Limits {
                    idle_timeout: POOL_IDLE_TIMEOUT,
                    max_connections: config.max_connections,
                    queue_timeout: config.queue_timeout,
                    body_timeout,
                },
            ),
        })
    }

    fn failed(&self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> GatewayError {
        GatewayError::UpstreamFailed {
            upstream: self.name.to_string(),
            cause: cause.into(),
        }
    }

    pub fn label(&self) -> &Name {
        &self.name
    }
}

/// An HTTP/1.1 connector that speaks TLS to `https` URLs with `tls` (certificates verified).
pub fn connector(
    tls: rustls::ClientConfig,
    connect_timeout: Duration,
) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

/// Sends the request to `upstream` and returns its response, cleaned of hop-by-hop headers.
/// `response_timeout`: the route's own limit for the response head, if it has one;
/// `forwarded_for`: the `X-Forwarded-For` to send when the peer is a trusted proxy.
pub async fn forward(
    upstream: &Upstream,
    mut request: Request<Incoming>,
    client: &ClientConn,
    request_id: &HeaderValue,
    response_timeout: Option<Duration>,
    forwarded_for: Option<HeaderValue>,
) -> Result<Response<GatewayBody>, GatewayError> {
    let websocket = prepare_request(&mut request, client, request_id, forwarded_for)?;
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));
    *request.uri_mut() = origin_form(request.uri());
    *request.version_mut() = Version::HTTP_11;
    let limit = response_timeout.unwrap_or(upstream.response_timeout);
    let sent = tokio::time::timeout(limit, upstream.pool.send(request));
    let (mut response, lease) = match sent.await {
        Ok(Ok(sent)) => sent,
        Ok(Err(pool::SendError::BodyStalled)) => return Err(GatewayError::RequestBodyTimeout),
        Ok(Err(pool::SendError::Saturated(_))) => {
            return Err(GatewayError::UpstreamBusy {
                upstream: upstream.name.to_string(),
            })
        }
        Ok(Err(error)) => return Err(upstream.failed(error)),
        Err(_) => {
            return Err(GatewayError::UpstreamTimeout {
                upstream: upstream.name.to_string(),
            })
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return switch_protocols(upstream, client, client_upgrade, response);
    }
    strip_hop_by_hop(response.headers_mut());
    Ok(response.map(|body| Either::Left(PooledBody::new(body, Some(lease)))))
}

/// The client's path and query, byte for byte, as the HTTP/1.1 request target (an HTTP/2
/// request arrives in absolute form). An absolute target without a path (`http://h?q`) was
/// checked as `/`, and goes out as `/?q`.
fn origin_form(original: &Uri) -> Uri {
    match original.path_and_query() {
        Some(_) if original.scheme().is_none() && original.authority().is_none() => {
            original.clone()
        }
        Some(path) if path.as_str().starts_with('/') => Uri::from(path.clone()),
        // Display writes the missing `/`.
        Some(path) => path
            .to_string()
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/")),
        None => Uri::from_static("/"),
    }
}

/// Header hygiene for the upstream request. Returns whether this is a WebSocket upgrade that
/// is passed on (the only `Upgrade` that ever is; `h2c` never).
fn prepare_request(
    request: &mut Request<Incoming>,
    client: &ClientConn,
    request_id: &HeaderValue,
    forwarded_for: Option<HeaderValue>,
) -> Result<bool, GatewayError> {
    let websocket = is_websocket_upgrade(request);
    let host = match request.headers().get(HOST) {
        Some(host) => host.clone(),
        None => authority_header(request.uri())?,
    };
    let http2 = request.version() == Version::HTTP_2;
    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    drop_untrusted(headers);
    if http2 {
        join_cookies(headers);
    }
    if websocket {
        set_upgrade_headers(headers);
    }
    headers.insert(HOST, host.clone());
    let forwarded_for = forwarded_for.unwrap_or_else(|| client.forwarded_for.clone());
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    headers.insert(X_FORWARDED_PROTO, proto_header(client.https));
    headers.insert(X_FORWARDED_HOST, host);
    headers.insert(X_REQUEST_ID, request_id.clone());
    Ok(websocket)
}

/// A trusted proxy's `X-Forwarded-For` chain with the proxy itself appended: what the
/// upstream gets instead of the peer alone. `None` when the chain cannot be sent on.
pub fn appended_forwarded_for(headers: &HeaderMap, peer: IpAddr) -> Option<HeaderValue> {
    let mut chain: Vec<u8> = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        chain.extend_from_slice(value.as_bytes());
        chain.extend_from_slice(b", ");
    }
    chain.extend_from_slice(peer.to_string().as_bytes());
    HeaderValue::from_bytes(&chain).ok()
}

/// Every `X-Forwarded-For` value of a request, in order.
pub fn forwarded_for_values(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(X_FORWARDED_FOR)
        .into_iter()
        .map(HeaderValue::as_bytes)
}

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Refuses, before anything else happens to the request, headers the gateway will not pass on
/// or cannot honour: more than `max_headers` fields (HTTP/2; the HTTP/1.1 parser has its own
/// cap), a `Connection` header that is not a clean token list or names a header the gateway
/// must forward, and an `Expect` other than `100-continue`.
pub fn check_headers(headers: &HeaderMap, max_headers: usize) -> Result<(), GatewayError> {
    if headers.len() > max_headers {
        return Err(GatewayError::HeadersTooLarge);
    }
    for token in connection_tokens(headers) {
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(GatewayError::BadRequest("malformed Connection header"));
        }
        if is_protected(token) {
            return Err(GatewayError::BadRequest(
                "the Connection header names a header the gateway must forward",
            ));
        }
    }
    if !transfer_coding_is_plain_chunked(headers) {
        return Err(GatewayError::BadRequest(
            "only Transfer-Encoding: chunked is accepted",
        ));
    }
    let mut expects = headers.get_all(EXPECT).iter();
    match (expects.next(), expects.next()) {
        (None, _) => Ok(()),
        (Some(value), None) if value.as_bytes().eq_ignore_ascii_case(b"100-continue") => Ok(()),
        _ => Err(GatewayError::ExpectationFailed),
    }
}

/// No `Transfer-Encoding`, or exactly one `chunked` across all its fields: hyper accepts any
/// list that ends in `chunked` and decodes only that, and the header is stripped as
/// hop-by-hop, so any other coding (`gzip, chunked`) would reach the upstream undeclared.
fn transfer_coding_is_plain_chunked(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii);
    match (codings.next(), codings.next()) {
        (None, _) => true,
        (Some(only), None) => only.eq_ignore_ascii_case(b"chunked"),
        _ => false,
    }
}

/// The names listed in every `Connection` header, as trimmed bytes.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

/// Headers a client must not make the gateway drop by listing them in `Connection`.
fn is_protected(token: &[u8]) -> bool {
    let lower = token.to_ascii_lowercase();
    matches!(&lower[..], b"authorization" | b"host" | b"content-length")
        || lower.starts_with(b"x-forwarded-")
}

/// Removes `Connection`, every header it names, and the fixed hop-by-hop set. A message framed
/// by `Transfer-Encoding` loses any `Content-Length` too (RFC 9112 6.3): hyper re-frames it.
/// One pass over the names; nothing is allocated for a message without hop-by-hop headers.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name))
        .cloned()
        .collect();
    if hop.is_empty() {
        return;
    }
    let listed: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .collect();
    if headers.contains_key(TRANSFER_ENCODING) {
        headers.remove(CONTENT_LENGTH);
    }
    for name in listed.iter().chain(&hop) {
        headers.remove(name);
    }
}

/// Headers some backends and frameworks take as the request's real target, method or host,
/// overriding what the gateway checked: never passed on.
const OVERRIDES: [&str; 9] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-original-host",
    "x-original-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-host",
];

/// Drops what clients must not be able to claim: forwarding headers (the gateway sets its own),
/// `X-Real-IP`, override headers ([`OVERRIDES`]), names with `_` (some backends fold `_` into
/// `-`), and `Expect` (answered here).
fn drop_untrusted(headers: &mut HeaderMap) {
    let untrusted: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name == "forwarded"
                || name == "x-real-ip"
                || name == "expect"
                || name.starts_with("x-forwarded-")
                || name.contains('_')
                || OVERRIDES.contains(&name)
        })
        .cloned()
        .collect();
    for name in untrusted {
        headers.remove(name);
    }
}

/// HTTP/2 may split `Cookie` into several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(COOKIE).iter().nth(1).is_none() {
        return;
    }
    let cookies: Vec<&[u8]> = headers
        .get_all(COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if let Ok(value) = HeaderValue::from_bytes(&cookies.join(&b"; "[..])) {
        headers.insert(COOKIE, value);
    }
}

fn is_websocket_upgrade(request: &Request<Incoming>) -> bool {
    let headers = request.headers();
    let mut upgrades = headers.get_all(UPGRADE).iter();
    request.method() == Method::GET
        && request.version() == Version::HTTP_11
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
        && matches!(
            (upgrades.next(), upgrades.next()),
            (Some(value), None) if value.as_bytes().eq_ignore_ascii_case(b"websocket")
        )
}

fn set_upgrade_headers(headers: &mut HeaderMap) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
}

fn authority_header(uri: &Uri) -> Result<HeaderValue, GatewayError> {
    uri.authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
        .ok_or(GatewayError::BadRequest("the request names no host"))
}

fn peer_header(peer: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.ip().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

fn proto_header(https: bool) -> HeaderValue {
    HeaderValue::from_static(if https { "https" } else { "http" })
}

/// An upstream switched protocols: pass the 101 on and leave both ends to the connection's
/// task, which copies bytes once hyper has let go of them.
fn switch_protocols(
    upstream: &Upstream,
    client: &ClientConn,
    client_upgrade: Option<OnUpgrade>,
    mut response: Response<Incoming>,
) -> Result<Response<GatewayBody>, GatewayError> {
    let Some(client_upgrade) = client_upgrade else {
        return Err(upstream.failed("101 Switching Protocols to a request without an upgrade"));
    };
    let to_websocket = matches!(response.headers().get(UPGRADE),
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !to_websocket {
        return Err(upstream.failed("101 Switching Protocols to something other than websocket"));
    }
    let tunnel = Tunnel {
        upstream_name: upstream.name.to_string(),
        client: client_upgrade,
        upstream: hyper::upgrade::on(&mut response),
    };
    match client.tunnel.lock() {
        Ok(mut slot) => *slot = Some(tunnel),
        Err(_) => return Err(upstream.failed("tunnel slot poisoned")),
    }
    strip_hop_by_hop(response.headers_mut());
    set_upgrade_headers(response.headers_mut());
    Ok(response.map(|body| Either::Left(PooledBody::new(body, None))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_target_goes_out_in_origin_form() {
        for (target, sent) in [
            ("/api/issues?q=a%20b", "/api/issues?q=a%20b"),
            ("http://yt.example/api/issues?x", "/api/issues?x"),
            ("http://yt.example?q", "/?q"),
            ("http://yt.example", "/"),
        ] {
            let uri: Uri = target.parse().expect("uri");
            assert_eq!(origin_form(&uri).to_string(), sent, "{target}");
        }
    }
}
