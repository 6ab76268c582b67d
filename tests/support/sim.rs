//! Helpers for the simulator's contract tests: requests carrying a bearer token or Basic client
//! credentials, form and JSON bodies, and JSON answers checked for status and content type.

use std::net::SocketAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use super::{send, Answer};

pub const TOKEN_PATH: &str = "/hub/api/rest/oauth2/token";
pub const HUB_ME: &str = "/hub/api/rest/users/me?fields=id,login,name,banned,guest";
pub const YOUTRACK_ME: &str = "/api/users/me?fields=id,login,name,banned,guest";

/// The credentials a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Anonymous,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

impl Auth<'_> {
    fn header(self) -> Option<String> {
        match self {
            Auth::Anonymous => None,
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
            Auth::Basic(id, secret) => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{id}:{secret}"))
            )),
        }
    }
}

/// Sends `method target` with `auth` and an optional body of `content_type`.
pub async fn call_with_body(
    addr: SocketAddr,
    method: Method,
    target: &str,
    auth: Auth<'_>,
    body: Option<(&str, Bytes)>,
) -> Answer {
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .header("host", addr.to_string());
    if let Some(value) = auth.header() {
        builder = builder.header("authorization", value);
    }
    let bytes = match body {
        Some((content_type, bytes)) => {
            builder = builder.header("content-type", content_type);
            bytes
        }
        None => Bytes::new(),
    };
    let request = builder.body(Full::new(bytes)).expect("valid request");
    send(addr, request).await
}

/// Sends `method target` with `auth` and no body.
pub async fn call(addr: SocketAddr, method: Method, target: &str, auth: Auth<'_>) -> Answer {
    call_with_body(addr, method, target, auth, None).await
}

/// A GET with `auth`.
pub async fn fetch(addr: SocketAddr, target: &str, auth: Auth<'_>) -> Answer {
    call(addr, Method::GET, target, auth).await
}

/// Sends a JSON body.
pub async fn call_json(
    addr: SocketAddr,
    method: Method,
    target: &str,
    auth: Auth<'_>,
    body: &Value,
) -> Answer {
    let bytes = Bytes::from(body.to_string());
    call_with_body(
        addr,
        method,
        target,
        auth,
        Some(("application/json", bytes)),
    )
    .await
}

/// POSTs a form (`application/x-www-form-urlencoded`).
pub async fn post_form(
    addr: SocketAddr,
    target: &str,
    auth: Auth<'_>,
    form: &[(&str, &str)],
) -> Answer {
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let body = Some(("application/x-www-form-urlencoded", Bytes::from(encoded)));
    call_with_body(addr, Method::POST, target, auth, body).await
}

/// The JSON body of `answer`, after checking its status and its JSON content type.
pub fn json_body(answer: &Answer, status: u16) -> Value {
    assert_eq!(
        answer.status,
        StatusCode::from_u16(status).expect("status"),
        "{}",
        answer.text()
    );
    let content_type = answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?} of {}",
        answer.text()
    );
    serde_json::from_slice(&answer.body).expect("a JSON body")
}

/// Checks an RFC 6749 / Hub error answer: status, `error`, `error_code`, and no challenge.
pub fn assert_error(answer: &Answer, status: u16, error: &str) -> Value {
    let body = json_body(answer, status);
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_code"], status, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(answer.headers.get("www-authenticate").is_none());
    body
}

/// The sorted keys of a JSON object.
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A user's ID, found through `users?query=login:…` with a Hub-scoped token.
pub async fn user_id(addr: SocketAddr, token: &str, login: &str) -> String {
    let target = format!("/hub/api/rest/users?query=login:{login}&fields=id,login");
    let body = json_body(&fetch(addr, &target, Auth::Bearer(token)).await, 200);
    body["users"][0]["id"]
        .as_str()
        .expect("the user exists")
        .to_owned()
}
