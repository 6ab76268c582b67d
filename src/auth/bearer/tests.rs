use http::HeaderValue;

use super::*;

/// Real token shapes (`hub-contract.md`, "Token shapes").
const PERM_OLD: &str = "perm:YWxpY2U=.eW91dHJhY2stY2xp.fikUUSQ3BIW6W2eVBJcI2vKI5VGsWh";
const PERM_NEW: &str = "perm-YWxpY2U=.NDctMg==.jTdKq7TVSguKeQUN3UYU3AL9zGugTt";
const OAUTH_MULTI_SCOPE: &str = "1683065164852.be56a4e2-3a82-4d1c-9a0e-2b3c4d5e6f70.\
    1e31c2d1-4055-4a1b-8c2d-3e4f5a6b7c8d.6ab631e2-61a7-4806-b029-44f0753fc29a \
    0-0-0-0-0;1.MCwCFEzJ/cvl+k1aQ2Zx4Dvacw==";

fn header(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).expect("test header values avoid CR, LF, NUL and DEL")
}

/// The credential of a request with exactly one `Authorization` header and no query. The
/// header is leaked so the borrowed result can be compared after the call (test data only).
fn read(value: &[u8]) -> Result<Credential<'static>, BearerError> {
    let value: &'static HeaderValue = Box::leak(Box::new(header(value)));
    credential(&[value], None)
}

#[test]
fn real_tokens_come_back_whole_under_every_prefix() {
    assert!(OAUTH_MULTI_SCOPE.contains(' ') && !OAUTH_MULTI_SCOPE.contains("  "));
    for token in [PERM_OLD, PERM_NEW, OAUTH_MULTI_SCOPE] {
        for prefix in ["Bearer ", "bearer  ", "BEARER ", "bEaReR     "] {
            let value = format!("{prefix}{token}");
            assert_eq!(
                read(value.as_bytes()),
                Ok(Credential::Bearer(token)),
                "{value}"
            );
        }
    }
}

#[test]
fn tokens_keep_inner_single_spaces_and_punctuation() {
    let cases: &[(&str, &str)] = &[
        ("Bearer a", "a"),
        ("Bearer a b c", "a b c"),
        ("Bearer a;b+c/d=e:f", "a;b+c/d=e:f"),
        ("Bearer !~", "!~"),
        ("Bearer \"quoted\"", "\"quoted\""),
    ];
    for &(value, token) in cases {
        assert_eq!(
            read(value.as_bytes()),
            Ok(Credential::Bearer(token)),
            "{value}"
        );
    }
}

#[test]
fn malformed_bearer_values_are_refused() {
    use BearerError::*;
    let cases: &[(&[u8], BearerError)] = &[
        (b"Bearer", EmptyToken),
        (b"bearer", EmptyToken),
        (b"Bearer ", EmptyToken),
        (b"BEARER     ", EmptyToken),
        (b"Bearer\tabc", InvalidCharacter),
        (b"Bearer \tabc", InvalidCharacter),
        (b"Bearer \t", InvalidCharacter),
        (b"Bearer abc\t", InvalidCharacter),
        (b"Bearer a\tb", InvalidCharacter),
        (b"Bearer a  b", InvalidCharacter),
        (b"Bearer abc ", InvalidCharacter),
        (b"Bearer abc\xC3\xA9", InvalidCharacter),
        (b"Bearer \x80", InvalidCharacter),
        (b"Bearer:abc", InvalidCharacter),
        (b"Bearer\"abc\"", InvalidCharacter),
        (b"Bearer,abc", InvalidCharacter),
        (b"", NoScheme),
        (b" Bearer abc", NoScheme),
        (b"\tBearer abc", NoScheme),
        (b"\x80Bearer abc", NoScheme),
        (b"=Bearer abc", NoScheme),
    ];
    for &(value, error) in cases {
        assert_eq!(read(value), Err(error), "{}", value.escape_ascii());
    }
}

#[test]
fn bytes_a_header_value_cannot_hold_are_refused_in_a_token_too() {
    for token in [
        &b"a\rb"[..],
        b"a\nb",
        b"a\0b",
        b"a\x7fb",
        b"a\x1bb",
        b"\xff",
    ] {
        assert_eq!(check_token(token), Err(BearerError::InvalidCharacter));
    }
    assert_eq!(check_token(b" a"), Err(BearerError::InvalidCharacter));
    assert_eq!(check_token(b"a b"), Ok(()));
}

#[test]
fn other_schemes_pass_without_further_checks() {
    for value in [
        &b"Bearerperm:abc"[..],
        b"Bearer2 abc",
        b"Bear abc",
        b"Negotiate \x80\tx  ",
        b"B",
    ] {
        assert_eq!(
            read(value),
            Ok(Credential::OtherScheme),
            "{}",
            value.escape_ascii()
        );
    }
}

#[test]
fn the_length_cap_is_inclusive_and_checked_before_the_bytes() {
    let longest = "a".repeat(MAX_TOKEN_LEN);
    for prefix in ["Bearer ", "Bearer     "] {
        let value = format!("{prefix}{longest}");
        assert_eq!(
            read(value.as_bytes()),
            Ok(Credential::Bearer(longest.as_str()))
        );
    }
    let spaced = format!("{} b", "a".repeat(MAX_TOKEN_LEN - 2));
    assert_eq!(
        read(format!("Bearer {spaced}").as_bytes()),
        Ok(Credential::Bearer(spaced.as_str()))
    );
    assert_eq!(
        read(format!("Bearer {longest}a").as_bytes()),
        Err(BearerError::TooLong)
    );
    assert_eq!(
        read(format!("Bearer {longest}\t").as_bytes()),
        Err(BearerError::TooLong)
    );
}

#[test]
fn access_token_in_the_query_is_found_by_its_decoded_name() {
    for query in [
        "access_token=x",
        "access_token",
        "access_token=",
        "ACCESS_TOKEN=x",
        "Access_Token=x",
        "access%5Ftoken=x",
        "access%5ftoken=x",
        "%61ccess_token=x",
        "fields=id&access_token=x",
        "&&access_token=x&&",
        "fields=id;access_token=x",
        "access_token=a=b=c",
    ] {
        assert_eq!(
            credential(&[], Some(query)),
            Ok(Credential::QueryToken),
            "{query}"
        );
    }
}

#[test]
fn names_that_only_resemble_access_token_are_ignored() {
    for query in [
        "",
        "fields=id,login",
        "my_access_token=x",
        "access_token_x=1",
        "access_tokens=1",
        "access+token=x",
        "access%20token=x",
        "x=access_token",
        "q=a%26access_token%3Dx",
        "q=access_token&r=access_token",
        "access_token%00=x",
        "access_token%FF=x",
    ] {
        assert_eq!(
            credential(&[], Some(query)),
            Ok(Credential::None),
            "{query}"
        );
    }
    assert_eq!(credential(&[], None), Ok(Credential::None));
}

#[test]
fn two_credentials_are_refused_whatever_they_are() {
    let bearer = header(format!("Bearer {PERM_OLD}").as_bytes());
    let basic = header(b"Basic dXNlcjpwYXNz");
    let broken = header(b"Bearer");
    let two = BearerError::TwoCredentials;
    assert_eq!(credential(&[&bearer, &bearer], None), Err(two));
    assert_eq!(credential(&[&basic, &bearer], None), Err(two));
    assert_eq!(
        credential(&[&bearer, &basic, &bearer], Some("a=1")),
        Err(two)
    );
    assert_eq!(credential(&[&bearer], Some("access_token=x")), Err(two));
    assert_eq!(
        credential(&[&basic], Some("a=1&access%5Ftoken=x")),
        Err(two)
    );
    assert_eq!(credential(&[&broken], Some("access_token=x")), Err(two));
    assert_eq!(
        credential(&[], Some("access_token=a&access_token=b")),
        Err(two)
    );
    assert_eq!(
        credential(&[], Some("access_token=a;ACCESS%5FTOKEN=b")),
        Err(two)
    );
    assert_eq!(
        credential(&[&bearer], Some("fields=id&my_access_token=1")),
        Ok(Credential::Bearer(PERM_OLD))
    );
}

#[test]
fn every_error_reads_as_a_quoted_string() {
    use BearerError::*;
    for error in [
        TwoCredentials,
        EmptyToken,
        TooLong,
        InvalidCharacter,
        NoScheme,
    ] {
        let text = error.to_string();
        assert!(!text.is_empty() && !text.contains(['"', '\\']), "{text}");
    }
}

/// The invariants of any token `credential` returns for `value`.
fn assert_token_invariants(value: &[u8], token: &str) {
    let shown = value.escape_ascii();
    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN, "{shown}");
    assert!(
        !token.starts_with(' ') && !token.ends_with(' ') && !token.contains("  "),
        "{shown}"
    );
    assert!(
        token.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
        "{shown}"
    );
    let prefix = value
        .strip_suffix(token.as_bytes())
        .expect("the token ends the value");
    let (scheme, spaces) = prefix.split_at(SCHEME.len());
    assert!(scheme.eq_ignore_ascii_case(SCHEME), "{shown}");
    assert!(
        !spaces.is_empty() && spaces.iter().all(|&b| b == b' '),
        "{shown}"
    );
}

#[test]
fn generated_authorization_values_never_panic_and_only_yield_clean_tokens() {
    const ALPHABET: &[u8] = b" \t:=;+/a0\x7f\x80";
    const PREFIXES: [&[u8]; 5] = [b"", b"Bearer", b"Bearer ", b"bearer  ", b"BEARER "];
    let (mut checked, mut tokens) = (0usize, 0usize);
    let mut check = |value: &[u8]| {
        let Ok(header) = HeaderValue::from_bytes(value) else {
            assert!(value.contains(&0x7f), "{}", value.escape_ascii());
            return;
        };
        checked += 1;
        if let Ok(Credential::Bearer(token)) = credential(&[&header], None) {
            assert_token_invariants(value, token);
            tokens += 1;
        }
    };
    // Every string of up to five bytes from the alphabet, behind every prefix.
    let mut suffix = Vec::new();
    for len in 0..=5u32 {
        for mut n in 0..ALPHABET.len().pow(len) {
            suffix.clear();
            for _ in 0..len {
                suffix.push(ALPHABET[n % ALPHABET.len()]);
                n /= ALPHABET.len();
            }
            for prefix in PREFIXES {
                check(&[prefix, &suffix[..]].concat());
            }
        }
    }
    // Longer pseudo-random strings, mostly visible bytes, from a fixed seed.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let value: Vec<u8> = (0..len)
            .map(|_| match next() % 4 {
                0 => ALPHABET[(next() % ALPHABET.len() as u64) as usize],
                _ => b'a',
            })
            .collect();
        check(&[PREFIXES[(next() % 5) as usize], &value[..]].concat());
    }
    assert!(
        checked > 500_000 && tokens > 10_000,
        "checked {checked}, tokens {tokens}"
    );
}

#[test]
fn generated_queries_count_access_token_like_a_form_parser_splitting_on_semicolons() {
    const PIECES: [&str; 11] = [
        "access_token",
        "ACCESS%5Ftoken",
        "access%5",
        "Ftoken",
        "=",
        "&",
        ";",
        "x",
        "%",
        "+",
        "my_",
    ];
    let mut checked = 0usize;
    for len in 0..=4u32 {
        for mut n in 0..PIECES.len().pow(len) {
            let mut query = String::new();
            for _ in 0..len {
                query.push_str(PIECES[n % PIECES.len()]);
                n /= PIECES.len();
            }
            let found = form_urlencoded::parse(query.replace(';', "&").as_bytes())
                .filter(|(name, _)| name.eq_ignore_ascii_case("access_token"))
                .count();
            let expected = match found {
                0 => Ok(Credential::None),
                1 => Ok(Credential::QueryToken),
                _ => Err(BearerError::TwoCredentials),
            };
            assert_eq!(credential(&[], Some(&query)), expected, "{query}");
            checked += 1;
        }
    }
    assert!(checked > 10_000, "checked {checked}");
}

fn basic_value(scheme: &str, user_password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
    format!("{scheme}{encoded}")
}

#[test]
fn a_token_in_a_basic_password_is_that_token() {
    for token in [PERM_OLD, PERM_NEW] {
        for (scheme, user) in [("Basic ", "random"), ("basic  ", ""), ("BASIC ", "alice")] {
            let value = basic_value(scheme, &format!("{user}:{token}"));
            assert_eq!(
                read(value.as_bytes()),
                Ok(Credential::BasicToken(token.to_owned())),
                "{value}"
            );
        }
    }
    // Without padding, as Java's decoder accepts it.
    let padded = ["a", "ab", "abc"]
        .map(|user| basic_value("Basic ", &format!("{user}:{PERM_OLD}")))
        .into_iter()
        .find(|value| value.ends_with('='))
        .expect("one of three lengths is padded");
    let unpadded = padded.trim_end_matches('=');
    assert_ne!(padded, unpadded);
    assert_eq!(
        read(unpadded.as_bytes()),
        Ok(Credential::BasicToken(PERM_OLD.to_owned()))
    );
}

#[test]
fn a_login_and_password_keeps_the_header_and_hides_the_password() {
    let value = basic_value("Basic ", "alice:s3cret:with:colons");
    let Ok(Credential::BasicPassword(basic)) = read(value.as_bytes()) else {
        panic!("not a login and password: {value}");
    };
    assert_eq!(basic.login(), "alice");
    assert_eq!(basic.decoded, "alice:s3cret:with:colons");
    assert_eq!(basic.header.as_bytes(), value.as_bytes());
    let shown = format!("{basic:?}");
    assert!(
        shown.contains("alice") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn malformed_basic_values_are_refused_not_another_scheme() {
    let bad_token = basic_value("Basic ", "x:perm:a  b");
    let control = basic_value("Basic ", "ali\u{7}ce:pw");
    let no_colon = basic_value("Basic ", "alice");
    let empty_password = basic_value("Basic ", "alice:");
    let latin1 = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"al\xe9:pw")
    );
    for value in [
        "Basic",
        "Basic ",
        "Basic !!!",
        "Basic\tYTpi",
        bad_token.as_str(),
        control.as_str(),
        no_colon.as_str(),
        empty_password.as_str(),
        latin1.as_str(),
    ] {
        assert_eq!(
            read(value.as_bytes()),
            Err(BearerError::MalformedBasic),
            "{value:?}"
        );
    }
    // Another scheme that merely starts with the letters.
    assert_eq!(read(b"Basically x"), Ok(Credential::OtherScheme));
}
