//! What a connection is doing, for `server.idle_timeout`: how many requests are in flight, when
//! the last one started or ended, when a response body last made progress, and when a byte
//! last moved. [`Tracked`] wraps the socket and stamps every read and write; [`RequestGuard`]
//! brackets each request; [`Stamped`] wraps each response body.
//!
//! The clocks and their purposes: a connection with no request in flight for `idle_timeout` is
//! asked to close gracefully (HTTP/2 PINGs or a trickled preface do not keep it open). A
//! request stays in flight until its response body has been sent, so a long response (an
//! event stream open for hours) keeps its connection. A connection whose response bodies make
//! no progress for their limit — two idle periods, or the route's own `idle_timeout` when
//! longer (a stalled upstream, a client that stopped reading, PINGs or not) — is dropped. A WebSocket tunnel,
//! which has no bodies, is dropped after `idle_timeout` without a byte either way.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// A connection's activity, shared between its socket, its requests and its watchdog.
#[derive(Clone)]
pub struct Activity(Arc<Stamps>);

struct Stamps {
    origin: Instant,
    /// Milliseconds since `origin` of the last read or write.
    last_byte: AtomicU64,
    /// Milliseconds since `origin` of the last request start or end.
    last_request: AtomicU64,
    /// Milliseconds since `origin` of the last response body frame handed to hyper.
    last_progress: AtomicU64,
    in_flight: AtomicUsize,
    /// Whether any request has started on this connection.
    any_request: std::sync::atomic::AtomicBool,
    /// Long responses being sent, and the longest stall (ms) any of them allows; reset when
    /// the last one ends.
    long_bodies: AtomicUsize,
    long_limit: AtomicU64,
    /// Credentials of the tunnels and long responses opened here.
    held: std::sync::Mutex<Vec<Held>>,
}

/// The credential a tunnel or a long response on this connection was let through with: what
/// a revocation must be able to reach while it stays open.
#[derive(Debug, Clone)]
pub struct Held {
    /// The credential's key (a token's identity).
    pub hash: [u8; 32],
    pub login: String,
}

/// Why [`Activity::watch`] completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// No request in flight for the idle limit: close gracefully.
    Idle,
    /// Long responses made no progress for their limit: drop the connection.
    Stalled,
}

fn stamp(clock: &AtomicU64, origin: Instant) {
    let elapsed = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
    clock.store(elapsed, Ordering::Relaxed);
}

impl Activity {
    pub fn new() -> Activity {
        Activity(Arc::new(Stamps {
            origin: Instant::now(),
            last_byte: AtomicU64::new(0),
            last_request: AtomicU64::new(0),
            last_progress: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            any_request: std::sync::atomic::AtomicBool::new(false),
            long_bodies: AtomicUsize::new(0),
            long_limit: AtomicU64::new(0),
            held: std::sync::Mutex::new(Vec::new()),
        }))
    }

    fn at(&self, clock: &AtomicU64) -> Instant {
        self.0.origin + Duration::from_millis(clock.load(Ordering::Relaxed))
    }

    /// Marks a request as in flight until the guard is dropped.
    pub fn request(&self) -> RequestGuard {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        self.0.any_request.store(true, Ordering::Relaxed);
        stamp(&self.0.last_request, self.0.origin);
        RequestGuard(self.clone())
    }

    /// Remembers the credential of a tunnel or long response opened on this connection.
    pub fn hold(&self, held: Held) {
        self.0
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(held);
    }

    /// Whether any credential held open here passes `revoked`.
    pub fn holds_any(&self, revoked: impl Fn(&Held) -> bool) -> bool {
        let held = self.0.held.lock().unwrap_or_else(|p| p.into_inner());
        held.iter().any(revoked)
    }

    /// Completes at `deadline` if no request has started by then; never otherwise. A
    /// connection that sends nothing, or only an HTTP/2 preface and PINGs, is cut at the
    /// header timeout rather than held for the idle one.
    pub async fn first_request_missing(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline).await;
        if self.0.any_request.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    }

    /// Completes once no request has been in flight for `idle` ([`Watch::Idle`]), or once
    /// the long responses in flight have made no progress for their limit
    /// ([`Watch::Stalled`]). Requests still waiting for their response head are bounded by
    /// the upstream's `response_timeout` instead.
    pub async fn watch(&self, idle: Duration) -> Watch {
        loop {
            let now = Instant::now();
            let deadline = if self.0.in_flight.load(Ordering::Relaxed) == 0 {
                let deadline = self.at(&self.0.last_request) + idle;
                if now >= deadline && self.0.in_flight.load(Ordering::Relaxed) == 0 {
                    return Watch::Idle;
                }
                deadline
            } else if self.0.long_bodies.load(Ordering::Relaxed) > 0 {
                let deadline = self.at(&self.0.last_progress) + self.body_limit(idle);
                if now >= deadline && self.0.long_bodies.load(Ordering::Relaxed) > 0 {
                    return Watch::Stalled;
                }
                deadline
            } else {
                now + idle
            };
            tokio::time::sleep_until(deadline.max(now + idle / 4)).await;
        }
    }

    /// The longest stall the long responses in flight allow, at least `idle`.
    fn body_limit(&self, idle: Duration) -> Duration {
        Duration::from_millis(self.0.long_limit.load(Ordering::Relaxed)).max(idle)
    }

    /// Completes once no byte has moved either way for `limit`, counting from `since` at
    /// the earliest.
    pub async fn silent_for(&self, limit: Duration, since: Instant) {
        self.unchanged_for(&self.0.last_byte, limit, since).await;
    }

    /// Completes once no response body has made progress for `idle` (or the longer limit of
    /// a body in flight), counting from `since` at the earliest.
    pub async fn stalled_for(&self, idle: Duration, since: Instant) {
        let limit = self.body_limit(idle);
        self.unchanged_for(&self.0.last_progress, limit, since)
            .await;
    }

    async fn unchanged_for(&self, clock: &AtomicU64, limit: Duration, since: Instant) {
        loop {
            let deadline = self.at(clock).max(since) + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

/// One request in flight; dropping it (response head sent, or the request abandoned) ends it.
pub struct RequestGuard(Activity);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let stamps = &self.0 .0;
        stamps.in_flight.fetch_sub(1, Ordering::Relaxed);
        stamp(&stamps.last_request, stamps.origin);
    }
}

/// A response body that records in an [`Activity`] each frame hyper takes from it — which
/// hyper only does as fast as the client reads (HTTP/2 flow control, HTTP/1.1 socket buffers).
/// A long response also keeps its request in flight until it is dropped.
pub struct Stamped<B> {
    body: B,
    activity: Activity,
    long: Option<RequestGuard>,
}

impl<B> Stamped<B> {
    pub fn new(body: B, activity: &Activity) -> Stamped<B> {
        Stamped {
            body,
            activity: activity.clone(),
            long: None,
        }
    }

    /// A long response: its `request` stays in flight until the body ends, and the body may
    /// go `limit` (a route's own `idle_timeout`) without progress.
    pub fn long(
        body: B,
        request: RequestGuard,
        activity: &Activity,
        limit: Duration,
    ) -> Stamped<B> {
        let stamps = &activity.0;
        stamp(&stamps.last_progress, stamps.origin);
        stamps.long_bodies.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        stamps.long_limit.fetch_max(ms, Ordering::Relaxed);
        Stamped {
            body,
            activity: activity.clone(),
            long: Some(request),
        }
    }
}

impl<B> Drop for Stamped<B> {
    fn drop(&mut self) {
        let stamps = &self.activity.0;
        if self.long.is_some() && stamps.long_bodies.fetch_sub(1, Ordering::Relaxed) == 1 {
            stamps.long_limit.store(0, Ordering::Relaxed);
        }
    }
}

impl<B: Body + Unpin> Body for Stamped<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let poll = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(poll, Poll::Ready(Some(Ok(_)))) {
            stamp(&self.activity.0.last_progress, self.activity.0.origin);
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

/// A socket that records its reads and writes in an [`Activity`].
pub struct Tracked<IO> {
    io: IO,
    activity: Activity,
}

impl<IO> Tracked<IO> {
    pub fn new(io: IO, activity: &Activity) -> Tracked<IO> {
        Tracked {
            io,
            activity: activity.clone(),
        }
    }

    fn moved(&self) {
        stamp(&self.activity.0.last_byte, self.activity.0.origin);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved();
        }
        poll
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.moved();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn silent_for_waits_from_the_last_byte() {
        let activity = Activity::new();
        let (near, mut far) = tokio::io::duplex(64);
        let mut near = Tracked::new(near, &activity);
        tokio::time::advance(Duration::from_secs(50)).await;
        far.write_all(b"x").await.expect("duplex write");
        let mut byte = [0u8; 1];
        near.read_exact(&mut byte).await.expect("duplex read");
        let started = Instant::now();
        activity
            .silent_for(Duration::from_secs(60), started - Duration::from_secs(1))
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let later = Instant::now() + Duration::from_secs(5);
        activity.silent_for(Duration::from_secs(60), later).await;
        assert_eq!(started.elapsed(), Duration::from_secs(125));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_for_waits_for_requests_to_end_and_ignores_bytes() {
        let activity = Activity::new();
        let limit = Duration::from_secs(60);
        let request = activity.request();
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move {
                let why = activity.watch(limit).await;
                (why, Instant::now())
            }
        });
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(!idle.is_finished(), "idle while a request was in flight");
        drop(request);
        let ended = Instant::now();
        let (near, mut far) = tokio::io::duplex(64);
        let mut near = Tracked::new(near, &activity);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(10)).await;
            far.write_all(b"p").await.expect("duplex write");
            let mut byte = [0u8; 1];
            near.read_exact(&mut byte).await.expect("duplex read");
        }
        let (why, fired) = idle.await.expect("idle task");
        assert_eq!(why, Watch::Idle);
        let waited = fired - ended;
        assert!(waited >= limit && waited < limit + limit / 4, "{waited:?}");
    }

    /// A body with nothing to send for now, forever.
    struct Quiet;

    impl Body for Quiet {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_response_keeps_its_connection_until_it_stalls_past_its_limit() {
        let activity = Activity::new();
        let idle = Duration::from_secs(120);
        let limit = Duration::from_secs(3600);
        let started = Instant::now();
        let body = Stamped::long(Quiet, activity.request(), &activity, limit);
        // Never idle while the body is in flight; cut once it made no progress for its limit.
        assert_eq!(activity.watch(idle).await, Watch::Stalled);
        let waited = started.elapsed();
        assert!(waited >= limit && waited < limit + idle, "{waited:?}");
        // An ordinary body leaves its request at the head: the connection goes idle.
        drop(body);
        let request = activity.request();
        let _plain = Stamped::new(Quiet, &activity);
        drop(request);
        let started = Instant::now();
        assert_eq!(activity.watch(idle).await, Watch::Idle);
        let waited = started.elapsed();
        assert!(waited >= idle && waited < idle + idle / 4, "{waited:?}");
    }
}
