//! The access log: one line per request (target `hubgate::access`), written when the response
//! body is finished or abandoned, so it knows the bytes sent and the whole duration. A token
//! appears only as its fingerprint; the path is logged without its query.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::{HeaderValue, Method, Uri};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use crate::auth::cache::{hex_digit, Outcome};
use crate::auth::principal::Principal;
use crate::metrics::{AuthOutcome, Name};

/// The log target of access lines, for filters (`RUST_LOG=hubgate::access=off`).
pub const TARGET: &str = "hubgate::access";

/// Everything one access line says.
pub struct Record {
    pub started: Instant,
    pub request_id: HeaderValue,
    /// The client's address: the peer's, or the one a trusted proxy named.
    pub client: std::net::IpAddr,
    pub method: Method,
    pub uri: Uri,
    pub route: Option<Name>,
    pub status: u16,
    pub auth: Option<AuthOutcome>,
    pub cache: Option<Outcome>,
    pub login: Option<Arc<Principal>>,
    pub token: Option<[u8; 6]>,
    /// Time to the upstream's response headers, when the request was forwarded.
    pub upstream_time: Option<Duration>,
}

/// 12 hex digits.
struct Fingerprint([u8; 6]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; 12];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = hex_digit(byte >> 4);
            pair[1] = hex_digit(byte);
        }
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

/// A string escaped as by `str::escape_debug`, written in one piece when nothing in it needs
/// escaping (the common case: escaping goes character by character).
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |b: &u8| (b.is_ascii_graphic() || *b == b' ') && !b"\\'\"".contains(b);
        if self.0.bytes().all(|b| plain(&b)) {
            f.write_str(self.0)
        } else {
            fmt::Display::fmt(&self.0.escape_debug(), f)
        }
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

impl Record {
    fn write(&self, bytes: u64, complete: bool) {
        let request_id = self.request_id.to_str().unwrap_or("-");
        // Strings as `display`: written whole, not escaped character by character as `debug`
        // would (none of these can hold a quote or a control character; the login is escaped).
        tracing::info!(
            target: TARGET,
            request_id = %request_id,
            client = %self.client,
            method = %self.method,
            path = %self.uri.path(),
            route = self.route.as_deref().map(display),
            status = self.status,
            duration_ms = millis(self.started.elapsed()),
            bytes,
            complete,
            upstream_ms = self.upstream_time.map(millis),
            auth = self.auth.map(AuthOutcome::name).map(display),
            cache = self.cache.map(Outcome::name).map(display),
            login = self.login.as_ref().map(|p| display(Escaped(&p.login))),
            token = self.token.map(|t| display(Fingerprint(t))),
            "request"
        );
    }
}

/// A response body that writes the request's access line when it is finished or dropped.
pub struct Logged<B: Body> {
    body: B,
    record: Option<Box<Record>>,
    bytes: u64,
    /// The body reached its end (rather than being dropped midway by a closing client).
    ended: bool,
}

impl<B: Body> Logged<B> {
    /// `record`: `None` when the access log is off.
    pub fn new(body: B, record: Option<Record>) -> Logged<B> {
        Logged {
            body,
            record: record.map(Box::new),
            bytes: 0,
            ended: false,
        }
    }
}

impl<B: Body + Unpin> Body for Logged<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let poll = Pin::new(&mut self.body).poll_frame(cx);
        match &poll {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.remaining() as u64;
                }
            }
            Poll::Ready(None) => self.ended = true,
            _ => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B: Body> Drop for Logged<B> {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            record.write(self.bytes, self.ended || self.body.is_end_stream());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_and_fingerprints_are_written_as_escape_debug_and_hex_would() {
        for login in ["alice", "o'brien x", "a\"b\\c\nd\u{7}", "jürgen", ""] {
            assert_eq!(Escaped(login).to_string(), login.escape_debug().to_string());
        }
        let fingerprint = Fingerprint([0xab, 0x00, 0x01, 0x2c, 0x30, 0xff]);
        assert_eq!(fingerprint.to_string(), "ab00012c30ff");
    }
}
