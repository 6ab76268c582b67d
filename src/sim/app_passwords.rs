//! Hub's application passwords, `/hub/api/rest/users/{id|me}/applicationPasswords`: what a
//! user gives an application that only speaks HTTP Basic. They are listed, created (the
//! password is shown once, then kept only as its SHA-256) and deleted (effective at once),
//! with the permissions of permanent tokens: the user themself, or an admin. An application
//! password carries no scope: `Basic base64(login:password)` is valid for every service.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::directory::{now_ms, token_key, Directory, TokenKey};
use super::http::{empty, hub_error, json_response, page, query, read_body, with_fields, SimBody};
use super::hub::{caller, target_user};
use super::{Shared, Sim};

/// An application password as Hub keeps it (the password itself is not kept).
#[derive(Debug, Clone)]
pub struct AppPassword {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub key: TokenKey,
    pub created_ms: u64,
    pub last_access_ms: Option<u64>,
}

impl Directory {
    /// Creates an application password for `user_id`; returns the password and its ID.
    pub fn create_app_password(&mut self, user_id: &str, name: &str) -> Option<(String, String)> {
        self.user(user_id)?;
        let id = self.entity_id(49);
        let password = self.alphanumerics(24);
        self.app_passwords.push(AppPassword {
            id: id.clone(),
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            key: token_key(&password),
            created_ms: now_ms(),
            last_access_ms: None,
        });
        Some((password, id))
    }

    pub fn delete_app_password(&mut self, user_id: &str, id: &str) -> bool {
        let before = self.app_passwords.len();
        self.app_passwords
            .retain(|entry| !(entry.user_id == user_id && entry.id == id));
        self.app_passwords.len() < before
    }

    pub fn touch_app_password(&mut self, id: &str) {
        if let Some(entry) = self.app_passwords.iter_mut().find(|e| e.id == id) {
            entry.last_access_ms = Some(now_ms());
        }
    }
}

impl Sim {
    /// Creates an application password named `name` for `login`; `None` for an unknown login.
    pub fn create_app_password(&self, login: &str, name: &str) -> Option<String> {
        let mut directory = self.shared.directory();
        let user = directory.user_by_login(login)?.id.clone();
        Some(directory.create_app_password(&user, name)?.0)
    }
}

fn entry_json(entry: &AppPassword) -> Value {
    json!({"type": "applicationPassword", "id": entry.id, "name": entry.name,
           "creationTime": entry.created_ms, "lastAccessTime": entry.last_access_ms})
}

type Answer = Result<Response<SimBody>, Response<SimBody>>;

/// `users/{user}/applicationPasswords[/{id}]`; `tail` is what follows `applicationPasswords`.
pub async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
    user: &str,
    tail: &[&str],
) -> Answer {
    let query = query(&request);
    let user_id = {
        let directory = shared.directory();
        let caller = caller(&directory, &request)?;
        target_user(&directory, &caller.user, user)?
    };
    match (request.method().clone(), tail) {
        (Method::GET, []) => {
            let directory = shared.directory();
            let entries: Vec<Value> = directory
                .app_passwords
                .iter()
                .filter(|entry| entry.user_id == user_id)
                .map(entry_json)
                .collect();
            let (skip, top, shown) = page(&query, &entries);
            let shown = with_fields(&query, &Value::Array(shown))?;
            let body = json!({"type": "ApplicationPasswordsPage", "skip": skip, "top": top,
                              "total": entries.len(), "applicationPasswords": shown});
            Ok(json_response(StatusCode::OK, &body))
        }
        (Method::POST, []) => {
            let body = read_body(request).await?;
            let invalid = |d: &str| hub_error(StatusCode::BAD_REQUEST, "invalid_request", d);
            let wanted: Value =
                serde_json::from_slice(&body).map_err(|_| invalid("Malformed JSON"))?;
            let name = wanted["name"].as_str().filter(|n| !n.is_empty());
            let name = name.ok_or_else(|| invalid("Application password name is required"))?;
            let mut directory = shared.directory();
            let (password, id) = directory
                .create_app_password(&user_id, name)
                .ok_or_else(|| hub_error(StatusCode::NOT_FOUND, "not_found", "User not found"))?;
            let entry = directory.app_passwords.iter().find(|e| e.id == id);
            let mut created = entry.map_or(Value::Null, entry_json);
            created["password"] = Value::String(password);
            Ok(json_response(
                StatusCode::OK,
                &with_fields(&query, &created)?,
            ))
        }
        (Method::DELETE, [id]) => {
            if shared.directory().delete_app_password(&user_id, id) {
                Ok(empty(StatusCode::OK))
            } else {
                Err(hub_error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "Application password not found",
                ))
            }
        }
        _ => Err(hub_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
        )),
    }
}
