//! The credential: arbitrary bytes as the `Authorization` value, followed (after the first
//! NUL byte, when there is one) by a raw query. Asserts that a bearer token comes back
//! exactly as sent after `Bearer` and its spaces, and only when it is well formed; and that
//! its identity is the one of every spelling Hub may read as the same token (no padding, the
//! other `perm` prefix, a trailing `.`), with a canonical spelling that is its own.

#![no_main]

use http::HeaderValue;
use hubgate::auth::bearer::{credential, BearerError, Credential, MAX_TOKEN_LEN};
use hubgate::auth::identity::{canonical, identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (value, query) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (data, None),
    };
    let Ok(header) = HeaderValue::from_bytes(value) else {
        return;
    };
    let in_query = query.map_or(0, |query| {
        form_urlencoded::parse(query.replace(';', "&").as_bytes())
            .filter(|(name, _)| name.eq_ignore_ascii_case("access_token"))
            .count()
    });
    // No header, one header, two headers.
    assert_eq!(
        credential(&[], query),
        match in_query {
            0 => Ok(Credential::None),
            1 => Ok(Credential::QueryToken),
            _ => Err(BearerError::TwoCredentials),
        }
    );
    assert_eq!(
        credential(&[&header, &header], query),
        Err(BearerError::TwoCredentials)
    );
    let got = credential(&[&header], query);
    if in_query > 0 {
        assert_eq!(got, Err(BearerError::TwoCredentials));
        return;
    }
    let (scheme, rest) = value.split_at(value.len().min(6));
    let spaces = rest.iter().take_while(|&&b| b == b' ').count();
    let token = &rest[spaces..];
    let well_formed = scheme.eq_ignore_ascii_case(b"bearer")
        && spaces > 0
        && !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token.iter().all(|&b| b == b' ' || b.is_ascii_graphic())
        && !token.starts_with(b" ")
        && !token.ends_with(b" ")
        && !token.windows(2).any(|w| w == b"  ");
    match got {
        Ok(Credential::Bearer(returned)) => {
            assert!(well_formed, "{}", value.escape_ascii());
            assert_eq!(returned.as_bytes(), token);
            check_identity(returned);
        }
        _ => assert!(!well_formed, "{}: {got:?}", value.escape_ascii()),
    }
});

/// Two spellings with the same identity always give the same cache key.
fn check_identity(token: &str) {
    let key = identity(token);
    let Some(canonical_form) = canonical(token) else {
        return;
    };
    assert_eq!(
        canonical(&canonical_form).as_deref(),
        Some(canonical_form.as_str()),
        "a canonical spelling is its own"
    );
    assert_eq!(identity(&canonical_form), key);
    if !canonical_form.starts_with("perm:") {
        return;
    }
    // A permanent token (it decoded as one): the same parts in other spellings.
    let rest = &token[5..];
    let rest = rest.strip_suffix('.').unwrap_or(rest);
    let parts: Vec<&str> = rest.split('.').collect();
    let [login, reference, secret] = parts[..] else {
        panic!("a permanent token has three parts: {token}");
    };
    let (login, reference) = (login.replace('=', ""), reference.replace('=', ""));
    for prefix in ["perm:", "perm-"] {
        for dot in ["", "."] {
            let spelling = format!("{prefix}{login}.{reference}.{secret}{dot}");
            assert_eq!(identity(&spelling), key, "{spelling}");
        }
    }
}
