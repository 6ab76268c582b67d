//! Introspection backends behind one small trait: `hub` asks each service's `users/me` probe
//! with the token (Hub has no introspection endpoint); `rfc7662` asks a standard introspection
//! endpoint once for all services. Both give per-service [`Verdict`]s or a [`BackendError`];
//! a backend error is never a verdict (`security.md`: fail closed, never cache errors).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use super::principal::{Principal, Verdict};
use crate::config::{self, Secret};
use crate::tls::{self, TlsError};

/// Largest introspection answer read; anything longer is a backend error.
const MAX_ANSWER: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a backend gave no verdict. Never cached; the client gets 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("introspection timed out")]
    Timeout,
    #[error("introspection backend unreachable: {0}")]
    Unreachable(String),
    #[error("introspection answered {0}")]
    Status(u16),
    #[error("introspection answer is not the expected JSON: {0}")]
    Malformed(&'static str),
    #[error("introspection answer larger than {MAX_ANSWER} bytes")]
    TooLarge,
    #[error("too many introspection calls in flight")]
    Overloaded,
    #[error("introspection failing: circuit open")]
    CircuitOpen,
    /// The client spent its budget of cache misses; it may try again after this long.
    #[error("client over its budget of cache misses")]
    RateLimited(Duration),
}

impl BackendError {
    /// A failure to talk to the backend at all (no answer in time, no connection), as
    /// opposed to an answer: every credential would meet it alike.
    pub fn is_transport(&self) -> bool {
        matches!(self, BackendError::Timeout | BackendError::Unreachable(_))
    }
}

/// A configured service: the local name routes use and its Hub ID.
#[derive(Debug, Clone)]
pub struct ServiceRef {
    pub index: usize,
    /// Also the service's label in metrics.
    pub name: Arc<str>,
    pub id: String,
}

/// What one backend call established.
#[derive(Debug, Clone)]
pub struct Introspected {
    /// Verdicts by service index; the asked service is always among them.
    pub verdicts: Vec<(usize, Verdict)>,
    /// When the token expires, if the backend said.
    pub expires_at: Option<SystemTime>,
}

/// The credential a backend is asked about.
#[derive(Clone, Copy)]
pub enum Presented<'a> {
    /// A token, from `Bearer` or the password of `Basic`: asked about as `Bearer`.
    Token(&'a str),
    /// `Basic` with a login and a password: asked about with the client's own header.
    Basic(&'a HeaderValue),
}

/// One way of asking about a token. Called on cache misses only, under the concurrency cap.
pub trait Introspect: Send + Sync {
    fn introspect<'a>(
        &'a self,
        credential: Presented<'a>,
        service: &'a ServiceRef,
    ) -> BoxFuture<'a, Result<Introspected, BackendError>>;

    /// Whether the backend answers at all (readiness): a request without a token must get an
    /// HTTP answer below 500.
    fn reachable(&self) -> BoxFuture<'_, Result<(), BackendError>>;
}

/// Sends `request` and accepts any answer below 500.
async fn answers(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<(), BackendError> {
    let response = client
        .request(request)
        .await
        .map_err(|e| BackendError::Unreachable(e.to_string()))?;
    match response.status() {
        status if status.is_server_error() => Err(BackendError::Status(status.as_u16())),
        _ => Ok(()),
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn http_client(ca_file: Option<&Path>) -> Result<HttpClient, TlsError> {
    let tls = tls::upstream_config(ca_file, true)?;
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(crate::forward::connector(tls, CONNECT_TIMEOUT)))
}

/// A backend's answer: 200 with JSON, or a refusal (401/403) with its status.
enum Answer {
    Json(Value),
    Refused(u16),
}

/// Sends `request` and reads a 200 JSON answer or a 401/403 refusal; anything else is an error.
async fn json_answer(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Answer, BackendError> {
    let response = client
        .request(request)
        .await
        .map_err(|e| BackendError::Unreachable(e.to_string()))?;
    match response.status() {
        StatusCode::OK => {}
        refused @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            return Ok(Answer::Refused(refused.as_u16()))
        }
        other => return Err(BackendError::Status(other.as_u16())),
    }
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => BackendError::TooLarge,
            Err(e) => BackendError::Unreachable(e.to_string()),
        })?
        .to_bytes();
    serde_json::from_slice(&body)
        .map(Answer::Json)
        .map_err(|_| BackendError::Malformed("not JSON"))
}

/// The `hub` backend: a service is in a token's scope iff its probe answers 200 with a user
/// who is neither guest nor banned; 401/403 mean not granted; anything else is an error.
pub struct HubProbes {
    client: HttpClient,
    /// Probe URL by service index.
    probes: Vec<Uri>,
}

impl HubProbes {
    pub fn new(probes: Vec<Uri>, ca_file: Option<&Path>) -> Result<HubProbes, TlsError> {
        Ok(HubProbes {
            client: http_client(ca_file)?,
            probes,
        })
    }

    async fn probe(
        &self,
        credential: Presented<'_>,
        service: &ServiceRef,
    ) -> Result<Introspected, BackendError> {
        let uri = self
            .probes
            .get(service.index)
            .cloned()
            .ok_or(BackendError::Malformed("no probe"))?;
        let mut authorization = match credential {
            Presented::Token(token) => HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| BackendError::Malformed("token not sendable"))?,
            Presented::Basic(header) => header.clone(),
        };
        authorization.set_sensitive(true);
        let request = Request::get(uri)
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, "application/json")
            .header("hub-api-version", "2")
            .body(Full::new(Bytes::new()))
            .map_err(|_| BackendError::Malformed("probe request"))?;
        let answer = match (json_answer(&self.client, request).await, credential) {
            // A password is the client's own text: whatever 4xx Hub gives it (a lockout, a
            // header it cannot read) is a refusal of that credential, never a Hub failure
            // that would count towards the breaker all clients share.
            (Err(BackendError::Status(400..=499)), Presented::Basic(_)) => Answer::Refused(400),
            (answer, _) => answer?,
        };
        let verdict = match answer {
            Answer::Refused(_) => Verdict::NotGranted,
            Answer::Json(user) => user_verdict(&user)?,
        };
        Ok(Introspected {
            verdicts: vec![(service.index, verdict)],
            expires_at: None,
        })
    }
}

/// A `users/me` answer: `id` and `login` must be strings, `banned`/`guest` booleans if present.
fn user_verdict(user: &Value) -> Result<Verdict, BackendError> {
    let text = |key: &str| user.get(key).and_then(Value::as_str);
    let flag = |key: &str| match user.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(BackendError::Malformed("banned/guest not a boolean")),
    };
    let (Some(id), Some(login)) = (text("id"), text("login")) else {
        return Err(BackendError::Malformed("no user id and login"));
    };
    if flag("banned")? || flag("guest")? || login == "guest" {
        return Ok(Verdict::NotGranted);
    }
    Ok(Verdict::Granted(Arc::new(Principal {
        id: id.to_owned(),
        login: login.to_owned(),
    })))
}

impl Introspect for HubProbes {
    fn introspect<'a>(
        &'a self,
        credential: Presented<'a>,
        service: &'a ServiceRef,
    ) -> BoxFuture<'a, Result<Introspected, BackendError>> {
        Box::pin(self.probe(credential, service))
    }

    fn reachable(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            for uri in &self.probes {
                let request = Request::get(uri.clone())
                    .header(ACCEPT, "application/json")
                    .body(Full::new(Bytes::new()))
                    .map_err(|_| BackendError::Malformed("probe request"))?;
                answers(&self.client, request).await?;
            }
            Ok(())
        })
    }
}

/// The `rfc7662` backend: one POST answers for every configured service.
pub struct Rfc7662 {
    client: HttpClient,
    endpoint: Uri,
    authorization: HeaderValue,
    services: Vec<ServiceRef>,
}

impl Rfc7662 {
    pub fn new(
        endpoint: Uri,
        client_id: &str,
        secret: &Secret,
        services: Vec<ServiceRef>,
        ca_file: Option<&Path>,
    ) -> Result<Rfc7662, TlsError> {
        let credentials = STANDARD.encode(format!("{client_id}:{}", secret.expose()));
        let mut authorization = HeaderValue::try_from(format!("Basic {credentials}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        authorization.set_sensitive(true);
        Ok(Rfc7662 {
            client: http_client(ca_file)?,
            endpoint,
            authorization,
            services,
        })
    }

    async fn ask(&self, token: &str) -> Result<Introspected, BackendError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| BackendError::Malformed("introspection request"))?;
        // A refusal here is of hubgate's own client credentials: an alert, never a verdict.
        match json_answer(&self.client, request).await? {
            Answer::Json(answer) => self.read(&answer),
            Answer::Refused(status) => Err(BackendError::Status(status)),
        }
    }

    /// Strict about types: `"active": "true"` is an error, not a yes.
    fn read(&self, answer: &Value) -> Result<Introspected, BackendError> {
        let active = answer.get("active").and_then(Value::as_bool);
        let active = active.ok_or(BackendError::Malformed("active is not a boolean"))?;
        let all = |verdict: Verdict| {
            self.services
                .iter()
                .map(|s| (s.index, verdict.clone()))
                .collect()
        };
        if !active {
            return Ok(Introspected {
                verdicts: all(Verdict::Invalid),
                expires_at: None,
            });
        }
        let string = |key: &str| match answer.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(BackendError::Malformed(
                "scope, sub or username is not a string",
            )),
        };
        let expires_at = match answer.get("exp") {
            None | Some(Value::Null) => None,
            Some(exp) => {
                let seconds = exp
                    .as_u64()
                    .ok_or(BackendError::Malformed("exp is not a number"))?;
                Some(UNIX_EPOCH + Duration::from_secs(seconds))
            }
        };
        if expires_at.is_some_and(|exp| exp <= SystemTime::now()) {
            return Ok(Introspected {
                verdicts: all(Verdict::Invalid),
                expires_at: None,
            });
        }
        let scope: Vec<&str> = string("scope")?.unwrap_or("").split(' ').collect();
        let login = string("username")?.or(string("sub")?).unwrap_or("");
        let principal = Arc::new(Principal {
            id: string("sub")?.unwrap_or(login).to_owned(),
            login: login.to_owned(),
        });
        let verdicts = self
            .services
            .iter()
            .map(|s| {
                let granted = scope
                    .iter()
                    .any(|e| *e == s.id || e.eq_ignore_ascii_case(&s.name));
                let verdict = if granted {
                    Verdict::Granted(principal.clone())
                } else {
                    Verdict::NotGranted
                };
                (s.index, verdict)
            })
            .collect();
        Ok(Introspected {
            verdicts,
            expires_at,
        })
    }
}

impl Introspect for Rfc7662 {
    fn introspect<'a>(
        &'a self,
        credential: Presented<'a>,
        _service: &'a ServiceRef,
    ) -> BoxFuture<'a, Result<Introspected, BackendError>> {
        Box::pin(async move {
            match credential {
                Presented::Token(token) => self.ask(token).await,
                // The configuration refuses passwords with this backend; an introspection
                // endpoint knows tokens only, so a password is never valid here.
                Presented::Basic(_) => Ok(Introspected {
                    verdicts: self
                        .services
                        .iter()
                        .map(|s| (s.index, Verdict::Invalid))
                        .collect(),
                    expires_at: None,
                }),
            }
        })
    }

    fn reachable(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            let request = Request::builder()
                .method(Method::POST)
                .uri(self.endpoint.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::new()))
                .map_err(|_| BackendError::Malformed("introspection request"))?;
            answers(&self.client, request).await
        })
    }
}

/// The configured backend.
pub fn backend(
    config: &config::Config,
    services: &[ServiceRef],
) -> Result<Box<dyn Introspect>, TlsError> {
    let ca_file = config.introspection.ca_file.as_deref();
    Ok(match &config.introspection.backend {
        config::Backend::Hub { probes } => {
            let by_index = services
                .iter()
                .map(|s| probes.get(&*s.name).cloned().unwrap_or_default())
                .collect();
            Box::new(HubProbes::new(by_index, ca_file)?)
        }
        config::Backend::Rfc7662 {
            endpoint,
            client_id,
            client_secret,
        } => Box::new(Rfc7662::new(
            endpoint.clone(),
            client_id,
            client_secret,
            services.to_vec(),
            ca_file,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_user_is_granted_only_when_neither_banned_nor_guest() {
        let user = json!({"id": "1", "login": "alice", "banned": false, "guest": false});
        assert!(matches!(user_verdict(&user), Ok(Verdict::Granted(p)) if p.login == "alice"));
        for refused in [
            json!({"id": "1", "login": "bob", "banned": true}),
            json!({"id": "1", "login": "guest", "guest": true}),
            json!({"id": "1", "login": "guest"}),
        ] {
            assert_eq!(user_verdict(&refused), Ok(Verdict::NotGranted), "{refused}");
        }
        for broken in [
            json!({"login": "alice"}),
            json!({"id": 1, "login": "alice"}),
            json!({"id": "1", "login": "alice", "banned": "false"}),
            json!([]),
        ] {
            assert!(user_verdict(&broken).is_err(), "{broken}");
        }
    }

    fn rfc7662() -> Rfc7662 {
        let services = vec![
            ServiceRef {
                index: 0,
                name: "youtrack".into(),
                id: "6ab6".into(),
            },
            ServiceRef {
                index: 1,
                name: "hub".into(),
                id: "0-0-0-0-0".into(),
            },
        ];
        Rfc7662::new(
            Uri::from_static("http://127.0.0.1:1/x"),
            "id",
            &Secret::new("s"),
            services,
            None,
        )
        .expect("client")
    }

    #[test]
    fn rfc7662_answers_are_read_strictly() {
        let backend = rfc7662();
        let granted = backend
            .read(&json!({"active": true, "scope": "6ab6", "exp": 2000000000u64, "username": "alice"}))
            .expect("valid answer");
        assert!(matches!(granted.verdicts[0].1, Verdict::Granted(_)));
        assert_eq!(granted.verdicts[1].1, Verdict::NotGranted);
        assert_eq!(
            granted.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        let inactive = backend
            .read(&json!({"active": false}))
            .expect("valid answer");
        assert!(inactive
            .verdicts
            .iter()
            .all(|(_, v)| *v == Verdict::Invalid));
        let by_name = backend
            .read(&json!({"active": true, "scope": "HUB"}))
            .expect("valid");
        assert!(matches!(by_name.verdicts[1].1, Verdict::Granted(_)));
        for broken in [
            json!({"active": "true"}),
            json!({}),
            json!({"active": true, "exp": "soon"}),
            json!({"active": true, "scope": ["6ab6"]}),
        ] {
            assert!(backend.read(&broken).is_err(), "{broken}");
        }
    }
}
