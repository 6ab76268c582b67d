//! `[[routes]]`: canonical prefixes, references to upstreams and services, and no two
//! prefixes that a request path could confuse.

use std::time::Duration;

use http::Method;

use super::checks::Problems;
use super::raw::{Field, RawRoute};
use super::{Capability, Route};

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
    let fields = CapabilityFields {
        mode: raw.capability,
        param: raw.capability_param,
        methods: raw.capability_methods,
    };
    let capability = capability(p, base, fields, has_service, allow_anonymous);
    let response_timeout = raw
        .response_timeout
        .map(|field| p.timeout(&key("response_timeout"), Some(field), Duration::ZERO));
    let idle_timeout = raw
        .idle_timeout
        .map(|field| p.timeout(&key("idle_timeout"), Some(field), Duration::ZERO));
    if has_service && service.is_none() {
        return None;
    }
    Some(Route {
        prefix: prefix?.into(),
        upstream: upstream?,
        service,
        allow_anonymous,
        capability,
        response_timeout,
        idle_timeout,
    })
}

/// The raw `capability*` keys of one route.
struct CapabilityFields {
    mode: Option<Field<String>>,
    param: Option<Field<String>>,
    methods: Option<Field<Vec<String>>>,
}

/// Methods a capability request may use when `capability_methods` is left out: YouTrack's
/// URL-authorized resources are all read with GET (HEAD is GET without the body).
const CAPABILITY_METHODS: [Method; 2] = [Method::GET, Method::HEAD];

/// `capability`, `capability_param` and `capability_methods`: which requests without a
/// credential YouTrack authorizes by their URL, so the gateway lets them through.
fn capability(
    p: &mut Problems,
    base: &str,
    fields: CapabilityFields,
    has_service: bool,
    allow_anonymous: bool,
) -> Option<Capability> {
    let key = |field: &str| format!("{base}.{field}");
    let (param_set, methods_set) = (fields.param.is_some(), fields.methods.is_some());
    let mode = p.text(&key("capability"), fields.mode);
    let param = p.text(&key("capability_param"), fields.param);
    let methods = p.strings(&key("capability_methods"), fields.methods);
    let Some(mode) = mode else {
        for (field, set) in [
            ("capability_param", param_set),
            ("capability_methods", methods_set),
        ] {
            if set {
                p.add(
                    &key(field),
                    r#"only used with capability = "always" or "param""#,
                );
            }
        }
        return None;
    };
    let param = match (mode.as_str(), param) {
        ("always", None) => None,
        ("always", Some(_)) => {
            let why =
                r#"only used with capability = "param" (with "always" no parameter is needed)"#;
            p.add(&key("capability_param"), why);
            return None;
        }
        ("param", Some(param)) => {
            if !check_param(p, &key("capability_param"), &param) {
                return None;
            }
            Some(param)
        }
        ("param", None) => {
            let why = r#"missing (the query parameter that carries the capability, e.g. "sign")"#;
            p.add(&key("capability_param"), why);
            return None;
        }
        (other, _) => {
            let why = r#"is not a capability (use "always" or "param")"#;
            p.add(&key("capability"), format!("{other:?} {why}"));
            return None;
        }
    };
    if !has_service {
        let why = "needs a service: a route without a service is public already";
        p.add(&key("capability"), why);
    }
    if allow_anonymous {
        let why = "allow_anonymous = true already lets every request without a credential through";
        p.add(&key("capability"), why);
    }
    let methods = match methods {
        None => CAPABILITY_METHODS.to_vec(),
        Some(names) => capability_methods(p, &key("capability_methods"), &names)?,
    };
    Some(Capability { param, methods })
}

fn check_param(p: &mut Problems, key: &str, name: &str) -> bool {
    let fine = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !fine {
        p.add(
            key,
            format!("{name:?} must be a query parameter name of letters, digits and -._~"),
        );
    }
    fine
}

fn capability_methods(p: &mut Problems, key: &str, names: &[String]) -> Option<Vec<Method>> {
    if names.is_empty() {
        p.add(key, "is empty (leave it out for GET and HEAD)");
        return None;
    }
    let mut methods = Vec::new();
    for name in names {
        match Method::from_bytes(name.as_bytes()) {
            Ok(method) if name.bytes().all(|b| b.is_ascii_uppercase()) => methods.push(method),
            _ => {
                p.add(
                    key,
                    format!("{name:?} is not an HTTP method in upper case (e.g. \"GET\")"),
                );
                return None;
            }
        }
    }
    Some(methods)
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
