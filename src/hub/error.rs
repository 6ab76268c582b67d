//! [`HubError`]: why a Hub admin call failed, worded for operators — the step that failed
//! and what Hub said (its `error` and `error_description`, shortened), never a token.

use std::fmt;

use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::REQUEST_TIMEOUT;
use crate::tls::TlsError;

/// How much of Hub's `error_description` an error repeats.
const MAX_DETAIL_CHARS: usize = 300;

/// Which request failed: every [`HubError`] from Hub names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ListServices,
    RegisterService,
    FindUser,
    ListPermanentTokens,
    DeletePermanentToken,
    ListRefreshTokens,
    DeleteRefreshToken,
    ListAppPasswords,
    DeleteAppPassword,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::ListServices => "listing services (GET services)",
            Step::RegisterService => "registering the service (POST services)",
            Step::FindUser => "finding the user (GET users)",
            Step::ListPermanentTokens => {
                "listing permanent tokens (GET users/{id}/permanenttokens)"
            }
            Step::DeletePermanentToken => {
                "deleting the permanent token (DELETE users/{id}/permanenttokens/{id})"
            }
            Step::ListRefreshTokens => "listing refresh tokens (GET users/{id}/refreshtokens)",
            Step::DeleteRefreshToken => {
                "deleting the refresh token (DELETE users/{id}/refreshtokens/{id})"
            }
            Step::ListAppPasswords => {
                "listing application passwords (GET users/{id}/applicationPasswords)"
            }
            Step::DeleteAppPassword => {
                "deleting the application password (DELETE users/{id}/applicationPasswords/{id})"
            }
        })
    }
}

/// Why a Hub admin call did not do what was asked. Messages are for operators: they name the
/// step and repeat what Hub said, never a token.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("hub.url: {0:?} is not usable as Hub's base URL")]
    BadUrl(String),
    #[error("hub.admin_token_file: the token holds characters not allowed in an HTTP header")]
    BadAdminToken,
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{step}: Hub unreachable: {cause}")]
    Unreachable { step: Step, cause: String },
    #[error("{step}: Hub did not answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout { step: Step },
    #[error("{step}: Hub answered {}{detail}", status_text(*.status))]
    Status {
        step: Step,
        status: u16,
        /// Hub's `error` and `error_description`, shortened, or empty.
        detail: String,
    },
    #[error("{step}: {problem}")]
    Malformed { step: Step, problem: String },
    #[error(
        "not a permanent token (expected `perm:` or `perm-`, base64(login), `.`, \
         base64(token ID or name), `.`, 30 letters and digits)"
    )]
    NotPermanentToken,
    #[error("no user with login {login:?} in Hub")]
    UserNotFound { login: String },
    #[error("{count} users in Hub have the login {login:?}")]
    AmbiguousUser { login: String, count: usize },
    #[error(
        "user {login:?} has no permanent token with ID or name {reference:?} (already deleted?)"
    )]
    TokenNotFound { login: String, reference: String },
    #[error(
        "user {login:?} has {count} permanent tokens with ID or name {reference:?}; \
         nothing deleted (delete the right one in Hub)"
    )]
    AmbiguousToken {
        login: String,
        reference: String,
        count: usize,
    },
    #[error("Hub lists no service whose applicationName is YouTrack")]
    NoYouTrackService,
    #[error(
        "cannot tell YouTrack's URL: hub.url does not end in /hub and YouTrack's service in \
         Hub has no http(s) homeUrl"
    )]
    NoYouTrackUrl,
}

/// `403 Forbidden`.
fn status_text(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// ` (error: description)` from Hub's error body; a hint for redirects; empty otherwise.
pub(super) fn error_detail(status: StatusCode, body: &[u8]) -> String {
    if status.is_redirection() {
        return " (a redirect: is hub.url Hub's REST base, e.g. https://youtrack.example.com/hub?)"
            .to_owned();
    }
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let text = |key: &str| answer.get(key).and_then(Value::as_str).map(printable);
    match (text("error"), text("error_description")) {
        (Some(error), Some(description)) => format!(" ({error}: {description})"),
        (Some(one), None) | (None, Some(one)) => format!(" ({one})"),
        (None, None) => String::new(),
    }
}

/// Hub's text, shortened and without control characters, fit for one log line.
fn printable(text: &str) -> String {
    let mut shown: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DETAIL_CHARS)
        .collect();
    if text.chars().count() > MAX_DETAIL_CHARS {
        shown.push('…');
    }
    shown
}
