//! Which endpoint answers a request, with the simulated Hub's faults and latency and the probe
//! counters applied on the way.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use ::http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::directory::{token_key, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use super::http::{bearer, hub_error, typed, SimBody};
use super::{
    attachments, bench, hub, lock, login, oauth, public, rfc7662, sse, webui, youtrack, HubFault,
    Shared,
};

/// The connection is dropped without an answer (`HubFault::Down`).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("simulated Hub outage")
    }
}

impl std::error::Error for Dropped {}

fn is_hub_path(path: &str) -> bool {
    path.starts_with("/hub/api/rest/") || path == "/api/users/me" || path == rfc7662::PATH
}

pub async fn dispatch(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<Response<SimBody>, Dropped> {
    let path = request.uri().path().to_owned();
    count_probe(shared, &request, &path);
    if is_hub_path(&path) {
        delay(&shared.controls.hub_latency).await;
        if let Some(fault) = *lock(&shared.controls.hub_fault) {
            return faulty(fault);
        }
        if let Some(fault) = token_fault(shared, &request) {
            return faulty(fault);
        }
    }
    let get = request.method() == Method::GET;
    let response = match path.as_str() {
        "/hub/api/rest/oauth2/token" => oauth::token(shared, request).await,
        "/api/users/me" => youtrack::users_me(shared, &request),
        p if p == rfc7662::PATH => rfc7662::introspect(shared, request).await,
        "/sim/ws" => youtrack::websocket(request),
        bench::STATS_PATH if shared.controls.fast() => bench::stats_response(shared),
        p if p.starts_with("/hub/api/rest/") => {
            hub::handle(shared, request, &p["/hub/api/rest/".len()..]).await
        }
        login::PAGE if get => login::page(&request),
        login::SCRIPT if get => login::script(),
        webui::PAGE if get => webui::page(),
        webui::SCRIPT if get => webui::script(),
        webui::REPORT if request.method() == Method::POST => webui::report(shared, request).await,
        _ => youtrack(shared, request, &path).await,
    };
    Ok(response)
}

/// YouTrack's own endpoints, or the echo.
async fn youtrack(shared: &Shared, request: Request<Incoming>, path: &str) -> Response<SimBody> {
    delay(&shared.controls.upstream_latency).await;
    if let Some(rest) = path.strip_prefix("/api/") {
        // Up to six segments, without allocating: the echo stays as cheap as it was.
        let mut parts = rest.split('/');
        let segments: [Option<&str>; 6] = std::array::from_fn(|_| parts.next());
        let answer = match (request.method(), segments) {
            (&Method::GET, [Some("config"), None, ..]) => Some(public::config(shared, &request)),
            (&Method::GET, [Some("issues"), Some(issue), Some("attachments"), None, ..]) => {
                Some(attachments::list(shared, &request, issue))
            }
            (&Method::GET, [Some("files"), Some(file), None, ..]) => {
                Some(attachments::file(shared, &request, file))
            }
            (
                &Method::POST,
                [Some("agiles"), Some(a), Some("sprints"), Some(s), Some("sseSubscription"), None],
            ) => Some(sse::subscribe(shared, &request, a, s)),
            (&Method::GET, [Some("eventSourceBus"), None, ..]) => {
                Some(sse::stream(shared, &request))
            }
            _ => None,
        };
        if let Some(answer) = answer {
            return answer;
        }
    }
    shared.controls.echoes.fetch_add(1, Ordering::Relaxed);
    if shared.controls.fast() {
        bench::fast_echo(request).await
    } else {
        youtrack::echo(request).await
    }
}

/// The fault for this request's credential, if `Sim::set_hub_fault_for` named it.
fn token_fault(shared: &Shared, request: &Request<Incoming>) -> Option<HubFault> {
    let guard = lock(&shared.controls.token_fault);
    let (marker, fault) = guard.as_ref()?;
    let authorization = request.headers().get(::http::header::AUTHORIZATION)?;
    let text = String::from_utf8_lossy(authorization.as_bytes());
    text.contains(marker.as_str()).then_some(*fault)
}

/// Waits the configured latency; no timer at all when it is zero.
async fn delay(latency: &Mutex<Duration>) {
    let latency = *lock(latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// Counts a `users/me` probe, keyed by its bearer token, or by the whole `Authorization`
/// value for any other scheme (Basic).
fn count_probe(shared: &Shared, request: &Request<Incoming>, path: &str) {
    let service = match path {
        "/hub/api/rest/users/me" => HUB_SERVICE_ID,
        "/api/users/me" => YOUTRACK_SERVICE_ID,
        _ => return,
    };
    let key = match bearer(request) {
        Some(token) => token_key(token),
        None => {
            let authorization = request.headers().get(::http::header::AUTHORIZATION);
            token_key(authorization.and_then(|v| v.to_str().ok()).unwrap_or(""))
        }
    };
    let controls = &shared.controls;
    let before = {
        let mut probes = lock(&controls.probes);
        let count = probes.entry((key, service)).or_default();
        *count += 1;
        *count - 1
    };
    controls.probe_total.fetch_add(1, Ordering::Relaxed);
    if before > 0 {
        controls.probe_repeats.fetch_add(1, Ordering::Relaxed);
    }
}

fn faulty(fault: HubFault) -> Result<Response<SimBody>, Dropped> {
    Ok(match fault {
        HubFault::Down => return Err(Dropped),
        HubFault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            hub_error(status, "server_error", "Simulated Hub failure")
        }
        HubFault::Html => typed(
            StatusCode::OK,
            "text/html;charset=UTF-8",
            "<!doctype html><html><body><h1>Hub is starting</h1></body></html>",
        ),
        HubFault::TruncatedJson => typed(
            StatusCode::OK,
            "application/json;charset=UTF-8",
            r#"{"type":"user","id":"1b2c","login":"ali"#,
        ),
        HubFault::Redirect => {
            let mut response = typed(StatusCode::FOUND, "text/html;charset=UTF-8", "");
            response.headers_mut().insert(
                ::http::header::LOCATION,
                ::http::HeaderValue::from_static("/hub/auth/login"),
            );
            response
        }
    })
}
