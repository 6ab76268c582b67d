//! Signatures of what the fleet puts in Redis: whoever can write to it must not be able to
//! withdraw a revocation or lock a user out on every instance.
//!
//! Every message published on the channel and every entry of `{channel}:set` is a JSON object
//! with a `mac` member: HMAC-SHA-256, under the fleet's key (`fleet.secret_file`), of
//!
//! - `hubgate fleet v1` (what this is),
//! - the kind: `message` or `entry` (so one cannot pass for the other),
//! - the channel (so nothing is replayed into another fleet sharing the Redis),
//! - the object without its `mac`, as hubgate writes it: for a message its `op`, the
//!   revocation id and, for a put, the whole revocation (target, reason, created, expiry) and
//!   the publication time; for an entry the whole revocation;
//!
//! each part preceded by its length (8 bytes, big-endian), so no two inputs read alike. The
//! object is checked as hubgate itself reads it: it is parsed, written out again, and that is
//! what the MAC must match — anything the parser would not take into account cannot change
//! the meaning, and everything it takes into account is signed.
//!
//! A MAC made with `fleet.previous_secret_file` (a key being rotated out) is accepted too, and
//! reported as such so a stored entry can be signed again with the current key.

use ring::hmac;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::cache::hex;

/// First part of every signed input: the format and its version.
const DOMAIN: &[u8] = b"hubgate fleet v1";
/// The member that holds the MAC (64 hex digits).
const MAC: &str = "mac";

/// What is signed: a message on the channel or an entry of the stored set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Message,
    Entry,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::Message => b"message",
            Kind::Entry => b"entry",
        }
    }
}

/// Why a message or a stored entry was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rejection {
    /// No `mac` at all (an instance without keys, or anyone writing to Redis).
    Unsigned,
    /// A `mac` that neither key made.
    BadSignature,
    /// Not something hubgate writes (the reason never quotes the content).
    Malformed(String),
}

impl Rejection {
    /// The `reason` label of `hubgate_fleet_rejected_total`.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::BadSignature => "bad_signature",
            Rejection::Malformed(_) => "malformed",
        }
    }

    /// For the log.
    pub(super) fn describe(&self) -> String {
        match self {
            Rejection::Unsigned => "unsigned".to_owned(),
            Rejection::BadSignature => "bad_signature (signed with neither fleet.secret_file nor \
                 fleet.previous_secret_file)"
                .to_owned(),
            Rejection::Malformed(why) => format!("malformed: {why}"),
        }
    }
}

/// Which key made a MAC that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignedWith {
    Current,
    Previous,
}

/// The fleet's keys, bound to its channel.
pub(super) struct Keys {
    current: hmac::Key,
    previous: Option<hmac::Key>,
    channel: String,
}

impl Keys {
    /// `current` signs and verifies, `previous` only verifies.
    pub(super) fn new(current: &str, previous: Option<&str>, channel: &str) -> Keys {
        let key = |secret: &str| hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        Keys {
            current: key(current),
            previous: previous.map(key),
            channel: channel.to_owned(),
        }
    }

    /// `value` (which serializes to a JSON object) as JSON, its `mac` the last member.
    pub(super) fn sign(&self, kind: Kind, value: &impl Serialize) -> String {
        let body = to_json(value);
        let tag = hmac::sign(&self.current, &self.input(kind, body.as_bytes()));
        let open = body.strip_suffix('}').unwrap_or(&body);
        let separator = if open.ends_with('{') { "" } else { "," };
        format!(r#"{open}{separator}"{MAC}":"{}"}}"#, hex(tag.as_ref()))
    }

    /// What a signed `bytes` says, if one of the keys signed it for this channel and `kind`.
    pub(super) fn open<T: Serialize + DeserializeOwned>(
        &self,
        kind: Kind,
        bytes: &[u8],
    ) -> Result<(T, SignedWith), Rejection> {
        let mut object: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|error| Rejection::Malformed(super::json_problem(&error)))?;
        let mac = match object.remove(MAC) {
            None => return Err(Rejection::Unsigned),
            Some(Value::String(mac)) => mac,
            Some(_) => return Err(malformed("its mac is not a string")),
        };
        let tag = from_hex(&mac).ok_or_else(|| malformed("its mac is not 64 hex digits"))?;
        let value: T = serde_json::from_value(Value::Object(object))
            .map_err(|error| Rejection::Malformed(super::json_problem(&error)))?;
        let input = self.input(kind, to_json(&value).as_bytes());
        if hmac::verify(&self.current, &input, &tag).is_ok() {
            return Ok((value, SignedWith::Current));
        }
        match &self.previous {
            Some(previous) if hmac::verify(previous, &input, &tag).is_ok() => {
                Ok((value, SignedWith::Previous))
            }
            _ => Err(Rejection::BadSignature),
        }
    }

    /// The bytes a MAC covers (see the module's documentation).
    fn input(&self, kind: Kind, body: &[u8]) -> Vec<u8> {
        let parts = [DOMAIN, kind.label(), self.channel.as_bytes(), body];
        let mut input = Vec::with_capacity(parts.iter().map(|part| 8 + part.len()).sum());
        for part in parts {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part);
        }
        input
    }
}

fn malformed(why: &str) -> Rejection {
    Rejection::Malformed(why.to_owned())
}

fn to_json(value: &impl Serialize) -> String {
    // Revocations and messages are plain data: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// 64 hex digits (either case) as 32 bytes.
fn from_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(high * 16 + low).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::{Revocation, Target};

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const OLD: &str = "fedcba9876543210fedcba9876543210";
    const CHANNEL: &str = "hubgate:revocations";

    fn revocation() -> Revocation {
        Revocation {
            id: "00000000000000ff".into(),
            target: Target::Login("alice".into()),
            reason: Some("test".into()),
            created: 1_700_000_000,
            expires: Some(1_700_003_600),
        }
    }

    fn open(keys: &Keys, kind: Kind, text: &str) -> Result<(Revocation, SignedWith), Rejection> {
        keys.open(kind, text.as_bytes())
    }

    #[test]
    fn what_is_signed_opens_with_its_key_only() {
        let keys = Keys::new(KEY, None, CHANNEL);
        let signed = keys.sign(Kind::Entry, &revocation());
        assert!(signed.starts_with(r#"{"id":"00000000000000ff","login":"alice""#));
        assert!(
            signed.contains(r#","expires":1700003600,"mac":""#),
            "{signed}"
        );
        assert_eq!(
            open(&keys, Kind::Entry, &signed),
            Ok((revocation(), SignedWith::Current))
        );
        let others = [
            Keys::new(OLD, None, CHANNEL),
            Keys::new(KEY, None, "another:fleet"),
        ];
        for other in others {
            assert_eq!(
                open(&other, Kind::Entry, &signed),
                Err(Rejection::BadSignature)
            );
        }
        assert_eq!(
            open(&keys, Kind::Message, &signed),
            Err(Rejection::BadSignature),
            "an entry cannot pass for a message"
        );
    }

    #[test]
    fn every_part_of_the_content_is_signed() {
        let keys = Keys::new(KEY, None, CHANNEL);
        let signed = keys.sign(Kind::Entry, &revocation());
        for (from, to) in [
            ("1700003600", "1700003601"),
            (r#""expires":1700003600"#, r#""expires":null"#),
            ("alice", "alicf"),
            (r#""login""#, r#""fingerprint""#),
            (r#""reason":"test","#, ""),
            ("00000000000000ff", "00000000000000fe"),
            ("1700000000", "1700000001"),
        ] {
            let changed = signed.replace(from, to);
            assert_ne!(changed, signed);
            assert_eq!(
                open(&keys, Kind::Entry, &changed).map(|_| ()),
                Err(Rejection::BadSignature),
                "{from} -> {to}"
            );
        }
        // Members hubgate does not read change nothing, and are not signed.
        let padded = signed.replacen('{', r#"{"note":"x","#, 1);
        assert_eq!(
            open(&keys, Kind::Entry, &padded),
            Ok((revocation(), SignedWith::Current))
        );
    }

    #[test]
    fn the_previous_key_is_accepted_and_named() {
        let old = Keys::new(OLD, None, CHANNEL);
        let rotating = Keys::new(KEY, Some(OLD), CHANNEL);
        let signed = old.sign(Kind::Message, &revocation());
        assert_eq!(
            open(&rotating, Kind::Message, &signed),
            Ok((revocation(), SignedWith::Previous))
        );
        let new = rotating.sign(Kind::Message, &revocation());
        assert_eq!(
            open(&Keys::new(KEY, None, CHANNEL), Kind::Message, &new),
            Ok((revocation(), SignedWith::Current)),
            "new ones are signed with the current key"
        );
        assert_eq!(
            open(&old, Kind::Message, &new),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn unsigned_and_malformed_are_told_apart() {
        let keys = Keys::new(KEY, None, CHANNEL);
        let unsigned = serde_json::to_string(&revocation()).unwrap();
        assert_eq!(
            open(&keys, Kind::Entry, &unsigned),
            Err(Rejection::Unsigned)
        );
        let signed = keys.sign(Kind::Entry, &revocation());
        let mac = &signed[signed.len() - 66..signed.len() - 2];
        for (text, reason) in [
            ("not json".to_owned(), "malformed"),
            ("[1,2]".to_owned(), "malformed"),
            (signed.replace(mac, "abc"), "malformed"),
            (signed.replace(mac, &"zz".repeat(32)), "malformed"),
            (signed.replace(&format!("\"{mac}\""), "7"), "malformed"),
            (signed.replace("\"login\"", "\"nobody\""), "malformed"),
            (signed.replace(mac, &mac.to_uppercase()), "accepted"),
        ] {
            let got = open(&keys, Kind::Entry, &text);
            let reason_got = got.as_ref().map_or_else(|r| r.reason(), |_| "accepted");
            assert_eq!(reason_got, reason, "{text}: {got:?}");
        }
        let quoted = open(&keys, Kind::Entry, r#"{"id":"s3cr3t","mac":"00"}"#);
        assert!(!format!("{quoted:?}").contains("s3cr3t"), "{quoted:?}");
    }

    #[test]
    fn older_instances_still_read_signed_entries() {
        // During a rolling upgrade, instances without keys read entries and messages that
        // carry a `mac` as before (they ignore the member).
        let keys = Keys::new(KEY, None, CHANNEL);
        let signed = keys.sign(Kind::Entry, &revocation());
        let read: Revocation = serde_json::from_str(&signed).unwrap();
        assert_eq!(read, revocation());
    }
}
