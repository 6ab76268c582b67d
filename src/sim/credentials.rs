//! The credentials Hub and YouTrack accept on their APIs, wherever a bearer token is accepted:
//!
//! - `Bearer <token>` (the scheme word in any case; the token is everything after it, spaces
//!   included): a permanent or OAuth access token, valid for the services in its scope;
//! - `Basic base64(anything:perm:…)` or `perm-…`: exactly that permanent token, the user name
//!   ignored (what the YouTrack IntelliJ plugin sends);
//! - `Basic base64(login:<application password>)`: the user, for every service (application
//!   passwords carry no scope);
//! - `Basic base64(login:<account password>)`: the same (the simulated instance has no
//!   two-factor authentication).
//!
//! A wrong password is refused like an unknown token. Banned users authenticate; each endpoint
//! decides what a banned user gets, as for tokens.

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::directory::{token_key, Directory, Lookup, User, HUB_SERVICE_ID};
use super::http::{hub_error, SimBody};

/// What a request's `Authorization` header holds.
#[derive(Debug)]
pub enum Presented<'a> {
    Nothing,
    Bearer(&'a str),
    Basic {
        login: String,
        password: String,
    },
    /// Another scheme, or a value that does not parse.
    Malformed,
}

pub fn presented(request: &Request<Incoming>) -> Presented<'_> {
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return Presented::Nothing;
    };
    let Some((scheme, rest)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Presented::Malformed;
    };
    let rest = rest.trim_start_matches(' ');
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Presented::Bearer(rest);
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Presented::Malformed;
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded.as_deref().and_then(|text| text.split_once(':')) {
        Some((login, password)) => Presented::Basic {
            login: login.to_owned(),
            password: password.to_owned(),
        },
        None => Presented::Malformed,
    }
}

/// Why a credential is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    /// Unknown, deleted or malformed token; wrong password.
    Invalid,
    Expired,
    /// A valid token whose scope (these service IDs) lacks the service asked for.
    NotFor(Vec<String>),
}

/// How the caller authenticated, for `lastAccessTime`.
#[derive(Debug, Clone)]
enum Via {
    Token(String),
    AppPassword(String),
    Password,
}

/// A caller the credential identifies.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    via: Via,
}

/// Checks `presented` for `service` (a service ID).
pub fn authenticate(
    directory: &Directory,
    presented: &Presented<'_>,
    service: &str,
) -> Result<Authenticated, Refusal> {
    match presented {
        Presented::Nothing => Err(Refusal::Missing),
        Presented::Malformed => Err(Refusal::Invalid),
        Presented::Bearer(token) => by_token(directory, token, service),
        Presented::Basic { password, .. }
            if password.starts_with("perm:") || password.starts_with("perm-") =>
        {
            by_token(directory, password, service)
        }
        Presented::Basic { login, password } => by_password(directory, login, password),
    }
}

fn by_token(directory: &Directory, token: &str, service: &str) -> Result<Authenticated, Refusal> {
    match directory.lookup(token) {
        Lookup::Unknown => Err(Refusal::Invalid),
        Lookup::Expired => Err(Refusal::Expired),
        Lookup::Valid(record, _) if !record.scope.iter().any(|id| id == service) => {
            Err(Refusal::NotFor(record.scope.clone()))
        }
        Lookup::Valid(_, user) => Ok(Authenticated {
            user: user.clone(),
            via: Via::Token(token.to_owned()),
        }),
    }
}

fn by_password(
    directory: &Directory,
    login: &str,
    password: &str,
) -> Result<Authenticated, Refusal> {
    let user = directory.user_by_login(login).ok_or(Refusal::Invalid)?;
    let key = token_key(password);
    let app = directory
        .app_passwords
        .iter()
        .find(|entry| entry.user_id == user.id && entry.key == key);
    let via = match app {
        Some(entry) => Via::AppPassword(entry.id.clone()),
        None if !user.guest && !user.password.is_empty() && user.password == password => {
            Via::Password
        }
        None => return Err(Refusal::Invalid),
    };
    Ok(Authenticated {
        user: user.clone(),
        via,
    })
}

/// Stamps `lastAccessTime` of the permanent token or application password used.
pub fn touch(directory: &mut Directory, caller: &Authenticated) {
    match &caller.via {
        Via::Token(token) => directory.touch(token),
        Via::AppPassword(id) => directory.touch_app_password(id),
        Via::Password => {}
    }
}

/// Hub's 401 for a refused credential (no `WWW-Authenticate`, like the real one).
pub fn hub_unauthorized(directory: &Directory, refusal: &Refusal) -> Response<SimBody> {
    let description = match refusal {
        Refusal::Missing => "Token is not provided".to_owned(),
        Refusal::Invalid => "Token is invalid".to_owned(),
        Refusal::Expired => "Token is expired".to_owned(),
        Refusal::NotFor(scope) => format!(
            "Token is granted for {} and can't be used for {HUB_SERVICE_ID}",
            directory.scope_names(scope)
        ),
    };
    hub_error(StatusCode::UNAUTHORIZED, "invalid_token", &description)
}
