//! Central revocation: tokens (by fingerprint) and users (by login) the security team has
//! killed. The gateway refuses them itself (401 `invalid_token`) for the revocation's
//! lifetime, whatever Hub or the cache say. Revocations hold no raw token: a token revoked by
//! value is kept as the hex SHA-256 of it, one revoked from a log line as the fingerprint
//! shown there (at least 12 hex digits, matched as a prefix of the token's SHA-256).
//!
//! - `set`: the revocations in force, read lock-free on every request;
//! - `state`: the state file in `admin.state_dir` (atomic writes, torn files detected);
//! - `fleet`: the set shared by every instance through Redis.

pub mod client;
pub mod fleet;
pub mod request;
pub mod service;
pub mod set;
pub mod state;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Fewest hex digits a fingerprint may have: what the access log shows.
pub const MIN_FINGERPRINT_DIGITS: usize = 12;

/// What a revocation covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Lower-case hex, 12 to 64 digits: a prefix of the token's SHA-256 (64: the whole hash).
    Fingerprint(String),
    /// Every token of this user (compared case-insensitively).
    Login(String),
}

/// One revocation, as stored, published and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// 16 hex digits, random.
    pub id: String,
    #[serde(flatten)]
    pub target: Target,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; `None`: forever.
    #[serde(default)]
    pub expires: Option<u64>,
}

impl Revocation {
    /// A new revocation of `target`, from now, for `ttl` (`None`: forever).
    pub fn new(target: Target, reason: Option<String>, ttl: Option<Duration>) -> Revocation {
        let created = unix_now();
        Revocation {
            id: format!("{:016x}", fastrand::u64(..)),
            target,
            reason,
            created,
            expires: ttl.map(|ttl| created.saturating_add(ttl.as_secs().max(1))),
        }
    }

    /// Whether it is still in force at `now` (Unix seconds).
    pub fn in_force(&self, now: u64) -> bool {
        self.expires.is_none_or(|expires| now < expires)
    }
}

/// A revocation read from elsewhere (the fleet, the state file) is used only if the gateway
/// could have made it: a plain id, a lower-case fingerprint of 12 to 64 digits, a login.
pub fn validate(revocation: &Revocation) -> Result<(), String> {
    if !fleet::valid_id(&revocation.id) {
        return Err("an invalid id".to_owned());
    }
    match &revocation.target {
        Target::Fingerprint(fingerprint) => match normalize_fingerprint(fingerprint) {
            Ok(normal) if normal == *fingerprint => Ok(()),
            Ok(_) => Err("a fingerprint not in lower case".to_owned()),
            Err(why) => Err(why),
        },
        Target::Login(login) if login.is_empty() => Err("an empty login".to_owned()),
        Target::Login(_) => Ok(()),
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Checks a fingerprint: 12 to 64 hex digits; returns it in lower case.
pub fn normalize_fingerprint(text: &str) -> Result<String, String> {
    let digits = text.len();
    if !(MIN_FINGERPRINT_DIGITS..=64).contains(&digits) {
        return Err(format!(
            "a fingerprint has {MIN_FINGERPRINT_DIGITS} to 64 hex digits, not {digits}"
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a fingerprint has hex digits only".to_owned());
    }
    Ok(text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_serialize_flat_and_without_tokens() {
        let revocation = Revocation {
            id: "00000000000000ff".into(),
            target: Target::Fingerprint("3fa94c0e12b7".into()),
            reason: Some("leaked in a ticket".into()),
            created: 1_700_000_000,
            expires: None,
        };
        let json = serde_json::to_string(&revocation).unwrap();
        assert_eq!(
            json,
            r#"{"id":"00000000000000ff","fingerprint":"3fa94c0e12b7","reason":"leaked in a ticket","created":1700000000,"expires":null}"#
        );
        let back: Revocation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, revocation);
        let login: Revocation =
            serde_json::from_str(r#"{"id":"1","login":"alice","created":5,"expires":10}"#).unwrap();
        assert_eq!(login.target, Target::Login("alice".into()));
        assert!(login.in_force(9) && !login.in_force(10));
    }

    #[test]
    fn fingerprints_are_checked() {
        assert_eq!(
            normalize_fingerprint("3FA94C0E12B7").unwrap(),
            "3fa94c0e12b7"
        );
        assert!(normalize_fingerprint("3fa94c0e12b").is_err());
        assert!(normalize_fingerprint("3fa94c0e12bz").is_err());
        assert!(normalize_fingerprint(&"a".repeat(65)).is_err());
    }
}
