//! Keep-alive connections to one upstream, on hyper's HTTP/1.1 client connections.
//!
//! A connection carries one exchange at a time. It is taken for a request and given back when
//! the response body has been read to its end and the request body sent to its end (an
//! upstream may answer before an upload is done); a body dropped early, a 101 or a failure
//! closes it instead. Idle connections are reused most recently used first and closed after
//! `idle_timeout`. A request that could not be written because a kept connection had just
//! been closed by the upstream goes out on another connection (a new one at the latest).
//!
//! Resources a client can hold here are bounded: at most `max_connections` connections are
//! open at once (idle ones included); a request that finds them all busy waits up to
//! `queue_timeout` for one to come back or close, then fails (503). A request body that moves
//! no byte for `body_timeout` fails its exchange and closes its connection (408), so a client
//! that announces an upload and sends nothing does not pin an upstream connection.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use std::future::Future;

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request got no response from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection: refused, unreachable, timed out, or the TLS handshake failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] BoxError),
    /// The connection failed while the request or the response head was under way.
    #[error(transparent)]
    Http(#[from] hyper::Error),
    /// Every connection the upstream may have was busy for the whole `queue_timeout`.
    #[error("all {0} connections busy")]
    Saturated(usize),
    /// The client's request body made no progress for `body_timeout`.
    #[error("the request body stalled")]
    BodyStalled,
}

/// The error a stalled request body fails its exchange with.
#[derive(Debug, thiserror::Error)]
#[error("the request body made no progress in time")]
struct BodyStalled;

/// The limits of one upstream's pool.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub queue_timeout: Duration,
    pub body_timeout: Duration,
}

pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    /// The upstream's scheme and authority: where connections go.
    target: Uri,
    limits: Limits,
    /// Most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// One permit per open connection, held by its task until it closes.
    slots: Arc<Semaphore>,
    /// Woken when a connection is given back or closes: waiting requests look again.
    freed: Arc<Notify>,
}

struct Idle {
    sender: SendRequest<SentBody>,
    since: Instant,
}

impl Pool {
    pub fn new(connector: HttpsConnector<HttpConnector>, target: Uri, limits: Limits) -> Pool {
        let inner = Arc::new(Inner {
            connector,
            target,
            limits,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            freed: Arc::new(Notify::new()),
        });
        crate::periodic::every(&inner, limits.idle_timeout / 2, Inner::sweep);
        Pool { inner }
    }

    /// Sends `request` (origin-form target, `Host` set) and returns the response head, with
    /// the lease on its connection for the body to give back.
    pub async fn send(
        &self,
        request: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let (parts, body) = request.into_parts();
        let (body, sent, stalled) = SentBody::new(body, self.inner.limits.body_timeout);
        let mut request = Request::from_parts(parts, body);
        let deadline = Instant::now() + self.inner.limits.queue_timeout;
        loop {
            let (mut sender, reused) = self.inner.connection(deadline).await?;
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let pool = Arc::downgrade(&self.inner);
                    return Ok((response, Lease { sender, sent, pool }));
                }
                // hyper closes a connection whose request body failed.
                Err(_) if stalled.load(Ordering::Acquire) => return Err(SendError::BodyStalled),
                Err(mut error) => match error.take_message() {
                    // The kept connection closed before the request was written: not sent.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Http(error.into_error())),
                },
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle connection, or a new one within `max_connections`; waits until `deadline` for
    /// one to come back or close. `true` with a kept connection.
    async fn connection(
        &self,
        deadline: Instant,
    ) -> Result<(SendRequest<SentBody>, bool), SendError> {
        loop {
            // Registered before looking, so a connection freed meanwhile is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(sender) = self.ready_idle().await {
                return Ok((sender, true));
            }
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                return Ok((self.connect(slot).await?, false));
            }
            let max = self.limits.max_connections;
            tokio::time::timeout_at(deadline, freed)
                .await
                .map_err(|_| SendError::Saturated(max))?;
        }
    }

    /// The most recently used idle connection that is still open and ready.
    async fn ready_idle(&self) -> Option<SendRequest<SentBody>> {
        loop {
            let mut sender = {
                let mut idle = self.lock();
                let now = Instant::now();
                loop {
                    let kept = idle.pop()?;
                    if !kept.sender.is_closed() && now - kept.since < self.limits.idle_timeout {
                        break kept.sender;
                    }
                }
            };
            // Given back at the end of a body, a connection is ready as soon as its task has
            // seen that end; one the upstream closed meanwhile fails here.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// A new connection, holding `slot` until it closes.
    async fn connect(
        &self,
        slot: OwnedSemaphorePermit,
    ) -> Result<SendRequest<SentBody>, SendError> {
        let io = self
            .connector
            .clone()
            .call(self.target.clone())
            .await
            .map_err(SendError::Connect)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|error| SendError::Connect(error.into()))?;
        let freed = self.freed.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream connection closed");
            }
            drop(slot);
            freed.notify_waiters();
        });
        Ok(sender)
    }

    fn give_back(&self, sender: SendRequest<SentBody>) {
        if sender.is_closed() {
            return;
        }
        let since = Instant::now();
        self.lock().push(Idle { sender, since });
        self.freed.notify_waiters();
    }

    /// Closes the connections idle for `idle_timeout` (the oldest are first).
    fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.lock();
        let expired = idle
            .iter()
            .take_while(|kept| now - kept.since >= self.limits.idle_timeout)
            .count();
        idle.drain(..expired);
        idle.retain(|kept| !kept.sender.is_closed());
    }
}

/// One request's hold on a connection.
pub struct Lease {
    sender: SendRequest<SentBody>,
    /// The request body has been sent to its end.
    sent: Arc<AtomicBool>,
    pool: Weak<Inner>,
}

impl Lease {
    /// The response is read: the connection can carry the next exchange if the request body
    /// is all sent too; otherwise it is closed (it would stay busy for as long as the upload).
    fn give_back(self) {
        if !self.sent.load(Ordering::Acquire) {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(self.sender);
        }
    }
}

/// Where a body is after a frame.
#[derive(PartialEq)]
enum Progress {
    More,
    /// That was its last frame, or it had none left.
    Ended,
    Failed,
}

type Polled = (Option<Result<Frame<Bytes>, hyper::Error>>, Progress);

/// The next frame of `body`, and whether the body ended with it.
fn next_frame(body: &mut Incoming, cx: &mut Context<'_>) -> Poll<Polled> {
    let frame = ready!(Pin::new(&mut *body).poll_frame(cx));
    let progress = match &frame {
        None => Progress::Ended,
        Some(Ok(_)) if body.is_end_stream() => Progress::Ended,
        Some(Ok(_)) => Progress::More,
        Some(Err(_)) => Progress::Failed,
    };
    Poll::Ready((frame, progress))
}

/// A request body that records when it has been sent to its end, and fails once it has made
/// no progress for its limit.
pub struct SentBody {
    body: Incoming,
    sent: Arc<AtomicBool>,
    limit: Duration,
    /// Runs while the client's body is pending; reset by each frame.
    stall: Option<Pin<Box<Sleep>>>,
    stalled: Arc<AtomicBool>,
}

impl SentBody {
    fn new(body: Incoming, limit: Duration) -> (SentBody, Arc<AtomicBool>, Arc<AtomicBool>) {
        // An empty body is never polled.
        let sent = Arc::new(AtomicBool::new(body.is_end_stream()));
        let stalled = Arc::new(AtomicBool::new(false));
        let body = SentBody {
            body,
            sent: sent.clone(),
            limit,
            stall: None,
            stalled: stalled.clone(),
        };
        (body, sent, stalled)
    }
}

impl Body for SentBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match next_frame(&mut this.body, cx) {
            Poll::Ready((frame, progress)) => {
                if progress == Progress::Ended {
                    this.sent.store(true, Ordering::Release);
                }
                if let Some(stall) = &mut this.stall {
                    stall.as_mut().reset(Instant::now() + this.limit);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(stall.as_mut().poll(cx));
                this.stalled.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(BodyStalled))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// An upstream response body that gives its connection back once read to the end.
pub struct PooledBody {
    body: Incoming,
    lease: Option<Lease>,
}

impl PooledBody {
    /// `lease`: `None` for a connection that must not be reused (it switched protocols).
    pub fn new(body: Incoming, lease: Option<Lease>) -> PooledBody {
        PooledBody { body, lease }
    }

    fn ended(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.give_back();
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let (frame, progress) = ready!(next_frame(&mut this.body, cx));
        match progress {
            Progress::Ended => this.ended(),
            Progress::More => {}
            // The connection is broken: dropping the lease closes it.
            Progress::Failed => this.lease = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    /// An empty body (HEAD, 204, 304) is never polled; one dropped midway closes its
    /// connection, since the rest of it would still arrive on it.
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.ended();
        }
    }
}
