//! `[[routes]]`: canonical prefixes, references to upstreams and services, and no two
//! prefixes that a request path could confuse.

use super::checks::Problems;
use super::raw::RawRoute;
use super::Route;

/// Characters a prefix may hold besides ASCII letters and digits: the RFC 3986 `pchar` set
/// without `%`, plus `/`. Percent-escapes are not allowed, so every prefix has one spelling.
const PREFIX_PUNCTUATION: &str = "-._~!$&'()*+,=:@/";

pub(super) fn routes(
    p: &mut Problems,
    raw: Vec<RawRoute>,
    upstreams: &[String],
    services: &[String],
) -> Vec<Route> {
    if raw.is_empty() {
        p.add("routes", "at least one [[routes]] table is required");
    }
    let mut routes = Vec::new();
    // (prefix, key of the route that has it), to find prefixes given twice.
    let mut prefixes: Vec<(String, String)> = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let base = format!("routes[{index}]");
        let known = Known {
            upstreams,
            services,
        };
        if let Some(route) = route(p, &base, raw, known, &mut prefixes) {
            routes.push(route);
        }
    }
    routes
}

#[derive(Clone, Copy)]
struct Known<'a> {
    upstreams: &'a [String],
    services: &'a [String],
}

fn route(
    p: &mut Problems,
    base: &str,
    raw: RawRoute,
    known: Known<'_>,
    prefixes: &mut Vec<(String, String)>,
) -> Option<Route> {
    let key = |field: &str| format!("{base}.{field}");
    let prefix = p
        .required_text(&key("prefix"), raw.prefix, r#"a path prefix, e.g. "/api""#)
        .filter(|prefix| check_prefix(p, &key("prefix"), prefix))
        .filter(|prefix| check_unique(p, base, prefix, prefixes));
    let what = "the name of an [upstreams.NAME] table";
    let upstream = p
        .required_text(&key("upstream"), raw.upstream, what)
        .filter(|name| check_known(p, &key("upstream"), "upstream", name, known.upstreams));
    let has_service = raw.service.is_some();
    let service = p
        .text(&key("service"), raw.service)
        .filter(|name| check_known(p, &key("service"), "service", name, known.services));
    let allow_anonymous = p.flag(&key("allow_anonymous"), raw.allow_anonymous, false);
    if allow_anonymous && !has_service {
        let why = "true needs a service: a route without a service is public already";
        p.add(&key("allow_anonymous"), why);
    }
    if has_service && service.is_none() {
        return None;
    }
    Some(Route {
        prefix: prefix?.into(),
        upstream: upstream?,
        service,
        allow_anonymous,
    })
}

fn check_known(p: &mut Problems, key: &str, kind: &str, name: &str, names: &[String]) -> bool {
    if names.iter().any(|known| known == name) {
        return true;
    }
    let list = if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    };
    p.add(key, format!("no {kind} named {name:?} (known: {list})"));
    false
}

/// Reports the first way `prefix` is not canonical.
fn check_prefix(p: &mut Problems, key: &str, prefix: &str) -> bool {
    let problem = prefix_problem(prefix);
    if let Some(problem) = &problem {
        p.add(key, format!("{prefix:?} {problem}"));
    }
    problem.is_none()
}

fn prefix_problem(prefix: &str) -> Option<String> {
    if !prefix.starts_with('/') {
        return Some(r#"must start with "/""#.to_owned());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || PREFIX_PUNCTUATION.contains(c);
    if let Some(bad) = prefix.chars().find(|c| !allowed(*c)) {
        return Some(format!(
            "has {bad:?}: a prefix holds only letters, digits and {PREFIX_PUNCTUATION}"
        ));
    }
    if prefix.contains("//") {
        return Some(r#"has an empty segment ("//")"#.to_owned());
    }
    if prefix.len() > 1 && prefix.ends_with('/') {
        let trimmed = prefix.trim_end_matches('/');
        return Some(format!(
            "must not end with \"/\" (write {trimmed:?}: it covers {trimmed:?} and the paths under it)"
        ));
    }
    if prefix
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Some(r#"has a "." or ".." segment"#.to_owned());
    }
    None
}

/// No two routes may have prefixes that are equal, or equal when letter case is ignored.
fn check_unique(
    p: &mut Problems,
    route: &str,
    prefix: &str,
    prefixes: &mut Vec<(String, String)>,
) -> bool {
    let key = format!("{route}.prefix");
    let clash = prefixes
        .iter()
        .find(|(seen, _)| seen.eq_ignore_ascii_case(prefix));
    match clash {
        None => {
            prefixes.push((prefix.to_owned(), route.to_owned()));
            true
        }
        Some((seen, other)) if seen == prefix => {
            p.add(&key, format!("{prefix:?} is also the prefix of {other}"));
            false
        }
        Some((seen, other)) => {
            let why = "differ only in letter case, so one request path could match both";
            p.add(
                &key,
                format!("{prefix:?} and {other}.prefix {seen:?} {why}"),
            );
            false
        }
    }
}
