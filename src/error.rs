//! `GatewayError`: every way a request can fail at the gateway, and the one place that turns
//! a failure into a status, a challenge and a JSON body (`design.md`, "Responses the gateway
//! itself makes"). Clients get the status and a short reason; the cause goes to the log.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};

use crate::auth::bearer::BearerError;
use crate::auth::introspect::BackendError;
use crate::path::PathError;
use crate::GatewayBody;

/// What a 503 asks clients to wait before trying again, in seconds.
const RETRY_AFTER_SECONDS: &str = "5";

/// Why the gateway answered a request itself instead of forwarding it.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request target is ambiguous or malformed (`security.md`, "The path").
    #[error("{0}")]
    BadTarget(#[from] PathError),
    /// A malformed request outside the target: headers the gateway refuses to pass on.
    #[error("{0}")]
    BadRequest(&'static str),
    /// More request headers than `server.max_headers` (HTTP/2; HTTP/1.1 is cut by the parser).
    #[error("too many request header fields")]
    HeadersTooLarge,
    /// An `Expect` the gateway cannot meet (anything but `100-continue`).
    #[error("only Expect: 100-continue is supported")]
    ExpectationFailed,
    /// The `Authorization` header or query credentials are malformed or doubled.
    #[error("{0}")]
    BadCredential(#[from] BearerError),
    /// A protected route and no bearer token.
    #[error("a bearer token is required")]
    MissingToken,
    /// A form of HTTP Basic the configuration refuses (`introspection.basic_credentials`).
    #[error("{0} in Basic credentials is not accepted here")]
    BasicRefused(&'static str),
    /// `access_token` in the query: never passed on unchecked.
    #[error("send the token in the Authorization header, not in the query")]
    QueryToken,
    /// Unknown, deleted, expired or banned token, or one granted for no configured service.
    #[error("the token is not valid")]
    InvalidToken,
    /// A token, or a user, revoked at the gateway: answered exactly like `InvalidToken`.
    #[error("the token is not valid")]
    Revoked,
    /// A valid token whose scope lacks the route's service (its Hub ID).
    #[error("the token is not granted for service {0}")]
    InsufficientScope(String),
    /// The introspection backend failed and nothing usable was cached.
    #[error("token check unavailable: {0}")]
    AuthUnavailable(BackendError),
    /// The client spent its budget of cache misses (`introspection.client_miss_rate`).
    #[error("too many requests with unknown tokens; try again later")]
    RateLimited(std::time::Duration),
    /// No route covers the path.
    #[error("no route for this path")]
    NoRoute,
    /// The upstream could not be reached or broke the exchange.
    #[error("upstream {upstream} failed: {cause}")]
    UpstreamFailed {
        upstream: String,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The upstream sent no response head within `response_timeout`.
    #[error("upstream {upstream} did not answer in time")]
    UpstreamTimeout { upstream: String },
    /// Every connection the upstream may have stayed busy for `queue_timeout`.
    #[error("upstream {upstream} has no free connection")]
    UpstreamBusy { upstream: String },
    /// The request body made no progress for `server.request_body_timeout`.
    #[error("the request body stopped arriving")]
    RequestBodyTimeout,
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadTarget(_)
            | GatewayError::BadRequest(_)
            | GatewayError::BadCredential(_) => StatusCode::BAD_REQUEST,
            GatewayError::MissingToken
            | GatewayError::QueryToken
            | GatewayError::BasicRefused(_)
            | GatewayError::InvalidToken
            | GatewayError::Revoked => StatusCode::UNAUTHORIZED,
            GatewayError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            GatewayError::AuthUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GatewayError::ExpectationFailed => StatusCode::EXPECTATION_FAILED,
            GatewayError::NoRoute => StatusCode::NOT_FOUND,
            GatewayError::UpstreamFailed { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::UpstreamBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::RequestBodyTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// For upstream failures, the `kind` label of `hubgate_upstream_errors_total`.
    pub fn upstream_kind(&self) -> Option<&'static str> {
        match self {
            GatewayError::UpstreamTimeout { .. } => Some("timeout"),
            GatewayError::UpstreamBusy { .. } => Some("saturated"),
            GatewayError::UpstreamFailed { cause, .. } => {
                let connect = matches!(
                    cause.downcast_ref::<crate::forward::pool::SendError>(),
                    Some(crate::forward::pool::SendError::Connect(_))
                );
                Some(if connect { "connect" } else { "protocol" })
            }
            _ => None,
        }
    }

    /// The `error` code of the JSON body (RFC 6749 / Hub style).
    fn code(&self) -> &'static str {
        match self {
            GatewayError::BadTarget(_)
            | GatewayError::BadRequest(_)
            | GatewayError::BadCredential(_) => "invalid_request",
            GatewayError::MissingToken
            | GatewayError::QueryToken
            | GatewayError::BasicRefused(_) => "unauthorized",
            GatewayError::InvalidToken | GatewayError::Revoked => "invalid_token",
            GatewayError::InsufficientScope(_) => "insufficient_scope",
            GatewayError::AuthUnavailable(_) => "temporarily_unavailable",
            GatewayError::RateLimited(_) => "too_many_requests",
            GatewayError::HeadersTooLarge => "request_header_fields_too_large",
            GatewayError::ExpectationFailed => "expectation_failed",
            GatewayError::NoRoute => "not_found",
            GatewayError::UpstreamFailed { .. } => "bad_gateway",
            GatewayError::UpstreamTimeout { .. } => "gateway_timeout",
            GatewayError::UpstreamBusy { .. } => "temporarily_unavailable",
            GatewayError::RequestBodyTimeout => "request_timeout",
        }
    }

    /// What the client is told: never an upstream's internals.
    fn description(&self) -> String {
        match self {
            GatewayError::UpstreamFailed { .. } => "the upstream server is unavailable".into(),
            GatewayError::UpstreamTimeout { .. } => {
                "the upstream server did not answer in time".into()
            }
            GatewayError::AuthUnavailable(_) => "the token cannot be checked right now".into(),
            GatewayError::UpstreamBusy { .. } => "the upstream server is busy".into(),
            other => other.to_string(),
        }
    }

    /// The RFC 6750 challenge, for the cases `design.md` gives one.
    fn challenge(&self, realm: &str) -> Option<String> {
        let invalid_request = |why: &dyn std::fmt::Display| {
            format!(
                "Bearer realm=\"{realm}\", error=\"invalid_request\", error_description=\"{why}\""
            )
        };
        match self {
            GatewayError::BadRequest(why) => Some(invalid_request(why)),
            GatewayError::BadCredential(why) => Some(invalid_request(why)),
            GatewayError::MissingToken
            | GatewayError::QueryToken
            | GatewayError::BasicRefused(_) => Some(format!("Bearer realm=\"{realm}\"")),
            GatewayError::InvalidToken | GatewayError::Revoked => {
                Some(format!("Bearer realm=\"{realm}\", error=\"invalid_token\""))
            }
            GatewayError::InsufficientScope(service) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{service}\""
            )),
            _ => None,
        }
    }

    /// The response the gateway sends for this error.
    pub fn into_response(self, realm: &str) -> Response<GatewayBody> {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.description(),
        })
        .to_string();
        let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            GatewayError::AuthUnavailable(_) | GatewayError::UpstreamBusy { .. } => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            GatewayError::RateLimited(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        if let Some(challenge) = self.challenge(realm) {
            if let Ok(value) = HeaderValue::try_from(challenge) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_design_table() {
        let upstream = || "youtrack".to_string();
        let cases = [
            (GatewayError::BadTarget(PathError::DotSegment), 400),
            (GatewayError::BadRequest("x"), 400),
            (GatewayError::ExpectationFailed, 417),
            (GatewayError::HeadersTooLarge, 431),
            (GatewayError::NoRoute, 404),
            (
                GatewayError::UpstreamFailed {
                    upstream: upstream(),
                    cause: "refused".into(),
                },
                502,
            ),
            (
                GatewayError::UpstreamTimeout {
                    upstream: upstream(),
                },
                504,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.into_response("youtrack").status().as_u16(), status);
        }
    }

    #[test]
    fn bad_request_carries_a_challenge_and_upstream_errors_hide_their_cause() {
        let response = GatewayError::BadRequest("bad header").into_response("yt");
        let challenge = response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or_default();
        assert_eq!(
            challenge,
            "Bearer realm=\"yt\", error=\"invalid_request\", error_description=\"bad header\""
        );
        let error = GatewayError::UpstreamFailed {
            upstream: "youtrack".into(),
            cause: "connect to 10.0.0.7:8080 refused".into(),
        };
        assert!(!error.description().contains("10.0.0.7"));
        assert!(error.challenge("yt").is_none());
    }
}
