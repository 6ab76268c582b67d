//! The listener: accepts connections within `max_connections`, terminates TLS within
//! `tls_handshake_timeout`, serves HTTP/1.1 and HTTP/2 (hyper-util auto) with hyper's limits
//! switched on, closes idle connections, and shuts down gracefully within `shutdown_timeout`.
//! Each connection takes TLS and its limits from the configuration current when it was
//! accepted, each request the routes and token checking current when it arrives (`live`).
//! The admin listener (`admin`) runs beside it, through the drain.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::access::Logged;
use crate::activity::{Activity, Held, Stamped, Tracked, Watch};
use crate::admin::Admin;
use crate::config::Config;
use crate::forward::ClientConn;
use crate::live::{Common, Generation, Live, ReloadError};
use crate::proxy;
use crate::revocation::service::{OpenError, Revoker};
use crate::revocation::set::RevocationSet;
use crate::tls::TlsError;
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
    #[error(transparent)]
    Revocations(#[from] OpenError),
}

/// Where the server is in its life; connections and `/readyz` watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Bound, but not accepting clients until the revocations to enforce are loaded.
    Loading,
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
            let before_drain = *phase < Phase::Draining;
            if before_drain {
                *phase = Phase::Draining;
            }
            before_drain
        });
    }

    /// Skips the rest of the drain: open connections are closed now.
    pub fn force(&self) {
        self.0.send_replace(Phase::Closing);
    }
}

/// Reloads a running [`Server`]'s configuration, as SIGHUP and `POST /reload` do.
#[derive(Clone)]
pub struct ReloadHandle(Arc<Live>);

impl ReloadHandle {
    pub async fn reload(&self) -> Result<(), ReloadError> {
        self.0.reload().await
    }
}

/// Bound listeners (clients and admin), ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    revoker: Arc<Revoker>,
    /// Taken by `run`.
    admin: Option<TcpListener>,
    admin_addr: SocketAddr,
    phase: Arc<watch::Sender<Phase>>,
    shared: Arc<Shared>,
}

/// What every connection task needs.
struct Shared {
    live: Arc<Live>,
    /// `server.max_connections` at start (a reload cannot change it).
    max_connections: usize,
    /// One permit per open connection: bounds them, and lets shutdown wait for the last.
    connections: Arc<Semaphore>,
    /// Connections refused at `max_connections`, and when that was last logged: one warning
    /// per interval, not one per connection, when a flood hits the limit.
    refused: AtomicU64,
    refused_logged: Mutex<Option<Instant>>,
    /// Open connections by client (address grouped by prefix), for
    /// `server.max_connections_per_address`; trusted proxies are not counted.
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One counted connection of a client; dropping it gives the slot back.
struct ClientSlot {
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl Server {
    /// Loads the revocations kept, binds both listeners and prepares TLS and the upstream
    /// pools; serves nothing yet.
    pub async fn bind(config: &Config) -> Result<Server, StartError> {
        let common = Common::default();
        let generation = Generation::new(config.clone(), &common, None)?;
        let live = Arc::new(Live::new(generation, common));
        let revoker = Arc::new(Revoker::open(config, live.clone())?);
        let first_phase = match revoker.fleet() {
            Some(_) => Phase::Loading,
            None => Phase::Serving,
        };
        let (listener, local_addr) = listen(config.server.listen).await?;
        let (admin, admin_addr) = listen(config.admin.listen).await?;
        let max_connections = config.server.max_connections;
        let shared = Shared {
            live,
            max_connections,
            connections: Arc::new(Semaphore::new(max_connections)),
            refused: AtomicU64::new(0),
            refused_logged: Mutex::new(None),
            per_client: Arc::default(),
        };
        Ok(Server {
            listener,
            local_addr,
            revoker,
            admin: Some(admin),
            admin_addr,
            // Without a fleet the revocations are already loaded (from the state file).
            phase: Arc::new(watch::channel(first_phase).0),
            shared: Arc::new(shared),
        })
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle(self.shared.live.clone())
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
        self.run_with(|| {}).await
    }

    /// [`run`](Server::run), calling `ready` once the revocations to enforce are loaded and
    /// clients are accepted (after the fleet's first full set, with `[fleet]`).
    pub async fn run_with(mut self, ready: impl FnOnce()) -> usize {
        let admin = Admin::new(
            self.shared.live.clone(),
            self.revoker.clone(),
            self.phase.subscribe(),
        );
        let admin = Arc::new(admin);
        let admin = self
            .admin
            .take()
            .map(|l| AbortOnDrop(tokio::spawn(admin.serve(l))));
        let mut phase = self.phase.subscribe();
        tokio::select! {
            _ = self.revoker.loaded() => {
                self.phase.send_if_modified(|phase| {
                    let loading = *phase == Phase::Loading;
                    if loading {
                        *phase = Phase::Serving;
                    }
                    loading
                });
                ready();
            }
            _ = phase.wait_for(|phase| *phase >= Phase::Draining) => {}
        }
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
        drop(admin);
        cut
    }

    fn admit(&self, stream: TcpStream, peer: SocketAddr) {
        let Ok(permit) = self.shared.connections.clone().try_acquire_owned() else {
            self.shared.refused(peer, "max_connections");
            return;
        };
        let Some(slot) = self.shared.client_slot(peer.ip()) else {
            self.shared.refused(peer, "max_connections_per_address");
            return;
        };
        let shared = self.shared.clone();
        let phase = self.phase.subscribe();
        shared.live.metrics().connection_opened();
        tokio::spawn(async move {
            shared.clone().serve(stream, peer, phase).await;
            shared.live.metrics().connection_closed();
            drop(slot);
            drop(permit);
        });
    }
}

/// Completes at the next change to the revocation set (never, once it is gone).
async fn revocation_changed(changes: &mut watch::Receiver<u64>) {
    if changes.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether a credential a tunnel or long response on this connection was let through with is
/// revoked now, by token or by login.
fn held_revoked(activity: &Activity, revocations: &RevocationSet) -> bool {
    activity.holds_any(|held| {
        revocations.token(&held.hash).is_some() || revocations.login(&held.login).is_some()
    })
}

async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |cause| StartError::Bind { addr, cause };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}

/// Stops a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Shared {
    /// A slot for one more connection of this peer's client, or `None` when the client holds
    /// `max_connections_per_address` already. Trusted proxies carry many clients: uncounted.
    fn client_slot(&self, peer: IpAddr) -> Option<Option<ClientSlot>> {
        let generation = self.live.current();
        let server = &generation.config.server;
        if server.clients.is_trusted(peer) {
            return Some(None);
        }
        let key = server.clients.key(peer);
        let mut counts = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(key).or_insert(0);
        if *count >= server.max_connections_per_address {
            return None;
        }
        *count += 1;
        Some(Some(ClientSlot {
            per_client: self.per_client.clone(),
            key,
        }))
    }

    fn refused(&self, peer: SocketAddr, limit: &'static str) {
        self.live.metrics().connection_refused();
        let count = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut logged) = self.refused_logged.lock() else {
            return;
        };
        let now = Instant::now();
        if logged.is_none_or(|at| now.duration_since(at) >= REFUSED_LOG_INTERVAL) {
            *logged = Some(now);
            tracing::warn!(%peer, refused_total = count, limit, "connection limit reached, connection refused");
        }
    }

    async fn drain(&self) -> usize {
        let max = self.max_connections;
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        let open = max - self.connections.available_permits();
        tracing::info!(open, "shutting down: draining connections");
        let drained = self.connections.acquire_many(all);
        let bound = self.live.current().config.server.shutdown_timeout;
        match tokio::time::timeout(bound, drained).await {
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
        let generation = self.live.current();
        let Some(tls) = &generation.tls else {
            let client = ClientConn::new(peer, false);
            return self
                .serve_http(
                    Tracked::new(stream, &activity),
                    client,
                    activity,
                    generation,
                    phase,
                )
                .await;
        };
        let handshake = tls.accept(Tracked::new(stream, &activity));
        let timeout = generation.config.server.tls_handshake_timeout;
        let stream = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
        };
        let client = ClientConn::new(peer, true);
        self.serve_http(stream, client, activity, generation, phase)
            .await;
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
        generation: Arc<Generation>,
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
                let current = shared.live.current();
                let (mut response, record) = proxy::handle(&current.state, &client, request).await;
                let limit = response
                    .extensions_mut()
                    .remove::<proxy::BodyIdleTimeout>()
                    .map(|limit| limit.0);
                if let Some(held) = response.extensions_mut().remove::<Held>() {
                    activity.hold(held);
                }
                let body = |body| Logged::new(body, record);
                Ok::<_, Infallible>(match limit {
                    Some(limit) => {
                        response.map(|b| Stamped::long(body(b), in_flight, &activity, limit))
                    }
                    None => {
                        drop(in_flight);
                        response.map(|b| Stamped::new(body(b), &activity))
                    }
                })
            }
        });
        let idle = generation.config.server.idle_timeout;
        let first_request_by = Instant::now() + generation.config.server.header_read_timeout;
        let revocations = self.live.common().revocations.clone();
        let mut changes = revocations.subscribe();
        let connection = generation
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
                () = revocation_changed(&mut changes) => {
                    if held_revoked(&activity, &revocations) {
                        tracing::debug!(peer = %client.peer, "revoked: open stream closed");
                        return;
                    }
                }
                _ = activity.first_request_missing(first_request_by) => {
                    tracing::debug!(peer = %client.peer, "no request within header_read_timeout");
                    return;
                }
                _ = phase.wait_for(|phase| *phase >= next) => {
                    if closing {
                        return;
                    }
                    closing = true;
                }
                watch = activity.watch(idle), if !closing => match watch {
                    Watch::Idle => closing = true,
                    Watch::Stalled => return,
                },
                _ = activity.stalled_for(idle, closing_since), if closing => return,
            }
            if closing {
                closing_since = Instant::now();
                connection.as_mut().graceful_shutdown();
            }
        }
        if let Some(tunnel) = client.take_tunnel() {
            let revoked = async {
                loop {
                    revocation_changed(&mut changes).await;
                    if held_revoked(&activity, &revocations) {
                        tracing::debug!(peer = %client.peer, "revoked: tunnel closed");
                        return;
                    }
                }
            };
            tokio::select! {
                _ = tunnel.run() => {}
                _ = activity.silent_for(idle, Instant::now()) => {}
                _ = phase.wait_for(|phase| *phase == Phase::Closing) => {}
                () = revoked => {}
            }
        }
    }
}
