//! Table tests for the request-target rules of `security.md` and for route selection.

use http::{HeaderValue, Method, Uri, Version};

use super::*;
use crate::config::Route;
use PathError::*;

/// `(target as received, expected path part or error)`.
const PATHS: &[(&str, Result<&str, PathError>)] = &[
    // Legal, including look-alikes of forbidden forms.
    ("/", Ok("/")),
    ("/api", Ok("/api")),
    ("/api/", Ok("/api/")),
    ("/apix", Ok("/apix")),
    ("/api-internal", Ok("/api-internal")),
    ("/api/issues", Ok("/api/issues")),
    (
        "/hub/api/rest/oauth2/token",
        Ok("/hub/api/rest/oauth2/token"),
    ),
    (
        "/issue/DEMO-1/%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
        Ok("/issue/DEMO-1/%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82"),
    ),
    (
        "/issue/DEMO-1/%d0%9f%d1%80%d0%b8%d0%b2%d0%b5%d1%82",
        Ok("/issue/DEMO-1/%d0%9f%d1%80%d0%b8%d0%b2%d0%b5%d1%82"),
    ),
    (
        "/api/issues?query=%23Unresolved%20for:%20me&$top=10",
        Ok("/api/issues"),
    ),
    ("/api/x?path=%2F..%2f/../..;\\%zz%", Ok("/api/x")),
    ("/api?", Ok("/api")),
    ("/?x=1", Ok("/")),
    ("/api/a%20b", Ok("/api/a%20b")),
    ("/api/a%3Ab%3ab", Ok("/api/a%3Ab%3ab")),
    ("/api/a%2Bb%40c", Ok("/api/a%2Bb%40c")),
    (
        "/api/%21%24%26%27%28%29%2A%2C%3D",
        Ok("/api/%21%24%26%27%28%29%2A%2C%3D"),
    ),
    (
        "/api/%22%3C%3E%5B%5D%5E%60%7B%7C%7D",
        Ok("/api/%22%3C%3E%5B%5D%5E%60%7B%7C%7D"),
    ),
    ("/api/...", Ok("/api/...")),
    ("/api/.hidden/x.", Ok("/api/.hidden/x.")),
    ("/api/..x/x..", Ok("/api/..x/x..")),
    ("/api/%E2%82%AC", Ok("/api/%E2%82%AC")),
    ("/api/%f0%9f%98%80", Ok("/api/%f0%9f%98%80")),
    ("/api/%C2%A0%20%D0%9F", Ok("/api/%C2%A0%20%D0%9F")),
    // Non-ASCII letters that Unicode case folding maps onto ASCII ones.
    ("/re%C5%BFt/issues", Err(PathError::AsciiCaseMapping)),
    ("/re%c5%bft/issues", Err(PathError::AsciiCaseMapping)),
    ("/ap%C4%B1/issues", Err(PathError::AsciiCaseMapping)),
    ("/%C4%B0ssue/x", Err(PathError::AsciiCaseMapping)),
    ("/hub/%E2%84%AAey", Err(PathError::AsciiCaseMapping)),
    ("/issue/%C3%85land", Ok("/issue/%C3%85land")),
    ("/api/issues/DEMO-1:~x_y", Ok("/api/issues/DEMO-1:~x_y")),
    ("/api/a{b}|c", Ok("/api/a{b}|c")),
    // Not an absolute path.
    ("", Err(NotAbsolutePath)),
    ("api", Err(NotAbsolutePath)),
    ("*", Err(NotAbsolutePath)),
    ("?x=1", Err(NotAbsolutePath)),
    ("\\api", Err(NotAbsolutePath)),
    ("http://yt.example.com/api", Err(NotAbsolutePath)),
    // Dot segments, also as the last segment and before a query.
    ("/api/../hub/api", Err(DotSegment)),
    ("/api/./x", Err(DotSegment)),
    ("/api/.", Err(DotSegment)),
    ("/api/..", Err(DotSegment)),
    ("/api/..?x=1", Err(DotSegment)),
    ("/.", Err(DotSegment)),
    ("/..", Err(DotSegment)),
    ("/./api", Err(DotSegment)),
    ("/../api", Err(DotSegment)),
    // Empty segments.
    ("/api//x", Err(EmptySegment)),
    ("//api", Err(EmptySegment)),
    ("//", Err(EmptySegment)),
    ("/api//", Err(EmptySegment)),
    ("//?x=1", Err(EmptySegment)),
    ("/hub//api/rest", Err(EmptySegment)),
    // Backslash, semicolon, fragment.
    ("/api\\x", Err(Backslash)),
    ("/api/\\..\\hub", Err(Backslash)),
    ("/api;jsessionid=1/x", Err(Semicolon)),
    ("/api/..;/hub", Err(Semicolon)),
    ("/api;", Err(Semicolon)),
    ("/api/x#frag", Err(Fragment)),
    ("/api#/../hub", Err(Fragment)),
    ("/api?x=1#y", Err(Fragment)),
    // Escapes of delimiters and controls, in both letter cases.
    ("/api%2fx", Err(ForbiddenEscape)),
    ("/api%2Fx", Err(ForbiddenEscape)),
    ("/api%5cx", Err(ForbiddenEscape)),
    ("/api%5Cx", Err(ForbiddenEscape)),
    ("/api/%2e%2e/hub", Err(ForbiddenEscape)),
    ("/api/%2E%2E/hub", Err(ForbiddenEscape)),
    ("/api/.%2e", Err(ForbiddenEscape)),
    ("/api/%2E", Err(ForbiddenEscape)),
    ("/api/%25", Err(ForbiddenEscape)),
    ("/api/%252e", Err(ForbiddenEscape)),
    ("/api/%252E%252E/hub", Err(ForbiddenEscape)),
    ("/api/%25%32%65", Err(ForbiddenEscape)),
    ("/api%3bx", Err(ForbiddenEscape)),
    ("/api%3Bx", Err(ForbiddenEscape)),
    ("/api/%3f", Err(ForbiddenEscape)),
    ("/api/%3F", Err(ForbiddenEscape)),
    ("/api/%23", Err(ForbiddenEscape)),
    ("/api/%00", Err(ForbiddenEscape)),
    ("/api/%0a", Err(ForbiddenEscape)),
    ("/api/%0A", Err(ForbiddenEscape)),
    ("/api/%0d", Err(ForbiddenEscape)),
    ("/api/%0D", Err(ForbiddenEscape)),
    ("/api/%09", Err(ForbiddenEscape)),
    ("/api/%1F", Err(ForbiddenEscape)),
    ("/api/%7f", Err(ForbiddenEscape)),
    ("/api/%7F", Err(ForbiddenEscape)),
    // Escapes of unreserved characters: a decoding backend would see another path.
    ("/%61pi", Err(UnreservedEscape)),
    ("/%41PI", Err(UnreservedEscape)),
    ("/%61%70%69/issues", Err(UnreservedEscape)),
    ("/hub/%61pi/rest", Err(UnreservedEscape)),
    ("/api/%30", Err(UnreservedEscape)),
    ("/api/%2d", Err(UnreservedEscape)),
    ("/api/%2D", Err(UnreservedEscape)),
    ("/api/%5f", Err(UnreservedEscape)),
    ("/api/%7e", Err(UnreservedEscape)),
    ("/api/%7E", Err(UnreservedEscape)),
    // Escapes that are not valid UTF-8.
    ("/api/%c0%af", Err(InvalidUtf8)),
    ("/api/%C0%AF", Err(InvalidUtf8)),
    ("/api/%e0%80%ae", Err(InvalidUtf8)),
    ("/api/%ed%a0%80", Err(InvalidUtf8)),
    ("/api/%ED%A0%80", Err(InvalidUtf8)),
    ("/api/%e2%82", Err(InvalidUtf8)),
    ("/api/%e2%82/x", Err(InvalidUtf8)),
    ("/api/%e2%82x", Err(InvalidUtf8)),
    ("/api/%ff", Err(InvalidUtf8)),
    ("/api/%FF", Err(InvalidUtf8)),
    ("/api/%80", Err(InvalidUtf8)),
    ("/api/%D0%9F%9F", Err(InvalidUtf8)),
    ("/api/%f4%90%80%80", Err(InvalidUtf8)),
    ("/api/%f8%88%80%80%80", Err(InvalidUtf8)),
    ("/api/%D0%2F", Err(InvalidUtf8)),
    // Malformed escapes.
    ("/api/%", Err(MalformedEscape)),
    ("/api%", Err(MalformedEscape)),
    ("/api/%4", Err(MalformedEscape)),
    ("/api/%4/x", Err(MalformedEscape)),
    ("/api/%zz", Err(MalformedEscape)),
    ("/api/%4g", Err(MalformedEscape)),
    ("/api/%%32e", Err(MalformedEscape)),
    ("/api/%+1", Err(MalformedEscape)),
    ("/api/x%2?y", Err(MalformedEscape)),
    // Bytes outside visible ASCII, in the path or the query.
    ("/api/é", Err(NonVisibleAscii)),
    ("/api/Привет", Err(NonVisibleAscii)),
    ("/api/ x", Err(NonVisibleAscii)),
    ("/api/\tx", Err(NonVisibleAscii)),
    ("/api/\u{7f}", Err(NonVisibleAscii)),
    ("/api/\u{0}", Err(NonVisibleAscii)),
    ("/api?q=a b", Err(NonVisibleAscii)),
    ("/api?q=\r\nX: y", Err(NonVisibleAscii)),
];

#[test]
fn path_table() {
    assert!(PATHS.len() >= 60, "table has {} rows", PATHS.len());
    let mut failures = Vec::new();
    for &(target, expected) in PATHS {
        let got = check_path(target);
        if got != expected {
            failures.push(format!("{target:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn errors_have_client_descriptions() {
    for &(_, expected) in PATHS {
        if let Err(e) = expected {
            assert!(!e.to_string().is_empty());
        }
    }
}

fn route(prefix: &str, service: Option<&str>) -> Route {
    Route {
        prefix: prefix.into(),
        upstream: "youtrack".to_owned(),
        service: service.map(str::to_owned),
        ..Route::default()
    }
}

/// The route table of `design.md`, in file order.
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

fn selected<'t>(table: &'t RouteTable, path: &str) -> Result<Option<&'t str>, PathError> {
    table.select(path).map(|route| route.map(|r| &*r.prefix))
}

#[test]
fn routes_are_longest_prefix_first() {
    let table = RouteTable::new(design_routes());
    let prefixes: Vec<&str> = table.routes().iter().map(|r| &*r.prefix).collect();
    assert_eq!(
        prefixes,
        [
            "/hub/api/rest/oauth2",
            "/hub/rest",
            "/hub/api",
            "/rest",
            "/api",
            "/"
        ]
    );
}

#[test]
fn select_table() {
    const CASES: &[(&str, Result<Option<&str>, PathError>)] = &[
        ("/", Ok(Some("/"))),
        ("/api", Ok(Some("/api"))),
        ("/api/", Ok(Some("/api"))),
        ("/api/issues", Ok(Some("/api"))),
        ("/apix", Ok(Some("/"))),
        ("/api-internal", Ok(Some("/"))),
        ("/api.json", Ok(Some("/"))),
        ("/rest", Ok(Some("/rest"))),
        ("/rest/issue/DEMO-1", Ok(Some("/rest"))),
        ("/restx", Ok(Some("/"))),
        ("/hub", Ok(Some("/"))),
        ("/hubx/api", Ok(Some("/"))),
        ("/hub/api", Ok(Some("/hub/api"))),
        ("/hub/apix", Ok(Some("/"))),
        ("/hub/api/rest/users/me", Ok(Some("/hub/api"))),
        ("/hub/rest/x", Ok(Some("/hub/rest"))),
        ("/hub/api/rest/oauth2", Ok(Some("/hub/api/rest/oauth2"))),
        (
            "/hub/api/rest/oauth2/token",
            Ok(Some("/hub/api/rest/oauth2")),
        ),
        ("/hub/api/rest/oauth2x", Ok(Some("/hub/api"))),
        ("/hub/api/rest/oauth2-evil/token", Ok(Some("/hub/api"))),
        ("/issue/DEMO-1", Ok(Some("/"))),
        // A case variant of a public prefix alone is not an error: it is matched exactly.
        ("/hub/api/rest/OAUTH2/token", Ok(Some("/hub/api"))),
        ("/APIX", Ok(Some("/"))),
        ("/API-internal", Ok(Some("/"))),
        ("/Issues", Ok(Some("/"))),
        // Case variants of protected prefixes.
        ("/API/issues", Err(CaseVariant)),
        ("/Api", Err(CaseVariant)),
        ("/aPI/", Err(CaseVariant)),
        ("/REST", Err(CaseVariant)),
        ("/Rest/issue", Err(CaseVariant)),
        ("/Hub/Api/x", Err(CaseVariant)),
        ("/Hub/Api/rest/users", Err(CaseVariant)),
        ("/hub/API", Err(CaseVariant)),
        ("/HUB/REST/x", Err(CaseVariant)),
        ("/HUB/API/REST/OAUTH2/token", Err(CaseVariant)),
        // Variants a backend that trims trailing dots and spaces would read as protected.
        ("/api./issues", Err(TrimVariant)),
        ("/api%20/issues", Err(TrimVariant)),
        ("/api.%20./x", Err(TrimVariant)),
        ("/api.", Err(TrimVariant)),
        ("/hub./api/rest/users", Err(TrimVariant)),
        ("/hub/api%20", Err(TrimVariant)),
        ("/REST./x", Err(TrimVariant)),
        ("/x/..%20/api/issues", Err(TrimVariant)),
        ("/x/.%20/api", Err(TrimVariant)),
        ("/%20api/issues", Err(TrimVariant)),
        ("/x/%20/y", Err(TrimVariant)),
        // Trailing dots where no protected prefix is near are ordinary paths.
        ("/issue/DEMO-1/Fix-it.", Ok(Some("/"))),
        ("/api/issues/DEMO-1/x.", Ok(Some("/api"))),
        ("/apix./y", Ok(Some("/"))),
    ];
    let table = RouteTable::new(design_routes());
    let mut failures = Vec::new();
    for &(path, expected) in CASES {
        let got = selected(&table, path);
        if got != expected {
            failures.push(format!("{path:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn no_route_without_root() {
    let mut routes = design_routes();
    routes.retain(|r| &*r.prefix != "/");
    let table = RouteTable::new(routes);
    assert_eq!(selected(&table, "/"), Ok(None));
    assert_eq!(selected(&table, "/issue/DEMO-1"), Ok(None));
    assert_eq!(selected(&table, "/apix"), Ok(None));
    assert_eq!(selected(&table, "/api/issues"), Ok(Some("/api")));
    assert_eq!(selected(&table, "/API/issues"), Err(CaseVariant));
    assert_eq!(selected(&RouteTable::new(Vec::new()), "/api"), Ok(None));
}

#[test]
fn public_case_variant_falls_through() {
    let table = RouteTable::new(vec![route("/public", None), route("/", None)]);
    assert_eq!(selected(&table, "/PUBLIC/x"), Ok(Some("/")));
    assert_eq!(selected(&table, "/public/x"), Ok(Some("/public")));
}

#[test]
fn equal_length_prefixes_keep_file_order() {
    let table = RouteTable::new(vec![route("/ab", Some("s")), route("/cd", None)]);
    assert_eq!(selected(&table, "/cd/x"), Ok(Some("/cd")));
    assert_eq!(&*table.routes()[0].prefix, "/ab");
}

/// Runs `check_target` on owned inputs; returns `(path, path_and_query, host)`.
fn target(
    method: Method,
    version: Version,
    uri: &[u8],
    hosts: &[&[u8]],
) -> Result<(String, String, String), PathError> {
    let uri = Uri::try_from(uri).expect("test uri parses");
    let values: Vec<HeaderValue> = hosts
        .iter()
        .map(|h| HeaderValue::from_bytes(h).expect("test header value"))
        .collect();
    let refs: Vec<&HeaderValue> = values.iter().collect();
    check_target(&method, version, &uri, &refs).map(|t| {
        (
            t.path.to_owned(),
            t.path_and_query.to_owned(),
            t.host.to_owned(),
        )
    })
}

fn ok(path: &str, pq: &str, host: &str) -> Result<(String, String, String), PathError> {
    Ok((path.to_owned(), pq.to_owned(), host.to_owned()))
}

const H11: Version = Version::HTTP_11;
const H2: Version = Version::HTTP_2;
const YT: &[u8] = b"yt.example.com";

#[test]
fn origin_form() {
    assert_eq!(
        target(Method::GET, H11, b"/api/issues?$top=1", &[YT]),
        ok("/api/issues", "/api/issues?$top=1", "yt.example.com")
    );
    // Forwarded exactly as received: escapes and their letter case are kept.
    assert_eq!(
        target(Method::POST, H11, b"/api/%D0%9f?q=%2F..", &[b"yt:8080"]),
        ok("/api/%D0%9f", "/api/%D0%9f?q=%2F..", "yt:8080")
    );
    assert_eq!(
        target(Method::GET, Version::HTTP_10, b"/", &[b"[::1]:8080"]),
        ok("/", "/", "[::1]:8080")
    );
}

#[test]
fn method_and_form() {
    assert_eq!(
        target(
            Method::CONNECT,
            H11,
            b"yt.example.com:443",
            &[b"yt.example.com:443"]
        ),
        Err(Connect)
    );
    assert_eq!(target(Method::CONNECT, H2, b"/api", &[YT]), Err(Connect));
    assert_eq!(target(Method::OPTIONS, H11, b"*", &[YT]), Err(Asterisk));
    assert_eq!(target(Method::GET, H11, b"*", &[YT]), Err(Asterisk));
    assert_eq!(
        target(
            Method::GET,
            H11,
            b"yt.example.com:443",
            &[b"yt.example.com:443"]
        ),
        Err(NotAbsolutePath)
    );
    assert_eq!(
        target(Method::GET, H11, b"/api/../hub/api", &[YT]),
        Err(DotSegment)
    );
    assert_eq!(
        target(Method::GET, H11, b"/api/%2e%2e/hub", &[YT]),
        Err(ForbiddenEscape)
    );
    assert_eq!(
        target(Method::GET, H11, b"/api/\xc3\xa9", &[YT]),
        Err(NonVisibleAscii)
    );
}

#[test]
fn absolute_form() {
    let get = |uri: &[u8], hosts: &[&[u8]]| target(Method::GET, H11, uri, hosts);
    assert_eq!(
        get(b"http://yt.example.com/api?x=1", &[YT]),
        ok("/api", "/api?x=1", "yt.example.com")
    );
    assert_eq!(
        get(b"http://YT.example.com/api", &[b"yt.EXAMPLE.com"]),
        ok("/api", "/api", "yt.EXAMPLE.com")
    );
    assert_eq!(
        get(b"http://yt.example.com", &[YT]),
        ok("/", "/", "yt.example.com")
    );
    assert_eq!(
        get(b"http://yt.example.com?x=1", &[YT]),
        Err(NotAbsolutePath)
    );
    assert_eq!(get(b"http://evil.example/api", &[YT]), Err(HostMismatch));
    assert_eq!(
        get(b"http://yt.example.com:8080/api", &[YT]),
        Err(HostMismatch)
    );
    assert_eq!(
        get(b"http://user@yt.example.com/api", &[YT]),
        Err(HostMismatch)
    );
    // HTTP/1.1 requires Host even in absolute-form; HTTP/1.0 may take the authority.
    assert_eq!(get(b"http://yt.example.com/api", &[]), Err(MissingHost));
    assert_eq!(
        target(
            Method::GET,
            Version::HTTP_10,
            b"http://yt.example.com/api",
            &[]
        ),
        ok("/api", "/api", "yt.example.com")
    );
}

#[test]
fn http2_authority() {
    let get = |uri: &[u8], hosts: &[&[u8]]| target(Method::GET, H2, uri, hosts);
    assert_eq!(
        get(b"https://yt.example.com/api", &[]),
        ok("/api", "/api", "yt.example.com")
    );
    assert_eq!(
        get(b"https://yt.example.com/api", &[YT]),
        ok("/api", "/api", "yt.example.com")
    );
    assert_eq!(
        get(b"https://yt.example.com/api", &[b"evil.example"]),
        Err(HostMismatch)
    );
    assert_eq!(get(b"https://u@yt.example.com/api", &[]), Err(InvalidHost));
    assert_eq!(get(b"/api", &[YT]), ok("/api", "/api", "yt.example.com"));
    assert_eq!(get(b"/api", &[]), Err(MissingHost));
    assert_eq!(
        get(b"https://yt.example.com/api", &[YT, YT]),
        Err(DuplicateHost)
    );
}

#[test]
fn host_header() {
    let get = |version: Version, hosts: &[&[u8]]| target(Method::GET, version, b"/api", hosts);
    assert_eq!(get(H11, &[]), Err(MissingHost));
    assert_eq!(get(Version::HTTP_10, &[]), Err(MissingHost));
    assert_eq!(get(Version::HTTP_09, &[]), Err(MissingHost));
    assert_eq!(get(H11, &[YT, YT]), Err(DuplicateHost));
    assert_eq!(get(H11, &[YT, b"evil.example"]), Err(DuplicateHost));
    assert_eq!(
        get(H11, &[b"127.0.0.1:8080"]),
        ok("/api", "/api", "127.0.0.1:8080")
    );
    let invalid: &[&[u8]] = &[
        b"",
        b"yt.example.com/x",
        b"user@yt.example.com",
        b"yt\\example",
        b"yt example",
        b"yt\texample",
        b" yt.example.com",
        b"yt.example.com?x",
        b"yt.example.com#x",
        b"yt.ex\xc3\xa4mple.com",
    ];
    for &host in invalid {
        assert_eq!(get(H11, &[host]), Err(InvalidHost), "{host:?}");
    }
}

/// A small deterministic generator (xorshift), so the property test needs no extra crate.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What every accepted path must satisfy, whatever the input was.
fn assert_accepted_path_is_canonical(input: &str, path: &str, table: &RouteTable) {
    assert!(input.starts_with(path), "{input:?}");
    assert!(
        matches!(input.as_bytes().get(path.len()), None | Some(b'?')),
        "{input:?}"
    );
    assert!(path.starts_with('/'), "{input:?}");
    assert!(!path.contains("//"), "{input:?}");
    assert!(!path.contains(['\\', ';', '#', '?']), "{input:?}");
    assert!(path.split('/').all(|s| s != "." && s != ".."), "{input:?}");
    let lower = path.to_ascii_lowercase();
    for escape in ["%2e", "%2f", "%25", "%5c", "%3b", "%00"] {
        assert!(!lower.contains(escape), "{input:?}");
    }
    for (i, _) in path.match_indices('%') {
        let digits = path.get(i + 1..i + 3).unwrap_or("");
        assert!(
            digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_hexdigit()),
            "{input:?}"
        );
    }
    if let Ok(Some(route)) = table.select(path) {
        let prefix = &*route.prefix;
        assert!(
            prefix == "/" || path == prefix || path.starts_with(&format!("{prefix}/")),
            "{input:?} selected {prefix}"
        );
    }
}

fn check_generated(input: &str, table: &RouteTable) {
    // `select` must not panic even on unchecked input.
    let _ = table.select(input);
    if let Ok(path) = check_path(input) {
        assert_accepted_path_is_canonical(input, path, table);
    }
}

#[test]
fn generated_paths_exhaustive() {
    const ALPHABET: &[u8] = b"/.%2eEf;\\aA5c?";
    let table = RouteTable::new(design_routes());
    let mut buf = Vec::with_capacity(8);
    let mut accepted = 0usize;
    for len in 0..=5u32 {
        for mut n in 0..ALPHABET.len().pow(len) {
            buf.clear();
            buf.push(b'/');
            for _ in 0..len {
                buf.push(ALPHABET[n % ALPHABET.len()]);
                n /= ALPHABET.len();
            }
            let input = std::str::from_utf8(&buf).expect("ASCII alphabet");
            check_generated(input, &table);
            accepted += usize::from(check_path(input).is_ok());
        }
    }
    assert!(
        accepted > 1000,
        "only {accepted} accepted: the generator is too narrow"
    );
}

#[test]
fn generated_paths_random() {
    const ALPHABET: &[&str] = &[
        "/", ".", "%", "2", "e", "E", "f", "F", ";", "\\", "a", "A", "p", "i", "5", "c", "3", "b",
        "0", "d", "8", "9", "?", "#", "%2", "%c0", "%e2%82", "%d0%9f", "/api", "/hub", "..", "é",
        " ",
    ];
    let table = RouteTable::new(design_routes());
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let mut input = String::new();
    for _ in 0..200_000 {
        input.clear();
        let len = rng.next() % 24;
        for _ in 0..len {
            let pick = usize::try_from(rng.next() % ALPHABET.len() as u64).expect("small");
            input.push_str(ALPHABET[pick]);
        }
        check_generated(&input, &table);
    }
}
