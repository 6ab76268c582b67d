//! Small HTTP helpers shared by the simulator's endpoints: the response body type, JSON answers
//! in Hub's and YouTrack's error shapes, bearer and Basic credentials, query and form
//! parameters, percent-encoding.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::fields::{project, Fields};

/// Every simulated answer: a whole body (boxed `Full`, as cheap as before) or a stream
/// (Server-Sent Events).
pub type SimBody = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> SimBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// A response with `body`, `status` and `content-type`.
pub fn typed(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<SimBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Largest request body the simulated API reads (the echo streams and has no limit).
const MAX_API_BODY: usize = 1 << 20;

pub fn json_response(status: StatusCode, value: &Value) -> Response<SimBody> {
    typed(status, "application/json;charset=UTF-8", value.to_string())
}

pub fn empty(status: StatusCode) -> Response<SimBody> {
    let mut response = Response::new(full(Bytes::new()));
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

/// YouTrack's error body: `{"error","error_description"}` (the status's reason as `error`).
pub fn youtrack_error(status: StatusCode, description: &str) -> Response<SimBody> {
    let error = status.canonical_reason().unwrap_or("Error");
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// YouTrack's 401 body (no `WWW-Authenticate`, like the real one).
pub fn youtrack_unauthorized() -> Response<SimBody> {
    youtrack_error(StatusCode::UNAUTHORIZED, "You are not logged in.")
}

/// Percent-encodes everything but RFC 3986's unreserved characters (a space becomes `%20`,
/// CR LF `%0D%0A`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
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
