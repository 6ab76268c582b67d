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
//! The Redis URL may hold a password, so only its `host:port` is ever logged or reported.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, ProtocolVersion, PushInfo,
    PushKind, RedisError, Value,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;

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

/// One change, as published on the channel.
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
}

impl Fleet {
    /// Starts the background task: connect, subscribe to `channel`, then load the full set
    /// (HGETALL `{channel}:set`) into `sink.replace_all`, then apply messages; on any
    /// connection loss report Disconnected, retry with capped backoff, and on reconnect
    /// subscribe and load the full set again. Must be called inside a Tokio runtime.
    pub fn start(
        config: &crate::config::Fleet,
        sink: Arc<dyn Sink>,
        metrics: Arc<Metrics>,
    ) -> Fleet {
        let (client, addr) = match open(config.redis_url.expose()) {
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

    /// Stores the revocation (HSET `{channel}:set` id json) and publishes
    /// `{"op":"put","revocation":{...},"published_us":<unix micros>}` on `channel`.
    pub async fn put(&self, revocation: &Revocation) -> Result<(), FleetError> {
        let stored = to_json(revocation);
        let message = to_json(&Message::Put {
            revocation: revocation.clone(),
            published_us: unix_micros(SystemTime::now()),
        });
        let mut change = redis::cmd("HSET");
        change.arg(&self.link.key).arg(&revocation.id).arg(stored);
        self.link.publish(change, message).await
    }

    /// HDEL + publish `{"op":"delete","id":"...","published_us":...}`.
    pub async fn delete(&self, id: &str) -> Result<(), FleetError> {
        let message = to_json(&Message::Delete {
            id: id.to_owned(),
            published_us: unix_micros(SystemTime::now()),
        });
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

/// A client for `url`, always speaking RESP3, and the `host:port` it names.
fn open(url: &str) -> Result<(Client, String), String> {
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
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
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
    let entries: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(&link.key)
        .query_async(&mut connection)
        .await?;
    let revocations = parse_set(entries);
    let count = revocations.len();
    sink.replace_all(revocations);
    link.connected(metrics, count);
    backoff.reset();
    follow(connection, pushes, sink, metrics).await
}

/// Applies the subscription's messages in order, checking an idle connection now and then.
async fn follow(
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
                Some(PushInfo { kind: PushKind::Message, data }) => apply(&data, sink, metrics),
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

/// The revocations of the hash; entries that do not hold one (or not the one their field
/// names) are logged and skipped.
fn parse_set(entries: HashMap<String, Vec<u8>>) -> Vec<Revocation> {
    let mut revocations = Vec::with_capacity(entries.len());
    for (field, json) in entries {
        let parsed = serde_json::from_slice::<Revocation>(&json)
            .map_err(|e| json_problem(&e))
            .and_then(|revocation| check(&revocation).map(|()| revocation));
        match parsed {
            Ok(revocation) if revocation.id == field => revocations.push(revocation),
            Ok(_) => warn_skipped("set entry", Some(&field), "its id differs from its field"),
            Err(why) => warn_skipped("set entry", Some(&field), &why),
        }
    }
    revocations
}

/// Applies one published message (`data`: the channel, then the payload).
fn apply(data: &[Value], sink: &dyn Sink, metrics: &Metrics) {
    let Some(payload) = data.get(1).and_then(bytes) else {
        warn_skipped("message", None, "no payload");
        return;
    };
    let message = match serde_json::from_slice::<Message>(payload) {
        Ok(message) => message,
        Err(error) => {
            let id = id_in(payload);
            warn_skipped("message", id.as_deref(), &json_problem(&error));
            return;
        }
    };
    match message {
        Message::Put {
            revocation,
            published_us,
        } => {
            if let Err(why) = check(&revocation) {
                warn_skipped("message", Some(&revocation.id), &why);
                return;
            }
            let published = applied(metrics, published_us);
            sink.put(revocation, published);
        }
        Message::Delete { id, published_us } => {
            if !valid_id(&id) {
                warn_skipped("message", None, "a delete without a valid id");
                return;
            }
            let published = applied(metrics, published_us);
            sink.delete(&id, published);
        }
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

/// The id a malformed message names, if it names a valid one.
fn id_in(payload: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let id = json["revocation"]["id"].as_str().or(json["id"].as_str())?;
    valid_id(id).then(|| id.to_owned())
}

/// Where and how JSON failed, without the content serde quotes in its messages.
fn json_problem(error: &serde_json::Error) -> String {
    format!(
        "not a revocation change ({:?} error at line {} column {})",
        error.classify(),
        error.line(),
        error.column()
    )
}

fn warn_skipped(what: &str, id: Option<&str>, why: &str) {
    match id.filter(|id| valid_id(id)) {
        Some(id) => tracing::warn!("fleet: skipping {what} {id}: {why}"),
        None => tracing::warn!("fleet: skipping a {what}: {why}"),
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Revocations and messages are plain data: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
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

    #[test]
    fn messages_have_the_published_shape() {
        let put = Message::Put {
            revocation: revocation("00000000000000ff", Target::Login("alice".into())),
            published_us: 1_700_000_000_000_001,
        };
        assert_eq!(
            to_json(&put),
            r#"{"op":"put","revocation":{"id":"00000000000000ff","login":"alice","created":1700000000,"expires":null},"published_us":1700000000000001}"#
        );
        let delete = Message::Delete {
            id: "00000000000000ff".into(),
            published_us: 5,
        };
        assert_eq!(
            to_json(&delete),
            r#"{"op":"delete","id":"00000000000000ff","published_us":5}"#
        );
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
    fn malformed_set_entries_are_skipped() {
        let good = revocation("a1", Target::Login("alice".into()));
        let entries = HashMap::from([
            ("a1".to_owned(), to_json(&good).into_bytes()),
            ("b2".to_owned(), b"{not json".to_vec()),
            ("c3".to_owned(), to_json(&good).into_bytes()),
        ]);
        assert_eq!(parse_set(entries), vec![good]);
    }

    #[test]
    fn json_problems_do_not_quote_the_content() {
        let error = serde_json::from_slice::<Message>(br#"{"op":"put","revocation":"s3cr3t"}"#)
            .unwrap_err();
        assert!(!json_problem(&error).contains("s3cr3t"));
        assert_eq!(id_in(br#"{"op":"x","id":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(id_in(br#"{"op":"x","id":"a\nb"}"#), None);
    }

    #[test]
    fn urls_show_only_host_and_port() {
        let (_, addr) = open("redis://user:pa55word@redis.example:6380/2").unwrap();
        assert_eq!(addr, "redis.example:6380");
        let (_, addr) = open("rediss://:pa55word@redis.example/0").unwrap();
        assert_eq!(addr, "redis.example:6379");
        let why = open("redis://:pa55word@/0").map(|_| ()).unwrap_err();
        assert!(!why.contains("pa55word"), "{why}");
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
