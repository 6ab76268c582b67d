//! Hub's browser login and the OAuth implicit flow the web UI uses.
//!
//! - `GET /hub/api/rest/oauth2/auth?response_type=token&client_id&redirect_uri&scope&state`:
//!   the client must be a registered service and `redirect_uri` a path on this server
//!   (`/…`, not `//…`), a URL of this server's origin, or one registered for the client;
//!   anything else is 400 and nothing is redirected. With a valid Hub session cookie: 302 to
//!   `redirect_uri#access_token=…&token_type=Bearer&expires_in=3600&scope=…&state=…` with a
//!   new access token of the session's user (an unknown scope: `#error=invalid_scope`);
//!   without: 302 to `/hub/auth/login?<the same query>`. Other response types (the code
//!   flow is not simulated) answer with the echo, like every other unsimulated path.
//! - `GET /hub/auth/login`: the login form (its script is `/hub/auth/login.js`, no inline
//!   script), posting `username`, `password` and the hidden `return` target to
//! - `POST /hub/api/rest/oauth2/interactive/login`: checks the account password; on success
//!   sets `hub_session` (`Path=/hub; HttpOnly; SameSite=Lax`) and 302s to `return`, which must
//!   be a relative `/hub/api/rest/oauth2/auth?…` (400 otherwise); a wrong password is 401 and
//!   a banned user 403, both with the form again.

use std::collections::HashMap;
use std::sync::Mutex;

use http::header::{HeaderValue, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::directory::{Directory, HUB_SERVICE_ID};
use super::http::{
    cookie, hub_error, param, params, percent_encode, query, read_body, typed, SimBody,
};
use super::oauth::ACCESS_TOKEN_LIFETIME;
use super::public::origin;
use super::{lock, Shared};

pub const PAGE: &str = "/hub/auth/login";
pub const SCRIPT: &str = "/hub/auth/login.js";
const COOKIE: &str = "hub_session";
const AUTHORIZE: &str = "/hub/api/rest/oauth2/auth?";

const LOGIN_HTML: &str = include_str!("webui/login.html");
const LOGIN_JS: &str = include_str!("webui/login.js");

/// Hub sessions: cookie value → user ID.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, String>>);

type Answer = Result<Response<SimBody>, Response<SimBody>>;

/// An HTML page; scripts may only come from this origin.
pub fn html(status: StatusCode, body: String) -> Response<SimBody> {
    let mut response = typed(status, "text/html;charset=UTF-8", body);
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'"),
    );
    response
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn redirect(location: &str) -> Answer {
    let location = HeaderValue::from_str(location).map_err(|_| {
        hub_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid redirect",
        )
    })?;
    let mut response = typed(StatusCode::FOUND, "text/html;charset=UTF-8", "");
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

fn login_form(return_to: &str, error: &str) -> String {
    LOGIN_HTML
        .replace("{{return}}", &escape(return_to))
        .replace("{{error}}", &escape(error))
}

/// `GET /hub/auth/login`: the form, returning to the authorization request of its query.
pub fn page(request: &Request<Incoming>) -> Response<SimBody> {
    let return_to = match request.uri().query() {
        Some(query) if !query.is_empty() => format!("{AUTHORIZE}{query}"),
        _ => String::new(),
    };
    html(StatusCode::OK, login_form(&return_to, ""))
}

pub fn script() -> Response<SimBody> {
    typed(StatusCode::OK, "text/javascript;charset=UTF-8", LOGIN_JS)
}

/// Whether `uri` may receive a token for `client_id` reached at `origin`.
fn redirect_allowed(directory: &Directory, client_id: &str, uri: &str, origin: &str) -> bool {
    let path_here = |path: &str| path.starts_with('/') && !path.starts_with("//");
    if uri.contains('\\') || uri.chars().any(char::is_control) {
        return false;
    }
    let registered = directory
        .service(client_id)
        .is_some_and(|s| s.redirect_uris.iter().any(|r| r == uri));
    path_here(uri) || uri.strip_prefix(origin).is_some_and(path_here) || registered
}

/// `GET /hub/api/rest/oauth2/auth`.
pub async fn authorize(shared: &Shared, request: Request<Incoming>) -> Answer {
    let query = query(&request);
    if param(&query, "response_type") != Some("token") {
        return Ok(super::youtrack::echo(request).await);
    }
    let invalid = |d: &str| hub_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    let mut directory = shared.directory();
    let client_id = param(&query, "client_id").unwrap_or("");
    if directory
        .service(client_id)
        .is_none_or(|s| s.id != client_id)
    {
        return Err(hub_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Unknown client",
        ));
    }
    let redirect_uri = param(&query, "redirect_uri").ok_or_else(|| invalid("No redirect_uri"))?;
    let redirect_uri = redirect_uri.split('#').next().unwrap_or_default();
    if !redirect_allowed(&directory, client_id, redirect_uri, &origin(&request)) {
        return Err(invalid("redirect_uri is not registered for the client"));
    }
    let session = cookie(&request, COOKIE).and_then(|id| lock(&shared.sessions.0).get(id).cloned());
    let Some(user) = session.and_then(|id| directory.user(&id).cloned()) else {
        let original = request.uri().query().unwrap_or("");
        return redirect(&format!("{PAGE}?{original}"));
    };
    if user.banned {
        return Err(hub_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "User is banned",
        ));
    }
    let state = param(&query, "state").map(|s| format!("&state={}", percent_encode(s)));
    let state = state.unwrap_or_default();
    let scope = match directory.resolve_scope(param(&query, "scope").unwrap_or(HUB_SERVICE_ID)) {
        Ok(scope) if !scope.is_empty() => scope,
        _ => return redirect(&format!("{redirect_uri}#error=invalid_scope{state}")),
    };
    let token = directory.mint_access(&user.id, client_id, scope.clone(), ACCESS_TOKEN_LIFETIME);
    redirect(&format!(
        "{redirect_uri}#access_token={}&token_type=Bearer&expires_in={}&scope={}{state}",
        percent_encode(&token),
        ACCESS_TOKEN_LIFETIME.as_secs(),
        percent_encode(&scope.join(" ")),
    ))
}

/// `POST /hub/api/rest/oauth2/interactive/login`.
pub async fn interactive_login(shared: &Shared, request: Request<Incoming>) -> Response<SimBody> {
    let form = match read_body(request).await {
        Ok(body) => params(&body),
        Err(response) => return response,
    };
    let return_to = param(&form, "return").unwrap_or("");
    if !return_to.is_empty() && !return_to.starts_with(AUTHORIZE) {
        return hub_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unacceptable return URL",
        );
    }
    let login = param(&form, "username").unwrap_or("");
    let password = param(&form, "password").unwrap_or("");
    let user = shared
        .directory()
        .user_by_login(login)
        .filter(|u| !u.guest && !u.password.is_empty() && u.password == password)
        .cloned();
    let Some(user) = user else {
        let page = login_form(return_to, "Invalid username or password");
        return html(StatusCode::UNAUTHORIZED, page);
    };
    if user.banned {
        return html(
            StatusCode::FORBIDDEN,
            login_form(return_to, "User is banned"),
        );
    }
    let mut response = if return_to.is_empty() {
        let page = format!(
            "<!doctype html><title>Logged in</title><p>Logged in as {}</p>",
            escape(&user.login)
        );
        html(StatusCode::OK, page)
    } else {
        match redirect(return_to) {
            Ok(response) => response,
            Err(response) => return response,
        }
    };
    let session: String = (0..40).map(|_| fastrand::alphanumeric()).collect();
    lock(&shared.sessions.0).insert(session.clone(), user.id);
    let cookie = format!("{COOKIE}={session}; Path=/hub; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}
