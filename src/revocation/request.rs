//! `POST /revocations` bodies: parsed without ever echoing a value (it may be a token), and
//! checked into a [`Revocation`].

use std::time::Duration;

use serde::Deserialize;

use super::service::RevokeError;
use super::{normalize_fingerprint, Revocation, Target};
use crate::auth::bearer::check_bare_token;
use crate::auth::cache::hex;
use crate::auth::identity::identity;
use crate::config::{parse_duration, MAX_DURATION};

/// What `POST /revocations` accepts. Never `Debug`: it may hold a raw token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: Option<String>,
    pub fingerprint: Option<String>,
    pub login: Option<String>,
    reason: Option<String>,
    ttl: Option<Ttl>,
    #[serde(default)]
    pub in_hub: bool,
}

/// `"30s"`, `"720h"` or a number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum Ttl {
    Seconds(u64),
    Text(String),
}

pub fn parse(body: &[u8]) -> Result<RevokeRequest, RevokeError> {
    serde_json::from_slice(body).map_err(|error| {
        use serde_json::error::Category;
        let at = format!("line {}, column {}", error.line(), error.column());
        // serde's own message may quote a value, which could be a token: not returned.
        let message = match error.classify() {
            Category::Data => format!(
                "expected {{\"token\" | \"fingerprint\" | \"login\": \"…\", \"reason\"?, \
                 \"ttl\"?, \"in_hub\"?}} ({at})"
            ),
            _ => format!("the body is not JSON ({at})"),
        };
        RevokeError::BadRequest(message)
    })
}

/// Exactly one target; logins need a ttl; tokens and fingerprints default to forever.
pub fn revocation(request: RevokeRequest) -> Result<Revocation, RevokeError> {
    let bad = |message: &str| RevokeError::BadRequest(message.to_owned());
    let target = match (request.token, request.fingerprint, request.login) {
        (Some(token), None, None) if !token.is_empty() => {
            if token
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
            {
                return Err(bad("token: give the token alone, without \"Bearer \""));
            }
            check_bare_token(&token).map_err(|_| {
                bad(
                    "token: not a token as clients send it (visible ASCII, single spaces \
                     inside, nothing around it), so it could never match",
                )
            })?;
            Target::Fingerprint(hex(&identity(&token)))
        }
        (None, Some(fingerprint), None) => {
            Target::Fingerprint(normalize_fingerprint(&fingerprint).map_err(|e| bad(&e))?)
        }
        (None, None, Some(login)) if !login.trim().is_empty() && login.len() <= 256 => {
            if looks_like_token(&login) {
                return Err(bad(
                    "login: this is shaped like a token, not a login (revoke it with \"token\"); \
                     nothing was stored",
                ));
            }
            Target::Login(login)
        }
        (None, None, Some(_)) => return Err(bad("login: 1 to 256 characters")),
        (Some(_), None, None) => return Err(bad("token: empty")),
        _ => return Err(bad("give exactly one of token, fingerprint or login")),
    };
    let ttl = match request.ttl {
        None => None,
        Some(Ttl::Seconds(seconds)) => Some(Duration::from_secs(seconds)),
        Some(Ttl::Text(text)) => Some(parse_duration(&text).map_err(|_| {
            // The parser's message quotes the value, which could be a token sent by mistake.
            bad("ttl: not a duration (use e.g. \"24h\", \"90m\" or a number of seconds)")
        })?),
    };
    if ttl.is_some_and(|ttl| ttl.is_zero() || ttl > MAX_DURATION) {
        return Err(bad("ttl: more than 0 and at most 365 days"));
    }
    if matches!(target, Target::Login(_)) && ttl.is_none() {
        return Err(bad(
            "a login revocation needs a ttl (e.g. \"720h\"): a user may be trusted again later",
        ));
    }
    let reason = request.reason.filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.len() > 1024) {
        return Err(bad("reason: at most 1024 bytes"));
    }
    Ok(Revocation::new(target, reason, ttl))
}

/// Whether a value given as a login is really a token pasted into the wrong field: a login
/// is stored and logged as it is, so a token there would sit in clear.
fn looks_like_token(login: &str) -> bool {
    crate::auth::identity::canonical(login).is_some()
        || login.starts_with("perm:")
        || login.starts_with("perm-")
        || login.contains(';')
        || login.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Result<Revocation, RevokeError> {
        revocation(parse(body.as_bytes())?)
    }

    #[test]
    fn a_token_given_as_a_login_is_refused_and_not_echoed() {
        let tokens = [
            "perm:YWxpY2U=.NDctNQ==.jTdKq7TVSguKeQUN3UYU3AL9zGugTt",
            "perm-YWxpY2U.NDctNQ.jTdKq7TVSguKeQUN3UYU3AL9zGugTt",
            "1683065164852.be56.1e31.6ab6 0-0-0-0-0;1.MCwCFEzJ/cvl+k1aQ2Zx4Dvacw==",
        ];
        for token in tokens {
            let body = serde_json::json!({"login": token, "ttl": "1h"}).to_string();
            let error = request(&body).expect_err("refused");
            let shown = format!("{error} {error:?}");
            assert!(shown.contains("shaped like a token"), "{shown}");
            assert!(!shown.contains(&token[..12]), "{shown}");
        }
        for login in [
            "alice",
            "alice.smith@example.com",
            "alice+yt@example.com",
            "a-b_c",
        ] {
            let body = serde_json::json!({"login": login, "ttl": "1h"}).to_string();
            assert!(request(&body).is_ok(), "{login}");
        }
    }

    #[test]
    fn requests_are_checked_and_never_echo_a_token() {
        let token = "perm:YWxpY2U=.NDctNQ==.secretsecretsecret";
        let by_token = request(&format!(r#"{{"token":"{token}","reason":"leak"}}"#)).unwrap();
        assert_eq!(by_token.target, Target::Fingerprint(hex(&identity(token))));
        assert_eq!(by_token.expires, None);
        let by_login = request(r#"{"login":"alice","ttl":"24h"}"#).unwrap();
        assert_eq!(by_login.expires, Some(by_login.created + 24 * 3600));
        assert!(
            request(r#"{"login":"alice"}"#).is_err(),
            "logins need a ttl"
        );
        assert!(request(r#"{"fingerprint":"abc"}"#).is_err());
        assert!(request(r#"{"token":"a","login":"b","ttl":5}"#).is_err());
        assert!(request(r#"{}"#).is_err());
        for near_miss in [
            format!("Bearer {token}"),
            format!("{token} "),
            format!(" {token}"),
        ] {
            let body = serde_json::json!({ "token": near_miss }).to_string();
            assert!(
                request(&body).is_err(),
                "a token that can never match was accepted"
            );
        }
        for body in [
            format!(r#"{{"token":"{token}","ttl":"{token}"}}"#),
            format!(r#"{{"token":"{token}","in_hub":"{token}"}}"#),
            format!(r#"{{"tokn":"{token}"}}"#),
            format!(r#"{{"token":"{token}"#),
        ] {
            let Err(error) = request(&body) else {
                panic!("accepted a bad body");
            };
            assert!(!error.to_string().contains("secretsecret"), "{error}");
        }
    }
}
