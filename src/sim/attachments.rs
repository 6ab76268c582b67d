//! Issue attachments and the signed file URLs of YouTrack.
//!
//! `GET /api/issues/DEMO-1/attachments` (a credential valid for YouTrack) lists the seeded
//! image attachment; its `url` and `thumbnailURL` are `/api/files/<file id>?sign=…&updated=…`.
//! The sign is a time-limited capability of one user for one file: the base64 of
//! `expiryMs|userId|fileId|hex(HMAC-SHA256(key, "expiryMs|userId|fileId"))`, encoded the way
//! Java's MIME encoder does it (a CR LF every 76 characters) and then percent-encoded, so the
//! URL contains `%0D%0A`. The key is the simulator's own, fresh at every start.
//!
//! `GET /api/files/<file id>`:
//! - with an `Authorization` header: the credential decides (401 if not valid for YouTrack,
//!   403 for a banned user); the sign is not needed;
//! - without one, the sign: a MAC that does not verify, or one made for another file, is 403;
//!   an expired sign is 404, as if the link no longer led anywhere (the capability is gone,
//!   nothing was forged); a sign of a user who no longer exists or is banned is 403;
//! - neither: YouTrack's 401.
//!
//! Signs expire on the wall clock (they carry epoch milliseconds).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_DISPOSITION};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use ring::hmac;
use serde_json::{json, Value};

use super::directory::now_ms;
use super::http::{
    json_response, param, percent_encode, query, typed, with_fields, youtrack_error,
    youtrack_unauthorized, SimBody,
};
use super::png::encode_rgb;
use super::{Shared, Sim};

/// The seeded issue with an image attachment.
pub const DEMO_ISSUE: &str = "DEMO-1";
/// `DEMO-1`'s entity ID (YouTrack accepts both).
const DEMO_ISSUE_ID: &str = "2-1";
/// How long the signs of an attachment listing stay valid.
pub const SIGN_LIFETIME: Duration = Duration::from_secs(3600);

/// A stored file.
pub struct File {
    pub id: &'static str,
    pub bytes: Bytes,
    pub width: u32,
    pub height: u32,
}

/// The attachment of `DEMO-1` (a PNG and its thumbnail) and the signing key.
pub struct Files {
    key: hmac::Key,
    created_ms: u64,
    image: File,
    thumbnail: File,
}

const ATTACHMENT_NAME: &str = "screenshot.png";

impl Files {
    pub fn new() -> Files {
        let secret: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
        let picture = |width: u32, height: u32| {
            encode_rgb(width, height, |x, y| {
                [(x * 255 / width) as u8, (y * 255 / height) as u8, 160]
            })
        };
        Files {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            created_ms: now_ms(),
            image: File {
                id: "74-1",
                bytes: Bytes::from(picture(96, 64)),
                width: 96,
                height: 64,
            },
            thumbnail: File {
                id: "74-2",
                bytes: Bytes::from(picture(24, 16)),
                width: 24,
                height: 16,
            },
        }
    }

    fn file(&self, id: &str) -> Option<&File> {
        [&self.image, &self.thumbnail]
            .into_iter()
            .find(|f| f.id == id)
    }

    /// The sign for `user_id` and `file_id` valid until `expiry_ms`, not yet percent-encoded.
    fn sign(&self, expiry_ms: u64, user_id: &str, file_id: &str) -> String {
        let text = format!("{expiry_ms}|{user_id}|{file_id}");
        let mac = hmac::sign(&self.key, text.as_bytes());
        let hex: String = mac.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        mime_base64(format!("{text}|{hex}").as_bytes())
    }

    /// A file URL carrying a sign (relative, as YouTrack gives them).
    fn url(&self, file: &File, user_id: &str, lifetime: Duration) -> String {
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let sign = self.sign(now_ms().saturating_add(lifetime_ms), user_id, file.id);
        format!(
            "/api/files/{}?sign={}&updated={}",
            file.id,
            percent_encode(&sign),
            self.created_ms
        )
    }

    /// Checks a (decoded) sign for `file_id`: `Some((expiry_ms, user_id))` if its MAC verifies.
    fn verify(&self, sign: &str, file_id: &str) -> Option<(u64, String)> {
        // Like Java's MIME decoder: characters outside the alphabet (the line breaks) are skipped.
        let compact: String = sign
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
            .collect();
        let decoded = String::from_utf8(STANDARD.decode(compact).ok()?).ok()?;
        let (text, hex) = decoded.rsplit_once('|')?;
        let mac: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        hmac::verify(&self.key, text.as_bytes(), &mac).ok()?;
        let mut parts = text.splitn(3, '|');
        let expiry = parts.next()?.parse().ok()?;
        let user = parts.next()?;
        (parts.next()? == file_id).then(|| (expiry, user.to_owned()))
    }
}

/// Base64 with a CR LF after every 76 characters (none at the end), as Java's MIME encoder.
fn mime_base64(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    lines.join("\r\n")
}

impl Sim {
    /// The signed URL (relative) of `DEMO-1`'s attachment for `login`, valid for `lifetime`
    /// (zero gives one already expired). An unknown login gets a sign naming no user (403).
    pub fn signed_file_url(&self, login: &str, lifetime: Duration) -> String {
        let user = self
            .shared
            .directory()
            .user_by_login(login)
            .map(|u| u.id.clone());
        let files = &self.shared.files;
        files.url(&files.image, user.as_deref().unwrap_or(""), lifetime)
    }
}

/// `GET /api/issues/<issue>/attachments`.
pub fn list(shared: &Shared, request: &Request<Incoming>, issue: &str) -> Response<SimBody> {
    let user = match super::youtrack::caller(shared, request) {
        Ok(user) => user,
        Err(response) => return response,
    };
    if issue != DEMO_ISSUE && issue != DEMO_ISSUE_ID {
        let description = format!("Entity with id {issue} not found");
        return youtrack_error(StatusCode::NOT_FOUND, &description);
    }
    let files = &shared.files;
    let image = &files.image;
    let attachment = json!({
        "$type": "IssueAttachment", "id": image.id, "name": ATTACHMENT_NAME,
        "size": image.bytes.len(), "mimeType": "image/png", "extension": "png",
        "created": files.created_ms, "updated": files.created_ms,
        "metaData": format!("rw={}&rh={}", image.width, image.height),
        "url": files.url(image, &user.id, SIGN_LIFETIME),
        "thumbnailURL": files.url(&files.thumbnail, &user.id, SIGN_LIFETIME),
    });
    match with_fields(&query(request), &Value::Array(vec![attachment])) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(response) => response,
    }
}

/// `GET /api/files/<file id>`.
pub fn file(shared: &Shared, request: &Request<Incoming>, file_id: &str) -> Response<SimBody> {
    let files = &shared.files;
    let sign = param(&query(request), "sign").map(str::to_owned);
    if request.headers().contains_key(AUTHORIZATION) {
        if let Err(response) = super::youtrack::caller(shared, request) {
            return response;
        }
    } else if let Some(sign) = sign {
        let forbidden = || youtrack_error(StatusCode::FORBIDDEN, "Invalid sign");
        let Some((expiry_ms, user_id)) = files.verify(&sign, file_id) else {
            return forbidden();
        };
        if now_ms() >= expiry_ms {
            return youtrack_error(StatusCode::NOT_FOUND, "The link has expired");
        }
        if shared.directory().user(&user_id).is_none_or(|u| u.banned) {
            return forbidden();
        }
    } else {
        return youtrack_unauthorized();
    }
    let Some(file) = files.file(file_id) else {
        return youtrack_error(StatusCode::NOT_FOUND, "File not found");
    };
    let mut response = typed(StatusCode::OK, "image/png", file.bytes.clone());
    let disposition = format!("inline; filename=\"{ATTACHMENT_NAME}\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_break_lines_like_java_and_verify_only_for_their_file() {
        let files = Files::new();
        let sign = files.sign(now_ms() + 60_000, "1b2c-user", "74-1");
        assert!(sign.contains("\r\n"), "{sign:?}");
        assert!(sign.split("\r\n").all(|line| line.len() <= 76));
        let (_, user) = files.verify(&sign, "74-1").expect("valid sign");
        assert_eq!(user, "1b2c-user");
        assert!(files.verify(&sign, "74-2").is_none());
        let mut forged = STANDARD.decode(sign.replace("\r\n", "")).expect("base64");
        forged[0] ^= 1;
        assert!(files.verify(&STANDARD.encode(forged), "74-1").is_none());
    }
}
