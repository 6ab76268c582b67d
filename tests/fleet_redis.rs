//! Central revocation across a fleet, against a real `redis-server` (skipped with a notice
//! when it is not installed, unless `HUBGATE_REQUIRE_REDIS=1`).
//!
//! - `fleet`: the `revocation::fleet` module on its own — instances as `Fleet`s with a
//!   recording `Sink`: propagation, the full set at (re)connect, losing and regaining Redis.
//!
//! Nothing here waits a fixed time for an event: tests wait on the sink's `Notify` or on
//! status changes, with [`PATIENCE`] only as a guard against hanging.

mod support;

use std::time::Duration;

/// The longest any awaited event may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

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
        /// Started on `url`; not waited for.
        fn start(url: &str) -> Instance {
            let config = FleetConfig {
                redis_url: Secret::new(url),
                channel: CHANNEL.to_owned(),
            };
            let sink = Arc::new(Recorder::default());
            let metrics = Arc::new(Metrics::new());
            let fleet = Fleet::start(&config, sink.clone(), metrics.clone());
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
    async fn malformed_set_entries_and_messages_are_skipped() {
        let Some(()) = require_redis("malformed_set_entries_and_messages_are_skipped") else {
            return;
        };
        let redis = RedisServer::start().await;
        let good = login("alice");
        let client = redis::Client::open(redis.url()).expect("client");
        let mut raw = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let key = format!("{CHANNEL}:set");
        let entries = [
            (good.id.as_str(), serde_json::to_string(&good).unwrap()),
            ("0000000000000bad", "{not json".to_owned()),
            ("0000000000000odd", serde_json::to_string(&good).unwrap()),
        ];
        for (field, value) in entries {
            let mut hset = redis::cmd("HSET");
            hset.arg(&key).arg(field).arg(value);
            hset.query_async::<()>(&mut raw).await.expect("HSET");
        }

        let a = Instance::loaded(&redis).await;
        assert_eq!(a.sink.calls(), [Call::ReplaceAll(vec![good.id.clone()])]);

        for junk in [
            "not json",
            r#"{"op":"put","revocation":{"id":"x y","login":"a","created":1}}"#,
            r#"{"op":"rename","id":"abc","published_us":1}"#,
        ] {
            let mut publish = redis::cmd("PUBLISH");
            publish.arg(CHANNEL).arg(junk);
            publish.query_async::<()>(&mut raw).await.expect("PUBLISH");
        }
        let next = login("bob");
        a.fleet.put(&next).await.expect("put");
        let expected = [
            Call::ReplaceAll(vec![good.id.clone()]),
            Call::Put(next.id.clone()),
        ];
        a.sink.wait_for(&expected).await;
        assert!(a.metric_line(r#"hubgate_revocations_applied_total{source="fleet"} 1"#));
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
