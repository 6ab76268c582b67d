//! Whole-file tests: the documented examples, defaults, every validation rule, and the report.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use super::raw;
use super::*;

/// The configuration in design.md, verbatim.
const DESIGN_EXAMPLE: &str = r#"
[server]
listen = "0.0.0.0:8080"
# tls_cert = "/etc/hubgate/tls/fullchain.pem"   # both set: TLS with ALPN h2 + http/1.1
# tls_key  = "/etc/hubgate/tls/privkey.pem"
# header_read_timeout = "10s"   idle_timeout = "120s"   tls_handshake_timeout = "10s"
# max_connections = 10000       realm = "youtrack"

[upstreams.youtrack]                 # any number of named upstreams
url = "http://127.0.0.1:8081"        # scheme://host:port; the request path is forwarded as is
# connect_timeout = "5s"  response_timeout = "300s"  ca_file = "/etc/hubgate/upstream-ca.pem"

[services.youtrack]                  # Hub services, by a local name used in routes
id = "6ab631e2-61a7-4806-b029-44f0753fc29a"
probe = "http://127.0.0.1:8081/api/users/me?fields=id,login,name,banned,guest"

[services.hub]
id = "0-0-0-0-0"
probe = "http://127.0.0.1:8081/hub/api/rest/users/me?fields=id,login,name,banned,guest"

[introspection]
backend = "hub"                      # "hub" (probe users/me) | "rfc7662"
# timeout = "2s"  max_concurrent = 64
# endpoint = "https://idp.example.com/oauth2/introspect"   # rfc7662 only
# client_id = "…"  client_secret_file = "/etc/hubgate/introspection-secret"

[cache]
ttl = "30s"
negative_ttl = "5s"
# max_entries = 1000000  stale_if_error = "0s"

[[routes]]                           # longest matching prefix wins; match on segment boundaries
prefix = "/hub/api/rest/oauth2"
upstream = "youtrack"                # no `service`: public

[[routes]]
prefix = "/api"
upstream = "youtrack"
service = "youtrack"                 # the token's scope must include this service
# allow_anonymous = false            # true: requests with no token pass (YouTrack guest access)

[[routes]]
prefix = "/rest"
upstream = "youtrack"
service = "youtrack"

[[routes]]
prefix = "/hub/api"
upstream = "youtrack"
service = "hub"

[[routes]]
prefix = "/hub/rest"
upstream = "youtrack"
service = "hub"

[[routes]]
prefix = "/"
upstream = "youtrack"
"#;

const EXAMPLE_FILE: &str = include_str!("../../config.example.toml");

/// The least a file must say.
const MINIMAL: &str = r#"
[upstreams.youtrack]
url = "http://127.0.0.1:8081"

[[routes]]
prefix = "/"
upstream = "youtrack"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("hubgate.toml"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => Vec::new(),
        Err(error) => error.problems,
    }
}

fn parse_ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|error| panic!("{error}"))
}

/// `MINIMAL` plus `extra`: exactly one problem, returned.
fn one_problem(extra: &str) -> String {
    let found = problems(&format!("{MINIMAL}\n{extra}"));
    assert_eq!(found.len(), 1, "{extra}\n{found:#?}");
    found.into_iter().next().unwrap_or_default()
}

fn temp_file(content: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(content.as_bytes()).unwrap();
    file
}

fn assert_defaults(config: &Config) {
    let s = &config.server;
    assert_eq!(s.listen, "0.0.0.0:8080".parse().unwrap());
    assert!(s.tls.is_none());
    assert_eq!(s.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.idle_timeout, Duration::from_secs(120));
    assert_eq!(s.tls_handshake_timeout, Duration::from_secs(10));
    assert_eq!(s.max_connections, 10_000);
    assert_eq!(s.realm, "youtrack");
    assert_eq!(s.max_header_bytes, 32_768);
    assert_eq!(s.max_headers, 100);
    assert_eq!(s.max_concurrent_streams, 100);
    assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
    for upstream in config.upstreams.values() {
        assert_eq!(upstream.connect_timeout, Duration::from_secs(5));
        assert_eq!(upstream.response_timeout, Duration::from_secs(300));
        assert!(upstream.ca_file.is_none());
    }
    let i = &config.introspection;
    assert!(matches!(i.backend, Backend::Hub { .. }));
    assert_eq!(i.timeout, Duration::from_secs(2));
    assert_eq!(i.max_concurrent, 64);
    let c = &config.cache;
    assert_eq!(c.ttl, Duration::from_secs(30));
    assert_eq!(c.negative_ttl, Duration::from_secs(5));
    assert_eq!(c.max_entries, 1_000_000);
    assert_eq!(c.stale_if_error, Duration::ZERO);
    let a = &config.admin;
    assert_eq!(a.listen, "127.0.0.1:9901".parse().unwrap());
    assert!(a.token.is_none());
    assert!(!a.readyz_checks_hub);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.log.format, LogFormat::Text);
    assert!(config.log.access_log);
}

fn route(prefix: &str, service: Option<&str>) -> Route {
    Route {
        prefix: prefix.into(),
        upstream: "youtrack".to_owned(),
        service: service.map(str::to_owned),
        ..Route::default()
    }
}

fn design_routes() -> Vec<Route> {
    vec![
        route("/hub/api/rest/oauth2", None),
        route("/api", Some("youtrack")),
        route("/rest", Some("youtrack")),
        route("/hub/api", Some("hub")),
        route("/hub/rest", Some("hub")),
        route("/", None),
    ]
}

/// The shipped routes: the design's, and the capability routes real clients need.
fn youtrack_routes() -> Vec<Route> {
    let capability = |prefix: &str, service: &str, param: Option<&str>| Route {
        capability: Some(super::Capability {
            param: param.map(str::to_owned),
            methods: vec![http::Method::GET, http::Method::HEAD],
        }),
        ..route(prefix, Some(service))
    };
    let mut routes = design_routes();
    routes.pop();
    routes.extend([
        capability("/api/config", "youtrack", None),
        capability("/hub/api/rest/settings/public", "hub", None),
        capability("/hub/api/rest/avatar", "hub", None),
        capability("/api/files", "youtrack", Some("sign")),
        Route {
            idle_timeout: Some(std::time::Duration::from_secs(3600)),
            ..capability("/api/eventSourceBus", "youtrack", Some("ticket"))
        },
        route("/", None),
    ]);
    routes
}

#[test]
fn the_shipped_routes_parse_as_documented() {
    let services = "[services.youtrack]\nid = \"y\"\nprobe = \"http://h/p\"\n\
                    [services.hub]\nid = \"0-0-0-0-0\"\nprobe = \"http://h/q\"\n";
    let text = format!(
        "[upstreams.youtrack]\nurl = \"http://h\"\n{services}{}",
        super::YOUTRACK_ROUTES
    );
    assert_eq!(parse_ok(&text).routes, youtrack_routes());
}

fn assert_design_routes_and_services(config: &Config) {
    assert_services(config);
    assert_eq!(config.routes, design_routes());
}

fn assert_services(config: &Config) {
    assert_eq!(config.services["hub"].id, "0-0-0-0-0");
    assert_eq!(
        config.services["youtrack"].id,
        "6ab631e2-61a7-4806-b029-44f0753fc29a"
    );
    let Backend::Hub { probes } = &config.introspection.backend else {
        panic!("hub backend expected");
    };
    assert_eq!(
        probes["hub"].to_string(),
        "http://127.0.0.1:8081/hub/api/rest/users/me?fields=id,login,name,banned,guest"
    );
    assert_eq!(probes.len(), 2);
    assert_eq!(
        config.upstreams["youtrack"].url.to_string(),
        "http://127.0.0.1:8081/"
    );
}

#[test]
fn design_example_parses() {
    let config = parse_ok(DESIGN_EXAMPLE);
    assert_defaults(&config);
    assert_design_routes_and_services(&config);
}

#[test]
fn example_file_parses_and_states_the_defaults() {
    let config = parse_ok(EXAMPLE_FILE);
    assert_defaults(&config);
    assert_services(&config);
    assert_eq!(config.routes, youtrack_routes());
}

#[test]
fn example_file_documents_every_key() {
    let tables = [
        raw::SERVER_KEYS,
        raw::UPSTREAM_KEYS,
        raw::SERVICE_KEYS,
        raw::INTROSPECTION_KEYS,
        raw::CACHE_KEYS,
        raw::ROUTE_KEYS,
        raw::ADMIN_KEYS,
        raw::LOG_KEYS,
        raw::HUB_KEYS,
        raw::FLEET_KEYS,
    ];
    let mut checked = 0;
    for key in tables.concat() {
        let set = format!("\n{key} = ");
        let commented = format!("\n# {key} = ");
        assert!(
            EXAMPLE_FILE.contains(&set) || EXAMPLE_FILE.contains(&commented),
            "{key} is not in config.example.toml"
        );
        checked += 1;
    }
    assert_eq!(checked, 63);
}

#[test]
fn key_lists_match_the_structs() {
    let section = |header: &str, keys: &[&str]| {
        let body: String = keys.iter().map(|key| format!("{key} = []\n")).collect();
        format!("{header}\n{body}")
    };
    let text = [
        section("[server]", raw::SERVER_KEYS),
        section("[upstreams.a]", raw::UPSTREAM_KEYS),
        section("[services.a]", raw::SERVICE_KEYS),
        section("[introspection]", raw::INTROSPECTION_KEYS),
        section("[cache]", raw::CACHE_KEYS),
        section("[[routes]]", raw::ROUTE_KEYS),
        section("[admin]", raw::ADMIN_KEYS),
        section("[log]", raw::LOG_KEYS),
        section("[hub]", raw::HUB_KEYS),
        section("[fleet]", raw::FLEET_KEYS),
    ]
    .concat();
    let found = problems(&text);
    assert!(found.len() > 20, "{found:#?}");
    assert!(
        found.iter().all(|p| !p.starts_with("unknown key")),
        "{found:#?}"
    );
    assert_eq!(raw::TOP_KEYS.len(), 10);
}

#[test]
fn missing_sections_get_defaults() {
    let config = parse_ok(MINIMAL);
    assert_defaults(&config);
    assert!(config.services.is_empty());
    assert_eq!(config.routes, vec![route("/", None)]);
}

#[test]
fn an_empty_file_needs_an_upstream_and_a_route() {
    assert_eq!(
        problems(""),
        vec![
            "upstreams: at least one [upstreams.NAME] table is required",
            "routes: at least one [[routes]] table is required",
        ]
    );
}

#[test]
fn all_problems_are_reported_together() {
    let text = r#"
        [server]
        listn = "0.0.0.0:8080"
        [cache]
        ttl = "30"
        [upstreams.youtrack]
        url = "http://127.0.0.1:8081"
        [[routes]]
        prefix = "/"
        upstream = "youtrack"
        [[routes]]
        prefix = "/api"
        upstream = "yt"
    "#;
    assert_eq!(
        problems(text),
        vec![
            "unknown key server.listn (did you mean listen?)",
            r#"cache.ttl: "30" is not a duration (use e.g. "250ms", "30s", "5m", "1h")"#,
            r#"routes[1].upstream: no upstream named "yt" (known: youtrack)"#,
        ]
    );
}

#[test]
fn unknown_keys_are_named_by_their_path() {
    let text = r#"
        [server]
        listn = "x"
        [upstreams.youtrack]
        url = "http://127.0.0.1:8081"
        timeout = "5s"
        [upstreams."odd name"]
        url = "http://127.0.0.1:8081"
        [introspection]
        client_secret = "hunter2"
        [admni]
        listen = "127.0.0.1:9000"
        [[routes]]
        prefix = "/"
        upstream = "youtrack"
        [[routes]]
        prefx = "/api"
        upstream = "youtrack"
    "#;
    let found = problems(text);
    let unknown: Vec<&String> = found.iter().filter(|p| p.starts_with("unknown")).collect();
    assert_eq!(
        unknown,
        vec![
            "unknown key admni (did you mean admin?)",
            "unknown key introspection.client_secret (secrets are never written inline: \
             put it in a file and set client_secret_file)",
            "unknown key routes[1].prefx (did you mean prefix?)",
            "unknown key server.listn (did you mean listen?)",
            "unknown key upstreams.youtrack.timeout",
        ]
    );
    assert!(found.contains(&"routes[1].prefix: missing (a path prefix, e.g. \"/api\")".into()));
    assert!(found
        .iter()
        .any(|p| p.starts_with("upstreams.\"odd name\": the name")));
    assert!(found.iter().all(|p| !p.contains("hunter2")));
}

#[test]
fn syntax_errors_give_line_and_column() {
    let found = problems("[server]\nlisten = \"0.0.0.0:8080\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("line 2, column "), "{found:?}");
}

#[test]
fn structure_errors_come_with_the_unknown_keys_seen() {
    let text = "[server]\nlistn = \"x\"\n\n[upstreams]\nyoutrack = 5\n";
    let found = problems(text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0], "unknown key server.listn (did you mean listen?)");
    assert!(found[1].starts_with("line 5, column 12: "), "{found:?}");
}

mod files;
mod fleet;
mod rules;

#[test]
fn admin_and_log_sections_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let text = format!(
        "{MINIMAL}\n[admin]\nlisten = \"localhost:9901\"\ntoken_file = {short:?}\n\
         readyz_checks_hub = \"yes\"\n[log]\nlevel = \"verbose\"\nformat = \"xml\"\n"
    );
    let found = problems(&text);
    let shown = short.display().to_string();
    assert_eq!(
        found,
        vec![
            r#"admin.listen: "localhost:9901" is not an IP address and port (use e.g. "127.0.0.1:9901")"#.to_owned(),
            format!("admin.token_file: {shown:?} holds a token shorter than 16 characters (e.g. `openssl rand -hex 32`)"),
            "admin.readyz_checks_hub: expected true or false, found string \"yes\"".to_owned(),
            r#"log.level: "verbose" is not one of error, warn, info, debug, trace"#.to_owned(),
            r#"log.format: "xml" is not "text" or "json""#.to_owned(),
        ]
    );
}

#[test]
fn the_admin_token_is_read_from_its_file_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
    let text = format!("{MINIMAL}\n[admin]\ntoken_file = {file:?}\n[log]\nformat = \"json\"\n");
    let config = parse_ok(&text);
    let token = config.admin.token.as_ref().expect("token");
    assert_eq!(token.expose(), "0123456789abcdef0123");
    assert!(!format!("{config:?}").contains("0123456789abcdef0123"));
    assert_eq!(config.log.format, LogFormat::Json);
}

#[test]
fn the_admin_listener_never_shares_the_client_one() {
    let text = format!("{MINIMAL}\n[admin]\nlisten = \"0.0.0.0:8080\"\n");
    assert_eq!(
        problems(&text),
        vec!["admin.listen: 0.0.0.0:8080 is server.listen too: the admin listener never shares the client one"]
    );
}
