//! The access log: one line per request (target `hubgate::access`), written when the response
//! body is finished or abandoned, so it knows the bytes sent and the whole duration. A token
//! appears only as its fingerprint; the path is logged without its query.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use http::{HeaderValue, Method, Uri};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use crate::auth::cache::Outcome;
use crate::auth::principal::Principal;
use crate::metrics::{AuthOutcome, Name};

/// The log target of access lines, for filters (`RUST_LOG=hubgate::access=off`).
pub const TARGET: &str = "hubgate::access";

/// Everything one access line says.
pub struct Record {
    pub started: Instant,
    pub request_id: HeaderValue,
    pub client: SocketAddr,
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
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

impl Record {
    fn write(&self, bytes: u64, complete: bool) {
        let request_id = self.request_id.to_str().unwrap_or("-");
        tracing::info!(
            target: TARGET,
            request_id,
            client = %self.client.ip(),
            method = %self.method,
            path = %self.uri.path(),
            route = self.route.as_deref(),
            status = self.status,
            duration_ms = millis(self.started.elapsed()),
            bytes,
            complete,
            upstream_ms = self.upstream_time.map(millis),
            auth = self.auth.map(AuthOutcome::name),
            cache = self.cache.map(Outcome::name),
            login = self.login.as_ref().map(|p| tracing::field::display(p.login.escape_debug())),
            token = self.token.map(|t| tracing::field::display(Fingerprint(t))),
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
