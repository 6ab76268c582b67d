//! Keep-alive connections to one upstream, on hyper's HTTP/1.1 client connections.
//!
//! A connection carries one exchange at a time. It is taken for a request and given back when
//! the response body has been read to its end and the request body sent to its end (an
//! upstream may answer before an upload is done); a body dropped early, a 101 or a failure
//! closes it instead. Idle connections are reused most recently used first and closed after
//! `idle_timeout`. A request that could not be written because a kept connection had just
//! been closed by the upstream goes out on another connection (a new one at the latest).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
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
}

pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    /// The upstream's scheme and authority: where connections go.
    target: Uri,
    idle_timeout: Duration,
    /// Most recently used last.
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    sender: SendRequest<SentBody>,
    since: Instant,
}

impl Pool {
    pub fn new(
        connector: HttpsConnector<HttpConnector>,
        target: Uri,
        idle_timeout: Duration,
    ) -> Pool {
        let inner = Arc::new(Inner {
            connector,
            target,
            idle_timeout,
            idle: Mutex::new(Vec::new()),
        });
        crate::periodic::every(&inner, idle_timeout / 2, Inner::sweep);
        Pool { inner }
    }

    /// Sends `request` (origin-form target, `Host` set) and returns the response head, with
    /// the lease on its connection for the body to give back.
    pub async fn send(
        &self,
        request: Request<Incoming>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        let (parts, body) = request.into_parts();
        let (body, sent) = SentBody::new(body);
        let mut request = Request::from_parts(parts, body);
        loop {
            let (mut sender, reused) = match self.inner.ready_idle().await {
                Some(sender) => (sender, true),
                None => (self.inner.connect().await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let pool = Arc::downgrade(&self.inner);
                    return Ok((response, Lease { sender, sent, pool }));
                }
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

    /// The most recently used idle connection that is still open and ready.
    async fn ready_idle(&self) -> Option<SendRequest<SentBody>> {
        loop {
            let mut sender = {
                let mut idle = self.lock();
                let now = Instant::now();
                loop {
                    let kept = idle.pop()?;
                    if !kept.sender.is_closed() && now - kept.since < self.idle_timeout {
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

    async fn connect(&self) -> Result<SendRequest<SentBody>, SendError> {
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
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream connection closed");
            }
        });
        Ok(sender)
    }

    fn give_back(&self, sender: SendRequest<SentBody>) {
        if sender.is_closed() {
            return;
        }
        let since = Instant::now();
        self.lock().push(Idle { sender, since });
    }

    /// Closes the connections idle for `idle_timeout` (the oldest are first).
    fn sweep(&self) {
        let now = Instant::now();
        let mut idle = self.lock();
        let expired = idle
            .iter()
            .take_while(|kept| now - kept.since >= self.idle_timeout)
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

/// A request body that records when it has been sent to its end.
pub struct SentBody {
    body: Incoming,
    sent: Arc<AtomicBool>,
}

impl SentBody {
    fn new(body: Incoming) -> (SentBody, Arc<AtomicBool>) {
        // An empty body is never polled.
        let sent = Arc::new(AtomicBool::new(body.is_end_stream()));
        (
            SentBody {
                body,
                sent: sent.clone(),
            },
            sent,
        )
    }
}

impl Body for SentBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let (frame, progress) = ready!(next_frame(&mut this.body, cx));
        if progress == Progress::Ended {
            this.sent.store(true, Ordering::Release);
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
