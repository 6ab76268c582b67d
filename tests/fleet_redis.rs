//! Central revocation across a fleet, against a real `redis-server` (skipped with a notice
//! when it is not installed, unless `HUBGATE_REQUIRE_REDIS=1`).
//!
//! - `fleet`: the `revocation::fleet` module on its own — instances as `Fleet`s with a
//!   recording `Sink`: propagation, the full set at (re)connect, losing and regaining Redis;
//!   and what whoever can write to the fleet's Redis without its key tries: forged messages
//!   and stored entries (written with raw commands), keys being rotated, Redis passwords.
//! - `gateways`: whole gateways in this process, each started from its own configuration
//!   file with `[admin] token_file` and `[fleet]` on one Redis and one channel, with the
//!   simulator as YouTrack and Hub: a revocation posted to one instance is enforced by all,
//!   by instances started later too, through a Redis outage, and readiness waits for the
//!   fleet's set.
//!
//! Nothing here waits a fixed time for an event: `fleet` waits on the sink's `Notify` or on
//! status changes, with [`PATIENCE`] only as a guard against hanging. `gateways` watches
//! what an operator would — the admin listener's `/metrics` and `/readyz` — polled every
//! millisecond, with [`GATEWAY_PATIENCE`] as the guard; its one timed wait is negative (a
//! request held while the gateway loads stays unanswered for [`HELD`]).

mod support;

use std::time::Duration;

/// The longest any awaited event may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);
/// The longest a gateway may take to show an awaited change on its admin listener.
const GATEWAY_PATIENCE: Duration = Duration::from_secs(5);
/// How long a request to a gateway still loading its revocations must stay unanswered.
const HELD: Duration = Duration::from_millis(300);

mod fleet {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant, SystemTime};

    use hubgate::config::{Fleet as FleetConfig, Secret};
    use hubgate::metrics::Metrics;
    use hubgate::revocation::fleet::{Fleet, FleetError, FleetStatus, Sink};
    use hubgate::revocation::{Revocation, Target};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;
    use tokio::sync::Notify;

    use super::support::redis::{free_port, require_redis, RedisServer};
    use super::PATIENCE;

    const CHANNEL: &str = "hubgate:revocations";
    /// The fleet's key.
    const KEY: &str = "0123456789abcdef0123456789abcdef";
    /// The key before the last rotation.
    const OLD_KEY: &str = "fedcba9876543210fedcba9876543210";
    /// A key no instance knows.
    const FOREIGN_KEY: &str = "not-the-fleet-key-not-the-fleet-key";
    const UNSIGNED: &str = r#"hubgate_fleet_rejected_total{reason="unsigned"}"#;
    const BAD_SIGNATURE: &str = r#"hubgate_fleet_rejected_total{reason="bad_signature"}"#;
    const MALFORMED: &str = r#"hubgate_fleet_rejected_total{reason="malformed"}"#;

    fn fleet_config(url: &str, secret: &str, previous: Option<&str>) -> FleetConfig {
        FleetConfig {
            redis_url: Secret::new(url),
            redis_password: None,
            channel: CHANNEL.to_owned(),
            secret: Secret::new(secret),
            previous_secret: previous.map(Secret::new),
        }
    }

    /// What the module documents as signed, written out here independently: HMAC-SHA-256 of
    /// "hubgate fleet v1", the kind, the channel and the JSON, each after its length (8 bytes,
    /// big-endian); the MAC goes into the JSON as its last member, `mac`, in hex.
    fn signed(key: &str, kind: &str, json: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
        let mut input = Vec::new();
        for part in [
            b"hubgate fleet v1".as_slice(),
            kind.as_bytes(),
            CHANNEL.as_bytes(),
            json.as_bytes(),
        ] {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part);
        }
        let tag = ring::hmac::sign(&key, &input);
        let mac: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let open = json.strip_suffix('}').expect("a JSON object");
        format!(r#"{open},"mac":"{mac}"}}"#)
    }

    /// A put message as hubgate writes it, without its `mac`.
    fn put_json(revocation: &Revocation) -> String {
        let revocation = serde_json::to_string(revocation).expect("JSON");
        format!(
            r#"{{"op":"put","revocation":{revocation},"published_us":{}}}"#,
            now_us()
        )
    }

    /// A delete message as hubgate writes it, without its `mac`.
    fn delete_json(id: &str) -> String {
        format!(
            r#"{{"op":"delete","id":"{id}","published_us":{}}}"#,
            now_us()
        )
    }

    fn now_us() -> u128 {
        let now = SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.expect("time").as_micros()
    }

    /// A plain connection to the fleet's Redis, as anyone who can reach it has: no key.
    struct Raw(redis::aio::MultiplexedConnection);

    impl Raw {
        async fn connect(url: &str) -> Raw {
            let client = redis::Client::open(url).expect("client");
            let connection = client.get_multiplexed_async_connection().await;
            Raw(connection.expect("connect"))
        }

        async fn publish(&mut self, payload: &str) {
            let mut publish = redis::cmd("PUBLISH");
            publish.arg(CHANNEL).arg(payload);
            publish
                .query_async::<()>(&mut self.0)
                .await
                .expect("PUBLISH");
        }

        async fn hset(&mut self, field: &str, value: &str) {
            let mut hset = redis::cmd("HSET");
            hset.arg(format!("{CHANNEL}:set")).arg(field).arg(value);
            hset.query_async::<()>(&mut self.0).await.expect("HSET");
        }

        async fn hget(&mut self, field: &str) -> Option<String> {
            let mut hget = redis::cmd("HGET");
            hget.arg(format!("{CHANNEL}:set")).arg(field);
            hget.query_async(&mut self.0).await.expect("HGET")
        }
    }

    /// One call the fleet made on a sink (ids only: enough to check order and content).
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Call {
        ReplaceAll(Vec<String>),
        Put(String),
        Delete(String),
    }

    /// A sink that records each call and the moment it came.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(Call, Instant)>>,
        changed: Notify,
    }

    impl Recorder {
        fn record(&self, call: Call) {
            self.calls.lock().unwrap().push((call, Instant::now()));
            self.changed.notify_waiters();
        }

        fn calls(&self) -> Vec<Call> {
            let calls = self.calls.lock().unwrap();
            calls.iter().map(|(call, _)| call.clone()).collect()
        }

        /// When `call` was made, if it was.
        fn when(&self, call: &Call) -> Option<Instant> {
            let calls = self.calls.lock().unwrap();
            calls.iter().find(|(c, _)| c == call).map(|(_, at)| *at)
        }

        /// Waits until the calls so far satisfy `done`; returns them.
        async fn wait_until(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                // Registered before looking, so a call made in between is not missed.
                notified.as_mut().enable();
                let calls = self.calls();
                if done(&calls) {
                    return calls;
                }
                let waited = tokio::time::timeout_at(deadline, notified).await;
                assert!(
                    waited.is_ok(),
                    "{what}: not within {PATIENCE:?}; calls: {calls:?}"
                );
            }
        }

        /// Waits for exactly `expected`.
        async fn wait_for(&self, expected: &[Call]) {
            let what = format!("{expected:?}");
            self.wait_until(&what, |calls| calls == expected).await;
        }
    }

    impl Sink for Recorder {
        fn replace_all(&self, revocations: Vec<Revocation>) {
            let mut ids: Vec<String> = revocations.into_iter().map(|r| r.id).collect();
            ids.sort();
            self.record(Call::ReplaceAll(ids));
        }

        fn put(&self, revocation: Revocation, _published: SystemTime) {
            self.record(Call::Put(revocation.id));
        }

        fn delete(&self, id: &str, _published: SystemTime) {
            self.record(Call::Delete(id.to_owned()));
        }
    }

    /// One gateway instance's fleet side.
    struct Instance {
        fleet: Fleet,
        sink: Arc<Recorder>,
        metrics: Arc<Metrics>,
    }

    impl Instance {
        /// Started on `url` with the fleet's key; not waited for.
        fn start(url: &str) -> Instance {
            Instance::start_with(&fleet_config(url, KEY, None))
        }

        /// Started with `config`; not waited for.
        fn start_with(config: &FleetConfig) -> Instance {
            let sink = Arc::new(Recorder::default());
            let metrics = Arc::new(Metrics::new());
            let fleet = Fleet::start(config, sink.clone(), metrics.clone());
            Instance {
                fleet,
                sink,
                metrics,
            }
        }

        /// Started on `redis` and its full set loaded.
        async fn loaded(redis: &RedisServer) -> Instance {
            let instance = Instance::start(&redis.url());
            instance.wait_loaded().await;
            instance
        }

        async fn wait_loaded(&self) {
            let loaded = tokio::time::timeout(PATIENCE, self.fleet.loaded()).await;
            assert!(loaded.is_ok(), "not loaded: {:?}", self.fleet.status());
        }

        /// Waits until the status satisfies `done`; returns it.
        async fn wait_status(&self, done: impl Fn(&FleetStatus) -> bool) -> FleetStatus {
            let mut changes = self.fleet.status_changes();
            let waited = tokio::time::timeout(PATIENCE, changes.wait_for(|s| done(s))).await;
            match waited {
                Ok(Ok(status)) => status.clone(),
                _ => panic!("status still {:?}", self.fleet.status()),
            }
        }

        fn metric_line(&self, line: &str) -> bool {
            self.metrics.render(0, 0, 0).lines().any(|l| l == line)
        }

        /// The value of the counter `series` (0 when it has not been counted yet).
        fn count(&self, series: &str) -> u64 {
            let text = self.metrics.render(0, 0, 0);
            let value = text
                .lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
            value.map_or(0, |value| value.parse().expect("a count"))
        }
    }

    fn login(name: &str) -> Revocation {
        Revocation::new(
            Target::Login(name.to_owned()),
            Some("test".to_owned()),
            None,
        )
    }

    /// `put` on one instance, then waits until `other` applied it; returns how long it took
    /// from the call to the other instance's sink.
    async fn propagate(from: &Instance, other: &Instance, revocation: &Revocation) -> Duration {
        let put = Call::Put(revocation.id.clone());
        let started = Instant::now();
        from.fleet.put(revocation).await.expect("put");
        other
            .sink
            .wait_until("the other instance applies the put", |calls| {
                calls.contains(&put)
            })
            .await;
        let applied = other.sink.when(&put).expect("recorded");
        applied.saturating_duration_since(started)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn puts_and_deletes_reach_every_instance() {
        let Some(()) = require_redis("puts_and_deletes_reach_every_instance") else {
            return;
        };
        let redis = RedisServer::start().await;
        let a = Instance::loaded(&redis).await;
        let b = Instance::loaded(&redis).await;
        for instance in [&a, &b] {
            assert_eq!(instance.sink.calls(), [Call::ReplaceAll(vec![])]);
            assert_eq!(instance.fleet.status(), FleetStatus::Connected);
            assert!(instance.metric_line("hubgate_fleet_connected 1"));
        }

        let revocation = login("alice");
        let id = revocation.id.clone();
        let took = propagate(&a, &b, &revocation).await;
        println!("fleet propagation, put on one instance -> applied on another: {took:?}");
        let put = [Call::ReplaceAll(vec![]), Call::Put(id.clone())];
        a.sink.wait_for(&put).await;
        b.sink.wait_for(&put).await;

        let started = Instant::now();
        b.fleet.delete(&id).await.expect("delete");
        let deleted = [put[0].clone(), put[1].clone(), Call::Delete(id.clone())];
        a.sink.wait_for(&deleted).await;
        b.sink.wait_for(&deleted).await;
        let took = a
            .sink
            .when(&Call::Delete(id))
            .unwrap()
            .saturating_duration_since(started);
        println!("fleet propagation, delete on one instance -> applied on another: {took:?}");

        for instance in [&a, &b] {
            let text = instance.metrics.render(0, 0, 0);
            for line in [
                r#"hubgate_revocations_applied_total{source="fleet"} 2"#,
                "hubgate_revocation_propagation_seconds_count 2",
            ] {
                assert!(
                    text.lines().any(|l| l == line),
                    "{line} missing from\n{text}"
                );
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_started_later_loads_the_full_set() {
        let Some(()) = require_redis("an_instance_started_later_loads_the_full_set") else {
            return;
        };
        let redis = RedisServer::start().await;
        let a = Instance::loaded(&redis).await;
        let (kept, withdrawn) = (login("alice"), login("bob"));
        a.fleet.put(&kept).await.expect("put");
        a.fleet.put(&withdrawn).await.expect("put");
        a.fleet.delete(&withdrawn.id).await.expect("delete");

        let c = Instance::loaded(&redis).await;
        assert_eq!(c.sink.calls(), [Call::ReplaceAll(vec![kept.id.clone()])]);
        // What it loaded is live: later changes still arrive.
        c.fleet.delete(&kept.id).await.expect("delete");
        let expected = [
            Call::ReplaceAll(vec![kept.id.clone()]),
            Call::Delete(kept.id.clone()),
        ];
        c.sink.wait_for(&expected).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn losing_redis_is_reported_and_a_restarted_redis_is_loaded_again() {
        let test = "losing_redis_is_reported_and_a_restarted_redis_is_loaded_again";
        let Some(()) = require_redis(test) else {
            return;
        };
        let mut redis = RedisServer::start().await;
        let a = Instance::loaded(&redis).await;
        let revocation = login("alice");
        a.fleet.put(&revocation).await.expect("put");
        let before = [Call::ReplaceAll(vec![]), Call::Put(revocation.id.clone())];
        a.sink.wait_for(&before).await;

        let killed = Instant::now();
        redis.kill();
        let status = a
            .wait_status(|s| matches!(s, FleetStatus::Disconnected { .. }))
            .await;
        let FleetStatus::Disconnected { since_unix, error } = status else {
            unreachable!()
        };
        println!(
            "fleet: Redis killed -> Disconnected in {:?} ({error})",
            killed.elapsed()
        );
        assert!(since_unix > 0 && !error.is_empty(), "{error}");
        assert!(a.metric_line("hubgate_fleet_connected 0"));
        // The last known set stays: nothing was replaced or withdrawn.
        assert_eq!(a.sink.calls(), before);
        let refused = a.fleet.put(&login("bob")).await;
        assert!(
            matches!(&refused, Err(FleetError::Unavailable(why)) if why.contains("127.0.0.1")),
            "{refused:?}"
        );

        let restarted = Instant::now();
        let _redis = RedisServer::start_on(redis.port()).await;
        a.wait_status(|s| *s == FleetStatus::Connected).await;
        println!(
            "fleet: Redis restarted -> Connected again in {:?}",
            restarted.elapsed()
        );
        // The restarted Redis kept nothing (no persistence): the full set is loaded again.
        let reloaded = [
            before[0].clone(),
            before[1].clone(),
            Call::ReplaceAll(vec![]),
        ];
        a.sink.wait_for(&reloaded).await;
        assert!(a.metric_line("hubgate_fleet_connected 1"));
        // Publishing works again too, over a fresh connection.
        let again = login("carol");
        a.fleet.put(&again).await.expect("put after the restart");
        a.sink
            .wait_until("the put after the restart", |calls| {
                calls.last() == Some(&Call::Put(again.id.clone()))
            })
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_redis_holds_the_first_load_and_is_reported() {
        let test = "an_unreachable_redis_holds_the_first_load_and_is_reported";
        let Some(()) = require_redis(test) else {
            return;
        };
        let port = free_port();
        let a = Instance::start(&format!("redis://127.0.0.1:{port}/0"));
        a.wait_status(|s| matches!(s, FleetStatus::Disconnected { .. }))
            .await;
        assert!(a.metric_line("hubgate_fleet_connected 0"));
        let early = tokio::time::timeout(Duration::ZERO, a.fleet.loaded()).await;
        assert!(early.is_err(), "loaded without Redis");
        assert!(a.sink.calls().is_empty());

        let _redis = RedisServer::start_on(port).await;
        a.wait_loaded().await;
        assert_eq!(a.sink.calls(), [Call::ReplaceAll(vec![])]);
        assert_eq!(a.fleet.status(), FleetStatus::Connected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forged_withdrawals_and_revocations_are_ignored_by_every_instance_and_counted() {
        let test = "forged_withdrawals_and_revocations_are_ignored_by_every_instance_and_counted";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start().await;
        let a = Instance::loaded(&redis).await;
        let b = Instance::loaded(&redis).await;
        let leaked = login("mallory");
        propagate(&a, &b, &leaked).await;
        let before = [Call::ReplaceAll(vec![]), Call::Put(leaked.id.clone())];
        a.sink.wait_for(&before).await;

        // Whoever can write to Redis, without the key: withdraw the revocation (exactly what
        // a withdrawal publishes), and lock alice out; unsigned, then signed with a key of
        // their own, then with a MAC copied from a genuine message of another change.
        let mut raw = Raw::connect(&redis.url()).await;
        let lockout = login("alice");
        let genuine = signed(KEY, "message", &delete_json("00000000000000aa"));
        let stolen_mac = &genuine[genuine.len() - 67..];
        let forged_withdrawal = delete_json(&leaked.id);
        let forgeries = [
            forged_withdrawal.clone(),
            put_json(&lockout),
            signed(FOREIGN_KEY, "message", &forged_withdrawal),
            signed(FOREIGN_KEY, "message", &put_json(&lockout)),
            format!(
                "{},\"mac\":{stolen_mac}",
                forged_withdrawal.strip_suffix('}').unwrap()
            ),
            // A genuine stored entry (any reader of Redis has those) is no message.
            signed(KEY, "entry", &serde_json::to_string(&lockout).unwrap()),
        ];
        for forgery in &forgeries {
            raw.publish(forgery).await;
        }
        // A genuine change after them: once it is applied, so would they have been.
        let next = login("bob");
        a.fleet.put(&next).await.expect("put");
        let expected = [
            before[0].clone(),
            before[1].clone(),
            Call::Put(next.id.clone()),
        ];
        for instance in [&a, &b] {
            instance.sink.wait_for(&expected).await;
            assert_eq!(instance.count(UNSIGNED), 2);
            assert_eq!(instance.count(BAD_SIGNATURE), 3);
            assert_eq!(instance.count(MALFORMED), 1);
            assert!(instance.metric_line(r#"hubgate_revocations_applied_total{source="fleet"} 2"#));
        }
        // The forged withdrawal removed nothing from the store either.
        assert!(raw.hget(&leaked.id).await.is_some());

        // The same changes signed with the fleet's key are applied: only the key was missing.
        raw.publish(&signed(KEY, "message", &forged_withdrawal))
            .await;
        raw.publish(&signed(KEY, "message", &put_json(&lockout)))
            .await;
        let signed_too = [
            expected[0].clone(),
            expected[1].clone(),
            expected[2].clone(),
            Call::Delete(leaked.id.clone()),
            Call::Put(lockout.id.clone()),
        ];
        a.sink.wait_for(&signed_too).await;
        b.sink.wait_for(&signed_too).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsigned_mis_signed_and_malformed_stored_entries_are_ignored_at_load() {
        let test = "unsigned_mis_signed_and_malformed_stored_entries_are_ignored_at_load";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start().await;
        let a = Instance::loaded(&redis).await;
        let good = login("alice");
        a.fleet.put(&good).await.expect("put");

        // Written straight into the stored hash, as anyone who can reach Redis can.
        let mut raw = Raw::connect(&redis.url()).await;
        let (unsigned, foreign, moved) = (login("bob"), login("carol"), login("dave"));
        let json = |r: &Revocation| serde_json::to_string(r).unwrap();
        raw.hset(&unsigned.id, &json(&unsigned)).await;
        raw.hset(&foreign.id, &signed(FOREIGN_KEY, "entry", &json(&foreign)))
            .await;
        // A genuine entry under another id, a genuine message in place of an entry, junk.
        raw.hset("00000000000000dd", &signed(KEY, "entry", &json(&moved)))
            .await;
        raw.hset(&moved.id, &signed(KEY, "message", &json(&moved)))
            .await;
        raw.hset("0000000000000bad", "{not json").await;

        let c = Instance::loaded(&redis).await;
        assert_eq!(c.sink.calls(), [Call::ReplaceAll(vec![good.id.clone()])]);
        assert_eq!(c.count(UNSIGNED), 1);
        assert_eq!(c.count(BAD_SIGNATURE), 2);
        assert_eq!(c.count(MALFORMED), 2);
        assert!(c.metric_line("hubgate_fleet_connected 1"));
        // Ignored, not deleted: an instance that enforces one of those ids publishes it again.
        assert!(raw.hget(&unsigned.id).await.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_keys_rotate_the_previous_key_is_accepted_and_an_unknown_one_is_not() {
        let test = "while_keys_rotate_the_previous_key_is_accepted_and_an_unknown_one_is_not";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start().await;
        let mut raw = Raw::connect(&redis.url()).await;
        // Before the rotation: the fleet's key is OLD_KEY.
        let old = Instance::start_with(&fleet_config(&redis.url(), OLD_KEY, None));
        old.wait_loaded().await;
        let before = login("alice");
        old.fleet.put(&before).await.expect("put");
        let stored_before = raw.hget(&before.id).await.expect("stored");
        let entry = serde_json::to_string(&before).unwrap();
        assert_eq!(stored_before, signed(OLD_KEY, "entry", &entry));

        // An instance restarted with the new key, the old one as previous: it loads what the
        // old key signed, and signs the stored entry again with the new key.
        let rotating = Instance::start_with(&fleet_config(&redis.url(), KEY, Some(OLD_KEY)));
        rotating.wait_loaded().await;
        assert_eq!(
            rotating.sink.calls(),
            [Call::ReplaceAll(vec![before.id.clone()])]
        );
        let deadline = Instant::now() + PATIENCE;
        while raw.hget(&before.id).await.as_deref() != Some(&signed(KEY, "entry", &entry)) {
            assert!(Instant::now() < deadline, "the entry is not signed again");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        // Messages from an instance not restarted yet (old key) are still applied; its own
        // messages are signed with the new key; a key nobody configured is refused.
        let from_old = login("bob");
        old.fleet.put(&from_old).await.expect("put");
        let foreign = Instance::start_with(&fleet_config(&redis.url(), FOREIGN_KEY, None));
        foreign.wait_loaded().await;
        let from_foreign = login("carol");
        foreign.fleet.put(&from_foreign).await.expect("put");
        let from_rotating = login("dave");
        rotating.fleet.put(&from_rotating).await.expect("put");
        let expected = [
            Call::ReplaceAll(vec![before.id.clone()]),
            Call::Put(from_old.id.clone()),
            Call::Put(from_rotating.id.clone()),
        ];
        rotating.sink.wait_for(&expected).await;
        assert_eq!(rotating.count(BAD_SIGNATURE), 1, "the unknown key's put");
        assert_eq!(rotating.count(UNSIGNED), 0);

        // Once every instance has the new key and the set is signed again, the previous key
        // can go: an instance with the new key alone loads the whole set...
        let new = Instance::start_with(&fleet_config(&redis.url(), KEY, None));
        new.wait_loaded().await;
        let Call::ReplaceAll(loaded) = &new.sink.calls()[0] else {
            panic!("{:?}", new.sink.calls())
        };
        // ...but what was stored by an instance still on the old key, or on an unknown key,
        // only once that instance has the new key too (it then publishes it again).
        let mut signed_with_new_key = vec![before.id.clone(), from_rotating.id.clone()];
        signed_with_new_key.sort();
        assert_eq!(loaded, &signed_with_new_key);
        assert_eq!(
            new.count(BAD_SIGNATURE),
            2,
            "bob (old key) and carol (unknown)"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_password_comes_from_its_file() {
        let Some(()) = require_redis("the_redis_password_comes_from_its_file") else {
            return;
        };
        const PASSWORD: &str = "r3dis-pa55word";
        let redis = RedisServer::start_with_password(PASSWORD).await;
        let mut with_password = fleet_config(&redis.url(), KEY, None);
        with_password.redis_password = Some(Secret::new(PASSWORD));
        let a = Instance::start_with(&with_password);
        a.wait_loaded().await;
        assert_eq!(a.fleet.status(), FleetStatus::Connected);
        let revocation = login("alice");
        a.fleet
            .put(&revocation)
            .await
            .expect("put with the password");
        let mut raw = Raw::connect(&redis.url_with_password()).await;
        assert!(raw.hget(&revocation.id).await.is_some());

        let mut wrong = with_password.clone();
        wrong.redis_password = Some(Secret::new("not-the-password"));
        for config in [fleet_config(&redis.url(), KEY, None), wrong] {
            let b = Instance::start_with(&config);
            let status = b
                .wait_status(|s| matches!(s, FleetStatus::Disconnected { .. }))
                .await;
            println!("fleet: Redis with requirepass, without the right password: {status:?}");
            let shown = format!("{status:?}");
            assert!(
                !shown.contains(PASSWORD) && !shown.contains("not-the-password"),
                "{shown}"
            );
            assert!(b.sink.calls().is_empty());
            let refused = b.fleet.put(&login("bob")).await;
            assert!(
                matches!(refused, Err(FleetError::Unavailable(_))),
                "{refused:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rediss_url_speaks_tls() {
        // No Redis needed: what matters is the first bytes on the wire, and that a failed
        // handshake is reported rather than answered with plain text.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let a = Instance::start(&format!("rediss://:secret@127.0.0.1:{port}/0"));
        assert_eq!(a.fleet.redis_addr(), format!("127.0.0.1:{port}"));
        let accepted = tokio::time::timeout(PATIENCE, listener.accept()).await;
        let (mut stream, _) = accepted.expect("the fleet connects").expect("accept");
        let mut head = [0u8; 3];
        stream.read_exact(&mut head).await.expect("the first bytes");
        assert_eq!(head, [0x16, 0x03, 0x01], "a TLS handshake record");
        drop(stream);
        let status = a
            .wait_status(|s| matches!(s, FleetStatus::Disconnected { .. }))
            .await;
        println!("fleet: rediss:// to a peer that hangs up: {status:?}");
        assert!(!format!("{status:?}").contains("secret"));
        assert!(a.sink.calls().is_empty());
    }
}

mod gateways {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http_body_util::Full;
    use hubgate::config::Config;
    use hubgate::server::{Server, StartError};
    use hubgate::sim::{Sim, YOUTRACK_SERVICE_ID};
    use serde_json::{json, Value};

    use super::support::admin::{get_admin, metrics, sample};
    use super::support::redis::{free_port, require_redis, RedisServer};
    use super::support::{
        assert_refused, bearer_get, config_text, send, with_token, youtrack_token, Answer, Gateway,
    };
    use super::{GATEWAY_PATIENCE, HELD};

    const ADMIN_TOKEN: &str = "0123456789abcdef0123456789abcdef";
    /// The fleet's key, in every instance's `fleet.secret_file`.
    const FLEET_KEY: &str = "a-fleet-key-of-at-least-32-characters";
    /// Every instance of a test's fleet uses this channel (and so `{CHANNEL}:set`).
    const CHANNEL: &str = "hubgate:fleet-test";
    const INVALID: &str = "Bearer realm=\"youtrack\", error=\"invalid_token\"";
    const APPLIED_FROM_FLEET: &str = "hubgate_revocations_applied_total{source=\"fleet\"}";
    const ACTIVE: &str = "hubgate_revocations_active";
    const PROPAGATION_COUNT: &str = "hubgate_revocation_propagation_seconds_count";
    const CONNECTED: &str = "hubgate_fleet_connected";

    /// The simulator as YouTrack and Hub, and a directory of configuration files for the
    /// instances of one fleet.
    struct Rig {
        sim: Sim,
        dir: tempfile::TempDir,
        started: usize,
    }

    impl Rig {
        async fn start() -> Rig {
            let dir = tempfile::tempdir().expect("a temporary directory");
            std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).expect("token file");
            std::fs::write(dir.path().join("fleet-key"), format!("{FLEET_KEY}\n")).expect("key");
            Rig {
                sim: Sim::start().await.expect("simulator"),
                dir,
                started: 0,
            }
        }

        /// Writes the next instance's configuration file: the test configuration in front of
        /// the simulator, the admin token, and `[fleet]` on `redis_url` and [`CHANNEL`] with
        /// the fleet's key.
        fn config_file(&mut self, redis_url: &str) -> PathBuf {
            self.config_file_with(redis_url, "", "")
        }

        /// Like [`Rig::config_file`], with `admin_extra` lines in `[admin]` and `fleet_extra`
        /// lines in `[fleet]`.
        fn config_file_with(
            &mut self,
            redis_url: &str,
            admin_extra: &str,
            fleet_extra: &str,
        ) -> PathBuf {
            self.started += 1;
            let token_file = self.dir.path().join("admin-token");
            let admin = format!("[admin]\ntoken_file = {token_file:?}\n{admin_extra}");
            let key_file = self.dir.path().join("fleet-key");
            let fleet = format!(
                "\n[fleet]\nredis_url = \"{redis_url}\"\nchannel = \"{CHANNEL}\"\n\
                 secret_file = {key_file:?}\n{fleet_extra}"
            );
            let text = config_text(self.sim.addr(), "").replace("[admin]\n", &admin) + &fleet;
            let path = self
                .dir
                .path()
                .join(format!("instance-{}.toml", self.started));
            std::fs::write(&path, text).expect("config file");
            path
        }

        /// A new instance on `redis_url`, bound; not waited for.
        async fn gateway(&mut self, redis_url: &str) -> Gateway {
            Gateway::from_file(&self.config_file(redis_url)).await
        }

        /// Like [`Rig::gateway`], but a refusal to start is returned rather than a panic, so a
        /// test can say what went wrong.
        async fn try_gateway(&mut self, redis_url: &str) -> Result<Gateway, StartError> {
            let path = self.config_file(redis_url);
            let config =
                Config::load(&path).unwrap_or_else(|error| panic!("test config invalid: {error}"));
            let server = Server::bind(&config).await?;
            Ok(Gateway {
                addr: server.local_addr(),
                admin: server.admin_addr(),
                shutdown: server.shutdown_handle(),
                reload: server.reload_handle(),
                stopped: tokio::spawn(server.run()),
            })
        }

        /// A new instance on `redis`, ready (its fleet's set loaded).
        async fn ready_gateway(&mut self, redis: &RedisServer) -> Gateway {
            let gateway = self.gateway(&redis.url()).await;
            wait_readyz(&gateway, "a new instance becomes ready", |status, _| {
                status == 200
            })
            .await;
            gateway
        }

        fn token(&self) -> String {
            youtrack_token(&self.sim)
        }
    }

    /// `POST /revocations` with the admin token and a JSON body.
    async fn post_revocation(gateway: &Gateway, body: &Value) -> Answer {
        let request = super::support::get(gateway.admin, "/revocations")
            .method("POST")
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        send(gateway.admin, request).await
    }

    /// Revokes `token` at `gateway`: 201, and the answer never repeats the token.
    async fn revoke_token(gateway: &Gateway, token: &str, reason: &str) -> Value {
        let answer = post_revocation(gateway, &json!({"token": token, "reason": reason})).await;
        assert_eq!(answer.status, 201, "POST /revocations: {}", answer.text());
        assert!(
            !answer.text().contains(token),
            "the answer repeats the token"
        );
        serde_json::from_slice(&answer.body).expect("JSON")
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    /// The revocation and fleet lines of a `/metrics` text, for assertion messages.
    fn fleet_lines(text: &str) -> String {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.contains("revocation") || l.contains("fleet"))
            .collect();
        lines.join("\n")
    }

    /// Polls `/metrics` every millisecond until `done` holds; returns the text and the moment
    /// it was seen. Fails after [`GATEWAY_PATIENCE`].
    async fn wait_metrics(
        gateway: &Gateway,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> (String, Instant) {
        let deadline = Instant::now() + GATEWAY_PATIENCE;
        loop {
            let text = metrics(gateway).await;
            if done(&text) {
                return (text, Instant::now());
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {GATEWAY_PATIENCE:?}; /metrics says:\n{}",
                fleet_lines(&text)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Polls `/readyz` every millisecond until `done(status, body)` holds; returns both.
    async fn wait_readyz(
        gateway: &Gateway,
        what: &str,
        done: impl Fn(u16, &str) -> bool,
    ) -> (u16, String) {
        let deadline = Instant::now() + GATEWAY_PATIENCE;
        loop {
            let answer = get_admin(gateway, "/readyz").await;
            let (status, body) = (answer.status.as_u16(), answer.text());
            if done(status, &body) {
                return (status, body);
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {GATEWAY_PATIENCE:?}; /readyz says {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until `gateway` has applied a revocation from the fleet and enforces `active`
    /// revocations. The counter is raised as a change is handed over, the set of revocations
    /// in force (what `hubgate_revocations_active` counts) changes right after: requests are
    /// refused from the moment both show. Returns when that was seen.
    async fn applied_from_fleet(gateway: &Gateway, active: f64) -> (String, Instant) {
        let what = format!("a revocation from the fleet applied ({active} in force)");
        wait_metrics(gateway, &what, |text| {
            sample(text, APPLIED_FROM_FLEET) >= 1.0 && sample(text, ACTIVE) == active
        })
        .await
    }

    /// `GET /api/issues` with `token` is refused by the gateway itself as `invalid_token`.
    async fn assert_token_refused(gateway: &Gateway, instance: &str, token: &str) {
        let answer = with_token(gateway, "/api/issues", token).await;
        assert_eq!(
            answer.status,
            401,
            "{instance}: the revoked token was not refused: {}",
            answer.text()
        );
        assert_refused(&answer, 401, INVALID, "invalid_token");
    }

    async fn assert_token_passes(gateway: &Gateway, instance: &str, token: &str) {
        let answer = with_token(gateway, "/api/issues", token).await;
        assert_eq!(
            answer.status,
            200,
            "{instance}: a valid token was refused: {}",
            answer.text()
        );
        assert!(answer.is_echo(), "{instance}: not forwarded to YouTrack");
    }

    /// Prints a measurement where `cargo test -- --nocapture` shows it (stdout) and where a
    /// captured run keeps it (stderr).
    fn report(line: &str) {
        println!("{line}");
        eprintln!("{line}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_revocation_posted_to_one_instance_is_enforced_by_all_three() {
        let test = "a_revocation_posted_to_one_instance_is_enforced_by_all_three";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start().await;
        let mut rig = Rig::start().await;
        let instances = [
            rig.ready_gateway(&redis).await,
            rig.ready_gateway(&redis).await,
            rig.ready_gateway(&redis).await,
        ];
        let token = rig.token();
        for (n, gateway) in instances.iter().enumerate() {
            assert_token_passes(gateway, &format!("instance {}", n + 1), &token).await;
        }
        assert_eq!(
            rig.sim.probes(&token, YOUTRACK_SERVICE_ID),
            3,
            "each instance asked Hub once and cached the verdict"
        );
        let probes = rig.sim.total_probes();

        let posted = Instant::now();
        let created = revoke_token(&instances[0], &token, "leaked in a ticket").await;
        let answered = posted.elapsed();
        assert_eq!(created["fleet"], "published", "{created}");
        let (second, third) = tokio::join!(
            applied_from_fleet(&instances[1], 1.0),
            applied_from_fleet(&instances[2], 1.0),
        );
        let to_second = second.1.saturating_duration_since(posted);
        let to_third = third.1.saturating_duration_since(posted);
        let propagation = to_second.max(to_third);
        report(&format!(
            "gateway fleet propagation: POST /revocations on instance 1 answered in \
             {answered:?}; applied on instance 2 after {to_second:?}, on instance 3 after \
             {to_third:?}; the last of them: {propagation:?}"
        ));

        for (n, gateway) in instances.iter().enumerate() {
            assert_token_refused(gateway, &format!("instance {}", n + 1), &token).await;
        }
        assert_eq!(
            rig.sim.total_probes(),
            probes,
            "Hub was asked about a revoked token"
        );
        assert!(
            propagation < Duration::from_secs(1),
            "propagation took {propagation:?}, not under 1 s"
        );
        for (n, (text, _)) in [(2, second), (3, third)] {
            assert!(
                sample(&text, PROPAGATION_COUNT) >= 1.0,
                "instance {n}: no propagation time observed:\n{}",
                fleet_lines(&text)
            );
        }
        let first = metrics(&instances[0]).await;
        assert_eq!(
            sample(
                &first,
                "hubgate_revocations_applied_total{source=\"local\"}"
            ),
            1.0,
            "instance 1 applied the revocation it was given:\n{}",
            fleet_lines(&first)
        );
        assert_eq!(sample(&first, ACTIVE), 1.0, "{}", fleet_lines(&first));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_instance_started_after_the_revocation_refuses_the_token_from_its_first_request() {
        let test =
            "an_instance_started_after_the_revocation_refuses_the_token_from_its_first_request";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start().await;
        let mut rig = Rig::start().await;
        let first = rig.ready_gateway(&redis).await;
        let _second = rig.ready_gateway(&redis).await;
        let _third = rig.ready_gateway(&redis).await;
        let (token, other) = (rig.token(), rig.token());
        assert_token_passes(&first, "instance 1", &token).await;
        let created = revoke_token(&first, &token, "leaked").await;
        assert_eq!(created["fleet"], "published", "{created}");
        let probes = rig.sim.total_probes();

        // No state_dir: all it can know of the revocation comes from the fleet. The request
        // goes out at once, whether or not the new instance has loaded the set yet.
        let fourth = rig.gateway(&redis.url()).await;
        let answer = with_token(&fourth, "/api/issues", &token).await;
        assert_eq!(
            answer.status,
            401,
            "instance 4's first request with the revoked token: {}",
            answer.text()
        );
        assert_refused(&answer, 401, INVALID, "invalid_token");
        assert_eq!(
            rig.sim.total_probes(),
            probes,
            "instance 4 asked Hub about a token the fleet revoked"
        );
        let ready = get_admin(&fourth, "/readyz").await;
        assert_eq!(ready.status, 200, "instance 4: {}", ready.text());
        assert_eq!(ready.text(), "ready\n");
        let text = metrics(&fourth).await;
        for line in [format!("{ACTIVE} 1"), format!("{CONNECTED} 1")] {
            assert!(
                has_line(&text, &line),
                "instance 4: {line} missing:\n{}",
                fleet_lines(&text)
            );
        }
        assert_token_passes(&fourth, "instance 4", &other).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn killing_redis_keeps_enforcement_and_shows_in_readyz_and_metrics() {
        let test = "killing_redis_keeps_enforcement_and_shows_in_readyz_and_metrics";
        let Some(()) = require_redis(test) else {
            return;
        };
        let mut redis = RedisServer::start().await;
        let mut rig = Rig::start().await;
        let instances = [
            rig.ready_gateway(&redis).await,
            rig.ready_gateway(&redis).await,
        ];
        let [one, two] = &instances;
        let (leaked, valid, later) = (rig.token(), rig.token(), rig.token());
        let first = revoke_token(one, &leaked, "leaked before the outage").await;
        assert_eq!(first["fleet"], "published", "{first}");
        let first_id = first["revocation"]["id"].as_str().expect("id").to_owned();
        applied_from_fleet(two, 1.0).await;

        let killed = Instant::now();
        redis.kill();
        for (n, gateway) in [(1, one), (2, two)] {
            let (text, seen) = wait_metrics(gateway, "the fleet's loss shown", |text| {
                has_line(text, &format!("{CONNECTED} 0"))
            })
            .await;
            report(&format!(
                "gateway fleet: Redis killed -> instance {n} shows {CONNECTED} 0 after {:?}",
                seen.saturating_duration_since(killed)
            ));
            assert!(
                has_line(&text, &format!("{ACTIVE} 1")),
                "instance {n}: the revocation is no longer counted in force:\n{}",
                fleet_lines(&text)
            );
            let (status, body) = wait_readyz(gateway, "readyz shows the outage", |_, body| {
                body.contains("unreachable")
            })
            .await;
            assert_eq!(
                status, 200,
                "instance {n}: an outage of the fleet is not a reason to stop serving: {body}"
            );
            let redis_addr = format!("Redis at 127.0.0.1:{}", redis.port());
            for part in [
                "ready (fleet: ",
                redis_addr.as_str(),
                "unreachable since",
                "enforcing the 1 revocations known",
            ] {
                assert!(
                    body.contains(part),
                    "instance {n}: /readyz without {part:?}: {body}"
                );
            }
            let instance = format!("instance {n}, Redis down");
            assert_token_refused(gateway, &instance, &leaked).await;
            assert_token_passes(gateway, &instance, &valid).await;
        }

        // Instance 2 has checked `later` and holds a positive verdict for it.
        assert_token_passes(two, "instance 2, before the second revocation", &later).await;
        let second = revoke_token(one, &later, "leaked during the outage").await;
        let fleet = second["fleet"].as_str().unwrap_or_default();
        assert!(
            fleet.starts_with("not published yet") && fleet.contains("retried when Redis is back"),
            "the answer must say the revocation is not shared yet: {second}"
        );
        let second_id = second["revocation"]["id"].as_str().expect("id").to_owned();
        assert_token_refused(one, "instance 1, at once", &later).await;
        // Instance 2 cannot know yet: the partition is real, not a test artefact.
        assert_token_passes(two, "instance 2, Redis still down", &later).await;

        let restarted = Instant::now();
        let _redis = RedisServer::start_on(redis.port()).await;
        let redis_up = restarted.elapsed();
        for (n, gateway) in [(1, one), (2, two)] {
            let (_, seen) = wait_metrics(gateway, "the fleet reconnected", |text| {
                has_line(text, &format!("{CONNECTED} 1"))
            })
            .await;
            report(&format!(
                "gateway fleet: redis-server restarted (answering PING after {redis_up:?}) -> \
                 instance {n} connected again after {:?}",
                seen.saturating_duration_since(restarted)
            ));
        }
        let (text, seen) = wait_metrics(two, "the outage's revocation reaches instance 2", |t| {
            sample(t, ACTIVE) == 2.0
        })
        .await;
        report(&format!(
            "gateway fleet: redis-server restarted -> the revocation made during the outage \
             is enforced on instance 2 after {:?}",
            seen.saturating_duration_since(restarted)
        ));
        assert!(
            has_line(&text, &format!("{CONNECTED} 1")),
            "{}",
            fleet_lines(&text)
        );
        for (n, gateway) in [(1, one), (2, two)] {
            let instance = format!("instance {n}, Redis back");
            assert_token_refused(gateway, &instance, &leaked).await;
            assert_token_refused(gateway, &instance, &later).await;
            assert_token_passes(gateway, &instance, &valid).await;
            let ready = get_admin(gateway, "/readyz").await;
            assert_eq!(ready.status, 200, "{instance}: {}", ready.text());
            assert_eq!(ready.text(), "ready\n", "{instance}");
        }

        // The restarted Redis came back empty: the instances published both again.
        let client = redis::Client::open(redis.url()).expect("client");
        let mut raw = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let deadline = Instant::now() + GATEWAY_PATIENCE;
        let mut ids: Vec<String> = loop {
            let ids: Vec<String> = redis::cmd("HKEYS")
                .arg(format!("{CHANNEL}:set"))
                .query_async(&mut raw)
                .await
                .expect("HKEYS");
            if ids.len() == 2 {
                break ids;
            }
            assert!(
                Instant::now() < deadline,
                "the fleet's set after the restart holds {ids:?}, not both revocations"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        ids.sort();
        let mut expected = vec![first_id, second_id];
        expected.sort();
        assert_eq!(
            ids, expected,
            "both revocations are in the restarted Redis again"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn readiness_waits_for_the_fleet() {
        let Some(()) = require_redis("readiness_waits_for_the_fleet") else {
            return;
        };
        let mut rig = Rig::start().await;
        let port = free_port();
        let url = format!("redis://127.0.0.1:{port}/0");
        let token = rig.token();
        // The whole fleet (re)starts while its Redis is down: every instance must bind and
        // wait, none may give up.
        let mut instances = Vec::new();
        for n in 1..=3 {
            match rig.try_gateway(&url).await {
                Ok(gateway) => instances.push(gateway),
                Err(error) => panic!(
                    "instance {n} refused to start while the fleet's Redis is unreachable \
                     (it must bind, answer 503 on /readyz and wait): {error}"
                ),
            }
        }

        let mut held = Vec::new();
        for (n, gateway) in instances.iter().enumerate() {
            let loading = get_admin(gateway, "/readyz").await;
            let body = loading.text();
            assert_eq!(
                loading.status,
                503,
                "instance {}: ready without the fleet's set: {body}",
                n + 1
            );
            assert!(
                body.starts_with("not ready: loading revocations from the fleet")
                    && body.contains(&format!("Redis at 127.0.0.1:{port}")),
                "instance {}: {body}",
                n + 1
            );
            let text = metrics(gateway).await;
            assert!(
                has_line(&text, &format!("{CONNECTED} 0")),
                "instance {}: {}",
                n + 1,
                fleet_lines(&text)
            );
            let addr = gateway.addr;
            held.push(tokio::spawn(send(
                addr,
                bearer_get(addr, "/api/issues", &token),
            )));
        }
        let early = tokio::time::timeout(HELD, &mut held[0]).await;
        assert!(
            early.is_err(),
            "instance 1 answered a request before its revocations were loaded"
        );
        for (n, request) in held.iter().enumerate() {
            assert!(
                !request.is_finished(),
                "instance {} answered a request before its revocations were loaded",
                n + 1
            );
        }
        for gateway in &instances {
            let still = get_admin(gateway, "/readyz").await;
            assert_eq!(still.status, 503, "{}", still.text());
        }

        let started = Instant::now();
        let _redis = RedisServer::start_on(port).await;
        let redis_up = started.elapsed();
        for (n, (gateway, request)) in instances.iter().zip(held).enumerate() {
            let (_, body) = wait_readyz(gateway, "ready once Redis is there", |status, _| {
                status == 200
            })
            .await;
            report(&format!(
                "gateway fleet: redis-server started (answering PING after {redis_up:?}) -> \
                 instance {} /readyz 200 after {:?}",
                n + 1,
                started.elapsed()
            ));
            assert_eq!(body, "ready\n");
            let answered = tokio::time::timeout(GATEWAY_PATIENCE, request).await;
            let answer = answered
                .expect("the held request is answered once ready")
                .expect("the held request's task");
            assert_eq!(
                answer.status,
                200,
                "instance {}: the held request: {}",
                n + 1,
                answer.text()
            );
            assert_token_passes(gateway, "once ready", &token).await;
        }
    }

    /// What the fleet's Redis gets from whoever can write to it (no key needed): a raw
    /// PUBLISH on the channel.
    async fn forge(redis: &RedisServer, payload: &str) {
        let client = redis::Client::open(redis.url()).expect("client");
        let mut raw = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(CHANNEL).arg(payload);
        publish.query_async::<()>(&mut raw).await.expect("PUBLISH");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn forged_messages_change_nothing_on_any_instance_nor_in_its_state_file() {
        let test = "forged_messages_change_nothing_on_any_instance_nor_in_its_state_file";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start().await;
        let mut rig = Rig::start().await;
        let mut instances = Vec::new();
        let mut state_dirs = Vec::new();
        for n in 1..=2 {
            let dir = rig.dir.path().join(format!("state-{n}"));
            std::fs::create_dir(&dir).expect("state dir");
            let path = rig.config_file_with(&redis.url(), &format!("state_dir = {dir:?}\n"), "");
            let gateway = Gateway::from_file(&path).await;
            wait_readyz(&gateway, "a new instance becomes ready", |status, _| {
                status == 200
            })
            .await;
            instances.push(gateway);
            state_dirs.push(dir);
        }
        let [one, two] = &instances[..] else {
            unreachable!()
        };
        // Both tokens are alice's.
        let (leaked, valid, later) = (rig.token(), rig.token(), rig.token());
        let created = revoke_token(one, &leaked, "leaked").await;
        let id = created["revocation"]["id"].as_str().expect("id").to_owned();
        applied_from_fleet(two, 1.0).await;
        let state_file = |n: usize| {
            let path = state_dirs[n].join(hubgate::revocation::state::FILE_NAME);
            std::fs::read_to_string(path).expect("the state file")
        };
        // The counter is raised as the change is handed over; the file is written right after.
        let deadline = Instant::now() + GATEWAY_PATIENCE;
        while !(0..2).all(|n| state_file(n).contains(&id)) {
            assert!(
                Instant::now() < deadline,
                "the revocation is not in both state files"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        // What a withdrawal publishes, and a revocation locking alice out, from someone who
        // can write to Redis but holds no key.
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_micros();
        let withdrawal = json!({"op": "delete", "id": id, "published_us": now_us});
        let forged_id = "00000000f0f0f0f0";
        let lockout = json!({
            "op": "put",
            "revocation": {"id": forged_id, "login": "alice", "created": 1, "expires": null},
            "published_us": now_us,
        });
        forge(&redis, &withdrawal.to_string()).await;
        forge(&redis, &lockout.to_string()).await;

        // A genuine revocation published after the forgeries: once both instances have it,
        // they have seen the forgeries too (a channel keeps its order).
        revoke_token(one, &later, "a barrier").await;
        for (n, gateway) in [(1, one), (2, two)] {
            let (text, _) = wait_metrics(gateway, "the genuine revocation applied", |text| {
                sample(text, APPLIED_FROM_FLEET) >= 2.0 && sample(text, ACTIVE) == 2.0
            })
            .await;
            let instance = format!("instance {n}, after the forgeries");
            let kept = state_file(n - 1);
            assert!(
                kept.contains(&id),
                "{instance}: withdrawn from the state file"
            );
            assert!(
                !kept.contains(forged_id),
                "{instance}: the forgery was saved"
            );
            assert_token_refused(gateway, &instance, &leaked).await;
            assert_token_refused(gateway, &instance, &later).await;
            assert_token_passes(gateway, &instance, &valid).await;
            assert_eq!(
                sample(&text, "hubgate_fleet_rejected_total{reason=\"unsigned\"}"),
                2.0,
                "{instance}: the forgeries are not counted:\n{}",
                fleet_lines(&text)
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_gateway_reads_the_redis_password_from_redis_password_file() {
        let test = "a_gateway_reads_the_redis_password_from_redis_password_file";
        let Some(()) = require_redis(test) else {
            return;
        };
        let redis = RedisServer::start_with_password("fleet-redis-pa55").await;
        let mut rig = Rig::start().await;
        let password_file = rig.dir.path().join("redis-password");
        std::fs::write(&password_file, "fleet-redis-pa55\n").expect("password file");
        let fleet = format!("redis_password_file = {password_file:?}\n");
        let path = rig.config_file_with(&redis.url(), "", &fleet);
        let gateway = Gateway::from_file(&path).await;
        wait_readyz(
            &gateway,
            "ready with the password from its file",
            |status, _| status == 200,
        )
        .await;
        let token = rig.token();
        let created = revoke_token(&gateway, &token, "leaked").await;
        assert_eq!(created["fleet"], "published", "{created}");
        applied_from_fleet(&gateway, 1.0).await;
        assert_token_refused(&gateway, "with AUTH from the file", &token).await;
    }
}
