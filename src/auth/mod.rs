//! Authentication: is the request's token valid, and does its scope cover the route's Hub
//! service? Syntax first (`bearer`), then the verdict cache (`cache`), then — on a miss, one
//! caller per token at a time, within `max_concurrent` and `timeout` — the introspection
//! backend (`introspect`). The decision is made per request from cached verdicts and is
//! never cached itself.

pub mod bearer;
pub mod cache;
pub mod introspect;
pub mod limit;
pub mod principal;

use std::net::IpAddr;
use std::sync::Arc;

use http::Method;
use tokio::sync::Semaphore;

use self::bearer::Credential;
use self::cache::{fingerprint, token_hash, Outcome, TokenHash, VerdictCache};
use self::introspect::{BackendError, Introspect, ServiceRef};
use self::limit::{Breaker, MissBudget};
use self::principal::{Principal, Verdict};
use crate::config::{Config, Route};
use crate::error::GatewayError;
use crate::tls::TlsError;

/// Everything token checking needs, shared by all requests.
pub struct Auth {
    services: Vec<ServiceRef>,
    backend: Box<dyn Introspect>,
    cache: VerdictCache,
    /// Per-client budget of backend calls (cache misses), if `client_miss_rate` > 0.
    budget: Option<MissBudget>,
    /// Opens after consecutive backend failures: fail fast instead of piling onto a sick Hub.
    breaker: Breaker,
    /// One permit per backend call in flight: beyond `max_concurrent`, callers get 503 now.
    calls: Semaphore,
    timeout: std::time::Duration,
}

impl Auth {
    pub fn new(config: &Config) -> Result<Auth, TlsError> {
        let services: Vec<ServiceRef> = config
            .services
            .iter()
            .enumerate()
            .map(|(index, (name, service))| ServiceRef {
                index,
                name: name.clone(),
                id: service.id.clone(),
            })
            .collect();
        Ok(Auth {
            backend: introspect::backend(config, &services)?,
            services,
            cache: VerdictCache::new(&config.cache),
            budget: MissBudget::new(config.introspection.client_miss_rate),
            breaker: Breaker::default(),
            calls: Semaphore::new(config.introspection.max_concurrent),
            timeout: config.introspection.timeout,
        })
    }

    /// Decides whether `credential` may use `route`. `Ok(Some(_))`: a checked token;
    /// `Ok(None)`: no token needed and none sent.
    pub async fn authenticate(
        &self,
        route: &Route,
        credential: Credential<'_>,
        method: &Method,
        client: IpAddr,
    ) -> Result<Option<Arc<Principal>>, GatewayError> {
        let service = route
            .service
            .as_ref()
            .and_then(|name| self.services.iter().find(|s| s.name == *name));
        let token = match (credential, service) {
            (Credential::Bearer(token), _) => token,
            (Credential::None, None) | (Credential::OtherScheme, None) => return Ok(None),
            (Credential::None, Some(_)) if route.allow_anonymous => return Ok(None),
            (Credential::QueryToken, _) => return Err(GatewayError::QueryToken),
            (Credential::None | Credential::OtherScheme, Some(_)) => {
                return Err(GatewayError::MissingToken)
            }
        };
        let check = Check {
            auth: self,
            token,
            hash: token_hash(token),
            allow_stale: method == Method::GET || method == Method::HEAD,
            route,
            client,
        };
        match service {
            Some(service) => check.scope(service).await,
            None => check.any_service().await,
        }
        .map(Some)
    }

    /// One backend call, made by the one caller a cache miss elects (`security.md`'s order:
    /// the client's miss budget, the global cap, the breaker, then the call within `timeout`).
    async fn call(
        &self,
        token: &str,
        service: &ServiceRef,
        client: IpAddr,
    ) -> Result<introspect::Introspected, BackendError> {
        if let Some(budget) = &self.budget {
            budget.spend(client).map_err(BackendError::RateLimited)?;
        }
        let _permit = self
            .calls
            .try_acquire()
            .map_err(|_| BackendError::Overloaded)?;
        let attempt = self.breaker.attempt().ok_or(BackendError::CircuitOpen)?;
        let called = tokio::time::timeout(self.timeout, self.backend.introspect(token, service));
        let result = called.await.unwrap_or(Err(BackendError::Timeout));
        match &result {
            Ok(_) => attempt.succeeded(),
            Err(error) => {
                tracing::warn!(service = %service.name, %error, "introspection failed");
                attempt.failed();
            }
        }
        result
    }
}

/// One request's token check.
struct Check<'a> {
    auth: &'a Auth,
    token: &'a str,
    hash: TokenHash,
    allow_stale: bool,
    route: &'a Route,
    client: IpAddr,
}

impl Check<'_> {
    async fn verdict(&self, service: &ServiceRef) -> Result<Verdict, GatewayError> {
        let fetch = self.auth.call(self.token, service, self.client);
        let (result, outcome) = self
            .auth
            .cache
            .verdict(self.hash, service.index, self.allow_stale, fetch)
            .await;
        self.log(service, &result, outcome);
        result.map_err(|error| match error {
            BackendError::RateLimited(retry_after) => GatewayError::RateLimited(retry_after),
            error => GatewayError::AuthUnavailable(error),
        })
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
