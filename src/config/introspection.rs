//! `[services.NAME]` and `[introspection]`: which Hub services exist, and how a token is
//! checked against them (service probes, or an RFC 7662 endpoint with a secret from a file).

use std::collections::BTreeMap;

use http::Uri;

use super::checks::{http_url, Problems};
use super::raw::{Field, RawIntrospection, RawService};
use super::validate::{check_name, secs, table_key, UNBOUNDED};
use super::{Backend, BasicForms, Introspection, Secret, Service};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BackendKind {
    Hub,
    Rfc7662,
}

/// The backend named in the file; `None` when that name is not valid (reported).
pub(super) fn backend_kind(p: &mut Problems, field: Option<Field<String>>) -> Option<BackendKind> {
    if field.is_none() {
        return Some(BackendKind::Hub);
    }
    match p.text("introspection.backend", field)?.as_str() {
        "hub" => Some(BackendKind::Hub),
        "rfc7662" => Some(BackendKind::Rfc7662),
        other => {
            p.add(
                "introspection.backend",
                format!(r#"{other:?} is not a backend (use "hub" or "rfc7662")"#),
            );
            None
        }
    }
}

type Probes = BTreeMap<String, Uri>;

pub(super) fn services(
    p: &mut Problems,
    raw: BTreeMap<String, RawService>,
    backend: Option<BackendKind>,
) -> (BTreeMap<String, Service>, Probes) {
    let mut services = BTreeMap::new();
    let mut probes = BTreeMap::new();
    // (id, key of the service that has it), to find ids used twice.
    let mut ids: Vec<(String, String)> = Vec::new();
    for (name, raw) in raw {
        let base = table_key("services", &name);
        check_name(p, &base, &name);
        let id_key = format!("{base}.id");
        let what = r#"the Hub service ID, e.g. "0-0-0-0-0""#;
        let id = p
            .required_text(&id_key, raw.id, what)
            .filter(|id| check_service_id(p, &id_key, id));
        if let Some(id) = &id {
            match ids.iter().find(|(seen, _)| seen.eq_ignore_ascii_case(id)) {
                Some((_, other)) => p.add(&id_key, format!("{id:?} is also the id of {other}")),
                None => ids.push((id.clone(), base.clone())),
            }
        }
        if backend == Some(BackendKind::Hub) {
            let key = format!("{base}.probe");
            let what = "the users/me URL that says whether a token is granted for this service";
            let probe = p
                .required_text(&key, raw.probe, what)
                .and_then(|text| http_url(p, &key, &text));
            if let Some(probe) = probe {
                probes.insert(name.clone(), probe.uri);
            }
        }
        if let Some(id) = id {
            services.insert(name, Service { id });
        }
    }
    (services, probes)
}

/// Visible ASCII, no quotes or backslashes: the id is sent in `scope="..."` challenges.
fn check_service_id(p: &mut Problems, key: &str, id: &str) -> bool {
    let fine = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if !fine {
        p.add(
            key,
            format!("{id:?} must be visible ASCII without spaces, quotes or backslashes"),
        );
    }
    fine
}

pub(super) fn introspection(
    p: &mut Problems,
    mut raw: RawIntrospection,
    backend: Option<BackendKind>,
    probes: Probes,
) -> Option<Introspection> {
    let timeout = p.timeout("introspection.timeout", raw.timeout.take(), secs(2));
    let max_concurrent = raw.max_concurrent.take();
    let max_concurrent = p.count(
        "introspection.max_concurrent",
        max_concurrent,
        64,
        1,
        UNBOUNDED,
    );
    let client_miss_rate = p.count(
        "introspection.client_miss_rate",
        raw.client_miss_rate.take(),
        20,
        0,
        1_000_000,
    );
    let ca_file = p.path("introspection.ca_file", raw.ca_file.take());
    if let Some(path) = &ca_file {
        p.readable_file("introspection.ca_file", path);
    }
    let basic = basic_forms(p, raw.basic_credentials.take(), backend);
    let backend = match backend? {
        BackendKind::Hub => {
            let rfc7662_only = [
                ("introspection.endpoint", raw.endpoint.is_some()),
                ("introspection.client_id", raw.client_id.is_some()),
                (
                    "introspection.client_secret_file",
                    raw.client_secret_file.is_some(),
                ),
            ];
            for (key, set) in rfc7662_only {
                if set {
                    p.add(key, r#"only used with backend = "rfc7662""#);
                }
            }
            Backend::Hub { probes }
        }
        BackendKind::Rfc7662 => rfc7662(p, raw)?,
    };
    Some(Introspection {
        backend,
        timeout,
        max_concurrent,
        client_miss_rate,
        ca_file,
        basic,
    })
}

/// `introspection.basic_credentials`: both forms with `hub`, the token form with `rfc7662`
/// (an introspection endpoint knows tokens, not passwords).
fn basic_forms(
    p: &mut Problems,
    field: Option<Field<Vec<String>>>,
    backend: Option<BackendKind>,
) -> BasicForms {
    let key = "introspection.basic_credentials";
    let hub = backend != Some(BackendKind::Rfc7662);
    let Some(names) = p.strings(key, field) else {
        return BasicForms {
            token: true,
            password: hub,
        };
    };
    let mut forms = BasicForms {
        token: false,
        password: false,
    };
    for name in &names {
        match name.as_str() {
            "token" => forms.token = true,
            "password" if hub => forms.password = true,
            "password" => p.add(
                key,
                r#""password" needs backend = "hub": an introspection endpoint cannot check passwords"#,
            ),
            other => p.add(
                key,
                format!(r#"{other:?} is not a form of Basic credentials (use "token" and/or "password")"#),
            ),
        }
    }
    forms
}

fn rfc7662(p: &mut Problems, raw: RawIntrospection) -> Option<Backend> {
    let key = "introspection.endpoint";
    let what = r#"the introspection URL, e.g. "https://idp.example.com/oauth2/introspect""#;
    let endpoint = p
        .required_text(key, raw.endpoint, what)
        .and_then(|text| http_url(p, key, &text));
    let key = "introspection.client_id";
    let client_id = p
        .required_text(
            key,
            raw.client_id,
            "the client ID hubgate authenticates with",
        )
        .filter(|id| {
            let fine = !id.is_empty() && !id.chars().any(char::is_control);
            if !fine {
                p.add(key, "must be non-empty, without control characters");
            }
            fine
        });
    let key = "introspection.client_secret_file";
    let secret_set = raw.client_secret_file.is_some();
    if !secret_set {
        p.add(key, "missing (a file holding the client secret)");
    }
    let client_secret = p
        .path(key, raw.client_secret_file)
        .and_then(|path| p.secret_file(key, &path));
    Some(Backend::Rfc7662 {
        endpoint: endpoint?.uri,
        client_id: client_id?,
        client_secret: Secret(client_secret?),
    })
}
