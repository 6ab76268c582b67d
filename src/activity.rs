//! When a connection last moved a byte: the clock behind `server.idle_timeout`. [`Tracked`]
//! wraps a connection's socket and stamps every successful read and write.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The last time a connection read or wrote, shared between its socket and its watchdog.
#[derive(Clone)]
pub struct Activity(Arc<Stamp>);

struct Stamp {
    origin: Instant,
    /// Milliseconds since `origin` of the last read or write.
    last: AtomicU64,
}

impl Activity {
    pub fn new() -> Activity {
        Activity(Arc::new(Stamp {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }))
    }

    fn touch(&self) {
        let elapsed = self.0.origin.elapsed().as_millis();
        self.0.last.store(
            u64::try_from(elapsed).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn last(&self) -> Instant {
        self.0.origin + Duration::from_millis(self.0.last.load(Ordering::Relaxed))
    }

    /// Completes once no byte has moved for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            let deadline = self.last() + limit;
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
            self.activity.touch();
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
            self.activity.touch();
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
            self.activity.touch();
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
    async fn idle_for_waits_from_the_last_byte() {
        let activity = Activity::new();
        let (near, mut far) = tokio::io::duplex(64);
        let mut near = Tracked::new(near, &activity);
        tokio::time::advance(Duration::from_secs(50)).await;
        far.write_all(b"x").await.expect("duplex write");
        let mut byte = [0u8; 1];
        near.read_exact(&mut byte).await.expect("duplex read");
        let started = Instant::now();
        activity.idle_for(Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
