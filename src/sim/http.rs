//! Small HTTP helpers shared by the simulator's endpoints: JSON answers in Hub's and
//! YouTrack's error shapes, bearer and Basic credentials, query and form parameters.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::fields::{project, Fields};

pub type SimBody = Full<Bytes>;

/// Largest request body the simulated API reads (the echo streams and has no limit).
const MAX_API_BODY: usize = 1 << 20;

pub fn json_response(status: StatusCode, value: &Value) -> Response<SimBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

pub fn empty(status: StatusCode) -> Response<SimBody> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Hub's general error body: `{"error","error_code","error_description","error_developer_message"}`.
pub fn hub_error(status: StatusCode, error: &str, description: &str) -> Response<SimBody> {
    json_response(
        status,
        &json!({
            "error": error,
            "error_code": status.as_u16(),
            "error_description": description,
            "error_developer_message": description,
        }),
    )
}

/// YouTrack's 401 body (no `WWW-Authenticate`, like the real one).
pub fn youtrack_unauthorized() -> Response<SimBody> {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "Unauthorized", "error_description": "You are not logged in."}),
    )
}

/// The token of an `Authorization: Bearer …` header: the whole rest after the scheme and
/// its spaces (Hub tokens contain spaces).
pub fn bearer(request: &Request<Incoming>) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    let token = rest.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// HTTP Basic credentials (`id:secret`).
pub fn basic(request: &Request<Incoming>) -> Option<(String, String)> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Decoded `name=value` pairs of a query string or form body.
pub fn params(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text).into_owned().collect()
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

pub fn query(request: &Request<Incoming>) -> Vec<(String, String)> {
    params(request.uri().query().unwrap_or("").as_bytes())
}

/// Reads an API request body, up to 1 MiB.
pub async fn read_body(request: Request<Incoming>) -> Result<Bytes, Response<SimBody>> {
    Limited::new(request.into_body(), MAX_API_BODY)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|_| {
            hub_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Cannot read the body",
            )
        })
}

/// Applies the request's `fields=` to `value`; a malformed selection is Hub's 400.
pub fn with_fields(query: &[(String, String)], value: &Value) -> Result<Value, Response<SimBody>> {
    match param(query, "fields") {
        None => Ok(project(value, None)),
        Some(text) => match Fields::parse(text) {
            Some(fields) => Ok(project(value, Some(&fields))),
            None => Err(hub_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Malformed fields parameter",
            )),
        },
    }
}

/// `$skip` and `$top` of a paged listing (Hub's default page is 100).
pub fn page<T: Clone>(query: &[(String, String)], items: &[T]) -> (usize, usize, Vec<T>) {
    let number = |name: &str, default: usize| {
        param(query, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (skip, top) = (number("$skip", 0), number("$top", 100));
    let slice = items.iter().skip(skip).take(top).cloned().collect();
    (skip, top, slice)
}
