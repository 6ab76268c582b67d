//! When two strings are the same token to Hub. Hub is a Java server: its Base64 decoder
//! accepts a missing `=`, and a reader that decodes a permanent token into its parts may take
//! `perm-` for `perm:`, the URL-safe alphabet, a login in another letter case or a trailing
//! `.`. Anything keyed by a token — the verdict cache, revocations, the fingerprint in the
//! access log — is keyed by the token's identity, so a revoked token stays revoked however it
//! is spelled.
//!
//! The identity is the SHA-256 of the token's canonical spelling:
//! - a permanent token: `perm:` + padded standard base64 of the lower-case login + `.` +
//!   padded standard base64 of the token's ID or name + `.` + the secret;
//! - an OAuth access token (`…;1.<base64 signature>`): everything before the signature as
//!   sent, and the signature as padded standard base64;
//! - anything else: the token as sent.
//!
//! A token in its canonical spelling therefore has the same identity as before identities
//! existed (the hash of its exact bytes), so revocations recorded then still match it.
//! Spellings are accepted rather than refused: a client holding a token copied without its
//! padding works against Hub directly, and must work through the gateway too.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::cache::{token_hash, TokenHash};

/// Standard base64 as Java's decoder reads it: padding optional, unused low bits of the last
/// character ignored (`YWxpY2X=` is "alice" too).
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
/// URL-safe base64, as leniently.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);
/// What canonical spellings are written with.
const STANDARD_PADDED: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The identity of `token`: equal for every spelling Hub may read as the same token.
pub fn identity(token: &str) -> TokenHash {
    match canonical(token) {
        Some(canonical) => token_hash(&canonical),
        None => token_hash(token),
    }
}

/// The canonical spelling of a permanent or OAuth access token (it may be `token` itself);
/// `None` for a token of no shape Hub decodes, which is only ever its own bytes.
pub fn canonical(token: &str) -> Option<String> {
    canonical_permanent(token).or_else(|| canonical_oauth(token))
}

/// `perm:`/`perm-` + base64(login) + `.` + base64(ID or name) + `.` + secret [+ `.`].
fn canonical_permanent(token: &str) -> Option<String> {
    let rest = token
        .strip_prefix("perm:")
        .or_else(|| token.strip_prefix("perm-"))?;
    // Java's split drops every trailing empty part.
    let rest = rest.trim_end_matches('.');
    let mut parts = rest.split('.');
    let (Some(login), Some(reference), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if secret.is_empty() {
        return None;
    }
    let login = decode(login)?.to_lowercase();
    let reference = decode(reference)?;
    Some(format!(
        "perm:{}.{}.{secret}",
        STANDARD_PADDED.encode(login),
        STANDARD_PADDED.encode(reference)
    ))
}

/// `<issued>.<client>.<user>.<scope ids>;<version>.<base64 signature>`.
fn canonical_oauth(token: &str) -> Option<String> {
    let (head, tail) = token.rsplit_once(';')?;
    let (version, signature) = tail.split_once('.')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let signature = STANDARD_LENIENT
        .decode(signature)
        .or_else(|_| URL_SAFE_LENIENT.decode(signature))
        .ok()?;
    Some(format!(
        "{head};{version}.{}",
        STANDARD_PADDED.encode(signature)
    ))
}

/// A base64 part of a permanent token as text, in either alphabet, padded or not.
fn decode(part: &str) -> Option<String> {
    let bytes = STANDARD_LENIENT
        .decode(part)
        .or_else(|_| URL_SAFE_LENIENT.decode(part))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERM: &str = "perm:YWxpY2U=.NDctNQ==.jTdKq7TVSguKeQUN3UYU3AL9zGugTt";
    const OAUTH: &str = "1683065164852.be56.1e31.6ab6 0-0-0-0-0;1.MCwCFEzJ/cvl+k1aQ2Zx4Dvacw==";

    #[test]
    fn every_spelling_of_a_permanent_token_has_its_identity() {
        let want = token_hash(PERM);
        let spellings = [
            PERM.to_owned(),
            PERM.replacen("perm:", "perm-", 1),
            PERM.replace('=', ""),
            format!("{PERM}."),
            format!("{PERM}..."),
            // Unused low bits of the last base64 character, ignored by Java's decoder.
            PERM.replacen("YWxpY2U=", "YWxpY2V=", 1),
            PERM.replacen("NDctNQ==", "NDctNR==", 1),
            // base64("ALICE"), base64("Alice") without padding
            PERM.replacen("YWxpY2U=", "QUxJQ0U=", 1),
            PERM.replacen("YWxpY2U=", "QWxpY2U", 1),
        ];
        for spelling in &spellings {
            assert_eq!(identity(spelling), want, "{spelling}");
        }
        // The canonical spelling is its own: its identity is the hash of its bytes.
        assert_eq!(canonical(PERM).as_deref(), Some(PERM));
    }

    #[test]
    fn url_safe_and_unpadded_signatures_are_the_same_oauth_token() {
        let want = token_hash(OAUTH);
        for spelling in [
            OAUTH.to_owned(),
            OAUTH.trim_end_matches('=').to_owned(),
            OAUTH.replace('/', "_").replace('+', "-"),
            OAUTH.replacen("acw==", "acx==", 1),
        ] {
            assert_eq!(identity(&spelling), want, "{spelling}");
        }
        assert_eq!(canonical(OAUTH).as_deref(), Some(OAUTH));
    }

    #[test]
    fn different_tokens_keep_different_identities() {
        let others = [
            PERM.replacen("jTdK", "jTdk", 1),
            PERM.replacen("NDctNQ==", "NDctNg==", 1),
            PERM.replacen("YWxpY2U=", "Ym9i", 1),
            OAUTH.replacen("MCwC", "MCwD", 1),
            OAUTH.replacen("0-0-0-0-0", "0-0-0-0-1", 1),
        ];
        for other in &others {
            assert_ne!(identity(other), identity(PERM), "{other}");
            assert_ne!(identity(other), identity(OAUTH), "{other}");
        }
    }

    #[test]
    fn tokens_of_other_shapes_are_their_bytes() {
        for token in [
            "opaque-token",
            "perm:not base64!.x.y",
            "perm:YWxpY2U=.NDctNQ==",
            "perm:YWxpY2U=.NDctNQ==..",
            "a;b.c",
            "a;1.!!",
        ] {
            assert_eq!(identity(token), token_hash(token), "{token}");
        }
    }
}
