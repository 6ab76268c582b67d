//! The Hub admin client: what hubgate asks of Hub's REST API (`{hub}/api/rest/…`,
//! `hub-contract.md`) with the `[hub]` bot token, for the operator and the security team —
//! list and register services, delete a leaked permanent token, delete every token of a user.
//!
//! Each request carries the admin token in a header marked sensitive, is bounded in time and
//! in answer size, and fails with a [`HubError`] that names the step and Hub's own `error` /
//! `error_description`. Neither the admin token nor a user's token ever appears in an error,
//! a log line or a `Debug` output: a user's token is only decoded here, never sent to Hub.
//!
//! - `error`: [`HubError`] and the [`Step`] each error names;
//! - `tokens`: decoding a permanent token, deleting one token or all of a user's tokens;
//! - `discover`: the `[services.*]` block `hubgate hub discover` prints;
//! - `secret_file`: the 0600 file `hubgate hub register` writes the client secret to.

pub mod discover;
mod error;
pub mod secret_file;
#[cfg(test)]
mod tests;
mod tokens;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{self, Secret};
use crate::tls;
use error::error_detail;

pub use error::{HubError, Step};
pub use tokens::{decode_permanent, Deleted, ItemKind, ItemResult, PermanentToken};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole exchange, answer body included: an admin command should fail, not hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read; a page of 100 services or tokens is far smaller.
const MAX_ANSWER: usize = 1024 * 1024;
/// Hub's default page; listings ask for pages of this size.
const PAGE_SIZE: usize = 100;
/// A listing longer than this many pages is taken for a Hub that ignores `$skip`.
const MAX_PAGES: usize = 1000;

/// A service as `GET services` lists it; fields Hub leaves out are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub application_name: Option<String>,
    #[serde(default)]
    pub home_url: Option<String>,
}

/// A newly registered service: its ID (the OAuth client ID) and client secret.
#[derive(Debug, Clone)]
pub struct Registered {
    pub id: String,
    pub secret: Secret,
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Talks to Hub's REST API as the `[hub]` bot.
pub struct HubClient {
    client: HttpClient,
    /// `scheme://authority/path`, no trailing `/`.
    base: String,
    /// `Bearer <admin token>`, marked sensitive.
    authorization: HeaderValue,
    admin_token: Secret,
    page_size: usize,
}

impl fmt::Debug for HubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// An answer with a 2xx status.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

impl HubClient {
    /// A client for `hub`; `https` certificates are verified against the system roots plus
    /// `ca_file`, never skipped.
    pub fn new(hub: &config::Hub, ca_file: Option<&Path>) -> Result<HubClient, HubError> {
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", hub.admin_token.expose()))
                .map_err(|_| HubError::BadAdminToken)?;
        authorization.set_sensitive(true);
        let tls = tls::upstream_config(ca_file, true)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(crate::forward::connector(tls, CONNECT_TIMEOUT));
        Ok(HubClient {
            client,
            base: base_url(&hub.url)?,
            authorization,
            admin_token: hub.admin_token.clone(),
            page_size: PAGE_SIZE,
        })
    }

    /// Hub's base URL as requests use it (`https://youtrack.example.com/hub`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every service registered in Hub, all pages.
    pub async fn services(&self) -> Result<Vec<ServiceInfo>, HubError> {
        let step = Step::ListServices;
        let fields = "fields=id,name,applicationName,homeUrl";
        let listed = self.list(step, "services", fields, "services").await?;
        Ok(listed
            .into_iter()
            .filter_map(|entry| serde_json::from_value::<ServiceInfo>(entry).ok())
            .filter(|service| !service.id.is_empty())
            .collect())
    }

    /// Registers a client service (its ID and secret are OAuth client credentials).
    pub async fn register(&self, name: &str, home_url: &str) -> Result<Registered, HubError> {
        let step = Step::RegisterService;
        let body = json!({
            "name": name,
            "homeUrl": home_url,
            "redirectUris": [home_url],
            "applicationName": "hubgate",
            "vendor": "hubgate",
            "version": env!("CARGO_PKG_VERSION"),
        });
        let target = "services?fields=id,secret";
        let reply = self.send(step, Method::POST, target, Some(&body)).await?;
        let answer = json_of(step, &reply)?;
        let text = |key: &str| {
            answer
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        match (text("id"), text("secret")) {
            (Some(id), Some(secret)) => Ok(Registered {
                id: id.to_owned(),
                secret: Secret::new(secret),
            }),
            _ => Err(malformed(step, "the answer has no id and secret")),
        }
    }

    /// The ID of the one user whose login is exactly `login`.
    pub async fn find_user(&self, login: &str) -> Result<String, HubError> {
        let step = Step::FindUser;
        let query: String =
            form_urlencoded::byte_serialize(format!("login:{login}").as_bytes()).collect();
        let params = format!("query={query}&fields=id,login");
        let listed = self.list(step, "users", &params, "users").await?;
        let matching: Vec<&str> = listed
            .iter()
            .filter(|user| user.get("login").and_then(Value::as_str) == Some(login))
            .filter_map(|user| user.get("id").and_then(Value::as_str))
            .collect();
        match matching.as_slice() {
            [id] => Ok((*id).to_owned()),
            [] => Err(HubError::UserNotFound {
                login: login.to_owned(),
            }),
            many => Err(HubError::AmbiguousUser {
                login: login.to_owned(),
                count: many.len(),
            }),
        }
    }

    /// Every item of a paged listing at `path?params` (`$skip`/`$top` added), from the
    /// answer's `key` array. A bare JSON array is taken as the whole listing.
    async fn list(
        &self,
        step: Step,
        path: &str,
        params: &str,
        key: &str,
    ) -> Result<Vec<Value>, HubError> {
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let (skip, top) = (items.len(), self.page_size);
            let target = format!("{path}?{params}&$skip={skip}&$top={top}");
            let reply = self.send(step, Method::GET, &target, None).await?;
            let page = page_of(step, json_of(step, &reply)?, key)?;
            let count = page.items.len();
            items.extend(page.items);
            let complete = page.total.is_some_and(|total| items.len() >= total);
            if page.whole || count < top || complete {
                return Ok(items);
            }
        }
        Err(malformed(
            step,
            "the listing does not end (Hub ignores $skip?)",
        ))
    }

    /// `DELETE path`; the status Hub answered with.
    async fn delete(&self, step: Step, path: &str) -> Result<u16, HubError> {
        let reply = self.send(step, Method::DELETE, path, None).await?;
        Ok(reply.status.as_u16())
    }

    /// Sends one request to `{hub}/api/rest/{target}` and reads the whole answer, within
    /// `REQUEST_TIMEOUT` and `MAX_ANSWER`; any status but 2xx is an error.
    async fn send(
        &self,
        step: Step,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Reply, HubError> {
        let request = self.request(step, method, target, body)?;
        let exchange = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|error| HubError::Unreachable {
                        step,
                        cause: self.redact(&error_chain(&error)),
                    })?;
            let status = response.status();
            let body = read_limited(step, response.into_body()).await?;
            Ok::<_, HubError>(Reply { status, body })
        };
        let reply = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| HubError::Timeout { step })??;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(HubError::Status {
                step,
                status: reply.status.as_u16(),
                detail: self.redact(&error_detail(reply.status, &reply.body)),
            })
        }
    }

    fn request(
        &self,
        step: Step,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Request<Full<Bytes>>, HubError> {
        let uri: Uri = format!("{}/api/rest/{target}", self.base)
            .parse()
            .map_err(|_| malformed(step, "the request URL is not valid"))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json");
        let bytes = match body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(bytes))
            .map_err(|_| malformed(step, "the request cannot be built"))
    }

    /// Defence in depth: Hub never echoes the admin token, but nothing it says may carry it.
    fn redact(&self, text: &str) -> String {
        let token = self.admin_token.expose();
        if token.is_empty() {
            return text.to_owned();
        }
        text.replace(token, "***")
    }
}

/// `scheme://authority/path` of `url`, without a trailing `/` (`http::Uri` shows an empty
/// path as `/`).
fn base_url(url: &Uri) -> Result<String, HubError> {
    let (Some(scheme), Some(authority)) = (url.scheme_str(), url.authority()) else {
        return Err(HubError::BadUrl(url.to_string()));
    };
    let path = url.path().trim_end_matches('/');
    Ok(format!("{scheme}://{authority}{path}"))
}

/// The error and its causes, `: `-separated (hyper's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_limited(step: Step, body: hyper::body::Incoming) -> Result<Bytes, HubError> {
    Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(
            |error| match error.downcast::<http_body_util::LengthLimitError>() {
                Ok(_) => malformed(step, &format!("answer larger than {MAX_ANSWER} bytes")),
                Err(error) => HubError::Unreachable {
                    step,
                    cause: error_chain(&*error),
                },
            },
        )
}

fn malformed(step: Step, problem: &str) -> HubError {
    HubError::Malformed {
        step,
        problem: problem.to_owned(),
    }
}

fn json_of(step: Step, reply: &Reply) -> Result<Value, HubError> {
    serde_json::from_slice(&reply.body).map_err(|_| {
        malformed(
            step,
            "the answer is not JSON (is hub.url Hub's base, e.g. https://youtrack.example.com/hub?)",
        )
    })
}

/// One page of a listing.
struct Page {
    items: Vec<Value>,
    total: Option<usize>,
    /// The answer was a bare array: there are no further pages.
    whole: bool,
}

/// `{"skip","top","total",key:[…]}`, or tolerantly a bare array.
fn page_of(step: Step, answer: Value, key: &str) -> Result<Page, HubError> {
    match answer {
        Value::Array(items) => Ok(Page {
            items,
            total: None,
            whole: true,
        }),
        Value::Object(mut object) => match object.remove(key) {
            Some(Value::Array(items)) => Ok(Page {
                items,
                total: object
                    .get("total")
                    .and_then(Value::as_u64)
                    .and_then(|total| usize::try_from(total).ok()),
                whole: false,
            }),
            // Hub leaves empty collections out of some answers.
            None | Some(Value::Null) => Ok(Page {
                items: Vec::new(),
                total: None,
                whole: true,
            }),
            Some(_) => Err(malformed(step, &format!("`{key}` is not a list"))),
        },
        _ => Err(malformed(step, &format!("the answer has no `{key}` list"))),
    }
}
