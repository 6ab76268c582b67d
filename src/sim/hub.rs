//! Hub's REST API under `/hub/api/rest`: `users/me`, user search, permanent and refresh
//! token management (application passwords in `app_passwords`), and services. Every endpoint
//! takes the credentials of `credentials`.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::credentials::{authenticate, hub_unauthorized, presented, touch, Authenticated};
use super::directory::{
    Directory, PermStyle, Service, TokenKind, TokenRecord, User, HUB_SERVICE_ID,
};
use super::http::{
    empty, hub_error, json_response, page, param, query, read_body, with_fields, SimBody,
};
use super::Shared;

type Answer = Result<Response<SimBody>, Response<SimBody>>;

/// Routes a request whose path starts with `/hub/api/rest/` (`rest` is what follows).
pub async fn handle(shared: &Shared, request: Request<Incoming>, rest: &str) -> Response<SimBody> {
    let segments: Vec<&str> = rest.split('/').collect();
    let method = request.method().clone();
    let answer = match (&method, segments.as_slice()) {
        (&Method::GET, ["users", "me"]) => users_me(shared, &request),
        (&Method::GET, ["settings", "public"]) => super::public::hub_settings(shared, &request),
        (&Method::GET, ["avatar", user]) => Ok(super::public::avatar(shared, &request, user)),
        (&Method::GET, ["oauth2", "auth"]) => super::login::authorize(shared, request).await,
        (&Method::POST, ["oauth2", "interactive", "login"]) => {
            Ok(super::login::interactive_login(shared, request).await)
        }
        (&Method::GET, ["users"]) => users(shared, &request),
        (_, ["users", user, "permanenttokens", tail @ ..]) => {
            permanent_tokens(shared, request, user, tail).await
        }
        (_, ["users", user, "refreshtokens", tail @ ..]) => {
            refresh_tokens(shared, &request, user, tail)
        }
        (_, ["users", user, "applicationPasswords", tail @ ..]) => {
            super::app_passwords::handle(shared, request, user, tail).await
        }
        (&Method::GET, ["services"]) => services(shared, &request),
        (&Method::POST, ["services"]) => register_service(shared, request).await,
        // Every other Hub path answers with the echo, like the rest of the simulated server:
        // tests see exactly what arrived.
        _ => Ok(super::youtrack::echo(request).await),
    };
    answer.unwrap_or_else(|response| response)
}

pub fn user_json(user: &User) -> Value {
    json!({"type": "user", "id": user.id, "login": user.login, "name": user.name,
           "banned": user.banned, "guest": user.guest})
}

/// The caller of a Hub endpoint: a credential valid for Hub.
pub fn caller(
    directory: &Directory,
    request: &Request<Incoming>,
) -> Result<Authenticated, Response<SimBody>> {
    authenticate(directory, &presented(request), HUB_SERVICE_ID)
        .map_err(|refusal| hub_unauthorized(directory, &refusal))
}

fn users_me(shared: &Shared, request: &Request<Incoming>) -> Answer {
    let mut directory = shared.directory();
    let caller = caller(&directory, request)?;
    touch(&mut directory, &caller);
    Ok(json_response(
        StatusCode::OK,
        &with_fields(&query(request), &user_json(&caller.user))?,
    ))
}

fn users(shared: &Shared, request: &Request<Incoming>) -> Answer {
    let directory = shared.directory();
    caller(&directory, request)?;
    let query = query(request);
    let wanted = param(&query, "query").and_then(|q| q.strip_prefix("login:"));
    let found: Vec<Value> = directory
        .users
        .iter()
        .filter(|u| wanted.is_none_or(|login| u.login == login))
        .map(user_json)
        .collect();
    let (skip, top, users) = page(&query, &found);
    let users = with_fields(&query, &Value::Array(users))?;
    let body = json!({"type": "UsersPage", "skip": skip, "top": top, "total": found.len(), "users": users});
    Ok(json_response(StatusCode::OK, &body))
}

/// The user a `users/{id|me}/…` path names, if the caller may act for them.
pub fn target_user(
    directory: &Directory,
    caller: &User,
    named: &str,
) -> Result<String, Response<SimBody>> {
    let target = if named == "me" {
        caller
    } else {
        directory
            .user(named)
            .ok_or_else(|| hub_error(StatusCode::NOT_FOUND, "not_found", "User not found"))?
    };
    if caller.banned {
        return Err(hub_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "User is banned",
        ));
    }
    if target.id != caller.id && !caller.admin {
        return Err(hub_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Access denied",
        ));
    }
    Ok(target.id.clone())
}

fn scope_json(directory: &Directory, scope: &[String]) -> Value {
    let services: Vec<Value> = scope
        .iter()
        .filter_map(|id| directory.service(id))
        .map(|s| json!({"type": "service", "id": s.id, "name": s.name}))
        .collect();
    Value::Array(services)
}

fn permanent_json(directory: &Directory, record: &TokenRecord) -> Value {
    let TokenKind::Permanent {
        id,
        name,
        created_ms,
        last_access_ms,
    } = &record.kind
    else {
        return Value::Null;
    };
    json!({"type": "permanentToken", "id": id, "name": name,
           "scope": scope_json(directory, &record.scope),
           "creationTime": created_ms, "lastAccessTime": last_access_ms})
}

async fn permanent_tokens(
    shared: &Shared,
    request: Request<Incoming>,
    user: &str,
    tail: &[&str],
) -> Answer {
    let method = request.method().clone();
    let query = query(&request);
    let user_id = {
        let directory = shared.directory();
        let caller = caller(&directory, &request)?;
        target_user(&directory, &caller.user, user)?
    };
    match (method, tail) {
        (Method::GET, []) => {
            let directory = shared.directory();
            let tokens: Vec<Value> = directory
                .tokens_of(&user_id, false)
                .into_iter()
                .map(|record| permanent_json(&directory, record))
                .collect();
            let (skip, top, shown) = page(&query, &tokens);
            let shown = with_fields(&query, &Value::Array(shown))?;
            let body = json!({"type": "PermanentTokensPage", "skip": skip, "top": top,
                              "total": tokens.len(), "permanenttokens": shown});
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::POST, []) => create_permanent(shared, request, &user_id, &query).await,
        (Method::DELETE, [token_id]) => delete(shared, &user_id, token_id),
        _ => Err(hub_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        )),
    }
}

async fn create_permanent(
    shared: &Shared,
    request: Request<Incoming>,
    user_id: &str,
    query: &[(String, String)],
) -> Answer {
    let body = read_body(request).await?;
    let invalid = |d: &str| hub_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    let wanted: Value = serde_json::from_slice(&body).map_err(|_| invalid("Malformed JSON"))?;
    let name = wanted["name"].as_str().filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| invalid("Token name is required"))?;
    let entries = wanted["scope"].as_array().cloned().unwrap_or_default();
    let named: Vec<&str> = entries
        .iter()
        .filter_map(|e| {
            e["id"]
                .as_str()
                .or(e["key"].as_str())
                .or(e["name"].as_str())
        })
        .collect();
    let mut directory = shared.directory();
    let scope = directory
        .resolve_scope(&named.join(" "))
        .map_err(|unknown| invalid(&format!("Unknown service {unknown}")))?;
    if scope.is_empty() {
        return Err(invalid("Token scope is required"));
    }
    let (token, id) = directory
        .mint_permanent(user_id, name, scope, PermStyle::EntityId)
        .ok_or_else(|| hub_error(StatusCode::NOT_FOUND, "not_found", "User not found"))?;
    let record = directory
        .tokens_of(user_id, false)
        .into_iter()
        .find(|r| matches!(&r.kind, TokenKind::Permanent { id: found, .. } if *found == id));
    let mut created = record.map_or(Value::Null, |r| permanent_json(&directory, r));
    created["token"] = Value::String(token);
    Ok(json_response(
        StatusCode::OK,
        &with_fields(query, &created)?,
    ))
}

fn delete(shared: &Shared, user_id: &str, token_id: &str) -> Answer {
    if shared.directory().delete_token(user_id, token_id) {
        Ok(empty(StatusCode::OK))
    } else {
        Err(hub_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Token not found",
        ))
    }
}

fn refresh_tokens(
    shared: &Shared,
    request: &Request<Incoming>,
    user: &str,
    tail: &[&str],
) -> Answer {
    let directory = shared.directory();
    let caller = caller(&directory, request)?;
    let user_id = target_user(&directory, &caller.user, user)?;
    drop(directory);
    match (request.method(), tail) {
        (&Method::GET, []) => {
            let directory = shared.directory();
            let tokens: Vec<Value> = directory
                .tokens_of(&user_id, true)
                .into_iter()
                .filter_map(|r| {
                    let TokenKind::Refresh { id } = &r.kind else { return None };
                    let client = r.client_id.as_deref().and_then(|c| directory.service(c));
                    Some(json!({"type": "refreshToken", "id": id,
                                "client": client.map(|c| json!({"type": "service", "id": c.id, "name": c.name})),
                                "scope": scope_json(&directory, &r.scope)}))
                })
                .collect();
            let query = query(request);
            let (skip, top, shown) = page(&query, &tokens);
            let shown = with_fields(&query, &Value::Array(shown))?;
            let body = json!({"type": "RefreshTokensPage", "skip": skip, "top": top,
                              "total": tokens.len(), "refreshtokens": shown});
            Ok(json_response(StatusCode::OK, &body))
        }
        (&Method::DELETE, [token_id]) => delete(shared, &user_id, token_id),
        _ => Err(hub_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        )),
    }
}

pub fn service_json(service: &Service) -> Value {
    json!({"type": "service", "id": service.id, "name": service.name,
           "applicationName": service.application_name, "homeUrl": service.home_url,
           "redirectUris": service.redirect_uris, "vendor": service.vendor, "version": service.version})
}

fn services(shared: &Shared, request: &Request<Incoming>) -> Answer {
    let directory = shared.directory();
    caller(&directory, request)?;
    let query = query(request);
    let wanted = param(&query, "query").and_then(|q| q.strip_prefix("applicationName:"));
    let found: Vec<Value> = directory
        .services
        .iter()
        .filter(|s| wanted.is_none_or(|name| s.application_name == name))
        .map(service_json)
        .collect();
    let (skip, top, shown) = page(&query, &found);
    let shown = with_fields(&query, &Value::Array(shown))?;
    let body = json!({"type": "ServicesPage", "skip": skip, "top": top, "total": found.len(), "services": shown});
    Ok(json_response(StatusCode::OK, &body))
}

async fn register_service(shared: &Shared, request: Request<Incoming>) -> Answer {
    let query = query(&request);
    {
        let directory = shared.directory();
        let caller = caller(&directory, &request)?.user;
        if !caller.admin || caller.banned {
            return Err(hub_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Access denied",
            ));
        }
    }
    let body = read_body(request).await?;
    let invalid = |d: &str| hub_error(StatusCode::BAD_REQUEST, "invalid_request", d);
    let wanted: Value = serde_json::from_slice(&body).map_err(|_| invalid("Malformed JSON"))?;
    let text = |key: &str| wanted[key].as_str().map(str::to_owned);
    let name = text("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("Service name is required"))?;
    let service = Service {
        id: String::new(),
        application_name: text("applicationName").unwrap_or_else(|| name.clone()),
        name,
        secret: None,
        home_url: text("homeUrl"),
        redirect_uris: wanted["redirectUris"]
            .as_array()
            .map(|uris| {
                uris.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        vendor: text("vendor"),
        version: text("version"),
    };
    let mut directory = shared.directory();
    let (id, secret) = directory.register_service(service);
    let registered = directory.service(&id).map_or(Value::Null, service_json);
    let mut registered = registered;
    registered["secret"] = Value::String(secret);
    Ok(json_response(
        StatusCode::OK,
        &with_fields(&query, &registered)?,
    ))
}
