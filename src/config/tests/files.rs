//! Files the configuration names (TLS, CA, secrets), loading, the report and `describe`.

use super::*;

fn tls_text(cert: &Path, key: &Path) -> String {
    format!(
        "[server]\ntls_cert = {:?}\ntls_key = {:?}\n{MINIMAL}",
        cert.display().to_string(),
        key.display().to_string()
    )
}

#[test]
fn tls_files_must_be_readable() {
    let cert = temp_file("cert");
    let key = temp_file("key");
    let config = parse_ok(&tls_text(cert.path(), key.path()));
    let tls = config.server.tls.unwrap();
    assert_eq!(tls.cert, cert.path());
    assert_eq!(tls.key, key.path());

    let missing = cert.path().with_extension("missing");
    let found = problems(&tls_text(cert.path(), &missing));
    assert_eq!(found.len(), 1, "{found:?}");
    let shown = format!(
        "server.tls_key: cannot read {:?}: ",
        missing.display().to_string()
    );
    assert!(found[0].starts_with(&shown), "{found:?}");

    let dir = tempfile::tempdir().unwrap();
    let found = problems(&tls_text(dir.path(), key.path()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("server.tls_cert: ") && found[0].ends_with("is a directory"));
}

#[test]
fn ca_file_needs_https_and_a_readable_file() {
    let ca = temp_file("ca");
    let path = ca.path().display().to_string();
    let https =
        format!("[upstreams.b]\nurl = \"https://yt.example.com\"\nca_file = {path:?}\n{MINIMAL}");
    let config = parse_ok(&https);
    assert_eq!(config.upstreams["b"].ca_file.as_deref(), Some(ca.path()));

    let http = https.replace("https://yt.example.com", "http://yt.example.com");
    assert_eq!(
        problems(&http),
        vec!["upstreams.b.ca_file: only used with an https url"]
    );

    let missing = https.replace(&path, "/nonexistent/hubgate-ca.pem");
    let found = problems(&missing);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("upstreams.b.ca_file: cannot read \"/nonexistent/hubgate-ca.pem\"")
    );
}

fn rfc7662_text(secret: &str) -> String {
    format!(
        "[introspection]\nbackend = \"rfc7662\"\nendpoint = \"https://idp.example.com/introspect\"\n\
         client_id = \"hubgate\"\nclient_secret_file = {secret:?}\n\
         [services.youtrack]\nid = \"6ab631e2-61a7-4806-b029-44f0753fc29a\"\n{MINIMAL}"
    )
}

#[test]
fn rfc7662_accepts_tokens_in_basic_but_never_passwords() {
    let secret = temp_file("s3cret");
    let text = rfc7662_text(&secret.path().display().to_string());
    let basic = parse_ok(&text).introspection.basic;
    assert!(basic.token && !basic.password);
    let asked = text.replace(
        "client_id = \"hubgate\"",
        "client_id = \"hubgate\"\nbasic_credentials = [\"token\", \"password\"]",
    );
    assert_eq!(
        problems(&asked),
        [
            r#"introspection.basic_credentials: "password" needs backend = "hub": an introspection endpoint cannot check passwords"#
        ]
    );
}

#[test]
fn rfc7662_reads_its_secret_file() {
    let secret = temp_file("s3cret value\n");
    let config = parse_ok(&rfc7662_text(&secret.path().display().to_string()));
    let Backend::Rfc7662 {
        endpoint,
        client_id,
        client_secret,
    } = &config.introspection.backend
    else {
        panic!("rfc7662 backend expected");
    };
    assert_eq!(endpoint.to_string(), "https://idp.example.com/introspect");
    assert_eq!(client_id, "hubgate");
    assert_eq!(client_secret.expose(), "s3cret value");
    assert_eq!(format!("{client_secret:?}"), "Secret(***)");
    assert!(!format!("{config:?}").contains("s3cret"));
    let crlf = temp_file("s3cret\r\n");
    let config = parse_ok(&rfc7662_text(&crlf.path().display().to_string()));
    let Backend::Rfc7662 { client_secret, .. } = &config.introspection.backend else {
        panic!("rfc7662 backend expected");
    };
    assert_eq!(client_secret.expose(), "s3cret");
}

#[test]
fn rfc7662_secret_problems_name_key_and_path() {
    let empty = temp_file("\n");
    let path = empty.path().display().to_string();
    assert_eq!(
        problems(&rfc7662_text(&path)),
        vec![format!(
            "introspection.client_secret_file: {path:?} is empty"
        )]
    );
    let found = problems(&rfc7662_text("/nonexistent/hubgate-secret"));
    assert_eq!(found.len(), 1);
    let want = "introspection.client_secret_file: cannot read \"/nonexistent/hubgate-secret\": ";
    assert!(found[0].starts_with(want), "{found:?}");
}

#[test]
fn rfc7662_needs_its_three_keys_and_no_probes() {
    let text = format!("[introspection]\nbackend = \"rfc7662\"\n{MINIMAL}");
    let found = problems(&text);
    let keys: Vec<&str> = found.iter().filter_map(|p| p.split(':').next()).collect();
    assert_eq!(
        keys,
        vec![
            "introspection.endpoint",
            "introspection.client_id",
            "introspection.client_secret_file"
        ]
    );
    assert!(found.iter().all(|p| p.contains(": missing (")), "{found:?}");
}

#[test]
fn load_reads_the_file() {
    let file = temp_file(MINIMAL);
    assert!(Config::load(file.path()).is_ok());
    let missing = file.path().with_extension("missing");
    let error = Config::load(&missing).unwrap_err();
    assert_eq!(error.file, missing.display().to_string());
    assert_eq!(error.problems.len(), 1);
    assert!(error.problems[0].starts_with(&format!("cannot read {}: ", missing.display())));
}

#[test]
fn the_report_lists_every_problem() {
    let error = parse("").unwrap_err();
    assert_eq!(
        error.to_string(),
        "hubgate.toml: 2 problems\n  \
         - upstreams: at least one [upstreams.NAME] table is required\n  \
         - routes: at least one [[routes]] table is required"
    );
    let error = parse(&format!("{MINIMAL}\n[cache]\nttl = \"0s\"")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "hubgate.toml: 1 problem\n  - cache.ttl: must be more than zero"
    );
    let _: &dyn std::error::Error = &error;
}

#[test]
fn describe_prints_the_effective_configuration() {
    let described = parse_ok(DESIGN_EXAMPLE).describe();
    let want = "\
listen 0.0.0.0:8080 (plain HTTP)
  realm \"youtrack\"; max 10000 connections, 100 headers and 32768 header bytes per request, 100 HTTP/2 streams per connection
  timeouts: header read 10s, idle 120s, TLS handshake 10s, shutdown 30s
upstream youtrack  http://127.0.0.1:8081  connect 5s, response 300s
service hub       0-0-0-0-0                             probe http://127.0.0.1:8081/hub/api/rest/users/me?fields=id,login,name,banned,guest
service youtrack  6ab631e2-61a7-4806-b029-44f0753fc29a  probe http://127.0.0.1:8081/api/users/me?fields=id,login,name,banned,guest
introspection hub, timeout 2s, max_concurrent 64, client_miss_rate 20/s; cache ttl 30s, negative 5s, max_entries 1000000
routes (longest prefix wins):
  PREFIX                 UPSTREAM   SERVICE                                           WITHOUT CREDENTIAL   TOKEN CHECK
  /hub/api/rest/oauth2   youtrack   - (public)                                        passes               any service's probe, if a token is sent
  /hub/rest              youtrack   hub (0-0-0-0-0)                                   401                  probe http://127.0.0.1:8081/hub/api/rest/users/me?fields=id,login,name,banned,guest
  /hub/api               youtrack   hub (0-0-0-0-0)                                   401                  probe http://127.0.0.1:8081/hub/api/rest/users/me?fields=id,login,name,banned,guest
  /rest                  youtrack   youtrack (6ab631e2-61a7-4806-b029-44f0753fc29a)   401                  probe http://127.0.0.1:8081/api/users/me?fields=id,login,name,banned,guest
  /api                   youtrack   youtrack (6ab631e2-61a7-4806-b029-44f0753fc29a)   401                  probe http://127.0.0.1:8081/api/users/me?fields=id,login,name,banned,guest
  /                      youtrack   - (public)                                        passes               any service's probe, if a token is sent
admin 127.0.0.1:9901: /healthz, /readyz, /metrics; POST disabled (no admin.token_file)
log level info, format text, access log on
";
    assert_eq!(described, want);
}

#[test]
fn describe_shows_capability_routes_and_their_timeouts() {
    let text = format!(
        "[upstreams.youtrack]\nurl = \"http://h\"\n\
         [services.youtrack]\nid = \"y\"\nprobe = \"http://h/p\"\n\
         [services.hub]\nid = \"0-0-0-0-0\"\nprobe = \"http://h/q\"\n{}",
        crate::config::YOUTRACK_ROUTES
    );
    let described = parse_ok(&text).describe();
    for row in [
        "/api/eventSourceBus             youtrack   youtrack (y)      GET/HEAD with ?ticket= passes (capability)   probe http://h/p; idle timeout 1h",
        "/api/files                      youtrack   youtrack (y)      GET/HEAD with ?sign= passes (capability)     probe http://h/p",
        "/api/config                     youtrack   youtrack (y)      GET/HEAD passes (capability)                 probe http://h/p",
        "/api                            youtrack   youtrack (y)      401 ",
    ] {
        assert!(described.contains(row), "{row:?} not in\n{described}");
    }
}

#[test]
fn describe_shows_tls_and_rfc7662() {
    let cert = temp_file("cert");
    let secret = temp_file("secret");
    let text = rfc7662_text(&secret.path().display().to_string()).replace(
        "[introspection]",
        &format!(
            "[server]\nlisten = \"[::]:8443\"\ntls_cert = {0:?}\ntls_key = {0:?}\n\
             [cache]\nstale_if_error = \"5m\"\n[introspection]",
            cert.path().display().to_string()
        ),
    );
    let described = parse_ok(&text).describe();
    assert!(described.starts_with("listen [::]:8443 (TLS, ALPN h2 + http/1.1)\n  cert "));
    assert!(described.contains(
        "introspection rfc7662 https://idp.example.com/introspect as client \"hubgate\", timeout 2s"
    ));
    assert!(described.contains(", stale_if_error 300s\n"));
    assert!(!described.contains("secret\n"));
}

/// Damaged files give problems, never a panic.
#[test]
fn no_input_panics() {
    let inputs = [EXAMPLE_FILE, DESIGN_EXAMPLE];
    let mut tried = 0;
    for input in inputs {
        let chars: Vec<char> = input.chars().collect();
        for at in (0..chars.len()).step_by(7) {
            let cut: String = chars[..at].iter().collect();
            let without: String = chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != at)
                .map(|(_, c)| *c)
                .collect();
            let mut doubled = cut.clone();
            doubled.push_str(
                &chars[at..]
                    .iter()
                    .collect::<String>()
                    .replacen('"', "\"\"", 1),
            );
            for text in [cut, without, doubled] {
                let _ = parse(&text);
                tried += 1;
            }
        }
    }
    assert!(tried > 1000, "{tried}");
}
