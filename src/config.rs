//! The configuration file (`hubgate run|check --config FILE`): TOML parsed into raw serde
//! structs, then validated once into a finished [`Config`] where every value is present and
//! checked. This module owns the keys and their defaults (documented in
//! `config.example.toml`), the duration syntax, the reading of secret files, and the report of
//! every problem in a file at once, each under its key path.
//!
//! - `raw`: the file as written, and unknown keys with "did you mean" hints;
//! - `checks`: typed values, ranges, durations, files and URLs, shared by all sections;
//! - `validate`, `introspection` and `routes`: the sections and the references between them;
//! - `duration`: `"250ms"`, `"30s"`, `"5m"`, `"1h"`;
//! - `describe`: the effective configuration printed by `hubgate check`.

mod checks;
mod describe;
mod duration;
mod introspection;
mod ops;
mod raw;
mod routes;
#[cfg(test)]
mod tests;
mod validate;
mod warnings;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;

pub use duration::{format_duration, parse_duration, MAX_DURATION};

/// Where `hubgate run` and `hubgate check` look when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hubgate/config.toml";

/// A validated configuration: every value is present and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Hub services by local name (the name routes use).
    pub services: BTreeMap<String, Service>,
    pub introspection: Introspection,
    pub cache: Cache,
    /// In file order.
    pub routes: Vec<Route>,
    pub admin: Admin,
    pub log: Log,
    /// `[hub]`: acting in Hub for the security team (absent: revocations stay local).
    pub hub: Option<Hub>,
    /// `[fleet]`: revocations shared by every instance through Redis.
    pub fleet: Option<Fleet>,
    /// The file this configuration was read from: what a reload reads again.
    pub source: Option<PathBuf>,
}

/// `[admin]`: the admin listener (health, metrics, reload), never the client listener.
#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
    /// The bearer token the mutating admin endpoints require; without it they are refused.
    pub token: Option<Secret>,
    /// Whether `/readyz` also requires the token-checking backend to answer.
    pub readyz_checks_hub: bool,
    /// Where revocations are kept across restarts (without a fleet, the only copy).
    pub state_dir: Option<PathBuf>,
    /// Host names (lowercase, exact) the admin listener answers for besides IP literals and
    /// `localhost`: any other name in `Host` is refused, against DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

/// `[hub]`: Hub's REST API base (`https://youtrack.example.com/hub`) and a bot's permanent
/// token with YouTrack Administration scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Hub {
    /// Without a trailing `/`; `{url}/api/rest/...` are the endpoints.
    pub url: Uri,
    pub admin_token: Secret,
}

/// `[fleet]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// `redis://` or `rediss://` URL; it may carry a password, so it is never logged whole.
    pub redis_url: Secret,
    /// `redis_password_file`: the password Redis wants (AUTH, with the URL's user name if it
    /// has one); never also in `redis_url`.
    pub redis_password: Option<Secret>,
    /// The Pub/Sub channel; the set of revocations is kept under `{channel}:set`.
    pub channel: String,
    /// `secret_file`: the fleet's shared HMAC key (at least 32 characters, the same on every
    /// instance). Every message and stored entry is signed with it; nothing unsigned is used.
    pub secret: Secret,
    /// `previous_secret_file`: the key being rotated out. What it signed is still accepted
    /// (and stored entries are signed again with `secret`); nothing new is signed with it.
    pub previous_secret: Option<Secret>,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct Log {
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG`, when set, wins.
    pub level: String,
    pub format: LogFormat,
    /// One line per request (target `hubgate::access`).
    pub access_log: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_connections: usize,
    pub realm: String,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_concurrent_streams: u32,
    pub shutdown_timeout: Duration,
    /// Worker threads serving requests; `None`: one per CPU core.
    pub workers: Option<usize>,
    /// Most connections one client (see `clients`) may hold open; trusted proxies are exempt.
    pub max_connections_per_address: usize,
    /// A request body that moves no byte for this long is cut (408).
    pub request_body_timeout: Duration,
    /// How addresses are grouped into clients, and which peers may name the client in
    /// `X-Forwarded-For`.
    pub clients: crate::client_addr::Clients,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// `scheme://host:port`, no path.
    pub url: Uri,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// Most connections open to this upstream at once, idle ones included.
    pub max_connections: usize,
    /// How long a request may wait for a connection when `max_connections` are busy (503).
    pub queue_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Service {
    /// Hub service ID, e.g. `0-0-0-0-0`.
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct Introspection {
    pub backend: Backend,
    pub timeout: Duration,
    pub max_concurrent: usize,
    /// Cache misses per second (and burst) each client address may cost; 0: no budget.
    pub client_miss_rate: u32,
    /// Extra CA certificates trusted for `https` probes and introspection endpoints.
    pub ca_file: Option<PathBuf>,
    /// Which forms of HTTP Basic credentials protected routes accept.
    pub basic: BasicForms,
}

/// `introspection.basic_credentials`: the HTTP Basic forms protected routes accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicForms {
    /// `"token"`: a permanent token as the password (the user name is ignored), checked as
    /// that token sent as `Bearer`.
    pub token: bool,
    /// `"password"`: a login and an application (or account) password, checked by asking
    /// each service's probe with the client's own header. Only with the `hub` backend.
    pub password: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// Probe each service's `users/me`; one probe URL per service name.
    Hub { probes: BTreeMap<String, Uri> },
    Rfc7662 {
        endpoint: Uri,
        client_id: String,
        client_secret: Secret,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cache {
    pub ttl: Duration,
    pub negative_ttl: Duration,
    pub max_entries: u64,
    pub stale_if_error: Duration,
}

/// The `[[routes]]` of a YouTrack with its built-in Hub, for every client JetBrains ships
/// (also in `config.example.toml`, the demo and `hubgate hub discover`'s output).
pub const YOUTRACK_ROUTES: &str = include_str!("config/youtrack_routes.toml");

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    /// Canonical path prefix: starts with `/`, no trailing `/` except the root itself.
    /// Shared: it is also the route's label in metrics and logs.
    pub prefix: std::sync::Arc<str>,
    /// Name of an entry in `upstreams`.
    pub upstream: String,
    /// Name of an entry in `services`; `None` for a public route.
    pub service: Option<String>,
    pub allow_anonymous: bool,
    /// Requests without any credential that YouTrack authorizes by their URL (a signed file
    /// link, an event-stream ticket, a public settings page); only on routes with a service.
    pub capability: Option<Capability>,
    /// Overrides `upstreams.NAME.response_timeout` for this route.
    pub response_timeout: Option<Duration>,
    /// Overrides `server.idle_timeout` for this route's response bodies (event streams).
    pub idle_timeout: Option<Duration>,
}

/// `capability*` keys of a route: when a request without a credential may pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// `Some(name)`: only when the raw query has a non-empty parameter of exactly this name;
    /// `None`: always.
    pub param: Option<String>,
    /// The methods such a request may use.
    pub methods: Vec<http::Method>,
}

impl Capability {
    /// Whether a request without a credential may pass on the strength of its URL.
    pub fn admits(&self, method: &http::Method, query: Option<&str>) -> bool {
        if !self.methods.contains(method) {
            return false;
        }
        let Some(param) = &self.param else {
            return true;
        };
        query.is_some_and(|query| {
            query.split('&').any(|pair| {
                pair.split_once('=')
                    .is_some_and(|(name, value)| name == param && !value.is_empty())
            })
        })
    }
}

/// A secret read from a `*_file` key; its `Debug` never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret obtained elsewhere (tests, the demo); the file loader builds its own.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Equal secrets are the same configuration (a reload compares them; not an auth check).
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0 == other.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Every problem found in one configuration file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    /// `<file>: N problems`, then one `  - problem` line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        let plural = if count == 1 { "" } else { "s" };
        write!(f, "{}: {count} problem{plural}", self.file)?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates the file at `path`. Paths inside the file are kept as written.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path).map(|config| Config {
                source: Some(path.to_owned()),
                ..config
            }),
            Err(error) => Err(ConfigError {
                file: path.display().to_string(),
                problems: vec![format!("cannot read {}: {error}", path.display())],
            }),
        }
    }

    /// Parses and validates configuration text; `origin` names it in the error.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let error = |problems| ConfigError {
            file: origin.display().to_string(),
            problems,
        };
        let (raw, mut problems) = raw::parse(text);
        let Some(raw) = raw else {
            return Err(error(problems));
        };
        match validate::validate(raw) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(error(problems)),
            Err(more) => {
                problems.extend(more);
                Err(error(problems))
            }
        }
    }
}
