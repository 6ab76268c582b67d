//! Hub's token endpoint, `POST /hub/api/rest/oauth2/token`: `client_credentials`, `password`
//! (with `access_type=offline` for a refresh token) and `refresh_token`, client authentication
//! by HTTP Basic or body parameters, RFC 6749 error codes in Hub's error body.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::directory::{Directory, HUB_SERVICE_ID};
use super::http::{basic, hub_error, json_response, param, params, read_body, SimBody};
use super::Shared;

/// The lifetime Hub gives access tokens.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

type Answer = Result<Response<SimBody>, Response<SimBody>>;

fn error(status: StatusCode, code: &str, description: &str) -> Response<SimBody> {
    hub_error(status, code, description)
}

pub async fn token(shared: &Shared, request: Request<Incoming>) -> Response<SimBody> {
    if request.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "Use POST",
        );
    }
    let header_client = basic(&request);
    let form = match read_body(request).await {
        Ok(body) => params(&body),
        Err(response) => return response,
    };
    let client = header_client.or_else(|| {
        Some((
            param(&form, "client_id")?.to_owned(),
            param(&form, "client_secret")?.to_owned(),
        ))
    });
    grant(shared, client, &form).unwrap_or_else(|response| response)
}

fn grant(shared: &Shared, client: Option<(String, String)>, form: &[(String, String)]) -> Answer {
    let mut directory = shared.directory();
    let client_id = authenticate_client(&directory, client)?;
    let grant_type = param(form, "grant_type").ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        )
    })?;
    let (user_id, scope, offline) = match grant_type {
        "client_credentials" => (client_id.clone(), requested_scope(&directory, form)?, false),
        "password" => password_grant(&directory, form)?,
        "refresh_token" => refresh_grant(&directory, form, &client_id)?,
        other => {
            let description = format!("Grant type {other} is not supported");
            return Err(error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &description,
            ));
        }
    };
    let access = directory.mint_access(&user_id, &client_id, scope.clone(), ACCESS_TOKEN_LIFETIME);
    let mut body = json!({"access_token": access, "token_type": "Bearer",
                          "expires_in": ACCESS_TOKEN_LIFETIME.as_secs(), "scope": scope.join(" ")});
    if offline {
        let refresh = directory.mint_refresh(&user_id, &client_id, scope);
        body["refresh_token"] = Value::String(refresh);
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// A registered service whose secret matches; Hub and YouTrack themselves have none.
fn authenticate_client(
    directory: &Directory,
    client: Option<(String, String)>,
) -> Result<String, Response<SimBody>> {
    let invalid = || {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        )
    };
    let (id, secret) = client.ok_or_else(invalid)?;
    let service = directory.service(&id).ok_or_else(invalid)?;
    match &service.secret {
        Some(expected) if *expected == secret && service.id == id => Ok(id),
        _ => Err(invalid()),
    }
}

/// The `scope` parameter (IDs or names, space-separated); Hub alone when absent.
fn requested_scope(
    directory: &Directory,
    form: &[(String, String)],
) -> Result<Vec<String>, Response<SimBody>> {
    let scope = param(form, "scope").unwrap_or(HUB_SERVICE_ID);
    match directory.resolve_scope(scope) {
        Ok(ids) if !ids.is_empty() => Ok(ids),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Scope is empty",
        )),
        Err(unknown) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("Unknown scope {unknown}"),
        )),
    }
}

fn password_grant(
    directory: &Directory,
    form: &[(String, String)],
) -> Result<(String, Vec<String>, bool), Response<SimBody>> {
    let invalid_grant = |d: &str| error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    let (Some(login), Some(password)) = (param(form, "username"), param(form, "password")) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "username and password are required",
        ));
    };
    let user = directory
        .user_by_login(login)
        .filter(|u| !u.guest && !u.password.is_empty() && u.password == password)
        .ok_or_else(|| invalid_grant("Invalid username or password"))?;
    if user.banned {
        return Err(invalid_grant("User is banned"));
    }
    let scope = requested_scope(directory, form)?;
    Ok((
        user.id.clone(),
        scope,
        param(form, "access_type") == Some("offline"),
    ))
}

fn refresh_grant(
    directory: &Directory,
    form: &[(String, String)],
    client_id: &str,
) -> Result<(String, Vec<String>, bool), Response<SimBody>> {
    let invalid_grant = |d: &str| error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    let token = param(form, "refresh_token").ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "refresh_token is required",
        )
    })?;
    let record = directory
        .refresh_record(token)
        .filter(|r| r.client_id.as_deref() == Some(client_id))
        .ok_or_else(|| invalid_grant("Refresh token is invalid"))?;
    let scope = match param(form, "scope") {
        None => record.scope.clone(),
        Some(_) => {
            let wanted = requested_scope(directory, form)?;
            if !wanted.iter().all(|id| record.scope.contains(id)) {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "Scope exceeds the grant",
                ));
            }
            wanted
        }
    };
    Ok((record.user_id.clone(), scope, false))
}
