//! The listener: accepts connections within `max_connections`, terminates TLS within
//! `tls_handshake_timeout`, serves HTTP/1.1 and HTTP/2 (hyper-util auto) with hyper's limits
//! switched on, closes idle connections, and shuts down gracefully within `shutdown_timeout`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::activity::{Activity, Stamped, Tracked};
use crate::config::{self, Config};
use crate::forward::ClientConn;
use crate::proxy::{self, State};
use crate::tls::{self, TlsError};

/// hyper's HTTP/1 read buffer cannot be smaller than this.
const MIN_BUF_SIZE: usize = 8192;
/// At most one "connection refused" warning per this interval.
const REFUSED_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where the server is in its life; connections watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// No new connections; open ones finish their in-flight requests, then close.
    Draining,
    /// `shutdown_timeout` passed: whatever is still open is closed now.
    Closing,
}

/// Asks a running [`Server`] to stop: no new connections, in-flight requests finish.
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<Phase>>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.send_if_modified(|phase| {
            let serving = *phase == Phase::Serving;
            if serving {
                *phase = Phase::Draining;
            }
            serving
        });
    }

    /// Skips the rest of the drain: open connections are closed now.
    pub fn force(&self) {
        self.0.send_replace(Phase::Closing);
    }
}

/// A bound listener, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    phase: Arc<watch::Sender<Phase>>,
    shared: Arc<Shared>,
}

/// What every connection task needs.
struct Shared {
    state: State,
    http: auto::Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    limits: config::Server,
    /// One permit per open connection: bounds them, and lets shutdown wait for the last.
    connections: Arc<Semaphore>,
    /// Connections refused at `max_connections`, and when that was last logged: one warning
    /// per interval, not one per connection, when a flood hits the limit.
    refused: AtomicU64,
    refused_logged: Mutex<Option<Instant>>,
}

impl Server {
    /// Binds the listener and prepares TLS and the upstream pools; serves nothing yet.
    pub async fn bind(config: &Config) -> Result<Server, StartError> {
        let limits = config.server.clone();
        let tls = match &limits.tls {
            Some(files) => Some(TlsAcceptor::from(tls::server_config(
                &files.cert,
                &files.key,
            )?)),
            None => None,
        };
        let addr = limits.listen;
        let bind_error = |cause| StartError::Bind { addr, cause };
        let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let shared = Shared {
            state: State::new(config)?,
            http: http_builder(&limits),
            tls,
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            refused: AtomicU64::new(0),
            refused_logged: Mutex::new(None),
            limits,
        };
        Ok(Server {
            listener,
            local_addr,
            phase: Arc::new(watch::channel(Phase::Serving).0),
            shared: Arc::new(shared),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.phase.clone())
    }

    /// Accepts until shut down, then waits up to `shutdown_timeout` for open connections to
    /// finish their in-flight requests. Returns the number of connections cut at the bound.
    pub async fn run(self) -> usize {
        let mut phase = self.phase.subscribe();
        loop {
            let accepted = tokio::select! {
                _ = phase.wait_for(|phase| *phase >= Phase::Draining) => break,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
        drop(self.listener);
        let cut = self.shared.drain().await;
        self.phase.send_replace(Phase::Closing);
        cut
    }

    fn admit(&self, stream: TcpStream, peer: SocketAddr) {
        let Ok(permit) = self.shared.connections.clone().try_acquire_owned() else {
            self.shared.refused(peer);
            return;
        };
        let shared = self.shared.clone();
        let phase = self.phase.subscribe();
        tokio::spawn(async move {
            shared.serve(stream, peer, phase).await;
            drop(permit);
        });
    }
}

/// hyper's server with every limit of `[server]` switched on (hyper has none by default).
fn http_builder(limits: &config::Server) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

impl Shared {
    fn refused(&self, peer: SocketAddr) {
        let count = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut logged) = self.refused_logged.lock() else {
            return;
        };
        let now = Instant::now();
        if logged.is_none_or(|at| now.duration_since(at) >= REFUSED_LOG_INTERVAL) {
            *logged = Some(now);
            tracing::warn!(%peer, refused_total = count, "max_connections reached, connection refused");
        }
    }

    async fn drain(&self) -> usize {
        let max = self.limits.max_connections;
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let open = max - self.connections.available_permits();
        tracing::info!(open, "shutting down: draining connections");
        let drained = self.connections.acquire_many(all);
        match tokio::time::timeout(self.limits.shutdown_timeout, drained).await {
            Ok(_) => 0,
            Err(_) => {
                let cut = max - self.connections.available_permits();
                tracing::warn!(
                    cut,
                    "shutdown_timeout reached, closing remaining connections"
                );
                cut
            }
        }
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        phase: watch::Receiver<Phase>,
    ) {
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let Some(tls) = &self.tls else {
            let client = ClientConn::new(peer, false);
            return self
                .serve_http(Tracked::new(stream, &activity), client, activity, phase)
                .await;
        };
        let handshake = tls.accept(Tracked::new(stream, &activity));
        let stream = match tokio::time::timeout(self.limits.tls_handshake_timeout, handshake).await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
        };
        let client = ClientConn::new(peer, true);
        self.serve_http(stream, client, activity, phase).await;
    }

    /// Serves one connection until it closes, has had no request in flight for
    /// `idle_timeout`, or the server stops; the last two end it gracefully (in-flight requests
    /// finish, HTTP/2 gets GOAWAY). A connection whose response bodies then make no progress for another
    /// `idle_timeout`, or when the server's drain bound passes, is dropped where it stands.
    async fn serve_http<I>(
        self: Arc<Self>,
        io: I,
        client: ClientConn,
        activity: Activity,
        mut phase: watch::Receiver<Phase>,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let client = Arc::new(client);
        let service = service_fn(|request| {
            let (shared, client) = (self.clone(), client.clone());
            let in_flight = activity.request();
            let activity = activity.clone();
            async move {
                let response = proxy::handle(&shared.state, &client, request).await;
                drop(in_flight);
                Ok::<_, Infallible>(response.map(|body| Stamped::new(body, &activity)))
            }
        });
        let idle = self.limits.idle_timeout;
        let connection = self
            .http
            .serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing = false;
        let mut closing_since = Instant::now();
        loop {
            let next = if closing {
                Phase::Closing
            } else {
                Phase::Draining
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %client.peer, %error, "connection ended with an error");
                    }
                    break;
                }
                _ = phase.wait_for(|phase| *phase >= next) => {
                    if closing {
                        return;
                    }
                    closing = true;
                }
                _ = activity.idle_for(idle), if !closing => closing = true,
                _ = activity.stalled_for(idle, closing_since), if closing => return,
            }
            if closing {
                closing_since = Instant::now();
                connection.as_mut().graceful_shutdown();
            }
        }
        if let Some(tunnel) = client.take_tunnel() {
            tokio::select! {
                _ = tunnel.run() => {}
                _ = activity.silent_for(idle, Instant::now()) => {}
                _ = phase.wait_for(|phase| *phase == Phase::Closing) => {}
            }
        }
    }
}
