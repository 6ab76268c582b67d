//! What YouTrack and Hub answer without any credential, by design:
//!
//! - `GET /api/config`: where Hub is, YouTrack's service ID, the mobile app's client ID and
//!   secret, the version (the mobile app and the IDE plugin read it before logging in);
//! - `GET /hub/api/rest/settings/public`: the web UI's auth library checks Hub is up with it
//!   on every login, logout and forced token refresh;
//! - `GET /hub/api/rest/avatar/<user id>?etag=…&dpr=…&size=…` (or `s=`): a user's avatar, a
//!   real PNG (loaded by `<img>` tags, which send no header); 404 for an unknown user.
//!
//! All take Hub's `fields=`.

use http::header::HOST;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::directory::YOUTRACK_SERVICE_ID;
use super::http::{hub_error, json_response, param, query, typed, with_fields, SimBody};
use super::png::encode_rgb;
use super::Shared;

/// The simulated YouTrack's version.
pub const VERSION: &str = "2026.2";
const BUILD: &str = "2026.2.10463";

/// Identifiers of the simulated instance, fixed at start.
pub struct Instance {
    pub uuid: String,
    pub settings_id: String,
    /// The registered mobile app client.
    pub mobile_id: String,
    pub mobile_secret: String,
}

/// `GET /api/config`. Hub's URL is built from the request's `Host` (and `X-Forwarded-Proto`),
/// so it points wherever the client reached YouTrack.
pub fn config(shared: &Shared, request: &Request<Incoming>) -> Response<SimBody> {
    let instance = &shared.instance;
    let hub_url = format!("{}/hub", origin(request));
    let config = json!({
        "$type": "AppConfig",
        "ring": {"$type": "RingConfig", "url": hub_url, "serviceId": YOUTRACK_SERVICE_ID},
        "mobile": {"$type": "MobileConfig", "serviceId": instance.mobile_id,
                   "serviceSecret": instance.mobile_secret},
        "version": VERSION,
        "build": BUILD,
        "uuid": instance.uuid,
        "statisticsEnabled": false,
        "l10n": {"$type": "L10nConfig", "language": "en", "locale": "en"},
    });
    match with_fields(&query(request), &config) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(response) => response,
    }
}

/// `scheme://host` as the client addressed this server.
pub fn origin(request: &Request<Incoming>) -> String {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    let https = request
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// `GET /hub/api/rest/settings/public`.
pub fn hub_settings(
    shared: &Shared,
    request: &Request<Incoming>,
) -> Result<Response<SimBody>, Response<SimBody>> {
    let settings = json!({"type": "publicsettings", "id": shared.instance.settings_id});
    let body = with_fields(&query(request), &settings)?;
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /hub/api/rest/avatar/<user id>`: a `size` (or `s`) times `dpr` pixels square PNG
/// (64 by default, at most 512), coloured after the user.
pub fn avatar(shared: &Shared, request: &Request<Incoming>, user_id: &str) -> Response<SimBody> {
    if shared.directory().user(user_id).is_none() {
        return hub_error(StatusCode::NOT_FOUND, "not_found", "User not found");
    }
    let query = query(request);
    let number = |name: &str| param(&query, name).and_then(|v| v.parse::<f64>().ok());
    let size = number("size").or_else(|| number("s")).unwrap_or(64.0);
    let dpr = number("dpr").filter(|d| *d > 0.0).unwrap_or(1.0);
    let pixels = (size * dpr).round().clamp(1.0, 512.0) as u32;
    let digest = ring::digest::digest(&ring::digest::SHA256, user_id.as_bytes());
    let [r, g, b] = [digest.as_ref()[0], digest.as_ref()[1], digest.as_ref()[2]];
    let background = [r / 2 + 64, g / 2 + 64, b / 2 + 64];
    let png = encode_rgb(pixels, pixels, |x, y| {
        // A light disc on the user's colour.
        let (dx, dy) = (2 * x + 1, 2 * y + 1);
        let (cx, cy, radius) = (pixels, pixels, pixels * 7 / 10);
        let distance = dx.abs_diff(cx).pow(2) + dy.abs_diff(cy).pow(2);
        if distance <= radius * radius {
            [240, 240, 240]
        } else {
            background
        }
    });
    typed(StatusCode::OK, "image/png", png)
}
