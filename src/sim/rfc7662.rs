//! A simulator-only RFC 7662 introspection endpoint, `POST /sim/rfc7662/introspect`. Hub has
//! none; deployments that put one in front of Hub answer like this, and the gateway's
//! `rfc7662` backend is tested against it. Clients authenticate with HTTP Basic as a
//! registered service.

use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::Instant;

use super::directory::{Lookup, TokenKind};
use super::http::{basic, hub_error, json_response, param, params, read_body, SimBody};
use super::Shared;

pub const PATH: &str = "/sim/rfc7662/introspect";

pub async fn introspect(shared: &Shared, request: Request<Incoming>) -> Response<SimBody> {
    let client = basic(&request);
    let authenticated = client.is_some_and(|(id, secret)| {
        let directory = shared.directory();
        directory
            .service(&id)
            .is_some_and(|s| s.id == id && s.secret.as_deref() == Some(secret.as_str()))
    });
    if !authenticated {
        return hub_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let form = match read_body(request).await {
        Ok(body) => params(&body),
        Err(response) => return response,
    };
    let Some(token) = param(&form, "token") else {
        return hub_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let directory = shared.directory();
    let body = match directory.lookup(token) {
        Lookup::Valid(record, user) if !user.banned => {
            let mut body = json!({"active": true, "scope": record.scope.join(" "),
                                  "sub": user.id, "username": user.login, "token_type": "Bearer"});
            if let Some(client) = &record.client_id {
                body["client_id"] = json!(client);
            }
            if let TokenKind::Access { expires_at } = record.kind {
                body["exp"] = json!(unix_seconds(expires_at));
            }
            body
        }
        _ => json!({"active": false}),
    };
    json_response(StatusCode::OK, &body)
}

/// An instant on tokio's clock as seconds since the epoch (so paused-time tests agree).
fn unix_seconds(at: Instant) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now + at.saturating_duration_since(Instant::now()).as_secs()
}
