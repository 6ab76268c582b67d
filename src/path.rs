//! The request target: what counts as "the path", and which route it selects.
//!
//! This module owns the rules of `security.md` ("The path"): the method and request-target
//! form, the `Host` header against the target's authority, the raw path (rejected with 400
//! when anything in it could be read two ways), and longest-prefix route matching on segment
//! boundaries. Nothing is normalised: a path is either refused or forwarded byte for byte as
//! checked. Everything here is pure and synchronous; checking a target and selecting a
//! route do not allocate.

use http::{HeaderValue, Method, Uri, Version};

use crate::config::Route;

#[cfg(test)]
mod tests;

/// Why a request target was refused. Every variant is answered 400 (no Hub call, nothing
/// forwarded); the `Display` text is safe to show the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("CONNECT is not supported")]
    Connect,
    #[error("asterisk-form request target is not supported")]
    Asterisk,
    #[error("request target is not an absolute path")]
    NotAbsolutePath,
    #[error("request target contains a byte outside visible ASCII")]
    NonVisibleAscii,
    #[error("path contains a backslash")]
    Backslash,
    #[error("path contains ';'")]
    Semicolon,
    #[error("request target contains '#'")]
    Fragment,
    #[error("path contains an empty segment")]
    EmptySegment,
    #[error("path contains a dot segment")]
    DotSegment,
    #[error("malformed percent-escape")]
    MalformedEscape,
    #[error("percent-escape of a delimiter or control character")]
    ForbiddenEscape,
    #[error("percent-escape of an unreserved character")]
    UnreservedEscape,
    #[error("percent-escapes do not decode to valid UTF-8")]
    InvalidUtf8,
    #[error("percent-escape of a character whose case mapping is ASCII")]
    AsciiCaseMapping,
    #[error("missing Host header")]
    MissingHost,
    #[error("more than one Host header")]
    DuplicateHost,
    #[error("invalid Host header")]
    InvalidHost,
    #[error("request-target authority differs from Host")]
    HostMismatch,
    #[error("path matches a protected route only when letter case is ignored")]
    CaseVariant,
    #[error("path matches a protected route only when trailing dots or spaces are trimmed")]
    TrimVariant,
}

/// What the target check established about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The checked path, without the query: what routes are matched against.
    pub path: &'a str,
    /// Path and query exactly as received: what is forwarded upstream.
    pub path_and_query: &'a str,
    /// `host[:port]` from `Host`, or from the target's authority when there is no `Host`.
    pub host: &'a str,
}

/// Checks method, request-target form and `Host`, then the path ([`check_path`]).
///
/// `hosts` are all values of the `Host` header. For HTTP/1.1 absolute-form and for HTTP/2,
/// `uri` carries the authority the client sent; it must agree with `Host` when both exist.
pub fn check_target<'a>(
    method: &Method,
    version: Version,
    uri: &'a Uri,
    hosts: &[&'a HeaderValue],
) -> Result<Target<'a>, PathError> {
    if method == Method::CONNECT {
        return Err(PathError::Connect);
    }
    if uri.path() == "*" {
        return Err(PathError::Asterisk);
    }
    if uri.scheme().is_none() && uri.authority().is_some() {
        // Authority-form (`host:port`) is only meaningful for CONNECT.
        return Err(PathError::NotAbsolutePath);
    }
    let host = check_host(version, uri, hosts)?;
    let path_and_query = uri.path_and_query().map_or("", |pq| pq.as_str());
    let path = check_path(path_and_query)?;
    Ok(Target {
        path,
        path_and_query,
        host,
    })
}

/// The host the request is for: the single `Host` header, which must agree with the
/// target's authority when there is one, else that authority.
fn check_host<'a>(
    version: Version,
    uri: &'a Uri,
    hosts: &[&'a HeaderValue],
) -> Result<&'a str, PathError> {
    let authority = uri.authority().map(|a| a.as_str());
    let header = match hosts {
        [] => None,
        [one] => Some(one.to_str().map_err(|_| PathError::InvalidHost)?),
        _ => return Err(PathError::DuplicateHost),
    };
    if let Some(header) = header {
        check_host_text(header)?;
    }
    match (header, authority) {
        (Some(header), Some(authority)) if !header.eq_ignore_ascii_case(authority) => {
            Err(PathError::HostMismatch)
        }
        (Some(header), _) => Ok(header),
        // RFC 9112 3.2: an HTTP/1.1 request without `Host` is answered 400, even in
        // absolute-form. HTTP/1.0 may omit it when the target names the host.
        (None, Some(_)) if version == Version::HTTP_11 => Err(PathError::MissingHost),
        (None, Some(authority)) => check_host_text(authority).map(|()| authority),
        (None, None) => Err(PathError::MissingHost),
    }
}

/// A `host[:port]` as names and addresses are written: letters, digits, `-`, `.`, an
/// `[IPv6]` literal, and a `:port`. Nothing else — no userinfo `@`, no `,` or `;` that a
/// backend could read as a list (the value goes on as `X-Forwarded-Host`).
fn check_host_text(host: &str) -> Result<(), PathError> {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-.:[]".contains(b);
    if host.is_empty() || !host.as_bytes().iter().all(allowed) {
        return Err(PathError::InvalidHost);
    }
    Ok(())
}

/// Checks a path-and-query as received (origin form) against `security.md` and returns the
/// path part (before the first `?`). The query only has to be visible ASCII without `#`.
pub fn check_path(path_and_query: &str) -> Result<&str, PathError> {
    let bytes = path_and_query.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolutePath);
    }
    if !bytes.iter().all(|b| (0x21..=0x7E).contains(b)) {
        return Err(PathError::NonVisibleAscii);
    }
    if bytes.contains(&b'#') {
        return Err(PathError::Fragment);
    }
    let path = match path_and_query.find('?') {
        Some(end) => &path_and_query[..end],
        None => path_and_query,
    };
    let mut segments = path.as_bytes()[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        check_segment(segment, last)?;
    }
    Ok(path)
}

/// One segment between slashes; only the last may be empty (`/api/`).
fn check_segment(segment: &[u8], last: bool) -> Result<(), PathError> {
    match segment {
        b"" if last => Ok(()),
        b"" => Err(PathError::EmptySegment),
        b"." | b".." => Err(PathError::DotSegment),
        _ => check_segment_bytes(segment),
    }
}

fn check_segment_bytes(segment: &[u8]) -> Result<(), PathError> {
    let mut i = 0;
    while let Some(&b) = segment.get(i) {
        i += match b {
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            b'%' => check_escape(segment, i)?,
            _ => 1,
        };
    }
    Ok(())
}

/// Checks the escape at `segment[at]` (a `%`) and returns how many bytes it covers: 3, or
/// 3 per byte of the UTF-8 character that a run of escapes of bytes >= 0x80 encodes.
fn check_escape(segment: &[u8], at: usize) -> Result<usize, PathError> {
    let byte = decode_escape(segment, at).ok_or(PathError::MalformedEscape)?;
    match byte {
        0x00..=0x1F | 0x7F | b'/' | b'\\' | b'.' | b'%' | b';' | b'?' | b'#' => {
            Err(PathError::ForbiddenEscape)
        }
        b'-' | b'_' | b'~' => Err(PathError::UnreservedEscape),
        _ if byte.is_ascii_alphanumeric() => Err(PathError::UnreservedEscape),
        0x80.. => check_utf8_escapes(segment, at, byte),
        _ => Ok(3),
    }
}

/// Decodes the UTF-8 character whose lead byte `lead` is escaped at `segment[at]`; every
/// continuation byte must follow as an escape too.
fn check_utf8_escapes(segment: &[u8], at: usize, lead: u8) -> Result<usize, PathError> {
    let len = match lead.leading_ones() {
        2 => 2,
        3 => 3,
        4 => 4,
        _ => return Err(PathError::InvalidUtf8),
    };
    let mut buf = [lead, 0, 0, 0];
    for (k, slot) in buf.iter_mut().enumerate().take(len).skip(1) {
        *slot = decode_escape(segment, at + 3 * k).ok_or(PathError::InvalidUtf8)?;
    }
    // Rejects overlong forms, surrogates, code points past U+10FFFF and bad continuations.
    let decoded = std::str::from_utf8(&buf[..len]).map_err(|_| PathError::InvalidUtf8)?;
    if decoded.chars().any(maps_to_ascii) {
        return Err(PathError::AsciiCaseMapping);
    }
    Ok(3 * len)
}

/// A non-ASCII character that a Unicode-aware case-insensitive comparison takes for an ASCII
/// letter (`ſ` → `S`, `ı` → `I`, `İ` → `i̇`, the Kelvin sign → `k`): a backend that folds case
/// that way would read `/re%C5%BFt` as `/rest` behind the case-variant check.
fn maps_to_ascii(c: char) -> bool {
    c.to_uppercase()
        .chain(c.to_lowercase())
        .any(|m| m.is_ascii())
}

/// The byte escaped as `%XX` at `segment[at]`, if there is a well-formed escape there.
fn decode_escape(segment: &[u8], at: usize) -> Option<u8> {
    match segment.get(at..at + 3)? {
        [b'%', hi, lo] => Some((hex_value(*hi)? << 4) | hex_value(*lo)?),
        _ => None,
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// Routes ordered for longest-prefix matching on segment boundaries.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// Longest prefix first; equal lengths keep their configuration order.
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(mut routes: Vec<Route>) -> RouteTable {
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        RouteTable { routes }
    }

    /// The routes, longest prefix first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a checked path (no query). `Ok(None)`: no route covers it (404).
    /// `Err`: the path falls under a protected prefix only when letter case is ignored.
    pub fn select(&self, path: &str) -> Result<Option<&Route>, PathError> {
        let case_variant = self.routes.iter().any(|route| {
            route.service.is_some()
                && covers(&route.prefix, path, true)
                && !covers(&route.prefix, path, false)
        });
        if case_variant {
            return Err(PathError::CaseVariant);
        }
        // `..%20` or `.%20`: a dot-segment once spaces are trimmed, whatever route it is under.
        let dotted = path.split('/').any(|segment| {
            segment.contains("%20") && segment.replace("%20", "").bytes().all(|b| b == b'.')
        });
        if dotted {
            return Err(PathError::TrimVariant);
        }
        if let Some(trimmed) = trimmed_segments(path) {
            let trim_variant = self.routes.iter().any(|route| {
                route.service.is_some()
                    && covers(&route.prefix, &trimmed, true)
                    && !covers(&route.prefix, path, false)
            });
            if trim_variant {
                return Err(PathError::TrimVariant);
            }
        }
        Ok(self
            .routes
            .iter()
            .find(|route| covers(&route.prefix, path, false)))
    }
}

/// The path with every segment's trailing dots and spaces (`%20`) removed, as a backend that
/// trims segments (Windows-style file names) would read it; `None` when no segment has any.
/// Allocates only for such a path.
fn trimmed_segments(path: &str) -> Option<String> {
    let trims = |segment: &str| {
        segment.ends_with('.') || segment.ends_with("%20") || segment.starts_with("%20")
    };
    if !path.split('/').any(trims) {
        return None;
    }
    let segments: Vec<&str> = path
        .split('/')
        .map(|mut segment| {
            while let Some(rest) = segment
                .strip_suffix('.')
                .or_else(|| segment.strip_suffix("%20"))
                .or_else(|| segment.strip_prefix("%20"))
            {
                segment = rest;
            }
            segment
        })
        .collect();
    Some(segments.join("/"))
}

/// Whether `prefix` covers `path` on a segment boundary: `/api` covers `/api` and `/api/…`,
/// never `/apix`; `/` covers everything.
fn covers(prefix: &str, path: &str, ignore_case: bool) -> bool {
    let (prefix, path) = (prefix.as_bytes(), path.as_bytes());
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let same = if ignore_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    same && (path.len() == prefix.len() || prefix.ends_with(b"/") || path[prefix.len()] == b'/')
}
