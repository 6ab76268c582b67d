//! Raw configuration to finished [`Config`]: defaults, ranges and the references between
//! sections (routes name upstreams and services). Every problem is collected; a `Config` comes
//! out only when there are none.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;

use super::checks::{http_url, Problems};
use super::introspection::{backend_kind, introspection, services};
use super::ops;
use super::raw::{is_bare_key, Field, RawCache, RawConfig, RawServer, RawUpstream};
use super::routes::routes;
use super::{Cache, Config, Server, TlsFiles, Upstream};
use crate::client_addr::{Cidr, Clients};

const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);
const DEFAULT_REALM: &str = "youtrack";
pub(super) const UNBOUNDED: i64 = i64::MAX;

pub(super) const fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<String>> {
    let mut problems = Problems::default();
    let p = &mut problems;
    let raw_upstreams = raw.upstreams.unwrap_or_default();
    let raw_services = raw.services.unwrap_or_default();
    let mut raw_introspection = raw.introspection.unwrap_or_default();
    let upstream_names: Vec<String> = raw_upstreams.keys().cloned().collect();
    let service_names: Vec<String> = raw_services.keys().cloned().collect();

    let server = server(p, raw.server.unwrap_or_default());
    let upstreams = upstreams(p, raw_upstreams);
    let backend = backend_kind(p, raw_introspection.backend.take());
    let (services, probes) = services(p, raw_services, backend);
    let introspection = introspection(p, raw_introspection, backend, probes);
    let cache = cache(p, raw.cache.unwrap_or_default());
    let admin = ops::admin(p, raw.admin.unwrap_or_default());
    if admin.listen == server.listen && admin.listen.port() != 0 {
        p.add(
            "admin.listen",
            format!(
                "{} is server.listen too: the admin listener never shares the client one",
                admin.listen
            ),
        );
    }
    let log = ops::log(p, raw.log.unwrap_or_default());
    let hub = raw.hub.and_then(|raw| ops::hub(p, raw));
    let fleet = raw.fleet.and_then(|raw| ops::fleet(p, raw));
    let routes = routes(
        p,
        raw.routes.unwrap_or_default(),
        &upstream_names,
        &service_names,
    );

    if !problems.is_empty() {
        return Err(problems.into_vec());
    }
    let Some(introspection) = introspection else {
        return Err(vec!["introspection: incomplete".to_owned()]);
    };
    Ok(Config {
        server,
        upstreams,
        services,
        introspection,
        cache,
        routes,
        admin,
        log,
        hub,
        fleet,
        source: None,
    })
}

fn server(p: &mut Problems, raw: RawServer) -> Server {
    let k = |key: &str| format!("server.{key}");
    let streams_max = i64::from(u32::MAX);
    Server {
        listen: listen(p, raw.listen),
        tls: tls(p, raw.tls_cert, raw.tls_key),
        header_read_timeout: p.timeout(
            &k("header_read_timeout"),
            raw.header_read_timeout,
            secs(10),
        ),
        idle_timeout: p.timeout(&k("idle_timeout"), raw.idle_timeout, secs(120)),
        tls_handshake_timeout: p.timeout(
            &k("tls_handshake_timeout"),
            raw.tls_handshake_timeout,
            secs(10),
        ),
        max_connections: p.count(
            &k("max_connections"),
            raw.max_connections,
            10_000,
            1,
            MAX_CONNECTIONS,
        ),
        realm: realm(p, raw.realm),
        max_header_bytes: p.count(
            &k("max_header_bytes"),
            raw.max_header_bytes,
            32_768,
            8_192,
            1 << 20,
        ),
        max_headers: p.count(&k("max_headers"), raw.max_headers, 100, 1, 1_000),
        max_concurrent_streams: p.count(
            &k("max_concurrent_streams"),
            raw.max_concurrent_streams,
            100,
            1,
            streams_max,
        ),
        shutdown_timeout: p.timeout(&k("shutdown_timeout"), raw.shutdown_timeout, secs(30)),
        workers: match raw.workers {
            None => None,
            some => Some(p.count(&k("workers"), some, 1, 1, 1024)),
        },
        max_connections_per_address: p.count(
            &k("max_connections_per_address"),
            raw.max_connections_per_address,
            1_024,
            1,
            MAX_CONNECTIONS,
        ),
        request_body_timeout: p.timeout(
            &k("request_body_timeout"),
            raw.request_body_timeout,
            secs(30),
        ),
        clients: Clients {
            ipv4_prefix: p.count(&k("client_ipv4_prefix"), raw.client_ipv4_prefix, 32, 8, 32),
            ipv6_prefix: p.count(
                &k("client_ipv6_prefix"),
                raw.client_ipv6_prefix,
                64,
                16,
                128,
            ),
            trusted_proxies: trusted_proxies(p, raw.trusted_proxies),
        },
    }
}

/// `server.trusted_proxies`: address blocks, each checked.
fn trusted_proxies(p: &mut Problems, field: Option<Field<Vec<String>>>) -> Vec<Cidr> {
    let key = "server.trusted_proxies";
    let mut blocks = Vec::new();
    for text in p.strings(key, field).unwrap_or_default() {
        match Cidr::parse(&text) {
            Ok(block) => blocks.push(block),
            Err(problem) => p.add(key, problem),
        }
    }
    blocks
}

/// One file descriptor each; far above what one process can hold, and within what the
/// connection semaphore and its drain (`u32` permits) can count.
const MAX_CONNECTIONS: i64 = 1 << 24;

fn listen(p: &mut Problems, field: Option<Field<String>>) -> SocketAddr {
    let Some(text) = p.text("server.listen", field) else {
        return DEFAULT_LISTEN;
    };
    text.parse().unwrap_or_else(|_| {
        let hint = r#"(use e.g. "0.0.0.0:8080" or "[::]:8080")"#;
        let problem = format!("{text:?} is not an IP address and port {hint}");
        p.add("server.listen", problem);
        DEFAULT_LISTEN
    })
}

fn realm(p: &mut Problems, field: Option<Field<String>>) -> String {
    match p.text("server.realm", field) {
        Some(realm) if is_valid_realm(&realm) => realm,
        Some(realm) => {
            let rule = "must be printable ASCII without quotes or backslashes, neither empty \
                        nor starting or ending with a space (it is sent in WWW-Authenticate)";
            p.add("server.realm", format!("{realm:?} {rule}"));
            DEFAULT_REALM.to_owned()
        }
        None => DEFAULT_REALM.to_owned(),
    }
}

/// Printable ASCII (spaces inside only), no `"` or `\`: safe inside a quoted-string.
fn is_valid_realm(realm: &str) -> bool {
    !realm.is_empty()
        && !realm.starts_with(' ')
        && !realm.ends_with(' ')
        && realm
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

fn tls(
    p: &mut Problems,
    cert: Option<Field<String>>,
    key: Option<Field<String>>,
) -> Option<TlsFiles> {
    let (cert_set, key_set) = (cert.is_some(), key.is_some());
    let cert = p.path("server.tls_cert", cert);
    let key = p.path("server.tls_key", key);
    let together = "missing: tls_cert and tls_key are set together, or neither";
    if cert_set && !key_set {
        p.add("server.tls_key", together);
    }
    if key_set && !cert_set {
        p.add("server.tls_cert", together);
    }
    let (cert, key) = (cert?, key?);
    p.readable_file("server.tls_cert", &cert);
    p.readable_file("server.tls_key", &key);
    Some(TlsFiles { cert, key })
}

/// `section.name`, quoting a name TOML would need quoted.
pub(super) fn table_key(section: &str, name: &str) -> String {
    if is_bare_key(name) {
        format!("{section}.{name}")
    } else {
        format!("{section}.{name:?}")
    }
}

/// Upstream and service names appear in routes, logs and `hubgate check`: keep them plain.
pub(super) fn check_name(p: &mut Problems, key: &str, name: &str) {
    if !is_bare_key(name) {
        p.add(
            key,
            "the name must use only letters, digits, \"-\" and \"_\"",
        );
    }
}

fn upstreams(p: &mut Problems, raw: BTreeMap<String, RawUpstream>) -> BTreeMap<String, Upstream> {
    if raw.is_empty() {
        p.add(
            "upstreams",
            "at least one [upstreams.NAME] table is required",
        );
    }
    let mut upstreams = BTreeMap::new();
    for (name, raw) in raw {
        if let Some(upstream) = upstream(p, &name, raw) {
            upstreams.insert(name, upstream);
        }
    }
    upstreams
}

fn upstream(p: &mut Problems, name: &str, raw: RawUpstream) -> Option<Upstream> {
    let base = table_key("upstreams", name);
    check_name(p, &base, name);
    let key = |field: &str| format!("{base}.{field}");
    let what = r#"scheme://host:port, e.g. "http://127.0.0.1:8081""#;
    let url = p
        .required_text(&key("url"), raw.url, what)
        .and_then(|text| origin(p, &key("url"), &text));
    let connect_timeout = p.timeout(&key("connect_timeout"), raw.connect_timeout, secs(5));
    let response_timeout = p.timeout(&key("response_timeout"), raw.response_timeout, secs(300));
    let ca_file = p.path(&key("ca_file"), raw.ca_file);
    if let Some(path) = &ca_file {
        p.readable_file(&key("ca_file"), path);
        if url.as_ref().is_some_and(|(_, https)| !https) {
            p.add(&key("ca_file"), "only used with an https url");
        }
    }
    let max_connections = p.count(
        &key("max_connections"),
        raw.max_connections,
        2_048,
        1,
        MAX_CONNECTIONS,
    );
    let queue_timeout = p.timeout(&key("queue_timeout"), raw.queue_timeout, secs(2));
    Some(Upstream {
        url: url?.0,
        connect_timeout,
        response_timeout,
        ca_file,
        max_connections,
        queue_timeout,
    })
}

/// `scheme://host:port` of an upstream URL, and whether it is https.
fn origin(p: &mut Problems, key: &str, text: &str) -> Option<(Uri, bool)> {
    let url = http_url(p, key, text)?;
    let mut fine = true;
    if url.uri.path() != "/" {
        p.add(key, format!("{text:?} has a path: give scheme://host:port only (request paths are forwarded as they are)"));
        fine = false;
    }
    if url.uri.query().is_some() {
        p.add(
            key,
            format!("{text:?} has a query: give scheme://host:port only"),
        );
        fine = false;
    }
    let origin = format!("{}://{}:{}", url.scheme, url.host, url.port);
    match origin.parse() {
        Ok(uri) if fine => Some((uri, url.scheme == "https")),
        Ok(_) => None,
        Err(error) => {
            p.add(key, format!("{text:?}: {error}"));
            None
        }
    }
}

fn cache(p: &mut Problems, raw: RawCache) -> Cache {
    Cache {
        ttl: p.timeout("cache.ttl", raw.ttl, secs(30)),
        negative_ttl: p.timeout("cache.negative_ttl", raw.negative_ttl, secs(5)),
        max_entries: p.count(
            "cache.max_entries",
            raw.max_entries,
            1_000_000,
            1,
            UNBOUNDED,
        ),
        stale_if_error: p.duration(
            "cache.stale_if_error",
            raw.stale_if_error,
            Duration::ZERO,
            true,
        ),
    }
}
