//! The request target: arbitrary bytes as a path-and-query for `check_path`, as a URI for
//! `check_target` where `http::Uri` accepts them, and as a path for the route table of
//! `design.md`. Asserts what `security.md` promises for every accepted target: it holds no
//! form a backend could read another way, the checked path is the received text before the
//! query, and the route selected covers it on a segment boundary.

#![no_main]

use std::sync::OnceLock;

use http::{HeaderValue, Method, Uri, Version};
use hubgate::config::Route;
use hubgate::path::{check_path, check_target, RouteTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let table = design_table();
    if let Ok(input) = std::str::from_utf8(data) {
        // `select` sees only checked paths in the gateway, but must not panic on any text.
        let _ = table.select(input);
        if let Ok(path) = check_path(input) {
            assert_canonical(input, path);
            assert_selected(table, path);
        }
    }
    let Ok(uri) = Uri::try_from(data) else {
        return;
    };
    let host = HeaderValue::from_static("yt.example.com");
    for (version, hosts) in [
        (Version::HTTP_11, &[&host][..]),
        (Version::HTTP_2, &[][..]),
        (Version::HTTP_10, &[][..]),
    ] {
        let Ok(target) = check_target(&Method::GET, version, &uri, hosts) else {
            continue;
        };
        // What is forwarded is what was checked.
        let forwarded = uri.path_and_query().map_or("", |pq| pq.as_str());
        assert_eq!(target.path_and_query, forwarded);
        assert_eq!(check_path(target.path_and_query), Ok(target.path));
        assert_canonical(target.path_and_query, target.path);
        // An origin-form target reaches the check byte for byte (up to a fragment, which
        // `http::Uri` drops).
        if data.first() == Some(&b'/') && !data.contains(&b'#') {
            assert_eq!(target.path_and_query.as_bytes(), data);
        }
    }
});

fn design_table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let route = |prefix: &str, service: Option<&str>| Route {
            prefix: prefix.to_owned(),
            upstream: "youtrack".to_owned(),
            service: service.map(str::to_owned),
            allow_anonymous: false,
        };
        RouteTable::new(vec![
            route("/hub/api/rest/oauth2", None),
            route("/api", Some("youtrack")),
            route("/rest", Some("youtrack")),
            route("/hub/api", Some("hub")),
            route("/hub/rest", Some("hub")),
            route("/", None),
        ])
    })
}

/// Everything `security.md` ("The path") promises about an accepted target.
fn assert_canonical(input: &str, path: &str) {
    let end = input.find('?').unwrap_or(input.len());
    assert_eq!(path, &input[..end], "the path is the text before the query");
    assert!(input.bytes().all(|b| b.is_ascii_graphic()), "{input:?}");
    assert!(!input.contains('#'), "{input:?}");
    assert!(path.starts_with('/'), "{input:?}");
    assert!(!path.contains("//"), "{input:?}");
    assert!(!path.contains(['\\', ';']), "{input:?}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        assert!(*segment != "." && *segment != "..", "{input:?}");
        let decoded = percent_decode(segment).expect("escapes are well formed");
        let decoded = String::from_utf8(decoded).expect("escapes decode to UTF-8");
        assert!(decoded != "." && decoded != "..", "{input:?}");
        assert!(!decoded.is_empty() || i + 1 == segments.len(), "{input:?}");
        assert!(
            !decoded.contains(['/', '\\', ';', '%', '?', '#']),
            "{input:?}"
        );
        assert!(!decoded.chars().any(|c| c.is_ascii_control()), "{input:?}");
        for c in decoded.chars().filter(|c| !c.is_ascii()) {
            let folds = c
                .to_lowercase()
                .chain(c.to_uppercase())
                .any(|m| m.is_ascii());
            assert!(!folds, "{input:?}: {c:?} folds onto ASCII");
        }
    }
    let lower = path.to_ascii_lowercase();
    for escape in ["%2e", "%2f", "%5c", "%25", "%3b", "%00", "%7f"] {
        assert!(!lower.contains(escape), "{input:?}");
    }
}

/// The route `select` picks covers the path on a segment boundary, and is the longest such.
fn assert_selected(table: &RouteTable, path: &str) {
    let covers = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
    };
    match table.select(path) {
        Ok(Some(route)) => {
            assert!(covers(&route.prefix), "{path:?} under {:?}", route.prefix);
            let longest = table.routes().iter().filter(|r| covers(&r.prefix));
            let longest = longest.map(|r| r.prefix.len()).max();
            assert_eq!(Some(route.prefix.len()), longest, "{path:?}");
        }
        Ok(None) => assert!(!table.routes().iter().any(|r| covers(&r.prefix))),
        Err(_) => {
            // A case variant of a protected prefix, or one once segments lose their trailing
            // dots and spaces.
            let lower = path.to_ascii_lowercase();
            let trimmed: Vec<String> = lower
                .split('/')
                .map(|segment| {
                    let mut segment = segment.to_owned();
                    while segment.ends_with('.')
                        || segment.ends_with("%20")
                        || segment.starts_with("%20")
                    {
                        if segment.ends_with('.') {
                            segment.truncate(segment.len() - 1);
                        } else if segment.ends_with("%20") {
                            segment.truncate(segment.len() - 3);
                        } else {
                            segment.drain(..3);
                        }
                    }
                    segment
                })
                .collect();
            let trimmed = trimmed.join("/");
            let variant = table.routes().iter().any(|r| {
                let under = |text: &str| {
                    text.strip_prefix(&r.prefix.to_ascii_lowercase())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                };
                r.service.is_some() && !covers(&r.prefix) && (under(&lower) || under(&trimmed))
            });
            let dotted = lower.split('/').any(|segment| {
                segment.contains("%20") && segment.replace("%20", "").bytes().all(|b| b == b'.')
            });
            assert!(variant || dotted, "{path:?} refused without a case or trim variant");
        }
    }
}

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
