//! hubgate: an authentication gateway in front of JetBrains YouTrack.
//!
//! The life of a request (`proxy::handle`, top to bottom):
//! 1. `server` accepts the connection (limits, TLS, HTTP/1.1 or HTTP/2);
//! 2. `path` checks the raw request target and refuses anything ambiguous with 400;
//! 3. `path::RouteTable` picks the route by longest segment-boundary prefix;
//! 4. `auth::Auth::authenticate` checks the token against the route's Hub service (cached);
//! 5. `forward` sends the request, byte-exact, to the route's upstream and streams the answer.
//!
//! Modules:
//! - `auth`     — bearer parsing, introspection backends, the verdict cache, the decision
//! - `config`   — the TOML file, parsed and validated once into a finished `Config`
//! - `demo`     — `hubgate demo`: simulator + gateway with ready-to-paste curl lines
//! - `server`   — accept loop, limits, TLS, hyper-util auto connections, graceful shutdown
//! - `activity` — per-connection last-activity clock for the idle timeout
//! - `client_addr` — who the client is (trusted proxies, `X-Forwarded-For`) and address grouping
//! - `proxy`    — `handle()`: the request path as named phases
//! - `path`     — canonical-path check and route matching (pure, table-tested)
//! - `forward`  — upstream pools, header hygiene, `X-Forwarded-*`, WebSocket upgrades
//! - `hub`      — the Hub admin client: services, registration, deleting tokens in Hub
//! - `error`    — `GatewayError`: the one error-to-HTTP mapping
//! - `tls`      — rustls server and upstream client configuration
//! - `sim`      — a YouTrack + Hub simulator (`hub-contract.md`) for tests, demo and benchmarks

pub mod access;
pub mod activity;
pub mod admin;
pub mod auth;
pub mod client_addr;
pub mod config;
pub mod demo;
pub mod error;
pub mod forward;
pub mod hub;
pub mod live;
pub mod metrics;
pub mod path;
pub mod periodic;
pub mod proxy;
pub mod revocation;
pub mod server;
pub mod sim;
pub mod systemd;
pub mod tls;

/// Every response body the gateway sends: an upstream's, streamed, or one of its own.
pub type GatewayBody =
    http_body_util::Either<forward::pool::PooledBody, http_body_util::Full<bytes::Bytes>>;
