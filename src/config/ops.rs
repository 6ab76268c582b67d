//! The sections for running the gateway: `[admin]` (the admin listener and its token) and
//! `[log]` (level, format, access log).

use std::net::{Ipv4Addr, SocketAddr};

use super::checks::Problems;
use super::raw::{RawAdmin, RawLog};
use super::{Admin, Log, LogFormat, Secret};

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
    Admin {
        listen,
        token,
        readyz_checks_hub: p.flag("admin.readyz_checks_hub", raw.readyz_checks_hub, false),
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
