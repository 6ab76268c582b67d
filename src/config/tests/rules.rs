//! Each validation rule, and the key path its problem names.

use super::*;

#[test]
fn wrong_types_name_their_key() {
    let cases = [
        (
            "[server]\nlisten = 8080",
            "server.listen: expected a string, found integer 8080",
        ),
        (
            "[cache]\nttl = 30",
            r#"cache.ttl: expected a duration string like "30s", found integer 30"#,
        ),
        (
            "[server]\nmax_headers = \"100\"",
            r#"server.max_headers: expected an integer, found string "100""#,
        ),
        (
            "[[routes]]\nprefix = \"/a\"\nupstream = \"youtrack\"\nallow_anonymous = \"yes\"",
            r#"routes[1].allow_anonymous: expected true or false, found string "yes""#,
        ),
    ];
    for (extra, want) in cases {
        assert_eq!(one_problem(extra), want);
    }
}

/// Each rule: a snippet added to `MINIMAL` and the key path its one problem must name.
#[test]
fn every_rule_reports_its_key_path() {
    let cases: &[(&str, &str)] = &[
        ("[server]\nlisten = \"localhost:8080\"", "server.listen: "),
        (
            "[server]\ntls_cert = \"/etc/hubgate/cert.pem\"",
            "server.tls_key: missing",
        ),
        (
            "[server]\ntls_key = \"/etc/hubgate/key.pem\"",
            "server.tls_cert: missing",
        ),
        (
            "[server]\ntls_cert = \"\"\ntls_key = \"/k\"",
            "server.tls_cert: is empty",
        ),
        (
            "[server]\nheader_read_timeout = \"0s\"",
            "server.header_read_timeout: must be",
        ),
        (
            "[server]\nidle_timeout = \"10\"",
            "server.idle_timeout: \"10\" is not",
        ),
        (
            "[server]\ntls_handshake_timeout = \"0ms\"",
            "server.tls_handshake_timeout: ",
        ),
        (
            "[server]\nshutdown_timeout = \"0s\"",
            "server.shutdown_timeout: ",
        ),
        (
            "[server]\nmax_connections = 0",
            "server.max_connections: 0 is too small",
        ),
        ("[server]\nrealm = \"\"", "server.realm: "),
        ("[server]\nrealm = 'you\"track'", "server.realm: "),
        ("[server]\nrealm = 'you\\track'", "server.realm: "),
        ("[server]\nrealm = \"yöutrack\"", "server.realm: "),
        ("[server]\nrealm = \" youtrack\"", "server.realm: "),
        (
            "[server]\nmax_header_bytes = 8191",
            "server.max_header_bytes: 8191 is too small",
        ),
        (
            "[server]\nmax_header_bytes = 1048577",
            "server.max_header_bytes: ",
        ),
        ("[server]\nmax_headers = 0", "server.max_headers: "),
        (
            "[server]\nmax_headers = 1001",
            "server.max_headers: 1001 is too large",
        ),
        (
            "[server]\nmax_concurrent_streams = 0",
            "server.max_concurrent_streams: ",
        ),
        (
            "[server]\nmax_concurrent_streams = 4294967296",
            "server.max_concurrent_streams: ",
        ),
        (
            "[upstreams.b]\nconnect_timeout = \"1s\"",
            "upstreams.b.url: missing",
        ),
        (
            "[upstreams.b]\nurl = \"ftp://h\"",
            "upstreams.b.url: scheme \"ftp\"",
        ),
        (
            "[upstreams.b]\nurl = \"http://h/yt\"",
            "upstreams.b.url: \"http://h/yt\" has a path",
        ),
        (
            "[upstreams.b]\nurl = \"http://h?x=1\"",
            "upstreams.b.url: \"http://h?x=1\" has a query",
        ),
        (
            "[upstreams.b]\nurl = \"http://h/?\"",
            "upstreams.b.url: \"http://h/?\" has a query",
        ),
        (
            "[upstreams.b]\nurl = \"http://u:p@h\"",
            "upstreams.b.url: \"http://***@h\" has user",
        ),
        (
            "[upstreams.b]\nurl = \"http://h/#x\"",
            "upstreams.b.url: \"http://h/#x\" has a frag",
        ),
        (
            "[upstreams.b]\nurl = \"http://h:0\"",
            "upstreams.b.url: \"http://h:0\" has an invalid",
        ),
        (
            "[upstreams.b]\nurl = \"http://h:65536\"",
            "upstreams.b.url: ",
        ),
        ("[upstreams.b]\nurl = \"http://h:8x\"", "upstreams.b.url: "),
        (
            "[upstreams.b]\nurl = \"http://:80\"",
            "upstreams.b.url: \"http://:80\" has no host",
        ),
        (
            "[upstreams.b]\nurl = \"h:80\"",
            "upstreams.b.url: \"h:80\" is not an absolute URL",
        ),
        (
            "[upstreams.b]\nurl = \"http://h h\"",
            "upstreams.b.url: \"http://h h\" is not a URL",
        ),
        (
            "[upstreams.b]\nurl = \"http://h\"\nresponse_timeout = \"0s\"",
            "upstreams.b.response",
        ),
        (
            "[upstreams.b]\nurl = \"http://h\"\nca_file = \"\"",
            "upstreams.b.ca_file: is empty",
        ),
        (
            "[upstreams.\"b c\"]\nurl = \"http://h\"",
            "upstreams.\"b c\": the name must",
        ),
        (
            "[services.s]\nprobe = \"http://h/me\"",
            "services.s.id: missing",
        ),
        (
            "[services.s]\nid = \"\"\nprobe = \"http://h/me\"",
            "services.s.id: \"\" must be",
        ),
        (
            "[services.s]\nid = \"a b\"\nprobe = \"http://h/me\"",
            "services.s.id: \"a b\" must",
        ),
        (
            "[services.s]\nid = 'a\"b'\nprobe = \"http://h/me\"",
            "services.s.id: ",
        ),
        (
            "[services.s]\nid = \"0-0-0-0-0\"",
            "services.s.probe: missing",
        ),
        (
            "[services.s]\nid = \"0\"\nprobe = \"/api/users/me\"",
            "services.s.probe: ",
        ),
        (
            "[services.s]\nid = \"0\"\nprobe = \"https://u@h/me\"",
            "services.s.probe: ",
        ),
        (
            "[introspection]\nbackend = \"ldap\"",
            "introspection.backend: \"ldap\" is not",
        ),
        (
            "[introspection]\ntimeout = \"0s\"",
            "introspection.timeout: must be more than zero",
        ),
        (
            "[introspection]\nmax_concurrent = 0",
            "introspection.max_concurrent: ",
        ),
        (
            "[introspection]\nendpoint = \"https://h/i\"",
            "introspection.endpoint: only used",
        ),
        (
            "[introspection]\nclient_id = \"gw\"",
            "introspection.client_id: only used",
        ),
        (
            "[introspection]\nclient_secret_file = \"/s\"",
            "introspection.client_secret_file: ",
        ),
        ("[cache]\nttl = \"0s\"", "cache.ttl: must be more than zero"),
        (
            "[cache]\nnegative_ttl = \"0s\"",
            "cache.negative_ttl: must be more than zero",
        ),
        (
            "[cache]\nmax_entries = 0",
            "cache.max_entries: 0 is too small",
        ),
        (
            "[cache]\nstale_if_error = \"1.5s\"",
            "cache.stale_if_error: ",
        ),
        (
            "[cache]\nttl = \"9000h\"",
            "cache.ttl: \"9000h\" is too long",
        ),
        (
            "[[routes]]\nupstream = \"youtrack\"",
            "routes[1].prefix: missing",
        ),
        ("[[routes]]\nprefix = \"/a\"", "routes[1].upstream: missing"),
        (
            "[[routes]]\nprefix = \"/a\"\nupstream = 7",
            "routes[1].upstream: expected a string",
        ),
        (
            "[[routes]]\nprefix = \"/\"\nupstream = \"youtrack\"",
            "routes[1].prefix: \"/\" is also",
        ),
    ];
    for (extra, want) in cases {
        let problem = one_problem(extra);
        assert!(
            problem.starts_with(want),
            "{extra}\n  got:  {problem}\n  want: {want}..."
        );
    }
}

#[test]
fn prefixes_must_be_canonical() {
    let good = [
        "/",
        "/api",
        "/hub/api/rest/oauth2",
        "/.well-known",
        "/a-b_c.d~!$&'()*+,=:@",
    ];
    for prefix in good {
        let text = format!("{MINIMAL}\n[[routes]]\nprefix = {prefix:?}\nupstream = \"youtrack\"");
        let found = problems(&text);
        let duplicate = prefix == "/";
        assert_eq!(found.len(), usize::from(duplicate), "{prefix}: {found:?}");
    }
    let bad = [
        "", "api", "/api/", "//", "//api", "/a//b", "/a/./b", "/a/..", "/.", "/a%2fb", "/a%41",
        "/a?b", "/a#b", "/a;b", "/a\\b", "/a b", "/é", "/a\tb", "/a\"b", "/a[b]", "/a|b",
    ];
    for prefix in bad {
        let text = format!("{MINIMAL}\n[[routes]]\nprefix = {prefix:?}\nupstream = \"youtrack\"");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{prefix:?}: {found:?}");
        assert!(found[0].starts_with("routes[1].prefix: "), "{found:?}");
    }
}

#[test]
fn prefixes_differing_only_in_case_are_rejected() {
    let text = format!(
        "{MINIMAL}\n[[routes]]\nprefix = \"/api\"\nupstream = \"youtrack\"\n\
         [[routes]]\nprefix = \"/API\"\nupstream = \"youtrack\""
    );
    assert_eq!(
        problems(&text),
        vec![
            "routes[2].prefix: \"/API\" and routes[1].prefix \"/api\" differ only in letter \
             case, so one request path could match both"
        ]
    );
}

#[test]
fn routes_must_name_known_upstreams_and_services() {
    let route = "[[routes]]\nprefix = \"/api\"\nupstream = \"youtrack\"";
    assert_eq!(
        one_problem(&format!("{route}\nservice = \"yt\"")),
        r#"routes[1].service: no service named "yt" (known: none)"#
    );
    assert_eq!(
        one_problem(&format!("{route}\nallow_anonymous = true")),
        "routes[1].allow_anonymous: true needs a service: a route without a service is public \
         already"
    );
    let text = format!(
        "{DESIGN_EXAMPLE}\n[[routes]]\nprefix = \"/x\"\nupstream = \"youtrack\"\n\
         service = \"youtrack\"\nallow_anonymous = true"
    );
    assert!(parse_ok(&text).routes[6].allow_anonymous);
}

#[test]
fn duplicate_service_ids_are_rejected() {
    let services = "[services.admin]\nid = \"0-0-0-0-0\"\nprobe = \"http://h/me\"\n\
                    [services.hub]\nid = \"0-0-0-0-0\"\nprobe = \"http://h/me\"";
    assert_eq!(
        one_problem(services),
        r#"services.hub.id: "0-0-0-0-0" is also the id of services.admin"#
    );
}

#[test]
fn upstream_urls_are_stored_as_origins() {
    let cases = [
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081/"),
        ("http://127.0.0.1:8081/", "http://127.0.0.1:8081/"),
        ("https://yt.example.com", "https://yt.example.com:443/"),
        ("HTTP://yt.example.com", "http://yt.example.com:80/"),
        ("http://[::1]:8081", "http://[::1]:8081/"),
    ];
    for (url, want) in cases {
        let text = MINIMAL.replace("http://127.0.0.1:8081", url);
        let config = parse_ok(&text);
        assert_eq!(config.upstreams["youtrack"].url.to_string(), want);
    }
}

#[test]
fn url_problems_never_repeat_a_password() {
    let urls = [
        "http://u:hunter2@h",
        "http://u:hunter2@h:99999/x?y#z",
        "http://u:hunter2@h h/",
        "ftp://u:hunter2@h",
    ];
    for url in urls {
        let text = format!("{MINIMAL}\n[upstreams.b]\nurl = {url:?}");
        let found = problems(&text);
        assert!(!found.is_empty(), "{url}");
        assert!(found.iter().all(|p| !p.contains("hunter2")), "{found:#?}");
    }
}

#[test]
fn edge_values_are_accepted() {
    let text = format!(
        "[server]\nlisten = \"[::]:8443\"\nrealm = \"YouTrack Cloud\"\nmax_header_bytes = 8192\n\
         max_headers = 1000\n{MINIMAL}"
    );
    let config = parse_ok(&text);
    assert_eq!(config.server.listen, "[::]:8443".parse().unwrap());
    assert_eq!(config.server.realm, "YouTrack Cloud");
    assert_eq!(config.server.max_header_bytes, 8192);
    assert_eq!(config.server.max_headers, 1000);
    let stale = parse_ok(&format!("{MINIMAL}\n[cache]\nstale_if_error = \"0s\""));
    assert_eq!(stale.cache.stale_if_error, Duration::ZERO);
}

#[test]
fn capability_keys_are_checked_with_their_key_paths() {
    let route = "[[routes]]\nprefix = \"/a\"\nupstream = \"youtrack\"";
    let with_service = |extra: &str| {
        let text = format!(
            "{DESIGN_EXAMPLE}\n[[routes]]\nprefix = \"/x\"\nupstream = \"youtrack\"\n\
             service = \"youtrack\"\n{extra}"
        );
        problems(&text)
    };
    assert_eq!(
        one_problem(&format!("{route}\ncapability = \"always\"")),
        "routes[1].capability: needs a service: a route without a service is public already"
    );
    let cases: &[(&str, &str)] = &[
        (
            "capability = \"sometimes\"",
            r#"routes[6].capability: "sometimes" is not a capability (use "always" or "param")"#,
        ),
        (
            "capability = \"param\"",
            r#"routes[6].capability_param: missing (the query parameter that carries the capability, e.g. "sign")"#,
        ),
        (
            "capability = \"always\"\ncapability_param = \"sign\"",
            r#"routes[6].capability_param: only used with capability = "param" (with "always" no parameter is needed)"#,
        ),
        (
            "capability_param = \"sign\"",
            r#"routes[6].capability_param: only used with capability = "always" or "param""#,
        ),
        (
            "capability = \"param\"\ncapability_param = \"si gn\"",
            r#"routes[6].capability_param: "si gn" must be a query parameter name of letters, digits and -._~"#,
        ),
        (
            "capability = \"always\"\ncapability_methods = [\"get\"]",
            r#"routes[6].capability_methods: "get" is not an HTTP method in upper case (e.g. "GET")"#,
        ),
        (
            "capability = \"always\"\ncapability_methods = []",
            "routes[6].capability_methods: is empty (leave it out for GET and HEAD)",
        ),
        (
            "capability = \"always\"\nallow_anonymous = true",
            "routes[6].capability: allow_anonymous = true already lets every request without a credential through",
        ),
        (
            "idle_timeout = \"0s\"",
            "routes[6].idle_timeout: must be more than zero",
        ),
        (
            "response_timeout = 5",
            r#"routes[6].response_timeout: expected a duration string like "30s", found integer 5"#,
        ),
    ];
    for (extra, want) in cases {
        assert_eq!(with_service(extra), [*want], "{extra}");
    }
    let text = format!(
        "{DESIGN_EXAMPLE}\n[[routes]]\nprefix = \"/x\"\nupstream = \"youtrack\"\n\
         service = \"youtrack\"\ncapability = \"param\"\ncapability_param = \"sign\"\n\
         capability_methods = [\"GET\", \"POST\"]\nresponse_timeout = \"1h\""
    );
    let config = parse_ok(&text);
    let capability = config.routes[6].capability.as_ref().expect("capability");
    assert_eq!(capability.param.as_deref(), Some("sign"));
    assert_eq!(capability.methods, [http::Method::GET, http::Method::POST]);
    assert_eq!(
        config.routes[6].response_timeout,
        Some(std::time::Duration::from_secs(3600))
    );
    assert!(capability.admits(&http::Method::POST, Some("a=1&sign=x")));
    assert!(!capability.admits(&http::Method::PUT, Some("sign=x")));
    for query in [
        None,
        Some(""),
        Some("sign="),
        Some("sign"),
        Some("xsign=1"),
        Some("Sign=1"),
    ] {
        assert!(!capability.admits(&http::Method::GET, query), "{query:?}");
    }
}

#[test]
fn basic_credential_forms_follow_the_backend() {
    let with = |line: &str| {
        DESIGN_EXAMPLE.replace("backend = \"hub\"", &format!("backend = \"hub\"\n{line}"))
    };
    let forms = |line: &str| parse_ok(&with(line)).introspection.basic;
    let both = forms("");
    assert!(both.token && both.password);
    let tokens = forms("basic_credentials = [\"token\"]");
    assert!(tokens.token && !tokens.password);
    let none = forms("basic_credentials = []");
    assert!(!none.token && !none.password);
    assert_eq!(
        problems(&with("basic_credentials = [\"tokens\"]")),
        [
            r#"introspection.basic_credentials: "tokens" is not a form of Basic credentials (use "token" and/or "password")"#
        ]
    );
}
