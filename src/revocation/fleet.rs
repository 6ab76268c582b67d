//! The fleet: revocations shared by every instance through Redis.
//!
//! Redis keeps the set in the hash `{channel}:set` (id → revocation JSON) and every change is
//! published on `channel`, in the same transaction as the change itself so the order of
//! messages is the order of the changes. Each instance runs one background task that
//!
//! 1. connects and subscribes to `channel`;
//! 2. loads the whole hash and hands it to [`Sink::replace_all`] — subscribing first means
//!    nothing published while the hash is read can be missed: such a message is applied after
//!    the full set, and applying a change that the set already holds does nothing;
//! 3. applies every message to the sink, in order;
//! 4. on any connection loss reports [`FleetStatus::Disconnected`], keeps the sink as it is
//!    (the last known set still protects), and reconnects with capped backoff, going back to 1.
//!
//! The subscriber speaks RESP3 (Redis 6 or later): subscriptions then share one ordinary
//! connection whose pushes arrive on a channel, and the client itself reports the connection's
//! end. Publishing uses a separate connection, opened on first use and replaced when broken.
//!
//! Nothing read from Redis is trusted for being there: every message and every stored entry
//! carries an HMAC under the fleet's key (`fleet.secret_file`, see `signed`), and what is
//! unsigned, signed with another key or malformed is ignored — never handed to the sink, so
//! never applied nor written to a state file — counted in `hubgate_fleet_rejected_total` and
//! logged at WARN at most once a minute. Only a verified delete reaches [`Sink::delete`].
//! Stored entries signed with `fleet.previous_secret_file` (a key being rotated out) are used
//! and signed again with the current key, unless they changed meanwhile.
//!
//! The Redis URL may hold a password, so only its `host:port` is ever logged or reported;
//! `fleet.redis_password_file` keeps it out of the URL altogether.

mod signed;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, PushInfo,
    PushKind, RedisError, Value,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;

use self::signed::{Keys, Kind, Rejection, SignedWith};
use super::{unix_now, validate as check, Revocation};
use crate::metrics::Metrics;

/// A TCP (and TLS) connect that takes longer is a failure: the next attempt may do better.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one command's answer (the full set, a publication, a health check).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle subscriber checks its connection: a peer that vanished without closing
/// the TCP connection (a partition, a crashed host) would otherwise go unnoticed for ever.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// First pause after a failure; doubled after each further failure, up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause between attempts: a Redis that comes back is found within seconds.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// At most one WARN line per this long about ignored messages and entries: whoever floods the
/// channel with forgeries must not flood the log too (the metric counts every one).
const REJECTION_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Signs a stored entry again only if it still holds what was loaded (a withdrawal or a newer
/// put meanwhile wins): KEYS[1] the set, ARGV the field, the loaded value and the new one.
const RESIGN_SCRIPT: &str = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then \
     redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end return 0";

/// What the fleet applies its news to (implemented by the gateway's revocation service).
pub trait Sink: Send + Sync + 'static {
    /// The full set, after every (re)connect, before any message of that connection.
    fn replace_all(&self, revocations: Vec<Revocation>);
    /// One revocation added somewhere in the fleet (this instance's own publications come back too).
    fn put(&self, revocation: Revocation, published: SystemTime);
    /// One revocation withdrawn somewhere in the fleet.
    fn delete(&self, id: &str, published: SystemTime);
}

/// Where this instance stands with the fleet's Redis (shown by the admin `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetStatus {
    /// Started, the first full set not loaded yet, no failure so far.
    Connecting,
    /// Subscribed, and the full set loaded.
    Connected,
    /// Not connected since `since_unix` (Unix seconds); `error` is the latest failure. The
    /// last known set stays in force meanwhile.
    Disconnected { since_unix: u64, error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Redis could not be reached or refused the change (`host:port: cause`). After a timeout
    /// the change may still have been applied; repeating it is harmless.
    #[error("the fleet's Redis is unavailable: {0}")]
    Unavailable(String),
    /// `fleet.redis_url` cannot be used (the URL itself is never repeated: it may hold a
    /// password).
    #[error("fleet.redis_url cannot be used: {0}")]
    InvalidUrl(String),
}

/// One change, as published on the channel (with its `mac`, see `signed`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Message {
    Put {
        revocation: Revocation,
        published_us: u64,
    },
    Delete {
        id: String,
        published_us: u64,
    },
}

/// The fleet link of one instance. Dropping it stops its background task.
pub struct Fleet {
    link: Arc<Link>,
    task: Option<JoinHandle<()>>,
}

/// What the background task and the publishing side share.
struct Link {
    /// `Err`: the URL could not be used; the message says why (without the URL).
    client: Result<Client, String>,
    /// `host:port`: all that is ever logged of the URL.
    addr: String,
    channel: String,
    /// `{channel}:set`.
    key: String,
    status: watch::Sender<FleetStatus>,
    loaded: watch::Sender<bool>,
    /// The publishing connection, opened on first use; `None` once found broken.
    publisher: Mutex<Option<MultiplexedConnection>>,
    /// Signs what is published and stored, checks what is read.
    keys: Keys,
    rejections: std::sync::Mutex<RejectionLog>,
}

/// When ignored messages and entries were last logged, and how many were not logged since.
#[derive(Default)]
struct RejectionLog {
    last_warned: Option<Instant>,
    unlogged: u64,
}

impl RejectionLog {
    /// One more rejection at `now`: `Some(n)` when it is to be logged (`n` were not, since the
    /// last line), `None` when a line was logged less than [`REJECTION_LOG_INTERVAL`] ago.
    fn note(&mut self, now: Instant) -> Option<u64> {
        let recent = self
            .last_warned
            .is_some_and(|at| now.saturating_duration_since(at) < REJECTION_LOG_INTERVAL);
        if recent {
            self.unlogged += 1;
            return None;
        }
        self.last_warned = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

impl Fleet {
    /// Starts the background task: connect, subscribe to `channel`, then load the full set
    /// (HGETALL `{channel}:set`, the entries signed with the fleet's keys) into
    /// `sink.replace_all`, then apply the signed messages; on any connection loss report
    /// Disconnected, retry with capped backoff, and on reconnect subscribe and load the full
    /// set again. Must be called inside a Tokio runtime.
    pub fn start(
        config: &crate::config::Fleet,
        sink: Arc<dyn Sink>,
        metrics: Arc<Metrics>,
    ) -> Fleet {
        let password = config.redis_password.as_ref().map(|p| p.expose());
        let (client, addr) = match open(config.redis_url.expose(), password) {
            Ok((client, addr)) => (Ok(client), addr),
            Err(why) => (Err(why), "(unusable URL)".to_owned()),
        };
        let status = match &client {
            Ok(_) => FleetStatus::Connecting,
            Err(why) => FleetStatus::Disconnected {
                since_unix: unix_now(),
                error: format!("fleet.redis_url cannot be used: {why}"),
            },
        };
        let link = Arc::new(Link {
            client,
            addr,
            channel: config.channel.clone(),
            key: format!("{}:set", config.channel),
            status: watch::Sender::new(status),
            loaded: watch::Sender::new(false),
            publisher: Mutex::new(None),
            keys: Keys::new(
                config.secret.expose(),
                config.previous_secret.as_ref().map(|key| key.expose()),
                &config.channel,
            ),
            rejections: std::sync::Mutex::new(RejectionLog::default()),
        });
        metrics.fleet_connected(false);
        let task = match &link.client {
            Ok(_) => Some(tokio::spawn(run(link.clone(), sink, metrics))),
            Err(why) => {
                tracing::error!("fleet: fleet.redis_url cannot be used: {why}");
                None
            }
        };
        Fleet { link, task }
    }

    /// Resolves once the first full set has been loaded (used to hold serving until then).
    pub async fn loaded(&self) {
        let mut loaded = self.link.loaded.subscribe();
        // The sender lives in `self.link`, so it outlives this wait.
        let _ = loaded.wait_for(|&done| done).await;
    }

    /// Where the link stands now (what `/readyz` reports).
    pub fn status(&self) -> FleetStatus {
        self.link.status.borrow().clone()
    }

    /// Every change of [`Fleet::status`], for whoever must react to one rather than poll.
    pub fn status_changes(&self) -> watch::Receiver<FleetStatus> {
        self.link.status.subscribe()
    }

    /// Why `fleet.redis_url` cannot be used at all (as opposed to Redis being unreachable).
    pub fn unusable_url(&self) -> Option<&str> {
        self.link.client.as_ref().err().map(String::as_str)
    }

    /// `host:port` of the fleet's Redis: what may be shown of `fleet.redis_url`.
    pub fn redis_addr(&self) -> &str {
        &self.link.addr
    }

    /// Stores the revocation (HSET `{channel}:set` id `{...,"mac":"..."}`) and publishes
    /// `{"op":"put","revocation":{...},"published_us":<unix micros>,"mac":"..."}` on
    /// `channel`, both signed with `fleet.secret_file`.
    pub async fn put(&self, revocation: &Revocation) -> Result<(), FleetError> {
        let keys = &self.link.keys;
        let stored = keys.sign(Kind::Entry, revocation);
        let message = keys.sign(
            Kind::Message,
            &Message::Put {
                revocation: revocation.clone(),
                published_us: unix_micros(SystemTime::now()),
            },
        );
        let mut change = redis::cmd("HSET");
        change.arg(&self.link.key).arg(&revocation.id).arg(stored);
        self.link.publish(change, message).await
    }

    /// HDEL + publish `{"op":"delete","id":"...","published_us":...,"mac":"..."}`.
    pub async fn delete(&self, id: &str) -> Result<(), FleetError> {
        let message = self.link.keys.sign(
            Kind::Message,
            &Message::Delete {
                id: id.to_owned(),
                published_us: unix_micros(SystemTime::now()),
            },
        );
        let mut change = redis::cmd("HDEL");
        change.arg(&self.link.key).arg(id);
        self.link.publish(change, message).await
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A client for `url` (with `password`, from `fleet.redis_password_file`, if given), always
/// speaking RESP3, and the `host:port` it names.
fn open(url: &str, password: Option<&str>) -> Result<(Client, String), String> {
    let info = url.into_connection_info().map_err(|e| e.to_string())?;
    let addr = match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
        ConnectionAddr::TcpTls { host, port, .. } => {
            // The client builds its TLS configuration from the process-wide rustls provider;
            // hubgate links only `ring`. Already installed (by anyone): nothing to do.
            let _ = rustls::crypto::ring::default_provider().install_default();
            format!("{host}:{port}")
        }
        _ => return Err("only redis:// and rediss:// URLs are supported".to_owned()),
    };
    let mut settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let client = Client::open(info.set_redis_settings(settings)).map_err(|e| e.to_string())?;
    Ok((client, addr))
}

fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

impl Link {
    /// Runs `change` and publishes `message` in one MULTI/EXEC, so the store and the channel
    /// agree on the order of changes. A broken connection is replaced and the change tried
    /// once more: both commands are idempotent.
    async fn publish(&self, change: redis::Cmd, message: String) -> Result<(), FleetError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| FleetError::InvalidUrl(why.clone()))?;
        let mut transaction = redis::pipe();
        transaction.atomic();
        transaction.add_command(change).ignore();
        transaction
            .cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .ignore();
        let mut retried = false;
        loop {
            let mut connection = self.publisher(client).await?;
            let Err(error) = transaction.query_async::<()>(&mut connection).await else {
                return Ok(());
            };
            if broken(&error) {
                *self.publisher.lock().await = None;
            }
            if retried || !broken(&error) {
                return Err(self.unavailable(&error));
            }
            retried = true;
        }
    }

    /// The publishing connection, opened now if there is none.
    async fn publisher(&self, client: &Client) -> Result<MultiplexedConnection, FleetError> {
        let mut slot = self.publisher.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await
            .map_err(|error| self.unavailable(&error))?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    fn unavailable(&self, error: &RedisError) -> FleetError {
        FleetError::Unavailable(format!("{}: {}", self.addr, describe(error)))
    }

    /// Subscribed and loaded: ready to serve from the fleet's set.
    /// The metric goes first: whoever wakes on the status change must see it too.
    fn connected(&self, metrics: &Metrics, count: usize) {
        metrics.fleet_connected(true);
        self.status.send_replace(FleetStatus::Connected);
        self.loaded.send_replace(true);
        tracing::info!(
            "fleet: connected to Redis at {}, {count} revocations loaded",
            self.addr
        );
    }

    /// The connection is gone (or never came): say so once, keep the first moment of the
    /// outage, and remember the latest error for `/readyz`.
    fn lost(&self, metrics: &Metrics, error: String) {
        metrics.fleet_connected(false);
        let since = match &*self.status.borrow() {
            FleetStatus::Disconnected { since_unix, .. } => Some(*since_unix),
            FleetStatus::Connecting | FleetStatus::Connected => None,
        };
        match since {
            None => tracing::warn!(
                "fleet: Redis at {} unavailable ({error}); keeping the last known \
                 revocations and retrying",
                self.addr
            ),
            Some(_) => tracing::debug!("fleet: Redis at {} still unavailable: {error}", self.addr),
        }
        self.status.send_replace(FleetStatus::Disconnected {
            since_unix: since.unwrap_or_else(unix_now),
            error,
        });
    }

    /// Counts an ignored message or entry (`what`), and logs it unless another was logged
    /// within [`REJECTION_LOG_INTERVAL`]; the next line logged says how many were not.
    fn reject(&self, metrics: &Metrics, what: &str, rejection: &Rejection) {
        metrics.fleet_rejected(rejection.reason());
        let why = rejection.describe();
        let noted = self
            .rejections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .note(Instant::now());
        let Some(unlogged) = noted else {
            tracing::debug!("fleet: ignored {what}: {why}");
            return;
        };
        let since = match unlogged {
            0 => String::new(),
            n => format!("; {n} more ignored since the last such warning"),
        };
        tracing::warn!(
            "fleet: ignored {what} from Redis at {}: {why}{since} (only what is signed with \
             fleet.secret_file or fleet.previous_secret_file is used; whoever can write to \
             this Redis without the key may be trying to forge revocations)",
            self.addr
        );
    }

    /// The revocations of the stored set that carry a valid signature; the others are
    /// rejected. Also returns those signed with the previous key, to sign again.
    fn load(
        &self,
        metrics: &Metrics,
        entries: HashMap<Vec<u8>, Vec<u8>>,
    ) -> (Vec<Revocation>, Vec<Resign>) {
        let opened = open_set(&self.keys, entries);
        for (field, rejection) in &opened.rejected {
            let what = match field.as_deref().filter(|id| valid_id(id)) {
                Some(id) => format!("the stored entry {id}"),
                None => "a stored entry".to_owned(),
            };
            self.reject(metrics, &what, rejection);
        }
        (opened.revocations, opened.resign)
    }

    /// Signs again with the current key the stored entries that were signed with the previous
    /// one, each only if it is still what was loaded. A failure is logged, not fatal: the
    /// entries stay valid as long as `fleet.previous_secret_file` is set, and the next load
    /// tries again.
    async fn resign(&self, connection: &mut MultiplexedConnection, stale: Vec<Resign>) {
        if stale.is_empty() {
            return;
        }
        let mut signed = 0;
        for entry in &stale {
            let value = self.keys.sign(Kind::Entry, &entry.revocation);
            let result = redis::cmd("EVAL")
                .arg(RESIGN_SCRIPT)
                .arg(1)
                .arg(&self.key)
                .arg(&entry.revocation.id)
                .arg(&entry.loaded)
                .arg(value)
                .query_async::<i64>(connection)
                .await;
            match result {
                Ok(1) => signed += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(
                        "fleet: cannot sign the stored revocations again with \
                         fleet.secret_file: {}; they stay valid while \
                         fleet.previous_secret_file is set",
                        describe(&error)
                    );
                    return;
                }
            }
        }
        tracing::info!(
            "fleet: {signed} of {} stored revocations signed with fleet.previous_secret_file \
             are now signed with fleet.secret_file",
            stale.len()
        );
    }
}

/// A stored entry signed with the previous key: what was loaded, and what it says.
struct Resign {
    loaded: Vec<u8>,
    revocation: Revocation,
}

/// Whether the connection that gave `error` is no use any more.
fn broken(error: &RedisError) -> bool {
    error.is_unrecoverable_error() || error.is_io_error() || error.is_timeout()
}

/// A Redis error for status and logs; RESP2-only servers get a hint.
fn describe(error: &RedisError) -> String {
    if error.kind() == redis::ErrorKind::RESP3NotSupported {
        format!("{error} (the fleet needs Redis 6 or later)")
    } else {
        error.to_string()
    }
}

/// The background task: one connection after another, for the life of the [`Fleet`].
async fn run(link: Arc<Link>, sink: Arc<dyn Sink>, metrics: Arc<Metrics>) {
    let Ok(client) = link.client.as_ref() else {
        return;
    };
    let mut backoff = Backoff::default();
    loop {
        let Err(lost) = connect_and_follow(&link, client, &*sink, &metrics, &mut backoff).await;
        link.lost(&metrics, lost.0);
        tokio::time::sleep(backoff.next_pause()).await;
    }
}

/// Why a connection's life ended.
struct Lost(String);

impl From<RedisError> for Lost {
    fn from(error: RedisError) -> Lost {
        Lost(describe(&error))
    }
}

/// One connection's life: subscribe, load the full set, apply messages until it breaks.
async fn connect_and_follow(
    link: &Link,
    client: &Client,
    sink: &dyn Sink,
    metrics: &Metrics,
    backoff: &mut Backoff,
) -> Result<Infallible, Lost> {
    let (pushes_in, pushes) = mpsc::unbounded_channel::<PushInfo>();
    let config = connection_config().set_push_sender(pushes_in);
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // Subscribed first: whatever is published from here on waits in `pushes`.
    connection.subscribe(&link.channel).await?;
    // Fields as bytes: one that is not UTF-8 is a rejected entry, not a failed load.
    let entries: HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL")
        .arg(&link.key)
        .query_async(&mut connection)
        .await?;
    let (revocations, stale) = link.load(metrics, entries);
    let count = revocations.len();
    sink.replace_all(revocations);
    link.connected(metrics, count);
    backoff.reset();
    link.resign(&mut connection, stale).await;
    follow(link, connection, pushes, sink, metrics).await
}

/// Applies the subscription's messages in order, checking an idle connection now and then.
async fn follow(
    link: &Link,
    mut connection: MultiplexedConnection,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    sink: &dyn Sink,
    metrics: &Metrics,
) -> Result<Infallible, Lost> {
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    health.tick().await;
    loop {
        tokio::select! {
            push = pushes.recv() => match push {
                Some(PushInfo { kind: PushKind::Message, data }) => {
                    apply(link, &data, sink, metrics);
                }
                Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => {
                    return Err(Lost("connection closed".to_owned()));
                }
                Some(_) => {}
            },
            _ = health.tick() => {
                redis::cmd("PING").query_async::<()>(&mut connection).await?;
            }
        }
    }
}

/// Capped exponential backoff with a little jitter, so a fleet that lost Redis together does
/// not reconnect in lockstep.
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause + pause.mul_f64(fastrand::f64() / 10.0)
    }

    fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// The stored set, checked entry by entry.
#[derive(Default)]
struct OpenedSet {
    /// Signed with either key, valid, and stored under their own id.
    revocations: Vec<Revocation>,
    /// Those of `revocations` signed with the previous key.
    resign: Vec<Resign>,
    /// The field (when it is text) and why its entry is not used.
    rejected: Vec<(Option<String>, Rejection)>,
}

/// Opens each entry of `{channel}:set`: only a revocation signed for this fleet, valid, and
/// stored under its own id is used.
fn open_set(keys: &Keys, entries: HashMap<Vec<u8>, Vec<u8>>) -> OpenedSet {
    let mut set = OpenedSet::default();
    for (field, value) in entries {
        let field = String::from_utf8(field).ok();
        let opened =
            keys.open::<Revocation>(Kind::Entry, &value)
                .and_then(|(revocation, signer)| {
                    check(&revocation).map_err(Rejection::Malformed)?;
                    if field.as_deref() != Some(revocation.id.as_str()) {
                        let why = "its id differs from its field".to_owned();
                        return Err(Rejection::Malformed(why));
                    }
                    Ok((revocation, signer))
                });
        match opened {
            Ok((revocation, SignedWith::Current)) => set.revocations.push(revocation),
            Ok((revocation, SignedWith::Previous)) => {
                set.revocations.push(revocation.clone());
                set.resign.push(Resign {
                    loaded: value,
                    revocation,
                });
            }
            Err(rejection) => set.rejected.push((field, rejection)),
        }
    }
    set
}

/// A published change whose signature and content were checked: all [`apply`] hands on.
enum Verified {
    Put(Revocation, u64),
    Delete(String, u64),
}

/// Checks a published message (`data`: the channel, then the payload): signed with either
/// key, and a change hubgate could have made.
fn verify(keys: &Keys, data: &[Value]) -> Result<Verified, Rejection> {
    let payload = data
        .get(1)
        .and_then(bytes)
        .ok_or_else(|| Rejection::Malformed("no payload".to_owned()))?;
    let (message, _) = keys.open::<Message>(Kind::Message, payload)?;
    match message {
        Message::Put {
            revocation,
            published_us,
        } => {
            check(&revocation).map_err(Rejection::Malformed)?;
            Ok(Verified::Put(revocation, published_us))
        }
        Message::Delete { id, published_us } => {
            if !valid_id(&id) {
                let why = "a delete without a valid id".to_owned();
                return Err(Rejection::Malformed(why));
            }
            Ok(Verified::Delete(id, published_us))
        }
    }
}

/// Applies one published message if it verifies; otherwise it is rejected and changes nothing.
fn apply(link: &Link, data: &[Value], sink: &dyn Sink, metrics: &Metrics) {
    match verify(&link.keys, data) {
        Ok(Verified::Put(revocation, published_us)) => {
            let published = applied(metrics, published_us);
            sink.put(revocation, published);
        }
        Ok(Verified::Delete(id, published_us)) => {
            let published = applied(metrics, published_us);
            sink.delete(&id, published);
        }
        Err(rejection) => link.reject(metrics, "a message", &rejection),
    }
}

/// Counts a change as it is handed to the sink (so whoever sees the sink changed also sees
/// the metrics), and returns when it was published.
fn applied(metrics: &Metrics, published_us: u64) -> SystemTime {
    let published = from_unix_micros(published_us);
    let elapsed = SystemTime::now()
        .duration_since(published)
        .unwrap_or(Duration::ZERO);
    metrics.revocation_applied("fleet");
    metrics.revocation_propagation(elapsed);
    published
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// Ids are short and plain, so one can be logged without letting content into the log.
pub(super) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where and how JSON failed, without the content serde quotes in its messages.
fn json_problem(error: &serde_json::Error) -> String {
    let kind = error.classify();
    match error.line() {
        // Read from an already parsed value: no position.
        0 => format!("not a revocation change ({kind:?} error)"),
        line => format!(
            "not a revocation change ({kind:?} error at line {line} column {})",
            error.column()
        ),
    }
}

fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    })
}

fn from_unix_micros(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }
    use crate::revocation::Target;

    fn revocation(id: &str, target: Target) -> Revocation {
        Revocation {
            id: id.into(),
            target,
            reason: None,
            created: 1_700_000_000,
            expires: None,
        }
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const OLD: &str = "fedcba9876543210fedcba9876543210";
    const CHANNEL: &str = "hubgate:revocations";

    fn keys() -> Keys {
        Keys::new(KEY, None, CHANNEL)
    }

    /// The signed text with its MAC replaced by `…`.
    fn without_mac(signed: &str) -> String {
        let at = signed.find(r#","mac":""#).expect("a mac");
        format!("{}…", &signed[..at + 8])
    }

    #[test]
    fn messages_have_the_published_shape() {
        let put = Message::Put {
            revocation: revocation("00000000000000ff", Target::Login("alice".into())),
            published_us: 1_700_000_000_000_001,
        };
        assert_eq!(
            without_mac(&keys().sign(Kind::Message, &put)),
            r#"{"op":"put","revocation":{"id":"00000000000000ff","login":"alice","created":1700000000,"expires":null},"published_us":1700000000000001,"mac":"…"#
        );
        let delete = Message::Delete {
            id: "00000000000000ff".into(),
            published_us: 5,
        };
        assert_eq!(
            without_mac(&keys().sign(Kind::Message, &delete)),
            r#"{"op":"delete","id":"00000000000000ff","published_us":5,"mac":"…"#
        );
        // Instances of a version without keys still read them (they ignore the `mac`).
        let read: Message = serde_json::from_str(&keys().sign(Kind::Message, &put)).unwrap();
        assert!(
            matches!(read, Message::Put { published_us, .. } if published_us == 1_700_000_000_000_001)
        );
    }

    fn push(payload: &str) -> Vec<Value> {
        vec![
            Value::BulkString(CHANNEL.as_bytes().to_vec()),
            Value::BulkString(payload.as_bytes().to_vec()),
        ]
    }

    #[test]
    fn only_signed_and_valid_messages_are_verified() {
        let alice = revocation("00000000000000ff", Target::Login("alice".into()));
        let put = Message::Put {
            revocation: alice.clone(),
            published_us: 7,
        };
        let delete = Message::Delete {
            id: alice.id.clone(),
            published_us: 8,
        };
        let signed_put = keys().sign(Kind::Message, &put);
        let signed_delete = keys().sign(Kind::Message, &delete);
        assert!(matches!(
            verify(&keys(), &push(&signed_put)),
            Ok(Verified::Put(r, 7)) if r == alice
        ));
        assert!(matches!(
            verify(&keys(), &push(&signed_delete)),
            Ok(Verified::Delete(id, 8)) if id == alice.id
        ));
        let unknown = Keys::new(OLD, None, CHANNEL).sign(Kind::Message, &delete);
        let rotating = Keys::new(KEY, Some(OLD), CHANNEL);
        assert!(matches!(
            verify(&rotating, &push(&unknown)),
            Ok(Verified::Delete(..))
        ));
        let bad_id = Message::Delete {
            id: "a b".into(),
            published_us: 1,
        };
        let reason = |data: &[Value]| verify(&keys(), data).err().map(|r| r.reason());
        for (data, expected) in [
            (push(&to_json(&delete)), "unsigned"),
            (push(&unknown), "bad_signature"),
            (push(&signed_delete.replace(":8,", ":9,")), "bad_signature"),
            (push(&keys().sign(Kind::Entry, &delete)), "bad_signature"),
            (push(&keys().sign(Kind::Message, &bad_id)), "malformed"),
            (push("not json"), "malformed"),
            (
                push(r#"{"op":"rename","id":"abc","published_us":1,"mac":"00"}"#),
                "malformed",
            ),
            (
                vec![Value::BulkString(CHANNEL.as_bytes().to_vec())],
                "malformed",
            ),
        ] {
            assert_eq!(reason(&data), Some(expected), "{data:?}");
        }
    }

    #[test]
    fn revocations_from_elsewhere_are_checked() {
        let good = revocation("a1", Target::Fingerprint("3fa94c0e12b7".into()));
        assert!(check(&good).is_ok());
        for bad in [
            revocation("", Target::Login("alice".into())),
            revocation("a b", Target::Login("alice".into())),
            revocation("a1", Target::Login(String::new())),
            revocation("a1", Target::Fingerprint("3FA94C0E12B7".into())),
            revocation("a1", Target::Fingerprint("3fa9".into())),
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_signed_valid_set_entries_are_used_and_old_keys_are_resigned() {
        let good = revocation("a1", Target::Login("alice".into()));
        let old = revocation("a2", Target::Login("bob".into()));
        let signed = |keys: &Keys, r: &Revocation| keys.sign(Kind::Entry, r).into_bytes();
        let rotating = Keys::new(KEY, Some(OLD), CHANNEL);
        let previous = Keys::new(OLD, None, CHANNEL);
        let entries = HashMap::from([
            (b"a1".to_vec(), signed(&rotating, &good)),
            (b"a2".to_vec(), signed(&previous, &old)),
            (b"b2".to_vec(), b"{not json".to_vec()),
            (b"c3".to_vec(), signed(&rotating, &good)),
            (b"d4".to_vec(), to_json(&good).into_bytes()),
            (vec![0xff, 0xfe], signed(&rotating, &good)),
        ]);
        let mut set = open_set(&rotating, entries);
        set.revocations.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(set.revocations, vec![good, old.clone()]);
        assert_eq!(set.resign.len(), 1);
        assert_eq!(set.resign[0].revocation, old);
        assert_eq!(set.resign[0].loaded, signed(&previous, &old));
        set.rejected.sort_by(|a, b| a.0.cmp(&b.0));
        let rejected: Vec<(Option<&str>, &str)> = set
            .rejected
            .iter()
            .map(|(field, why)| (field.as_deref(), why.reason()))
            .collect();
        assert_eq!(
            rejected,
            [
                (None, "malformed"),
                (Some("b2"), "malformed"),
                (Some("c3"), "malformed"),
                (Some("d4"), "unsigned"),
            ]
        );
    }

    #[test]
    fn json_problems_do_not_quote_the_content() {
        let error = serde_json::from_slice::<Message>(br#"{"op":"put","revocation":"s3cr3t"}"#)
            .unwrap_err();
        assert!(!json_problem(&error).contains("s3cr3t"));
        let value = serde_json::json!({"op": "s3cr3t"});
        let error = serde_json::from_value::<Message>(value).unwrap_err();
        assert!(!json_problem(&error).contains("s3cr3t"), "{error}");
    }

    #[test]
    fn urls_show_only_host_and_port() {
        let (_, addr) = open("redis://user:pa55word@redis.example:6380/2", None).unwrap();
        assert_eq!(addr, "redis.example:6380");
        let (_, addr) = open("rediss://:pa55word@redis.example/0", None).unwrap();
        assert_eq!(addr, "redis.example:6379");
        let why = open("redis://:pa55word@/0", None).map(|_| ()).unwrap_err();
        assert!(!why.contains("pa55word"), "{why}");
    }

    #[test]
    fn a_password_file_sets_the_password() {
        let (client, _) = open("redis://user@redis.example/0", Some("fr0m-f1le")).unwrap();
        let settings = client.get_connection_info().redis_settings();
        assert_eq!(settings.username(), Some("user"));
        assert_eq!(settings.password(), Some("fr0m-f1le"));
        let (client, _) = open("redis://redis.example/0", None).unwrap();
        assert_eq!(
            client.get_connection_info().redis_settings().password(),
            None
        );
    }

    #[test]
    fn rejections_are_logged_at_most_once_a_minute_with_the_count_in_between() {
        let mut log = RejectionLog::default();
        let start = Instant::now();
        assert_eq!(log.note(start), Some(0));
        for seconds in [1, 10, 59] {
            assert_eq!(log.note(start + Duration::from_secs(seconds)), None);
        }
        assert_eq!(log.note(start + Duration::from_secs(60)), Some(3));
        assert_eq!(log.note(start + Duration::from_secs(61)), None);
        assert_eq!(log.note(start + Duration::from_secs(600)), Some(1));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_restarts() {
        let mut backoff = Backoff::default();
        let pauses: Vec<Duration> = (0..10).map(|_| backoff.next_pause()).collect();
        assert!(pauses[0] >= BACKOFF_MIN && pauses[0] < BACKOFF_MIN * 2);
        assert!(pauses[9] >= BACKOFF_MAX && pauses[9] <= BACKOFF_MAX.mul_f64(1.1));
        backoff.reset();
        assert!(backoff.next_pause() < BACKOFF_MIN * 2);
    }
}
