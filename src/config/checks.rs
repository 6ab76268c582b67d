//! The checks every section uses: typed values with defaults, numbers in range, durations,
//! files that must be readable, and http(s) URLs. Each check records its problem under the
//! key path it was given and returns something usable, so validation always runs to the end.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;

use super::duration::parse_duration;
use super::raw::Field;

/// Every problem found so far, each starting with its key path.
#[derive(Debug, Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub fn add(&mut self, key: &str, message: impl fmt::Display) {
        self.0.push(format!("{key}: {message}"));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    fn wrong_type(&mut self, key: &str, expected: &str, found: &toml::Value) {
        self.add(
            key,
            format!("expected {expected}, found {}", describe(found)),
        );
    }

    /// A string value; `None` when absent or of another type (reported).
    pub fn text(&mut self, key: &str, field: Option<Field<String>>) -> Option<String> {
        match field? {
            Field::Ok(text) => Some(text),
            Field::Wrong(found) => {
                self.wrong_type(key, "a string", &found);
                None
            }
        }
    }

    /// A string value that must be present; `what` says what belongs there.
    pub fn required_text(
        &mut self,
        key: &str,
        field: Option<Field<String>>,
        what: &str,
    ) -> Option<String> {
        if field.is_none() {
            self.add(key, format!("missing ({what})"));
        }
        self.text(key, field)
    }

    /// A list of strings; `None` when absent or not a list of strings (reported).
    pub fn strings(&mut self, key: &str, field: Option<Field<Vec<String>>>) -> Option<Vec<String>> {
        match field? {
            Field::Ok(list) => Some(list),
            Field::Wrong(found) => {
                self.wrong_type(key, "a list of strings", &found);
                None
            }
        }
    }

    pub fn flag(&mut self, key: &str, field: Option<Field<bool>>, default: bool) -> bool {
        match field {
            None => default,
            Some(Field::Ok(flag)) => flag,
            Some(Field::Wrong(found)) => {
                self.wrong_type(key, "true or false", &found);
                default
            }
        }
    }

    /// A duration that must be more than zero.
    pub fn timeout(
        &mut self,
        key: &str,
        field: Option<Field<String>>,
        default: Duration,
    ) -> Duration {
        self.duration(key, field, default, false)
    }

    /// A duration string; zero is a problem unless `zero_allowed`.
    pub fn duration(
        &mut self,
        key: &str,
        field: Option<Field<String>>,
        default: Duration,
        zero_allowed: bool,
    ) -> Duration {
        let text = match field {
            None => return default,
            Some(Field::Ok(text)) => text,
            Some(Field::Wrong(found)) => {
                self.wrong_type(key, r#"a duration string like "30s""#, &found);
                return default;
            }
        };
        match parse_duration(&text) {
            Ok(duration) if duration.is_zero() && !zero_allowed => {
                self.add(key, "must be more than zero");
                default
            }
            Ok(duration) => duration,
            Err(message) => {
                self.add(key, message);
                default
            }
        }
    }

    /// An integer in `min..=max`, converted to the type the configuration stores.
    pub fn count<T: TryFrom<i64>>(
        &mut self,
        key: &str,
        field: Option<Field<i64>>,
        default: T,
        min: i64,
        max: i64,
    ) -> T {
        let value = match field {
            None => return default,
            Some(Field::Ok(value)) => value,
            Some(Field::Wrong(found)) => {
                self.wrong_type(key, "an integer", &found);
                return default;
            }
        };
        if value < min {
            self.add(key, format!("{value} is too small (at least {min})"));
        } else if value > max {
            self.add(key, format!("{value} is too large (at most {max})"));
        } else if let Ok(converted) = T::try_from(value) {
            return converted;
        } else {
            self.add(key, format!("{value} is too large for this platform"));
        }
        default
    }

    /// A file path (kept as written); `None` when absent, empty or of another type.
    pub fn path(&mut self, key: &str, field: Option<Field<String>>) -> Option<PathBuf> {
        let text = self.text(key, field)?;
        if text.is_empty() {
            self.add(key, "is empty (give the path of a file)");
            return None;
        }
        Some(PathBuf::from(text))
    }

    /// Reports the file unless it exists, is not a directory and can be opened for reading.
    pub fn readable_file(&mut self, key: &str, path: &Path) {
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Err(error) => self.add(key, format!("cannot read {shown:?}: {error}")),
            Ok(meta) if meta.is_dir() => self.add(key, format!("{shown:?} is a directory")),
            Ok(_) => {
                if let Err(error) = std::fs::File::open(path) {
                    self.add(key, format!("cannot read {shown:?}: {error}"));
                }
            }
        }
    }

    /// Reads a secret, without trailing line breaks; never puts its content in a problem.
    pub fn secret_file(&mut self, key: &str, path: &Path) -> Option<String> {
        let shown = path.display().to_string();
        let content = match std::fs::read_to_string(path) {
            Ok(content) => content,
            Err(error) => {
                self.add(key, format!("cannot read {shown:?}: {error}"));
                return None;
            }
        };
        let secret = content.trim_end_matches(['\r', '\n']);
        if secret.is_empty() {
            self.add(key, format!("{shown:?} is empty"));
            return None;
        }
        Some(secret.to_owned())
    }
}

/// `integer 30`, `string "10"`, shortened so a stray table cannot flood the report.
fn describe(value: &toml::Value) -> String {
    let shown = value.to_string().replace('\n', " ");
    let mut short: String = shown.chars().take(40).collect();
    if short.len() < shown.len() {
        short.push('…');
    }
    format!("{} {}", value.type_str(), short.trim())
}

/// An absolute `http`/`https` URL, checked part by part.
pub(super) struct HttpUrl {
    pub uri: Uri,
    pub scheme: &'static str,
    pub host: String,
    pub port: u16,
}

/// Checks an absolute http(s) URL with a host, a valid port and no user info or fragment.
/// Paths and queries are left to the caller. Problems never repeat a password.
pub(super) fn http_url(problems: &mut Problems, key: &str, text: &str) -> Option<HttpUrl> {
    let shown = redact_user_info(text);
    let example = r#"(use e.g. "http://127.0.0.1:8081")"#;
    let uri: Uri = match text.parse() {
        Ok(uri) => uri,
        Err(error) => {
            problems.add(key, format!("{shown:?} is not a URL: {error} {example}"));
            return None;
        }
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        problems.add(key, format!("{shown:?} is not an absolute URL {example}"));
        return None;
    };
    let scheme = match scheme {
        "http" => "http",
        "https" => "https",
        other => {
            problems.add(key, format!("scheme {other:?} is not http or https"));
            return None;
        }
    };
    let mut fine = true;
    let mut fail = |message: &str| {
        problems.add(key, format!("{shown:?} {message}"));
        fine = false;
    };
    if text.contains('#') {
        fail("has a fragment (#...)");
    }
    if authority.as_str().contains('@') {
        fail("has user info (credentials do not belong in URLs)");
    }
    let host = authority.host().to_owned();
    if host.is_empty() {
        fail("has no host");
    }
    let port = port(scheme == "https", authority.as_str(), &host).unwrap_or_else(|| {
        fail("has an invalid port (1 to 65535)");
        0
    });
    fine.then(|| HttpUrl {
        uri,
        scheme,
        host,
        port,
    })
}

/// The port written after `host` in `authority`, or the scheme's default; `None` if invalid.
fn port(https: bool, authority: &str, host: &str) -> Option<u16> {
    let host_and_port = authority.rsplit('@').next().unwrap_or(authority);
    match host_and_port.strip_prefix(host)? {
        "" => Some(if https { 443 } else { 80 }),
        rest => rest
            .strip_prefix(':')?
            .parse()
            .ok()
            .filter(|port| *port != 0),
    }
}

/// `http://user:password@host` as `http://***@host`, for problems that quote a URL.
fn redact_user_info(text: &str) -> Cow<'_, str> {
    let Some(start) = text.find("://").map(|at| at + 3) else {
        return Cow::Borrowed(text);
    };
    let rest = &text[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}***{}", &text[..start], &rest[at..])),
        None => Cow::Borrowed(text),
    }
}
