//! `hubgate revoke`: the admin API's client. The token to revoke is read from a file or from
//! stdin — never from the command line, where shell history and `ps` would keep it.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What to revoke.
pub enum What {
    /// A file holding the token; `-` is stdin.
    TokenFile(std::path::PathBuf),
    Fingerprint(String),
    Login(String),
}

/// A `hubgate revoke` invocation.
pub struct RevokeCommand {
    /// The admin listener, e.g. `http://127.0.0.1:9901`.
    pub admin: Uri,
    pub admin_token_file: std::path::PathBuf,
    pub what: What,
    pub reason: Option<String>,
    pub ttl: Option<String>,
    pub in_hub: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read {file}: {cause}")]
    Read { file: String, cause: std::io::Error },
    #[error("{0} holds no token")]
    Empty(String),
    #[error("--admin {0}: give the admin listener as http://host:port")]
    AdminUrl(String),
    #[error(
        "--admin {0}: the admin API is plain HTTP, so only a loopback address is used; run \
         hubgate revoke on the gateway's host (e.g. over ssh)"
    )]
    NotLoopback(String),
    #[error("cannot reach the admin listener at {admin}: {cause}")]
    Unreachable { admin: String, cause: String },
    #[error("the admin listener refused ({status}): {body}")]
    Refused { status: u16, body: String },
}

/// Reads a secret from `path` (`-`: stdin), without its trailing line break.
fn read_secret(path: &Path) -> Result<String, ClientError> {
    let shown = path.display().to_string();
    let mut text = String::new();
    let read = if shown == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text).map(drop))
    };
    read.map_err(|cause| ClientError::Read {
        file: shown.clone(),
        cause,
    })?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(ClientError::Empty(shown));
    }
    Ok(secret.to_owned())
}

impl RevokeCommand {
    /// Sends the revocation; returns the admin API's JSON answer.
    pub async fn run(self) -> Result<String, ClientError> {
        let admin_token = read_secret(&self.admin_token_file)?;
        let mut body = serde_json::Map::new();
        match &self.what {
            What::TokenFile(file) => body.insert("token".into(), read_secret(file)?.into()),
            What::Fingerprint(fingerprint) => {
                body.insert("fingerprint".into(), fingerprint.clone().into())
            }
            What::Login(login) => body.insert("login".into(), login.clone().into()),
        };
        if let Some(reason) = &self.reason {
            body.insert("reason".into(), reason.clone().into());
        }
        if let Some(ttl) = &self.ttl {
            body.insert("ttl".into(), ttl.clone().into());
        }
        if self.in_hub {
            body.insert("in_hub".into(), true.into());
        }
        let body = serde_json::Value::Object(body).to_string();
        post(&self.admin, &admin_token, body).await
    }
}

async fn post(admin: &Uri, admin_token: &str, body: String) -> Result<String, ClientError> {
    let shown = admin.to_string();
    if admin.scheme_str() != Some("http") || admin.authority().is_none() {
        return Err(ClientError::AdminUrl(shown));
    }
    let host = admin.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        // The admin API is plain HTTP: the admin token and the token revoked would cross the
        // network in clear text.
        return Err(ClientError::NotLoopback(shown));
    }
    let target = format!("{}/revocations", shown.trim_end_matches('/'));
    let mut authorization = HeaderValue::try_from(format!("Bearer {admin_token}"))
        .map_err(|_| ClientError::Empty("the admin token file".into()))?;
    authorization.set_sensitive(true);
    let request = Request::post(target)
        .header(AUTHORIZATION, authorization)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| ClientError::AdminUrl(shown.clone()))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let unreachable = |cause: String| ClientError::Unreachable {
        admin: shown.clone(),
        cause,
    };
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .map_err(|_| unreachable("no answer within 30 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        return Err(ClientError::Refused {
            status: status.as_u16(),
            body: body.trim().to_owned(),
        });
    }
    Ok(body)
}
