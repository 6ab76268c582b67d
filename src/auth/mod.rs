//! Authentication: is the request's token valid, and does its scope cover the route's Hub
//! service? Syntax first (`bearer`), then the verdict cache (`cache`), then — on a miss, one
//! caller per token at a time, within `max_concurrent` and `timeout` — the introspection
//! backend (`introspect`). The decision is made per request from cached verdicts and is
//! never cached itself.

pub mod bearer;
pub mod cache;
pub mod identity;
pub mod introspect;
pub mod limit;
pub mod principal;

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use http::Method;
use tokio::sync::Semaphore;

use self::bearer::Credential;
use self::cache::{
    basic_hash, fingerprint, fingerprint_bytes, token_hash, Outcome, TokenHash, VerdictCache,
};
use self::introspect::{BackendError, Introspect, Presented, ServiceRef};
use self::limit::{Breaker, MissBudget};
use self::principal::{Principal, Verdict};
use crate::config::{self, Config, Route};
use crate::error::GatewayError;
use crate::live::Common;
use crate::metrics::Metrics;
use crate::revocation::set::RevocationSet;
use crate::tls::TlsError;

/// How long a credential-less answer of the backend stands for its health.
const HEALTH_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything token checking needs, shared by all requests.
pub struct Auth {
    services: Vec<ServiceRef>,
    backend: Box<dyn Introspect>,
    /// Shared with the previous configuration when a reload leaves verdicts meaningful.
    cache: Arc<VerdictCache>,
    /// Per-client budget of backend calls (cache misses), if `client_miss_rate` > 0.
    budget: Option<Arc<MissBudget>>,
    /// Opens after consecutive backend failures: fail fast instead of piling onto a sick Hub.
    breaker: Arc<Breaker>,
    /// One permit per backend call in flight: beyond `max_concurrent`, callers get 503 now.
    calls: Semaphore,
    /// Whether the backend answered a credential-less request, and when that was learnt:
    /// tells an error every credential meets from one only some credentials provoke.
    health: std::sync::Mutex<Option<(tokio::time::Instant, bool)>>,
    timeout: std::time::Duration,
    /// Which forms of HTTP Basic protected routes accept.
    basic: config::BasicForms,
    metrics: Arc<Metrics>,
    /// Tokens and logins the security team revoked: refused whatever Hub says.
    revocations: Arc<RevocationSet>,
    /// What decides whether cached verdicts still mean the same after a reload.
    verdict_source: VerdictSource,
}

/// The settings a cached verdict depends on: the cache rules, the services (verdicts are
/// kept by service index) and where tokens are checked.
#[derive(PartialEq)]
struct VerdictSource {
    cache: config::Cache,
    services: Vec<(Arc<str>, String)>,
    backend: config::Backend,
}

/// What a token check found out, for the access log: set while [`Auth::authenticate`] runs.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    /// The token's fingerprint (first 6 bytes of its hash), when a bearer token was sent.
    pub token: Option<[u8; 6]>,
    /// The whole key of the credential checked, for what stays open after the request.
    pub hash: Option<TokenHash>,
    /// How the first verdict (the route's service) was found.
    pub cache: Option<Outcome>,
    /// The request passed without a credential on the strength of its URL (`capability`).
    pub capability: bool,
}

impl Auth {
    /// `previous`: the configuration being replaced; its cache, client budgets and breaker
    /// carry over when the new settings leave them meaningful.
    pub fn new(
        config: &Config,
        common: &Common,
        previous: Option<&Auth>,
    ) -> Result<Auth, TlsError> {
        let services: Vec<ServiceRef> = config
            .services
            .iter()
            .enumerate()
            .map(|(index, (name, service))| ServiceRef {
                index,
                name: name.as_str().into(),
                id: service.id.clone(),
            })
            .collect();
        let verdict_source = VerdictSource {
            cache: config.cache.clone(),
            services: services
                .iter()
                .map(|s| (s.name.clone(), s.id.clone()))
                .collect(),
            backend: config.introspection.backend.clone(),
        };
        let same_verdicts = previous.filter(|p| p.verdict_source == verdict_source);
        if previous.is_some() && same_verdicts.is_none() {
            tracing::info!("cache, services or backend changed: cached verdicts dropped");
        }
        let rate = config.introspection.client_miss_rate;
        let budget = match previous.and_then(|p| p.budget.as_ref()) {
            Some(budget) if budget.rate() == rate => Some(budget.clone()),
            _ => MissBudget::new(rate).map(Arc::new),
        };
        Ok(Auth {
            backend: introspect::backend(config, &services)?,
            services,
            cache: same_verdicts
                .map_or_else(|| VerdictCache::new(&config.cache), |p| p.cache.clone()),
            budget,
            breaker: same_verdicts.map_or_else(Arc::default, |p| p.breaker.clone()),
            calls: Semaphore::new(config.introspection.max_concurrent),
            health: std::sync::Mutex::new(None),
            timeout: config.introspection.timeout,
            basic: config.introspection.basic,
            metrics: common.metrics.clone(),
            revocations: common.revocations.clone(),
            verdict_source,
        })
    }

    /// Verdicts cached now: (positive, negative).
    pub fn cache_entries(&self) -> (u64, u64) {
        self.cache.entries()
    }

    /// Drops cached verdicts a revocation covers (they are refused anyway; this frees them).
    pub fn forget(&self, target: &crate::revocation::Target) {
        match target {
            crate::revocation::Target::Fingerprint(fingerprint) => {
                self.cache.forget_fingerprint(fingerprint)
            }
            crate::revocation::Target::Login(login) => self.cache.forget_login(login),
        }
    }

    /// Whether the backend answers (for `/readyz` with `admin.readyz_checks_hub`).
    pub async fn backend_reachable(&self) -> Result<(), BackendError> {
        tokio::time::timeout(self.timeout, self.backend.reachable())
            .await
            .unwrap_or(Err(BackendError::Timeout))
    }

    /// The user a token belongs to, if some service grants it (cache or backend). Used before
    /// acting in Hub on a token handed in: a string shaped like a token names a user and a
    /// token ID, and must not be enough to delete that token.
    pub async fn owner(&self, token: &str) -> Option<Arc<Principal>> {
        let route = Route {
            prefix: "/".into(),
            upstream: String::new(),
            ..Route::default()
        };
        let check = Check {
            auth: self,
            presented: Presented::Token(token),
            hash: identity::identity(token),
            allow_stale: false,
            route: &route,
            client: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            first: OnceLock::new(),
        };
        check.any_service().await.ok()
    }

    /// Decides whether `credential` may use `route`. `Ok(Some(_))`: a checked credential;
    /// `Ok(None)`: no credential needed and none checked (a public route, guest access, or a
    /// capability URL: then `trace.capability` is set). `trace` records what the check found.
    pub async fn authenticate(
        &self,
        route: &Route,
        credential: Credential<'_>,
        method: &Method,
        query: Option<&str>,
        client: IpAddr,
        trace: &mut Trace,
    ) -> Result<Option<Arc<Principal>>, GatewayError> {
        let service = route
            .service
            .as_ref()
            .and_then(|name| self.services.iter().find(|s| *s.name == **name));
        let basic_token;
        let (presented, hash) = match (credential, service) {
            (Credential::Bearer(token), _) => (Presented::Token(token), self.token_key(token)?),
            (Credential::BasicToken(_), Some(_)) if !self.basic.token => {
                return Err(GatewayError::BasicRefused("a token in the Basic password"))
            }
            (Credential::BasicToken(token), _) => {
                basic_token = token;
                let hash = self.token_key(&basic_token)?;
                (Presented::Token(&basic_token), hash)
            }
            (Credential::BasicPassword(_), Some(_)) if !self.basic.password => {
                return Err(GatewayError::BasicRefused("a login and password"))
            }
            (Credential::BasicPassword(basic), Some(_)) => {
                (Presented::Basic(basic.header), basic_hash(&basic.decoded))
            }
            (Credential::QueryToken, _) => return Err(GatewayError::QueryToken),
            // A public route: client credentials for the token endpoint, a login form's…
            (Credential::None | Credential::OtherScheme | Credential::BasicPassword(_), None) => {
                return Ok(None)
            }
            (Credential::None, Some(_)) if route.allow_anonymous => return Ok(None),
            (Credential::None, Some(_))
                if route
                    .capability
                    .as_ref()
                    .is_some_and(|c| c.admits(method, query)) =>
            {
                trace.capability = true;
                return Ok(None);
            }
            (Credential::None | Credential::OtherScheme, Some(_)) => {
                return Err(GatewayError::MissingToken)
            }
        };
        trace.token = Some(fingerprint_bytes(&hash));
        trace.hash = Some(hash);
        if let Some(id) = self.revocations.token(&hash) {
            tracing::debug!(token = %fingerprint(&hash), revocation = %id, "revoked token refused");
            return Err(GatewayError::Revoked);
        }
        let check = Check {
            auth: self,
            presented,
            hash,
            allow_stale: method == Method::GET || method == Method::HEAD,
            route,
            client,
            first: OnceLock::new(),
        };
        let result = match service {
            Some(service) => check.scope(service).await,
            None => check.any_service().await,
        };
        trace.cache = check.first.get().copied();
        result.map(Some)
    }

    /// The cache key of a token: its identity (every spelling Hub reads as the same token has
    /// the same one). A revocation recorded before identities existed holds the hash of the
    /// exact spelling revoked, so a spelling that is not canonical is also checked by its
    /// bytes while the set holds any token.
    fn token_key(&self, token: &str) -> Result<TokenHash, GatewayError> {
        let Some(canonical) = identity::canonical(token).filter(|c| c != token) else {
            return Ok(token_hash(token));
        };
        if self.revocations.has_tokens() {
            let exact = token_hash(token);
            if let Some(id) = self.revocations.token(&exact) {
                tracing::debug!(token = %fingerprint(&exact), revocation = %id, "revoked token refused");
                return Err(GatewayError::Revoked);
            }
        }
        Ok(token_hash(&canonical))
    }

    /// One backend call, made by the one caller a cache miss elects (`security.md`'s order:
    /// the client's miss budget, the global cap, the breaker, then the call within `timeout`).
    async fn call(
        &self,
        presented: Presented<'_>,
        service: &ServiceRef,
        client: IpAddr,
    ) -> Result<introspect::Introspected, BackendError> {
        let shed = |reason, error| {
            self.metrics.introspection_shed(reason);
            error
        };
        if let Some(budget) = &self.budget {
            budget
                .spend(client)
                .map_err(|retry| shed("rate_limited", BackendError::RateLimited(retry)))?;
        }
        let _permit = self
            .calls
            .try_acquire()
            .map_err(|_| shed("overloaded", BackendError::Overloaded))?;
        let attempt = self
            .breaker
            .attempt()
            .ok_or_else(|| shed("circuit_open", BackendError::CircuitOpen))?;
        let started = tokio::time::Instant::now();
        let called =
            tokio::time::timeout(self.timeout, self.backend.introspect(presented, service));
        let result = called.await.unwrap_or(Err(BackendError::Timeout));
        let outcome = match &result {
            Ok(_) => "ok",
            Err(BackendError::Timeout) => "timeout",
            Err(_) => "error",
        };
        self.metrics
            .introspection(&service.name, outcome, started.elapsed());
        match &result {
            Ok(_) => attempt.succeeded(),
            Err(error) => {
                tracing::warn!(service = %service.name, %error, "introspection failed");
                // An error answer may be one only this credential provokes (an odd token shape
                // Hub chokes on): it opens the breaker for everyone only if Hub fails a
                // credential-less request too. A transport failure needs no such proof.
                if error.is_transport() || !self.backend_answers().await {
                    attempt.failed();
                }
            }
        }
        result
    }

    /// Whether the backend answers a request without a credential (below 500), learnt at most
    /// once a second: the bound on the extra calls an odd credential can cause.
    async fn backend_answers(&self) -> bool {
        let now = tokio::time::Instant::now();
        let lock = || self.health.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, answers)) = *lock() {
            if now.duration_since(at) < HEALTH_REUSE {
                return answers;
            }
        }
        let answers = self.backend_reachable().await.is_ok();
        *lock() = Some((now, answers));
        answers
    }
}

/// One request's token check.
struct Check<'a> {
    auth: &'a Auth,
    presented: Presented<'a>,
    hash: TokenHash,
    allow_stale: bool,
    route: &'a Route,
    client: IpAddr,
    /// How the first lookup went: the one the access log shows.
    first: OnceLock<Outcome>,
}

impl Check<'_> {
    async fn verdict(&self, service: &ServiceRef) -> Result<Verdict, GatewayError> {
        let fetch = self.auth.call(self.presented, service, self.client);
        let (result, outcome) = self
            .auth
            .cache
            .verdict(self.hash, service.index, self.allow_stale, fetch)
            .await;
        self.auth.metrics.cache_lookup(outcome.name());
        let _ = self.first.set(outcome);
        self.log(service, &result, outcome);
        let verdict = result.map_err(|error| match error {
            BackendError::RateLimited(retry_after) => GatewayError::RateLimited(retry_after),
            error => GatewayError::AuthUnavailable(error),
        })?;
        if let Verdict::Granted(principal) = &verdict {
            if let Some(id) = self.auth.revocations.login(&principal.login) {
                let login = principal.login.escape_debug();
                tracing::debug!(%login, revocation = %id, "token of a revoked user refused");
                return Err(GatewayError::Revoked);
            }
        }
        Ok(verdict)
    }

    fn log(&self, service: &ServiceRef, result: &Result<Verdict, BackendError>, outcome: Outcome) {
        let (verdict, login) = match result {
            Ok(Verdict::Granted(principal)) => ("granted", principal.login.as_str()),
            Ok(other) => (other.name(), ""),
            Err(_) => ("backend_error", ""),
        };
        tracing::debug!(
            route = %self.route.prefix,
            service = %service.name,
            verdict,
            cache = outcome.name(),
            login,
            token = %fingerprint(&self.hash),
            error = result.as_ref().err().map(tracing::field::display),
            "token checked"
        );
    }

    /// The route's service must be in the token's scope: granted → in; granted elsewhere →
    /// 403 `insufficient_scope`; granted nowhere → 401 `invalid_token`.
    async fn scope(&self, service: &ServiceRef) -> Result<Arc<Principal>, GatewayError> {
        match self.verdict(service).await? {
            Verdict::Granted(principal) => Ok(principal),
            Verdict::Invalid => Err(GatewayError::InvalidToken),
            Verdict::NotGranted => {
                for other in self
                    .auth
                    .services
                    .iter()
                    .filter(|s| s.index != service.index)
                {
                    match self.verdict(other).await? {
                        Verdict::Granted(_) => {
                            return Err(GatewayError::InsufficientScope(service.id.clone()))
                        }
                        Verdict::Invalid => return Err(GatewayError::InvalidToken),
                        Verdict::NotGranted => {}
                    }
                }
                Err(GatewayError::InvalidToken)
            }
        }
    }

    /// A public route: a token that is sent must be valid for some service.
    async fn any_service(&self) -> Result<Arc<Principal>, GatewayError> {
        for service in &self.auth.services {
            match self.verdict(service).await? {
                Verdict::Granted(principal) => return Ok(principal),
                Verdict::Invalid => return Err(GatewayError::InvalidToken),
                Verdict::NotGranted => {}
            }
        }
        Err(GatewayError::InvalidToken)
    }
}
