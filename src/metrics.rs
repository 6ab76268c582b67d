//! Prometheus metrics (`GET /metrics` on the admin listener). One [`Metrics`] per server,
//! kept across reloads. Every label value comes from a bounded set: route prefixes, upstream
//! and service names from the configuration, status codes, and the fixed names below — never
//! a raw path, a header or a token.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value taken from the configuration (route prefix, upstream or service name).
pub type Name = Arc<str>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Name,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    route: Name,
    outcome: AuthOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceResultLabels {
    service: Name,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: Name,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// What the gateway decided about a request's credentials.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AuthOutcome {
    /// A valid token whose scope covers the route.
    allowed,
    /// No token, and none needed (public route, or `allow_anonymous`).
    anonymous,
    /// No token on a protected route, or a token in the query.
    missing,
    /// A malformed `Authorization` header.
    bad_request,
    invalid,
    /// A token or user revoked at the gateway.
    revoked,
    insufficient_scope,
    backend_error,
    rate_limited,
    /// No credential, let through because the route's `capability` admits the URL (a signed
    /// file link, an event-stream ticket…): YouTrack authorizes it.
    capability,
}

// Every outcome indexes `RouteMetrics::decisions`.
const _: () = assert!(AuthOutcome::capability as usize + 1 == AuthOutcome::COUNT);

impl AuthOutcome {
    const COUNT: usize = 10;

    pub fn name(self) -> &'static str {
        match self {
            AuthOutcome::allowed => "allowed",
            AuthOutcome::anonymous => "anonymous",
            AuthOutcome::missing => "missing",
            AuthOutcome::bad_request => "bad_request",
            AuthOutcome::invalid => "invalid",
            AuthOutcome::revoked => "revoked",
            AuthOutcome::insufficient_scope => "insufficient_scope",
            AuthOutcome::backend_error => "backend_error",
            AuthOutcome::rate_limited => "rate_limited",
            AuthOutcome::capability => "capability",
        }
    }
}

/// Methods whose `200` answers a route counts without a label lookup.
const FAST_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// One route's most used series, found in their families on first use and kept, so that a
/// request costs no label hashing or lock. The state built from each configuration holds one
/// per route; the series themselves live in [`Metrics`] across reloads.
pub struct RouteMetrics {
    route: Name,
    duration: OnceLock<Histogram>,
    decisions: [OnceLock<Counter>; AuthOutcome::COUNT],
    ok: [OnceLock<Counter>; FAST_METHODS.len()],
}

impl RouteMetrics {
    pub fn new(route: &Name) -> RouteMetrics {
        RouteMetrics {
            route: route.clone(),
            duration: OnceLock::new(),
            decisions: Default::default(),
            ok: Default::default(),
        }
    }

    /// Whether these are the series of `route` (the prefix shared with the route table).
    pub fn is_for(&self, route: &Name) -> bool {
        Arc::ptr_eq(&self.route, route)
    }
}

/// The cache lookup results (`auth::cache::Outcome` names).
const CACHE_RESULTS: [&str; 5] = ["hit", "negative_hit", "miss", "coalesced", "stale"];

/// Every metric the gateway keeps.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    auth_decisions: Family<DecisionLabels, Counter>,
    cache_lookups: Family<ResultLabels, Counter>,
    /// The `cache_lookups` series of [`CACHE_RESULTS`], kept once used.
    cache_lookup_series: [OnceLock<Counter>; CACHE_RESULTS.len()],
    cache_entries: Family<KindLabels, Gauge>,
    introspection_requests: Family<ServiceResultLabels, Counter>,
    introspection_duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    introspection_shed: Family<ReasonLabels, Counter>,
    upstream_errors: Family<UpstreamLabels, Counter>,
    connections_open: Gauge,
    connections_refused: Counter,
    config_reloads: Family<ResultLabels, Counter>,
    revocations_active: Gauge,
    revocations_applied: Family<SourceLabels, Counter>,
    revocation_propagation: Histogram,
    fleet_connected: Gauge,
    fleet_rejected: Family<ReasonLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

/// 0.5 ms to ~65 s in factors of 2: covers a cache hit and a stalled upstream.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("hubgate"),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            auth_decisions: Family::default(),
            cache_lookups: Family::default(),
            cache_lookup_series: Default::default(),
            cache_entries: Family::default(),
            introspection_requests: Family::default(),
            introspection_duration: Family::new_with_constructor(latency_histogram),
            introspection_shed: Family::default(),
            upstream_errors: Family::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            config_reloads: Family::default(),
            revocations_active: Gauge::default(),
            revocations_applied: Family::default(),
            revocation_propagation: latency_histogram(),
            fleet_connected: Gauge::default(),
            fleet_rejected: Family::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "requests",
            "Requests answered, by route prefix, method and status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from the request to the response headers, by route prefix",
            Unit::Seconds,
            self.request_duration.clone(),
        );
        r.register(
            "auth_decisions",
            "Credential decisions, by route prefix and outcome",
            self.auth_decisions.clone(),
        );
        r.register(
            "cache_lookups",
            "Verdict cache lookups (one per token and service asked)",
            self.cache_lookups.clone(),
        );
        r.register(
            "cache_entries",
            "Verdicts cached now, positive and negative",
            self.cache_entries.clone(),
        );
        r.register(
            "introspection_requests",
            "Token checks sent to the backend, by service and result",
            self.introspection_requests.clone(),
        );
        r.register_with_unit(
            "introspection_duration",
            "Time the backend took to answer a token check, by service",
            Unit::Seconds,
            self.introspection_duration.clone(),
        );
        r.register(
            "introspection_shed",
            "Token checks not sent to the backend: client budget spent, max_concurrent \
             reached, or circuit open",
            self.introspection_shed.clone(),
        );
        r.register(
            "upstream_errors",
            "Requests the upstream failed, by upstream and kind (connect, timeout, protocol)",
            self.upstream_errors.clone(),
        );
        r.register(
            "connections_open",
            "Client connections open now (WebSocket tunnels included)",
            self.connections_open.clone(),
        );
        r.register(
            "connections_refused",
            "Client connections closed at once because max_connections was reached",
            self.connections_refused.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads (SIGHUP or POST /reload), by result",
            self.config_reloads.clone(),
        );
        r.register(
            "revocations_active",
            "Revocations in force at this instance",
            self.revocations_active.clone(),
        );
        r.register(
            "revocations_applied",
            "Revocation changes applied, by source: local (this instance's admin API, its \
             state file) or fleet (Redis)",
            self.revocations_applied.clone(),
        );
        r.register_with_unit(
            "revocation_propagation",
            "Time from a revocation's publication by one instance to its application here",
            Unit::Seconds,
            self.revocation_propagation.clone(),
        );
        r.register(
            "fleet_connected",
            "1 while the fleet's Redis is connected and its full set loaded, else 0",
            self.fleet_connected.clone(),
        );
        r.register(
            "fleet_rejected",
            "Fleet messages and stored entries ignored, by reason: unsigned, bad_signature \
             (not signed with the fleet's key) or malformed",
            self.fleet_rejected.clone(),
        );
        r.register(
            "build",
            "hubgate version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
    }

    /// The OpenMetrics text exposition, with the cache sizes and revocations in force now.
    pub fn render(&self, positive: u64, negative: u64, revocations: usize) -> String {
        self.revocations_active
            .set(i64::try_from(revocations).unwrap_or(i64::MAX));
        let set = |kind, n: u64| {
            self.cache_entries
                .get_or_create(&KindLabels { kind })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set("positive", positive);
        set("negative", negative);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn request(&self, route: &Name, method: &Method, status: u16, elapsed: Duration) {
        let route = route.clone();
        self.request_duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    /// [`request`](Metrics::request) for a route with its series at hand.
    pub fn route_request(
        &self,
        route: &RouteMetrics,
        method: &Method,
        status: u16,
        elapsed: Duration,
    ) {
        let duration = route.duration.get_or_init(|| {
            let labels = RouteLabels {
                route: route.route.clone(),
            };
            self.request_duration.get_or_create(&labels).clone()
        });
        duration.observe(elapsed.as_secs_f64());
        let method = method_label(method);
        let labels = || RequestLabels {
            route: route.route.clone(),
            method,
            status,
        };
        let fast = FAST_METHODS.iter().position(|m| *m == method);
        match fast.filter(|_| status == 200) {
            Some(i) => {
                let requests =
                    route.ok[i].get_or_init(|| self.requests.get_or_create(&labels()).clone());
                requests.inc();
            }
            None => {
                self.requests.get_or_create(&labels()).inc();
            }
        }
    }

    /// [`auth_decision`](Metrics::auth_decision) for a route with its series at hand.
    pub fn route_auth_decision(&self, route: &RouteMetrics, outcome: AuthOutcome) {
        route.decisions[outcome as usize]
            .get_or_init(|| {
                let route = route.route.clone();
                self.auth_decisions
                    .get_or_create(&DecisionLabels { route, outcome })
                    .clone()
            })
            .inc();
    }

    pub fn auth_decision(&self, route: &Name, outcome: AuthOutcome) {
        let route = route.clone();
        self.auth_decisions
            .get_or_create(&DecisionLabels { route, outcome })
            .inc();
    }

    pub fn cache_lookup(&self, result: &'static str) {
        let family = || self.cache_lookups.get_or_create(&ResultLabels { result });
        match CACHE_RESULTS.iter().position(|r| *r == result) {
            Some(i) => {
                self.cache_lookup_series[i]
                    .get_or_init(|| family().clone())
                    .inc();
            }
            None => {
                family().inc();
            }
        }
    }

    /// One backend call: `result` is `ok`, `error` or `timeout`.
    pub fn introspection(&self, service: &Name, result: &'static str, elapsed: Duration) {
        let service = service.clone();
        self.introspection_duration
            .get_or_create(&ServiceLabels {
                service: service.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.introspection_requests
            .get_or_create(&ServiceResultLabels { service, result })
            .inc();
    }

    pub fn introspection_shed(&self, reason: &'static str) {
        self.introspection_shed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn upstream_error(&self, upstream: &Name, kind: &'static str) {
        let upstream = upstream.clone();
        self.upstream_errors
            .get_or_create(&UpstreamLabels { upstream, kind })
            .inc();
    }

    pub fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// `source`: `local` or `fleet`.
    pub fn revocation_applied(&self, source: &'static str) {
        self.revocations_applied
            .get_or_create(&SourceLabels { source })
            .inc();
    }

    pub fn revocation_propagation(&self, elapsed: Duration) {
        self.revocation_propagation.observe(elapsed.as_secs_f64());
    }

    pub fn fleet_connected(&self, connected: bool) {
        self.fleet_connected.set(i64::from(connected));
    }

    /// `reason`: `unsigned`, `bad_signature` or `malformed`.
    pub fn fleet_rejected(&self, reason: &'static str) {
        self.fleet_rejected
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "error" };
        self.config_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }
}

/// Methods outside the standard set share one label value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let metrics = Metrics::new();
        let api: Name = Arc::from("/api");
        metrics.request(&api, &Method::GET, 200, Duration::from_millis(3));
        metrics.request(
            &api,
            &Method::from_bytes(b"BREW").unwrap(),
            401,
            Duration::ZERO,
        );
        metrics.auth_decision(&api, AuthOutcome::insufficient_scope);
        metrics.config_reload(false);
        let text = metrics.render(7, 2, 1);
        for line in [
            r#"hubgate_requests_total{route="/api",method="GET",status="200"} 1"#,
            r#"hubgate_requests_total{route="/api",method="other",status="401"} 1"#,
            r#"hubgate_request_duration_seconds_count{route="/api"} 2"#,
            r#"hubgate_auth_decisions_total{route="/api",outcome="insufficient_scope"} 1"#,
            r#"hubgate_cache_entries{kind="positive"} 7"#,
            r#"hubgate_cache_entries{kind="negative"} 2"#,
            r#"hubgate_config_reloads_total{result="error"} 1"#,
            r#"hubgate_connections_open 0"#,
            r#"hubgate_revocations_active 1"#,
            concat!(
                r#"hubgate_build_info{version=""#,
                env!("CARGO_PKG_VERSION"),
                r#""} 1"#
            ),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }

    /// The series a route keeps at hand are the family's: both ways of counting add up.
    #[test]
    fn kept_series_count_into_the_families() {
        let metrics = Metrics::new();
        let api: Name = Arc::from("/api");
        let series = RouteMetrics::new(&api);
        assert!(series.is_for(&api) && !series.is_for(&Arc::from("/api")));
        for _ in 0..2 {
            metrics.route_request(&series, &Method::GET, 200, Duration::from_millis(1));
            metrics.route_auth_decision(&series, AuthOutcome::allowed);
            metrics.cache_lookup("hit");
        }
        metrics.route_request(&series, &Method::GET, 404, Duration::ZERO);
        metrics.route_auth_decision(&series, AuthOutcome::rate_limited);
        metrics.request(&api, &Method::GET, 200, Duration::ZERO);
        metrics.auth_decision(&api, AuthOutcome::allowed);
        metrics.cache_lookup("miss");
        let text = metrics.render(0, 0, 0);
        for line in [
            r#"hubgate_requests_total{route="/api",method="GET",status="200"} 3"#,
            r#"hubgate_requests_total{route="/api",method="GET",status="404"} 1"#,
            r#"hubgate_request_duration_seconds_count{route="/api"} 4"#,
            r#"hubgate_auth_decisions_total{route="/api",outcome="allowed"} 3"#,
            r#"hubgate_auth_decisions_total{route="/api",outcome="rate_limited"} 1"#,
            r#"hubgate_cache_lookups_total{result="hit"} 2"#,
            r#"hubgate_cache_lookups_total{result="miss"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(
            !text.contains("coalesced"),
            "a series never used is not shown"
        );
    }
}
