//! The sections for running the gateway: `[admin]` (the admin listener, its token, the state
//! directory), `[log]` (level, format, access log), `[hub]` (acting in Hub) and `[fleet]`
//! (revocations shared through Redis).

use std::net::{Ipv4Addr, SocketAddr};

use super::checks::{http_url, Problems};
use super::raw::{Field, RawAdmin, RawFleet, RawHub, RawLog};
use super::{Admin, Fleet, Hub, Log, LogFormat, Secret};

const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9901);
/// An admin token shorter than this is refused: it guards reloads and (later) revocations.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

pub(super) fn admin(p: &mut Problems, raw: RawAdmin) -> Admin {
    let listen = match p.text("admin.listen", raw.listen) {
        None => DEFAULT_ADMIN_LISTEN,
        Some(text) => text.parse().unwrap_or_else(|_| {
            let hint = r#"(use e.g. "127.0.0.1:9901")"#;
            p.add(
                "admin.listen",
                format!("{text:?} is not an IP address and port {hint}"),
            );
            DEFAULT_ADMIN_LISTEN
        }),
    };
    let key = "admin.token_file";
    let token = p
        .path(key, raw.token_file)
        .and_then(|path| p.secret_file(key, &path).map(|token| (path, token)))
        .and_then(|(path, token)| {
            if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                let problem = format!(
                    "{:?} holds a token shorter than {MIN_ADMIN_TOKEN_CHARS} characters \
                     (e.g. `openssl rand -hex 32`)",
                    path.display().to_string()
                );
                p.add(key, problem);
                return None;
            }
            Some(Secret::new(token))
        });
    let state_dir = p.path("admin.state_dir", raw.state_dir);
    if let Some(dir) = &state_dir {
        if !dir.is_dir() {
            let shown = dir.display().to_string();
            p.add("admin.state_dir", format!("{shown:?} is not a directory"));
        }
    }
    Admin {
        listen,
        token,
        readyz_checks_hub: p.flag("admin.readyz_checks_hub", raw.readyz_checks_hub, false),
        state_dir,
        allowed_hosts: allowed_hosts(p, raw.allowed_hosts),
    }
}

/// `admin.allowed_hosts`: exact host names, without a port (any port is accepted), stored in
/// lowercase; IP literals and `localhost` are always accepted and need no entry.
fn allowed_hosts(p: &mut Problems, field: Option<Field<Vec<String>>>) -> Vec<String> {
    let key = "admin.allowed_hosts";
    let mut names = Vec::new();
    for name in p.strings(key, field).unwrap_or_default() {
        let problem = if name.contains('*') {
            "exact names only, no wildcards"
        } else if name.contains(':') {
            "a name without a port (any port is accepted)"
        } else if name.is_empty()
            || name.starts_with(['.', '-'])
            || name.contains("..")
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            "not a host name (letters, digits, '-', '_' and '.')"
        } else {
            names.push(name.to_ascii_lowercase());
            continue;
        };
        p.add(key, format!("{name:?}: {problem}"));
    }
    names
}

pub(super) fn hub(p: &mut Problems, raw: RawHub) -> Option<Hub> {
    let what = r#"Hub's base URL, e.g. "https://youtrack.example.com/hub""#;
    let url = p
        .required_text("hub.url", raw.url, what)
        .and_then(|text| http_url(p, "hub.url", &text).map(|url| (text, url)))
        .and_then(|(text, url)| {
            if url.uri.query().is_some() {
                p.add("hub.url", format!("{text:?} has a query"));
                return None;
            }
            text.trim_end_matches('/').parse().ok()
        });
    let key = "hub.admin_token_file";
    if raw.admin_token_file.is_none() {
        p.add(
            key,
            "missing (a file holding a permanent token with YouTrack Administration scope)",
        );
    }
    let admin_token = p
        .path(key, raw.admin_token_file)
        .and_then(|path| p.secret_file(key, &path));
    Some(Hub {
        url: url?,
        admin_token: Secret::new(admin_token?),
    })
}

pub(super) fn fleet(p: &mut Problems, raw: RawFleet) -> Option<Fleet> {
    let key = "fleet.redis_url";
    let what = r#"e.g. "redis://127.0.0.1:6379/0""#;
    let redis_url = p.required_text(key, raw.redis_url, what).filter(|url| {
        let known = url.starts_with("redis://") || url.starts_with("rediss://");
        if !known {
            p.add(
                key,
                format!("must start with redis:// or rediss:// ({what})"),
            );
        }
        known
    });
    let password_key = "fleet.redis_password_file";
    let redis_password = p
        .path(password_key, raw.redis_password_file)
        .and_then(|path| p.secret_file(password_key, &path))
        .map(Secret::new);
    if redis_password.is_some() && redis_url.as_deref().is_some_and(has_password) {
        p.add(
            key,
            format!(
                "holds a password, and {password_key} gives one too: keep it in the file \
                 only (remove it from the URL)"
            ),
        );
    }
    let channel = p
        .text("fleet.channel", raw.channel)
        .unwrap_or_else(|| "hubgate:revocations".to_owned());
    if channel.is_empty() || channel.chars().any(|c| c.is_control() || c == ' ') {
        p.add(
            "fleet.channel",
            "must be non-empty, without spaces or control characters",
        );
    }
    let key = "fleet.secret_file";
    if raw.secret_file.is_none() {
        p.add(
            key,
            format!(
                "missing (a file holding the fleet's shared key, the same on every instance, \
                 at least {MIN_FLEET_KEY_CHARS} characters, e.g. `openssl rand -hex 32`: \
                 nothing published in the fleet is trusted without it)"
            ),
        );
    }
    let secret = fleet_key(p, key, raw.secret_file);
    let previous_secret = fleet_key(p, "fleet.previous_secret_file", raw.previous_secret_file);
    Some(Fleet {
        redis_url: Secret::new(redis_url?),
        redis_password,
        channel,
        secret: secret?,
        previous_secret,
    })
}

/// Fewest characters a fleet key may have: it is all that stands between whoever can write to
/// the fleet's Redis and every instance's revocations.
const MIN_FLEET_KEY_CHARS: usize = 32;

/// A fleet key read from the file `key` names; too short a key is a problem.
fn fleet_key(p: &mut Problems, key: &str, field: Option<Field<String>>) -> Option<Secret> {
    let path = p.path(key, field)?;
    let secret = p.secret_file(key, &path)?;
    if secret.chars().count() < MIN_FLEET_KEY_CHARS {
        let shown = path.display().to_string();
        p.add(
            key,
            format!(
                "{shown:?} holds a key shorter than {MIN_FLEET_KEY_CHARS} characters \
                 (e.g. `openssl rand -hex 32`)"
            ),
        );
        return None;
    }
    Some(Secret::new(secret))
}

/// Whether a Redis URL carries a password (`redis://:password@host`, `redis://user:pw@host`).
fn has_password(url: &str) -> bool {
    redis::parse_redis_url(url).is_some_and(|url| url.password().is_some_and(|p| !p.is_empty()))
}

impl Fleet {
    /// What is valid in `[fleet]` but risky, for `hubgate check` (see `Config::warnings`).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if has_password(self.redis_url.expose()) {
            warnings.push(
                "fleet.redis_url: holds the Redis password, which then travels with every \
                 copy of the configuration file: put it in fleet.redis_password_file instead"
                    .to_owned(),
            );
        }
        warnings
    }
}

pub(super) fn log(p: &mut Problems, raw: RawLog) -> Log {
    let level = match p.text("log.level", raw.level) {
        None => "info".to_owned(),
        Some(level) if LEVELS.contains(&level.as_str()) => level,
        Some(level) => {
            let known = LEVELS.join(", ");
            p.add("log.level", format!("{level:?} is not one of {known}"));
            "info".to_owned()
        }
    };
    let format = match p.text("log.format", raw.format).as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            p.add(
                "log.format",
                format!("{other:?} is not \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    Log {
        level,
        format,
        access_log: p.flag("log.access_log", raw.access_log, true),
    }
}
