//! Property tests for the parsers at the gateway's edge: the request target (`path`), the
//! credential (`auth::bearer`) and the configuration file (`config`). They state the same
//! properties as the fuzz targets in `fuzz/`, for a bounded number of generated cases, so they
//! run with every `cargo test` on stable.
//!
//! The generators are weighted towards what `security.md` forbids (dot segments, escapes of
//! delimiters in either letter case, double encodings, overlong UTF-8, case variants of
//! protected prefixes, tabs and double spaces in tokens) rather than uniform bytes, which would
//! almost never get past the first check. Each property checks the code against an oracle
//! written here from the rules, not from the code, and asserts that enough generated cases
//! reached the interesting outcome.
//!
//! `PROPTEST_CASES=N` runs every property N times; `PROPTEST_RNG_SEED=S` fixes the otherwise
//! random seed. A failure is shrunk to a minimal input and printed, nothing is written to
//! disk: a minimal input worth keeping becomes a named regression test at the end of this file.
//! `--nocapture` shows how many cases each property ran and what they ended in.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;

use http::{HeaderValue, Method, Uri, Version};
use hubgate::auth::bearer::{credential, BearerError, Credential, MAX_TOKEN_LEN};
use hubgate::config::{Config, Route};
use hubgate::path::{check_path, check_target, PathError, RouteTable};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, RngAlgorithm, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------
// Running a property and counting what it reached.
// ---------------------------------------------------------------------------------------

/// Outcomes of the generated cases of one property, by name.
type Tally = BTreeMap<&'static str, usize>;

/// Runs `property` on `cases` values of `strategy` (or `PROPTEST_CASES`), fails the test with
/// the shrunk input on the first violation, and returns how often each outcome occurred.
/// `property` names the outcome of each case.
fn run<S>(
    name: &str,
    cases: u32,
    strategy: S,
    property: impl Fn(&S::Value) -> Result<&'static str, TestCaseError>,
) -> Tally
where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    let config = RunConfig {
        cases,
        failure_persistence: None,
        // ChaCha, the default, dominates the run time in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        ..RunConfig::default()
    };
    let tally = RefCell::new(Tally::new());
    let result = TestRunner::new(config).run(&strategy, |value| {
        let outcome = property(&value)?;
        *tally.borrow_mut().entry(outcome).or_default() += 1;
        Ok(())
    });
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
    let tally = tally.into_inner();
    eprintln!("{name}: {cases} cases {tally:?}");
    tally
}

/// Asserts that at least `percent` % of the cases of a run ended in `outcome`: a generator
/// that rarely reaches an outcome tests little there.
fn reached(tally: &Tally, outcome: &str, percent: usize) {
    let total: usize = tally.values().sum();
    let got = tally.get(outcome).copied().unwrap_or(0);
    assert!(
        got * 100 >= total * percent,
        "only {got} of {total} cases ended in {outcome:?} (want {percent} %): {tally:?}"
    );
}

/// A `select` over the given static pieces.
fn one_of(pieces: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
    prop::sample::select(pieces).prop_map(str::to_owned)
}

/// A `select` over the whitespace-separated words of `text`.
fn one_of_words(text: &'static str) -> impl Strategy<Value = String> + Clone {
    let words: Vec<&'static str> = text.split_whitespace().collect();
    prop::sample::select(words).prop_map(str::to_owned)
}

/// `%XX` for any byte, hex digits in either letter case.
fn escape_of_byte() -> impl Strategy<Value = String> + Clone {
    (any::<u8>(), any::<bool>()).prop_map(|(byte, upper)| {
        if upper {
            format!("%{byte:02X}")
        } else {
            format!("%{byte:02x}")
        }
    })
}

/// The UTF-8 bytes of any character, each as an escape (`ſ` → `%C5%BF`).
fn escape_of_char() -> impl Strategy<Value = String> + Clone {
    (any::<char>(), any::<bool>()).prop_map(|(c, upper)| {
        let mut buf = [0; 4];
        c.encode_utf8(&mut buf)
            .bytes()
            .map(|b| {
                if upper {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------
// The request target.
// ---------------------------------------------------------------------------------------

/// Single characters of paths, mostly those that forbidden forms are made of.
const PATH_CHARS: &str = r"
    / / / . . % 2 e E f F 5 c C 3 b B 0 ; \ ? # a p i A P I - _ ~ : @ = & + x s t r";

/// Escapes and sequences that `security.md` names, and some legal look-alikes.
const PATH_ESCAPES: &str = "
    %2e %2E %2f %2F %5c %5C %25 %3b %3B %00 %0a %0D %09 %1f %7F %3f %23
    %252e %252F %25%32%65 %c0%af %C0%AE %e0%80%ae %ed%a0%80 %e2%82 %d0%9f %D0%9F%D1%80
    %C5%BF %c4%b1 %C4%B0 %E2%84%AA %e2%82%ac %20 %2B %3A %40 %61 %41 %2d %7e % %2 %zz";

/// Whole segments and segment sequences around the prefixes of `design.md`.
const PATH_WORDS: &str = "
    /api /hub /rest /oauth2 /API /Hub /REST /Api /apix /api-internal /. /.. // /./ /../ /...
    /.x /issues /hub/api /hub/api/rest/oauth2 api hub rest .. .";

/// Runs of characters that need no checking.
const PATH_PLAIN: &str = "a b x z 0 9 ab id me users issue DEMO-1 x.json v1";

/// One piece of a generated request target.
fn target_piece() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        8 => one_of_words(PATH_CHARS),
        1 => one_of(&[" ", "\t"]),
        3 => one_of_words(PATH_ESCAPES),
        4 => one_of_words(PATH_WORDS),
        2 => escape_of_byte(),
        1 => escape_of_char(),
        1 => any::<char>().prop_map(String::from),
        // Harmless runs, so that enough targets are accepted.
        6 => one_of_words(PATH_PLAIN),
    ]
}

/// How generated targets start: the prefixes of `design.md`, their case variants and
/// look-alikes, and (rarely) no leading `/` or nothing at all.
const TARGET_HEADS: &str = r"
    / / / / /api /api/ /rest/ /hub/api /hub/api/ /hub/rest/ /hub/api/rest/oauth2
    /hub/api/rest/oauth2/ /API/ /Api /REST /Hub/Api/ /hub/API /HUB/REST/ /hub/api/rest/OAUTH2/
    /apix /api-internal /hub/apix api * \";

/// A request target as a client might send it: usually a path, sometimes with a query.
fn target() -> impl Strategy<Value = String> + Clone {
    let head = prop_oneof![
        20 => one_of_words(TARGET_HEADS),
        1 => Just(String::new()),
    ];
    (
        head,
        prop::collection::vec(target_piece(), 0..12),
        prop::option::weighted(0.3, prop::collection::vec(target_piece(), 0..8)),
    )
        .prop_map(|(head, pieces, query)| {
            let mut target = head;
            target.extend(pieces);
            if let Some(query) = query {
                target.push('?');
                target.extend(query);
            }
            target
        })
}

/// Percent-decodes well-formed escapes; `None` if an escape is malformed.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            if !hex.bytes().all(|d| d.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// The oracle for an accepted target: `path` is what [`check_path`] returned for `input`.
fn assert_canonical(input: &str, path: &str) -> Result<(), TestCaseError> {
    // The path is the received text up to the query: what is matched is what is forwarded.
    let end = input.find('?').unwrap_or(input.len());
    prop_assert_eq!(path, &input[..end]);
    prop_assert!(
        input.bytes().all(|b| b.is_ascii_graphic()),
        "not visible ASCII"
    );
    prop_assert!(!input.contains('#'), "fragment");
    prop_assert!(path.starts_with('/'));
    prop_assert!(!path.contains("//"), "empty segment");
    prop_assert!(!path.contains(['\\', ';']), "backslash or ';'");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        prop_assert!(*segment != "." && *segment != "..", "dot segment");
        // A decoding backend must read the same segments.
        let decoded = percent_decode(segment).ok_or_else(|| fail("malformed escape"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| fail("escapes are not UTF-8"))?;
        prop_assert!(decoded != "." && decoded != "..", "escaped dot segment");
        prop_assert!(!decoded.is_empty() || i + 1 == segments.len(), "empty");
        prop_assert!(
            !decoded.contains(['/', '\\', ';', '%', '?', '#']),
            "escaped delimiter"
        );
        prop_assert!(
            !decoded.chars().any(|c| c.is_ascii_control()),
            "escaped control"
        );
        for c in decoded.chars().filter(|c| !c.is_ascii()) {
            let folds = c
                .to_lowercase()
                .chain(c.to_uppercase())
                .any(|m| m.is_ascii());
            prop_assert!(!folds, "{:?} folds onto ASCII", c);
        }
    }
    // No escape of a forbidden byte, in either letter case.
    let lower = path.to_ascii_lowercase();
    for escape in ["%2e", "%2f", "%5c", "%25", "%3b", "%00", "%7f"] {
        prop_assert!(!lower.contains(escape), "{}", escape);
    }
    for (at, _) in path.match_indices('%') {
        let byte = u8::from_str_radix(&path[at + 1..at + 3], 16).map_err(|_| fail("hex"))?;
        prop_assert!(byte >= 0x20 && byte != 0x7F, "control escape");
        let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
        prop_assert!(!unreserved, "escape of an unreserved character");
    }
    Ok(())
}

fn fail(why: &str) -> TestCaseError {
    TestCaseError::fail(why.to_owned())
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

/// Whether `prefix` covers `path` on a segment boundary, written from `security.md`.
fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
}

/// What `select` must answer, by index into `routes` (in the order given).
fn expected_route(routes: &[Route], path: &str) -> Result<Option<usize>, PathError> {
    let folded = path.to_ascii_lowercase();
    let case_variant = routes.iter().any(|r| {
        r.service.is_some()
            && covers(&r.prefix.to_ascii_lowercase(), &folded)
            && !covers(&r.prefix, path)
    });
    if case_variant {
        return Err(PathError::CaseVariant);
    }
    // A dot-segment once its spaces are gone.
    let dotted = folded
        .split('/')
        .any(|seg| seg.contains("%20") && seg.replace("%20", "").chars().all(|c| c == '.'));
    if dotted {
        return Err(PathError::TrimVariant);
    }
    // Segments read without their trailing dots and spaces, and leading spaces, as a
    // trimming backend would.
    let mut trimmed = String::new();
    for (i, segment) in folded.split('/').enumerate() {
        let (mut start, mut end) = (0, segment.len());
        loop {
            if segment[start..end].ends_with('.') {
                end -= 1;
            } else if segment[start..end].ends_with("%20") {
                end -= 3;
            } else if segment[start..end].starts_with("%20") {
                start += 3;
            } else {
                break;
            }
        }
        if i > 0 {
            trimmed.push('/');
        }
        trimmed.push_str(&segment[start..end]);
    }
    let trim_variant = trimmed != folded
        && routes.iter().any(|r| {
            r.service.is_some()
                && covers(&r.prefix.to_ascii_lowercase(), &trimmed)
                && !covers(&r.prefix, path)
        });
    if trim_variant {
        return Err(PathError::TrimVariant);
    }
    // Longest prefix; among equal lengths the first given.
    let mut best: Option<usize> = None;
    for (i, r) in routes.iter().enumerate() {
        let longer = best.is_none_or(|b| r.prefix.len() > routes[b].prefix.len());
        if covers(&r.prefix, path) && longer {
            best = Some(i);
        }
    }
    Ok(best)
}

/// Checks `table.select(path)` against the oracle; returns the outcome's name.
fn check_select(routes: &[Route], path: &str) -> Result<&'static str, TestCaseError> {
    let table = RouteTable::new(routes.to_vec());
    let got = table.select(path);
    if let Ok(Some(route)) = got {
        prop_assert!(
            covers(&route.prefix, path),
            "{:?} is not covered by {:?}",
            path,
            route.prefix
        );
    }
    let expected = expected_route(routes, path).map(|i| i.map(|i| &routes[i]));
    prop_assert_eq!(got, expected);
    Ok(match got {
        Err(_) => "case variant",
        Ok(None) => "no route",
        Ok(Some(route)) if route.service.is_some() => "protected",
        Ok(Some(_)) => "public",
    })
}

#[test]
fn path_check_accepts_only_canonical_paths() {
    let tally = run("check_path", 30_000, target(), |input| {
        Ok(match check_path(input) {
            Ok(path) => {
                assert_canonical(input, path)?;
                "accepted"
            }
            Err(_) => "refused",
        })
    });
    reached(&tally, "accepted", 10);
    reached(&tally, "refused", 50);
}

#[test]
fn design_routes_select_on_segment_boundaries() {
    let routes = design_routes();
    let tally = run("select (design.md)", 15_000, target(), |input| {
        // Unchecked text must not make `select` panic either.
        check_select(&routes, input)?;
        match check_path(input) {
            Ok(path) => check_select(&routes, path),
            Err(_) => Ok("refused"),
        }
    });
    reached(&tally, "protected", 3);
    reached(&tally, "public", 5);
    reached(&tally, "case variant", 2);
}

/// A route table of 1 to 6 prefixes built from a few segments, in any case, each protected
/// or public: tables `design.md` does not have, including prefixes of one another.
fn route_table() -> impl Strategy<Value = Vec<Route>> {
    let segment = one_of_words("api API Api hub rest oauth2 a x-y v1");
    let prefix = prop::collection::vec(segment, 0..4).prop_map(|segments| {
        if segments.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}", segments.join("/"))
        }
    });
    let service = prop::option::of(one_of(&["youtrack", "hub"]));
    prop::collection::vec((prefix, service), 1..7).prop_map(|routes| {
        let mut seen = Vec::new();
        routes
            .into_iter()
            .filter(|(prefix, _)| {
                let fresh = !seen.contains(prefix);
                seen.push(prefix.clone());
                fresh
            })
            .map(|(prefix, service)| route(&prefix, service.as_deref()))
            .collect()
    })
}

/// A path near one of `prefixes`: the prefix with some letters in the other case, then
/// something that may or may not start a new segment.
fn path_near(prefixes: Vec<String>) -> impl Strategy<Value = String> {
    let suffix = prop_oneof![
        2 => Just(String::new()),
        10 => one_of_words("/ /x /API /Api/x x -internal .json /.. // /hub/api"),
    ];
    let flips = prop::collection::vec(prop::bool::weighted(0.2), 24);
    (prop::sample::select(prefixes), flips, suffix).prop_map(|(prefix, flips, suffix)| {
        let flipped: String = prefix
            .chars()
            .zip(flips.into_iter().chain(std::iter::repeat(false)))
            .map(|(c, flip)| match (flip, c.is_ascii_lowercase()) {
                (false, _) => c,
                (true, true) => c.to_ascii_uppercase(),
                (true, false) => c.to_ascii_lowercase(),
            })
            .collect();
        format!("{flipped}{suffix}")
    })
}

#[test]
fn any_route_table_selects_the_longest_exact_prefix() {
    let strategy = route_table().prop_flat_map(|routes| {
        let prefixes = routes.iter().map(|r| r.prefix.to_string()).collect();
        let path = prop_oneof![
            3 => path_near(prefixes),
            1 => target(),
        ];
        (Just(routes), path)
    });
    let tally = run(
        "select (random tables)",
        8_000,
        strategy,
        |(routes, path)| check_select(routes, path),
    );
    reached(&tally, "protected", 14);
    reached(&tally, "public", 14);
    reached(&tally, "case variant", 8);
    reached(&tally, "no route", 10);
}

/// A request as `check_target` sees it: method, version, the URI bytes, the `Host` values.
#[derive(Debug, Clone)]
struct Request {
    method: Method,
    version: Version,
    target: String,
    hosts: Vec<&'static str>,
}

fn request() -> impl Strategy<Value = Request> {
    let method = prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::OPTIONS,
        Method::CONNECT,
    ]);
    let version = prop::sample::select(vec![
        Version::HTTP_09,
        Version::HTTP_10,
        Version::HTTP_11,
        Version::HTTP_2,
    ]);
    let authority = prop_oneof![
        6 => Just(String::new()),
        3 => Just("http://yt.example.com".to_owned()),
        6 => one_of_words(
            "https://yt.example.com http://YT.Example.com http://yt.example.com:8080
             http://evil.example http://u@yt.example.com yt.example.com:443"
        ),
    ];
    let odd_hosts: &[&[&str]] = &[
        &[],
        &["yt.example.com", "yt.example.com"],
        &["yt.example.com:8080"],
        &["evil.example"],
        &["yt example"],
    ];
    let hosts = prop_oneof![
        1 => Just(vec!["yt.example.com"]),
        1 => prop::sample::select(odd_hosts).prop_map(<[&str]>::to_vec),
    ];
    let target = prop_oneof![
        20 => target(),
        1 => Just("*".to_owned()),
    ];
    (method, version, authority, target, hosts).prop_map(
        |(method, version, authority, target, hosts)| Request {
            method,
            version,
            target: format!("{authority}{target}"),
            hosts,
        },
    )
}

#[test]
fn check_target_forwards_exactly_what_it_checked() {
    let tally = run("check_target", 15_000, request(), |request| {
        let Ok(uri) = Uri::try_from(request.target.as_bytes()) else {
            return Ok("not a URI");
        };
        let values: Vec<HeaderValue> = request
            .hosts
            .iter()
            .map(|h| HeaderValue::from_static(h))
            .collect();
        let hosts: Vec<&HeaderValue> = values.iter().collect();
        let result = check_target(&request.method, request.version, &uri, &hosts);
        let origin_form = request.target.starts_with('/') && !request.target.contains('#');
        let one_good_host = request.hosts == ["yt.example.com"];
        if origin_form && one_good_host && request.method != Method::CONNECT {
            // The URI holds the received bytes: the verdict is the path check's.
            prop_assert_eq!(result.map(|t| t.path), check_path(&request.target));
        }
        let Ok(target) = result else {
            return Ok("refused");
        };
        prop_assert!(request.method != Method::CONNECT);
        prop_assert!(hosts.len() <= 1, "two Host headers");
        let forwarded = uri.path_and_query().map_or("", |pq| pq.as_str());
        prop_assert_eq!(target.path_and_query, forwarded);
        prop_assert_eq!(check_path(target.path_and_query), Ok(target.path));
        assert_canonical(target.path_and_query, target.path)?;
        match (request.hosts.first(), uri.authority()) {
            (Some(host), Some(authority)) => {
                prop_assert_eq!(target.host, *host);
                prop_assert!(host.eq_ignore_ascii_case(authority.as_str()));
            }
            (Some(host), None) => prop_assert_eq!(target.host, *host),
            (None, authority) => {
                prop_assert!(request.version != Version::HTTP_11);
                prop_assert_eq!(Some(target.host), authority.map(|a| a.as_str()));
            }
        }
        Ok(if uri.authority().is_some() {
            "accepted, absolute form"
        } else {
            "accepted, origin form"
        })
    });
    reached(&tally, "accepted, origin form", 2);
    reached(&tally, "accepted, absolute form", 1);
    reached(&tally, "refused", 30);
}

// ---------------------------------------------------------------------------------------
// The credential.
// ---------------------------------------------------------------------------------------

/// Real token shapes (`hub-contract.md`, "Token shapes").
const TOKENS: &[&str] = &[
    "perm:YWxpY2U=.eW91dHJhY2stY2xp.fikUUSQ3BIW6W2eVBJcI2vKI5VGsWh",
    "perm-YWxpY2U=.NDctMg==.jTdKq7TVSguKeQUN3UYU3AL9zGugTt",
    "1683065164852.be56a4e2-3a82-4d1c-9a0e-2b3c4d5e6f70.1e31c2d1-4055-4a1b-8c2d-3e4f5a6b7c8d.\
     6ab631e2-61a7-4806-b029-44f0753fc29a 0-0-0-0-0;1.MCwCFEzJ/cvl+k1aQ2Zx4Dvacw==",
    "1683065164852.be56a4e2-3a82-4d1c-9a0e-2b3c4d5e6f70.1e31c2d1-4055-4a1b-8c2d-3e4f5a6b7c8d.\
     0-0-0-0-0;1.MCwCFEzJ/cvl+k1aQ2Zx4Dvacw==",
    "1683065164852.be56a4e2-3a82-4d1c-9a0e-2b3c4d5e6f70.1e31c2d1-4055-4a1b-8c2d-3e4f5a6b7c8d.\
     be56a4e2-3a82-4d1c-9a0e-2b3c4d5e6f70 6ab631e2-61a7-4806-b029-44f0753fc29a 0-0-0-0-0;1.\
     MCwCFEzJ/cvl+k1aQ2Zx4Dvacw==",
];

/// Pieces of token text that a token may hold.
const TOKEN_PIECES: &str = r#"
    a Z 0 perm: perm- . = == ; + / : - _ ~ ! " \ , Bearer YWxpY2U= 0-0-0-0-0"#;

/// Pieces that must not be in a token (as they stand, or at its ends).
const TOKEN_FAULTS: &[&[u8]] = &[
    b" ",
    b"  ",
    b"\t",
    b" \t",
    b"\x7f",
    b"\x80",
    b"\xc3\xa9",
    b"\xff",
    b"\r",
    b"\n",
    b"\0",
];

/// A token: a real shape, pieces, or one near the length cap.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        10 => one_of_words(TOKEN_PIECES).prop_map(String::into_bytes),
        2 => Just(b" ".to_vec()),
        1 => prop::sample::select(TOKEN_FAULTS).prop_map(<[u8]>::to_vec),
    ];
    let pieces = prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat());
    let real = prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec());
    let near_cap =
        (MAX_TOKEN_LEN - 3..MAX_TOKEN_LEN + 3, any::<bool>()).prop_map(|(len, space)| {
            let mut token = vec![b'a'; len];
            if space {
                token[len / 2] = b' ';
            }
            token
        });
    prop_oneof![
        3 => real,
        6 => pieces,
        1 => near_cap,
    ]
}

/// An `Authorization` value: scheme, separator, token.
fn authorization() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        5 => Just("Bearer"),
        4 => prop::sample::select(&["bearer", "BEARER", "bEaReR"][..]),
        6 => prop::sample::select(
            &["Bearerperm:", "Bearer2", "Bearer:", "Bear", "Basic", "Negotiate", "B", ""][..]
        ),
        2 => prop::sample::select(&[" Bearer", "\tBearer", "=Bearer"][..]),
    ];
    let separator = prop_oneof![
        6 => Just(" "),
        3 => prop::sample::select(&["  ", "     "][..]),
        3 => prop::sample::select(&["", "\t", " \t", ":", ",", "="][..]),
    ];
    (scheme, separator, token()).prop_map(|(scheme, separator, token)| {
        [scheme.as_bytes(), separator.as_bytes(), &token].concat()
    })
}

/// A raw query, often naming `access_token` in one spelling or another.
fn query() -> impl Strategy<Value = Option<String>> {
    let piece = one_of_words(
        "access_token ACCESS_TOKEN access%5Ftoken %61ccess_token access+token my_access_token
         access_tokens fields id = = & & ; % %26 + x",
    );
    prop::option::weighted(
        0.5,
        prop::collection::vec(piece, 0..6).prop_map(|p| p.concat()),
    )
}

/// How many `access_token` parameters a backend could find, splitting on `&` and `;`.
fn query_tokens(query: Option<&str>) -> usize {
    query.map_or(0, |query| {
        form_urlencoded::parse(query.replace(';', "&").as_bytes())
            .filter(|(name, _)| name.eq_ignore_ascii_case("access_token"))
            .count()
    })
}

/// Whether `token` is one the gateway must accept whole.
fn well_formed_token(token: &[u8]) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token.iter().all(|&b| b == b' ' || b.is_ascii_graphic())
        && !token.starts_with(b" ")
        && !token.ends_with(b" ")
        && !token.windows(2).any(|w| w == b"  ")
}

#[derive(Debug, Clone)]
struct Credentials {
    /// `Authorization` values, usually one.
    values: Vec<Vec<u8>>,
    query: Option<String>,
}

fn credentials() -> impl Strategy<Value = Credentials> {
    let values = prop_oneof![
        12 => authorization().prop_map(|v| vec![v]),
        2 => Just(Vec::new()),
        1 => prop::collection::vec(authorization(), 2..4),
    ];
    (values, query()).prop_map(|(values, query)| Credentials { values, query })
}

#[test]
fn bearer_tokens_come_back_whole_or_are_refused() {
    let tally = run("credential", 25_000, credentials(), |input| {
        let Ok(values) = input
            .values
            .iter()
            .map(|v| HeaderValue::from_bytes(v))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Ok("not a header value");
        };
        let refs: Vec<&HeaderValue> = values.iter().collect();
        let query = input.query.as_deref();
        let got = credential(&refs, query);
        let in_query = query_tokens(query);
        // Credentials are counted before any one is read.
        match (refs.len(), in_query) {
            (0, 0) => prop_assert_eq!(&got, &Ok(Credential::None)),
            (0, 1) => prop_assert_eq!(&got, &Ok(Credential::QueryToken)),
            (1, 0) => {}
            _ => prop_assert_eq!(&got, &Err(BearerError::TwoCredentials)),
        }
        let value = input.values.first().map_or(&[][..], Vec::as_slice);
        // `Bearer`, one or more spaces, then a token the gateway must take whole.
        let scheme_len = b"bearer".len();
        let (scheme, rest) = value.split_at(scheme_len.min(value.len()));
        let spaces = rest.iter().take_while(|&&b| b == b' ').count();
        let well_formed = scheme.eq_ignore_ascii_case(b"bearer")
            && spaces > 0
            && well_formed_token(&rest[spaces..]);
        if refs.len() == 1 && in_query == 0 && well_formed {
            let token = std::str::from_utf8(&rest[spaces..]).map_err(|_| fail("ASCII"))?;
            prop_assert_eq!(&got, &Ok(Credential::Bearer(token)));
        }
        if let Ok(Credential::Bearer(token)) = &got {
            prop_assert!(well_formed, "accepted {:?}", token);
            prop_assert_eq!(token.as_bytes(), &rest[spaces..]);
        }
        Ok(match got {
            Ok(Credential::Bearer(_)) => "bearer",
            Ok(Credential::OtherScheme) => "other scheme",
            Ok(Credential::None | Credential::QueryToken) => "none or query",
            Ok(Credential::BasicToken(_) | Credential::BasicPassword(_)) => "basic",
            Err(BearerError::TwoCredentials) => "two credentials",
            Err(_) => "malformed",
        })
    });
    reached(&tally, "bearer", 4);
    reached(&tally, "malformed", 10);
    reached(&tally, "other scheme", 8);
    reached(&tally, "two credentials", 3);
    reached(&tally, "none or query", 4);
}

// ---------------------------------------------------------------------------------------
// The configuration file.
// ---------------------------------------------------------------------------------------

const EXAMPLE: &str = include_str!("../config.example.toml");

/// What a configuration name shows in errors; nothing is read from it.
const ORIGIN: &str = "generated.toml";

/// Checks one parse: no panic, and either a configuration whose routes keep the promises of
/// `config.example.toml`, or at least one problem.
fn check_config(text: &str) -> Result<&'static str, TestCaseError> {
    match Config::parse(text, Path::new(ORIGIN)) {
        Ok(config) => {
            prop_assert!(!config.routes.is_empty());
            let prefixes: Vec<&str> = config.routes.iter().map(|r| &*r.prefix).collect();
            for route in &config.routes {
                let prefix = &*route.prefix;
                // A prefix is a canonical path: requests can match it exactly.
                prop_assert_eq!(check_path(prefix), Ok(prefix));
                prop_assert!(prefix == "/" || !prefix.ends_with('/'), "{:?}", prefix);
                prop_assert!(!prefix.contains('%'), "{:?}", prefix);
                let clashes = prefixes
                    .iter()
                    .filter(|p| p.eq_ignore_ascii_case(prefix))
                    .count();
                prop_assert_eq!(clashes, 1, "{:?} differs only in case", prefix);
                prop_assert!(config.upstreams.contains_key(&route.upstream));
                if let Some(service) = &route.service {
                    prop_assert!(config.services.contains_key(service));
                }
                prop_assert!(!route.allow_anonymous || route.service.is_some());
            }
            Ok("valid")
        }
        Err(error) => {
            prop_assert!(!error.problems.is_empty(), "an error without problems");
            prop_assert!(error.problems.iter().all(|p| !p.trim().is_empty()));
            prop_assert_eq!(error.file.as_str(), ORIGIN);
            Ok("problems")
        }
    }
}

/// Pieces of TOML and of the configuration's keys and values.
const TOML_PIECES: &str = r#"
    [server] [[routes]] [upstreams.youtrack] [services.hub] [cache] [introspection] [ ] [[ { } =
    " ' """ ''' # , . \ \u prefix listen upstream service ttl routes 0 -1 1e999 inf nan
    9223372036854775808 1979-05-27T07:32:00Z true "/api" "30s""#;

/// Arbitrary text, mostly TOML-shaped.
fn config_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => one_of_words(TOML_PIECES),
        2 => one_of(&[" = ", "\n", "\n", "\r\n"]),
        1 => any::<char>().prop_map(String::from),
        1 => "[a-z_]{1,8}",
    ];
    prop_oneof![
        3 => prop::collection::vec(piece, 0..40).prop_map(|p| p.concat()),
        1 => any::<String>(),
    ]
}

/// Values to put where the example has one: wrong types, edge cases of each key's syntax.
const VALUES: &str = r#"
    "" "0s" "0ms" "1h" "30" "-5s" "5d" "99999999999999999999h" "18446744073709551615ms"
    "9223372036854775807s" "ſ" 0 -1 1 4294967296 9223372036854775807 -9223372036854775808 1.5
    nan true false [] {} ["/api"] "/" "//" "/api/" "/API" "/Hub/Api" "/api/." "/api/.."
    "/a%2fb" "/a;b" "/é" "api" "youtrack" "hub" "nowhere" "rfc7662" "http://" "http://h"
    "https://[::1]:0" "http://u@h:1/p?q#f" "ftp://h" "http://h:99999" "0.0.0.0:0" "[::]:65535"
    "localhost:8080" "you\"track" "\u0000" "a\nb" '''x''' "/dev/null" "does/not/exist""#;

/// Prefixes to give a route: canonical ones in odd spellings, and ones to refuse.
const PREFIXES: &str = r#"
    "/x" "/API2" "/a-b" "/~" "/a/b.c" "/.x/..." "/hub/api/x" "/hub" "/api/rest" "/!$&'()*+,=:@"
    "/a%20b" "/api" "/Api" "/" "//" "/x/" "/x/." "/x/../y" "/x;y" "/x?y" "/x#y" "/x\\y"
    "/\u017ft" "x" """#;

/// Lines to insert: tables, keys, unknown keys, an inline secret.
const INSERTED_LINES: &[&str] = &[
    "[[routes]]",
    "[server]",
    "[services.x]",
    "[upstreams.x]",
    "prefix = \"/x\"",
    "upstream = \"youtrack\"",
    "service = \"hub\"",
    "allow_anonymous = true",
    "backend = \"rfc7662\"",
    "prefx = \"/\"",
    "client_secret = \"s\"",
];

/// One edit of the example file.
#[derive(Debug, Clone)]
enum Edit {
    /// Replaces the value of the n-th `key = value` line.
    Value(prop::sample::Index, String),
    /// Replaces the value of the n-th `prefix = ` line.
    Prefix(prop::sample::Index, String),
    DeleteLine(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    InsertLine(prop::sample::Index, String),
    Truncate(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let value = prop_oneof![
        6 => one_of_words(VALUES),
        1 => one_of(&["\"30 s\"", "\"/a b\"", "{ prefix = \"/api\" }"]),
        2 => any::<String>().prop_map(|s| format!("{s:?}")),
        1 => config_text(),
    ];
    let line = prop_oneof![
        2 => one_of(INSERTED_LINES),
        1 => config_text(),
    ];
    let index = any::<prop::sample::Index>;
    prop_oneof![
        8 => (index(), value).prop_map(|(i, v)| Edit::Value(i, v)),
        4 => (index(), one_of_words(PREFIXES)).prop_map(|(i, v)| Edit::Prefix(i, v)),
        2 => index().prop_map(Edit::DeleteLine),
        2 => index().prop_map(Edit::DuplicateLine),
        2 => (index(), line).prop_map(|(i, l)| Edit::InsertLine(i, l)),
        1 => index().prop_map(Edit::Truncate),
    ]
}

/// The example file with the edits applied, in order.
fn edited_example(edits: &[Edit]) -> String {
    let mut lines: Vec<String> = EXAMPLE.lines().map(str::to_owned).collect();
    for edit in edits {
        match edit {
            Edit::Value(index, value) => {
                set_value(&mut lines, |_| true, index, value);
            }
            Edit::Prefix(index, value) => {
                set_value(&mut lines, |key| key == "prefix", index, value);
            }
            Edit::DeleteLine(index) if !lines.is_empty() => {
                lines.remove(index.index(lines.len()));
            }
            Edit::DuplicateLine(index) if !lines.is_empty() => {
                let at = index.index(lines.len());
                lines.insert(at, lines[at].clone());
            }
            Edit::InsertLine(index, line) => {
                let at = index.index(lines.len() + 1);
                lines.insert(at, line.clone());
            }
            Edit::Truncate(index) => {
                let text = lines.join("\n");
                let mut end = index.index(text.len() + 1);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                lines = text[..end].lines().map(str::to_owned).collect();
            }
            Edit::DeleteLine(_) | Edit::DuplicateLine(_) => {}
        }
    }
    lines.join("\n")
}

/// Sets the value of the `index`-th `key = value` line whose key passes `wanted`.
fn set_value(
    lines: &mut [String],
    wanted: impl Fn(&str) -> bool,
    index: &prop::sample::Index,
    value: &str,
) {
    let assignments: Vec<(usize, String)> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#'))
        .filter_map(|(i, line)| Some((i, line.split_once(" = ")?.0.to_owned())))
        .filter(|(_, key)| wanted(key))
        .collect();
    if !assignments.is_empty() {
        let (at, key) = &assignments[index.index(assignments.len())];
        lines[*at] = format!("{key} = {value}");
    }
}

#[test]
fn config_parse_survives_arbitrary_text() {
    let tally = run("Config::parse (text)", 2_000, config_text(), |text| {
        check_config(text)
    });
    reached(&tally, "problems", 90);
}

#[test]
fn config_parse_survives_edits_of_the_example() {
    assert!(check_config(EXAMPLE).is_ok_and(|outcome| outcome == "valid"));
    let strategy = prop::collection::vec(edit(), 1..4);
    let tally = run("Config::parse (edited example)", 1_000, strategy, |edits| {
        check_config(&edited_example(edits))
    });
    reached(&tally, "valid", 5);
    reached(&tally, "problems", 20);
}

// ---------------------------------------------------------------------------------------
// Regressions and documented behaviour found by the properties above.
// ---------------------------------------------------------------------------------------

/// `http::Uri` drops a fragment while parsing (hyper builds every request's URI with it), so
/// `check_target` never sees the `#` that `security.md` says to refuse: it checks and forwards
/// the part before it. Checked and forwarded bytes still agree; the fragment never reaches
/// YouTrack. The `Fragment` error is therefore reachable through `check_path` only.
#[test]
fn a_fragment_is_dropped_before_the_target_is_checked() {
    let uri = Uri::from_static("/api#/../hub/api");
    let host = HeaderValue::from_static("yt.example.com");
    let target = check_target(&Method::GET, Version::HTTP_11, &uri, &[&host]);
    assert_eq!(
        target.map(|t| (t.path, t.path_and_query)),
        Ok(("/api", "/api"))
    );
    assert_eq!(check_path("/api#/../hub/api"), Err(PathError::Fragment));
}

// ---------------------------------------------------------------------------------------
// Token identity: every spelling of a permanent token is one token.
// ---------------------------------------------------------------------------------------

/// A permanent token's parts, and how to spell it.
#[derive(Debug, Clone)]
struct Spelled {
    login: String,
    reference: String,
    secret: String,
    dash: bool,
    unpadded: bool,
    url_safe: bool,
    trailing_dot: bool,
    upper_login: bool,
}

fn spelled() -> impl Strategy<Value = Spelled> {
    (
        "[a-z][a-z0-9._-]{0,14}",
        prop_oneof!["[0-9]{1,3}-[0-9]{1,4}", "[ -~]{1,24}"],
        "[A-Za-z0-9]{30}",
        any::<[bool; 5]>(),
    )
        .prop_map(|(login, reference, secret, flags)| Spelled {
            login,
            reference,
            secret,
            dash: flags[0],
            unpadded: flags[1],
            url_safe: flags[2],
            trailing_dot: flags[3],
            upper_login: flags[4],
        })
}

impl Spelled {
    fn canonical(&self) -> String {
        use base64::Engine as _;
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        format!(
            "perm:{}.{}.{}",
            encode(&self.login),
            encode(&self.reference),
            self.secret
        )
    }

    fn spelling(&self) -> String {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        use base64::Engine as _;
        let engine = match (self.url_safe, self.unpadded) {
            (false, false) => STANDARD,
            (false, true) => STANDARD_NO_PAD,
            (true, false) => URL_SAFE,
            (true, true) => URL_SAFE_NO_PAD,
        };
        let login = if self.upper_login {
            self.login.to_uppercase()
        } else {
            self.login.clone()
        };
        let prefix = if self.dash { "perm-" } else { "perm:" };
        let dot = if self.trailing_dot { "." } else { "" };
        format!(
            "{prefix}{}.{}.{}{dot}",
            engine.encode(login),
            engine.encode(&self.reference),
            self.secret
        )
    }
}

#[test]
fn every_spelling_of_a_permanent_token_has_one_identity() {
    use hubgate::auth::cache::token_hash;
    use hubgate::auth::identity::identity;
    let tally = run("token identity", 5_000, spelled(), |spelled| {
        let canonical = spelled.canonical();
        let spelling = spelled.spelling();
        prop_assert_eq!(identity(&canonical), token_hash(&canonical));
        prop_assert_eq!(identity(&spelling), identity(&canonical), "{}", spelling);
        // Another secret is another token, however it is spelled.
        let mut other = spelled.clone();
        other.secret = other.secret.chars().rev().collect();
        if other.secret != spelled.secret {
            prop_assert_ne!(identity(&other.spelling()), identity(&canonical));
        }
        Ok(if spelling == canonical {
            "canonical"
        } else {
            "respelled"
        })
    });
    reached(&tally, "respelled", 80);
}
