//! The file as written: serde structs where every key is optional and every leaf value keeps
//! a wrong type for the validator to report, plus the collection of unknown keys.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A leaf value: the type the key wants, or what was written instead. Type mismatches are thus
/// reported by the validator, with their key path and alongside every other problem, rather
/// than stopping the parse.
#[derive(Debug, Clone)]
pub(super) enum Field<T> {
    Ok(T),
    Wrong(toml::Value),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        Ok(match T::deserialize(value.clone()) {
            Ok(typed) => Field::Ok(typed),
            Err(_) => Field::Wrong(value),
        })
    }
}

type Text = Option<Field<String>>;
type Integer = Option<Field<i64>>;
type Flag = Option<Field<bool>>;
type Strings = Option<Field<Vec<String>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a configuration file")]
pub(super) struct RawConfig {
    pub server: Option<RawServer>,
    pub upstreams: Option<BTreeMap<String, RawUpstream>>,
    pub services: Option<BTreeMap<String, RawService>>,
    pub introspection: Option<RawIntrospection>,
    pub cache: Option<RawCache>,
    pub routes: Option<Vec<RawRoute>>,
    pub admin: Option<RawAdmin>,
    pub log: Option<RawLog>,
    pub hub: Option<RawHub>,
    pub fleet: Option<RawFleet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [server] table")]
pub(super) struct RawServer {
    pub listen: Text,
    pub tls_cert: Text,
    pub tls_key: Text,
    pub header_read_timeout: Text,
    pub idle_timeout: Text,
    pub tls_handshake_timeout: Text,
    pub max_connections: Integer,
    pub realm: Text,
    pub max_header_bytes: Integer,
    pub max_headers: Integer,
    pub max_concurrent_streams: Integer,
    pub shutdown_timeout: Text,
    pub workers: Integer,
    pub max_connections_per_address: Integer,
    pub request_body_timeout: Text,
    pub client_ipv4_prefix: Integer,
    pub client_ipv6_prefix: Integer,
    pub trusted_proxies: Strings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an [upstreams.NAME] table")]
pub(super) struct RawUpstream {
    pub url: Text,
    pub connect_timeout: Text,
    pub response_timeout: Text,
    pub ca_file: Text,
    pub max_connections: Integer,
    pub queue_timeout: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [services.NAME] table")]
pub(super) struct RawService {
    pub id: Text,
    pub probe: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an [introspection] table")]
pub(super) struct RawIntrospection {
    pub backend: Text,
    pub timeout: Text,
    pub max_concurrent: Integer,
    pub client_miss_rate: Integer,
    pub ca_file: Text,
    pub endpoint: Text,
    pub client_id: Text,
    pub client_secret_file: Text,
    pub basic_credentials: Strings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [cache] table")]
pub(super) struct RawCache {
    pub ttl: Text,
    pub negative_ttl: Text,
    pub max_entries: Integer,
    pub stale_if_error: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [[routes]] table")]
pub(super) struct RawRoute {
    pub prefix: Text,
    pub upstream: Text,
    pub service: Text,
    pub allow_anonymous: Flag,
    pub capability: Text,
    pub capability_param: Text,
    pub capability_methods: Strings,
    pub response_timeout: Text,
    pub idle_timeout: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "an [admin] table")]
pub(super) struct RawAdmin {
    pub listen: Text,
    pub token_file: Text,
    pub readyz_checks_hub: Flag,
    pub state_dir: Text,
    pub allowed_hosts: Strings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [hub] table")]
pub(super) struct RawHub {
    pub url: Text,
    pub admin_token_file: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [fleet] table")]
pub(super) struct RawFleet {
    pub redis_url: Text,
    pub redis_password_file: Text,
    pub channel: Text,
    pub secret_file: Text,
    pub previous_secret_file: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(expecting = "a [log] table")]
pub(super) struct RawLog {
    pub level: Text,
    pub format: Text,
    pub access_log: Flag,
}

/// The keys each table knows, for "did you mean" hints. A test keeps them in step with the
/// structs above.
pub(super) const TOP_KEYS: &[&str] = &[
    "server",
    "upstreams",
    "services",
    "introspection",
    "cache",
    "routes",
    "admin",
    "log",
    "hub",
    "fleet",
];
pub(super) const SERVER_KEYS: &[&str] = &[
    "listen",
    "tls_cert",
    "tls_key",
    "header_read_timeout",
    "idle_timeout",
    "tls_handshake_timeout",
    "max_connections",
    "realm",
    "max_header_bytes",
    "max_headers",
    "max_concurrent_streams",
    "shutdown_timeout",
    "workers",
    "max_connections_per_address",
    "request_body_timeout",
    "client_ipv4_prefix",
    "client_ipv6_prefix",
    "trusted_proxies",
];
pub(super) const UPSTREAM_KEYS: &[&str] = &[
    "url",
    "connect_timeout",
    "response_timeout",
    "ca_file",
    "max_connections",
    "queue_timeout",
];
pub(super) const SERVICE_KEYS: &[&str] = &["id", "probe"];
pub(super) const INTROSPECTION_KEYS: &[&str] = &[
    "backend",
    "timeout",
    "max_concurrent",
    "client_miss_rate",
    "ca_file",
    "endpoint",
    "client_id",
    "client_secret_file",
    "basic_credentials",
];
pub(super) const CACHE_KEYS: &[&str] = &["ttl", "negative_ttl", "max_entries", "stale_if_error"];
pub(super) const ROUTE_KEYS: &[&str] = &[
    "prefix",
    "upstream",
    "service",
    "allow_anonymous",
    "capability",
    "capability_param",
    "capability_methods",
    "response_timeout",
    "idle_timeout",
];
pub(super) const ADMIN_KEYS: &[&str] = &[
    "listen",
    "token_file",
    "readyz_checks_hub",
    "state_dir",
    "allowed_hosts",
];
pub(super) const HUB_KEYS: &[&str] = &["url", "admin_token_file"];
pub(super) const FLEET_KEYS: &[&str] = &[
    "redis_url",
    "redis_password_file",
    "channel",
    "secret_file",
    "previous_secret_file",
];
pub(super) const LOG_KEYS: &[&str] = &["level", "format", "access_log"];

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses the text. Returns the raw configuration when TOML and the table structure are
/// sound, and in every case the problems found so far: unknown keys, then a syntax or
/// structure error with its line and column.
pub(super) fn parse(text: &str) -> (Option<RawConfig>, Vec<String>) {
    let mut unknown: Vec<Vec<Step>> = Vec::new();
    let result = toml::Deserializer::parse(text).and_then(|deserializer| {
        serde_ignored::deserialize(deserializer, |path| unknown.push(steps(&path)))
    });
    let mut problems: Vec<String> = unknown.iter().map(|path| unknown_key(path)).collect();
    match result {
        Ok(raw) => (Some(raw), problems),
        Err(error) => {
            problems.push(toml_problem(text, &error));
            (None, problems)
        }
    }
}

fn steps(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    let mut out = match path {
        serde_ignored::Path::Root => return Vec::new(),
        serde_ignored::Path::Seq { parent, .. }
        | serde_ignored::Path::Map { parent, .. }
        | serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => steps(parent),
    };
    match path {
        serde_ignored::Path::Seq { index, .. } => out.push(Step::Index(*index)),
        serde_ignored::Path::Map { key, .. } => out.push(Step::Key(key.clone())),
        _ => {}
    }
    out
}

/// `routes[2].prefx`, `upstreams."odd name".url`.
fn format_path(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if is_bare_key(key) {
                    out.push_str(key);
                } else {
                    let _ = write!(out, "{key:?}");
                }
            }
        }
    }
    out
}

/// A key TOML lets you write without quotes.
pub(super) fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn unknown_key(path: &[Step]) -> String {
    let mut problem = format!("unknown key {}", format_path(path));
    let Some(Step::Key(key)) = path.last() else {
        return problem;
    };
    if key == "client_secret" {
        problem.push_str(
            " (secrets are never written inline: put it in a file and set client_secret_file)",
        );
    } else if let Some(known) = closest(key, known_keys(&path[..path.len() - 1])) {
        let _ = write!(problem, " (did you mean {known}?)");
    }
    problem
}

/// The keys of the table at `parent`.
fn known_keys(parent: &[Step]) -> &'static [&'static str] {
    let section = |name: &str| matches!(parent.first(), Some(Step::Key(k)) if k == name);
    match parent.len() {
        0 => TOP_KEYS,
        1 if section("server") => SERVER_KEYS,
        1 if section("introspection") => INTROSPECTION_KEYS,
        1 if section("cache") => CACHE_KEYS,
        1 if section("admin") => ADMIN_KEYS,
        1 if section("log") => LOG_KEYS,
        1 if section("hub") => HUB_KEYS,
        1 if section("fleet") => FLEET_KEYS,
        2 if section("routes") => ROUTE_KEYS,
        2 if section("upstreams") => UPSTREAM_KEYS,
        2 if section("services") => SERVICE_KEYS,
        _ => &[],
    }
}

/// The known key within two edits of `key`, if exactly one is closest.
fn closest(key: &str, known: &[&'static str]) -> Option<&'static str> {
    if key.is_empty() {
        return None;
    }
    let mut scored: Vec<(usize, &'static str)> = known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .collect();
    scored.sort();
    match scored.as_slice() {
        [(_, name)] => Some(name),
        [(best, name), (next, _), ..] if best < next => Some(name),
        _ => None,
    }
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// A TOML syntax or structure error as one line: `line L, column C: message`.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end().replace('\n', "; ");
    match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
