//! `[fleet]`: the Redis URL and password, the channel, and the keys that sign the fleet's
//! messages and stored entries.

use super::*;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const OLD_KEY: &str = "fedcba9876543210fedcba9876543210";

/// `MINIMAL` plus `[fleet]` with `lines`.
fn fleet_text(lines: &str) -> String {
    format!("{MINIMAL}\n[fleet]\nredis_url = \"redis://127.0.0.1:6379/0\"\n{lines}")
}

fn key_line(key: &str, file: &tempfile::NamedTempFile) -> String {
    format!("{key} = {:?}\n", file.path().display().to_string())
}

fn fleet_ok(lines: &str) -> Fleet {
    parse_ok(&fleet_text(lines)).fleet.expect("[fleet]")
}

#[test]
fn a_fleet_needs_its_key() {
    let found = problems(&fleet_text(""));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("fleet.secret_file: missing (a file holding the fleet's shared key"),
        "{found:#?}"
    );
    assert!(found[0].contains("at least 32 characters"), "{found:#?}");
    assert!(problems(MINIMAL).is_empty(), "no [fleet], no key needed");
}

#[test]
fn keys_are_read_without_their_line_break_and_never_shown() {
    let secret = temp_file(&format!("{KEY}\n"));
    let previous = temp_file(&format!("{OLD_KEY}\r\n"));
    let fleet = fleet_ok(
        &(key_line("secret_file", &secret) + &key_line("previous_secret_file", &previous)),
    );
    assert_eq!(fleet.secret.expose(), KEY);
    assert_eq!(
        fleet.previous_secret.as_ref().map(Secret::expose),
        Some(OLD_KEY)
    );
    assert_eq!(fleet.channel, "hubgate:revocations");
    assert!(fleet.redis_password.is_none());
    let shown = format!("{fleet:?}");
    assert!(!shown.contains(KEY) && !shown.contains(OLD_KEY), "{shown}");

    let only_current = fleet_ok(&key_line("secret_file", &secret));
    assert!(only_current.previous_secret.is_none());
}

#[test]
fn short_empty_or_unreadable_keys_are_refused() {
    let short = temp_file(&KEY[..31]);
    let exact = temp_file(&KEY[..32]);
    let empty = temp_file("\n");
    for key in ["secret_file", "previous_secret_file"] {
        let good = temp_file(KEY);
        let other = if key == "secret_file" {
            String::new()
        } else {
            key_line("secret_file", &good)
        };
        let found = problems(&fleet_text(&(key_line(key, &short) + &other)));
        assert_eq!(found.len(), 1, "{found:#?}");
        let shown = format!("fleet.{key}: {:?}", short.path().display().to_string());
        assert!(found[0].starts_with(&shown), "{found:#?}");
        assert!(
            found[0].contains("holds a key shorter than 32 characters"),
            "{found:#?}"
        );
        assert!(
            !found[0].contains(&KEY[..31]),
            "the key is repeated: {found:#?}"
        );

        let found = problems(&fleet_text(&(key_line(key, &empty) + &other)));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].ends_with("is empty"), "{found:#?}");

        let missing = format!("{key} = \"/nonexistent/hubgate-fleet-key\"\n");
        let found = problems(&fleet_text(&(missing + &other)));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with(&format!(
                "fleet.{key}: cannot read \"/nonexistent/hubgate-fleet-key\""
            )),
            "{found:#?}"
        );
    }
    assert_eq!(
        fleet_ok(&key_line("secret_file", &exact)).secret.expose(),
        &KEY[..32]
    );
}

#[test]
fn the_redis_password_comes_from_a_file_or_the_url_never_both() {
    let secret = temp_file(KEY);
    let password = temp_file("r3dis-pa55\n");
    let keys = key_line("secret_file", &secret);
    let with_file = keys.clone() + &key_line("redis_password_file", &password);
    let fleet = fleet_ok(&with_file);
    assert_eq!(
        fleet.redis_password.as_ref().map(Secret::expose),
        Some("r3dis-pa55")
    );
    assert!(!format!("{fleet:?}").contains("r3dis-pa55"));
    assert_eq!(fleet.warnings(), Vec::<String>::new());

    // A user name in the URL goes with the file's password (Redis 6 ACL users).
    let user = fleet_text(&with_file).replace("redis://127.0.0.1", "redis://hubgate@127.0.0.1");
    assert!(parse(&user).is_ok(), "{:?}", problems(&user));

    let both = fleet_text(&with_file).replace("redis://127.0.0.1", "redis://:inl1ne@127.0.0.1");
    let found = problems(&both);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("fleet.redis_url: holds a password, and fleet.redis_password_file"),
        "{found:#?}"
    );
    assert!(!found[0].contains("inl1ne"), "{found:#?}");

    let empty = temp_file("");
    let found = problems(&fleet_text(
        &(keys + &key_line("redis_password_file", &empty)),
    ));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("fleet.redis_password_file: ") && found[0].ends_with("is empty"),
        "{found:#?}"
    );
}

#[test]
fn a_password_in_the_url_is_accepted_with_a_warning() {
    let secret = temp_file(KEY);
    let keys = key_line("secret_file", &secret);
    for url in [
        "redis://:inl1ne@127.0.0.1:6379/0",
        "rediss://hubgate:inl1ne@redis.example/0",
    ] {
        let text = fleet_text(&keys).replace("redis://127.0.0.1:6379/0", url);
        let fleet = parse_ok(&text).fleet.expect("[fleet]");
        let warnings = fleet.warnings();
        assert_eq!(warnings.len(), 1, "{url}: {warnings:#?}");
        assert!(
            warnings[0].starts_with("fleet.redis_url: holds the Redis password")
                && warnings[0].contains("fleet.redis_password_file"),
            "{warnings:#?}"
        );
        assert!(!warnings[0].contains("inl1ne"), "{warnings:#?}");
    }
    for url in ["redis://127.0.0.1:6379/0", "redis://hubgate@127.0.0.1/0"] {
        let text = fleet_text(&keys).replace("redis://127.0.0.1:6379/0", url);
        let fleet = parse_ok(&text).fleet.expect("[fleet]");
        assert_eq!(fleet.warnings(), Vec::<String>::new(), "{url}");
    }
}

#[test]
fn misspelt_fleet_keys_get_a_hint() {
    let found = problems(&fleet_text("secret_flie = \"/etc/hubgate/fleet-key\"\n"));
    assert!(
        found.contains(&"unknown key fleet.secret_flie (did you mean secret_file?)".to_owned()),
        "{found:#?}"
    );
}
