//! YouTrack's side: `/api/users/me` (the YouTrack-scope probe), the check of the other
//! YouTrack endpoints' callers, the echo that every other path answers with so tests see
//! exactly what arrived, and a WebSocket echo at `/sim/ws`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, UPGRADE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::credentials::{authenticate, presented, touch};
use super::directory::{User, YOUTRACK_SERVICE_ID};
use super::http::{
    full, json_response, query, with_fields, youtrack_error, youtrack_unauthorized, SimBody,
};
use super::Shared;

fn me_json(user: &User) -> Value {
    json!({"$type": "Me", "id": user.id, "login": user.login, "name": user.name,
           "banned": user.banned, "guest": user.guest})
}

fn guest_json() -> Value {
    json!({"$type": "Me", "id": "1-1", "login": "guest", "name": "Guest", "banned": false, "guest": true})
}

/// 200 only for a credential valid for YouTrack; with guest access on, anonymous and bad
/// requests get the guest user (which is *not* authenticated: `guest` is true).
pub fn users_me(shared: &Shared, request: &Request<Incoming>) -> Response<SimBody> {
    let mut directory = shared.directory();
    let me = match authenticate(&directory, &presented(request), YOUTRACK_SERVICE_ID) {
        Ok(caller) => {
            touch(&mut directory, &caller);
            me_json(&caller.user)
        }
        Err(_) if shared.controls.guest_access() => guest_json(),
        Err(_) => return youtrack_unauthorized(),
    };
    drop(directory);
    match with_fields(&query(request), &me) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(response) => response,
    }
}

/// The caller of a YouTrack endpoint other than `users/me`: a credential valid for YouTrack
/// (401 otherwise) of a user who is not banned (403).
pub fn caller(shared: &Shared, request: &Request<Incoming>) -> Result<User, Response<SimBody>> {
    let directory = shared.directory();
    let caller = authenticate(&directory, &presented(request), YOUTRACK_SERVICE_ID)
        .map_err(|_| youtrack_unauthorized())?;
    if caller.user.banned {
        return Err(youtrack_error(StatusCode::FORBIDDEN, "User is banned"));
    }
    Ok(caller.user)
}

/// What arrived: method, target (byte-exact in origin form; an absolute form without a path
/// gains `/`), version, headers, body length and SHA-256. Header names come in the order they
/// first arrived, each name's values in their order; hyper's `HeaderMap` groups a name's
/// repeats, so `a, b, a` reads back as `a, a, b`.
pub async fn echo(request: Request<Incoming>) -> Response<SimBody> {
    let (parts, mut body) = request.into_parts();
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut length: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            hash.update(data);
            length += data.len() as u64;
        }
    }
    let headers: Vec<Value> = parts
        .headers
        .iter()
        .map(|(name, value)| json!([name.as_str(), String::from_utf8_lossy(value.as_bytes())]))
        .collect();
    let sha256: String = hash
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = json!({
        "method": parts.method.as_str(),
        "target": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_length": length,
        "body_sha256": sha256,
    });
    let mut response = json_response(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert("x-sim", HeaderValue::from_static("echo"));
    response
}

/// Accepts a WebSocket handshake and echoes every data frame back (unmasked, as a server
/// must), answering a close frame with a close.
pub fn websocket(mut request: Request<Incoming>) -> Response<SimBody> {
    let key = request
        .headers()
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec());
    let upgrade_ok = request
        .headers()
        .get(UPGRADE)
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let (Some(key), true) = (key, upgrade_ok) else {
        let mut response = Response::new(full(Bytes::from_static(b"websocket only")));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let _ = echo_frames(TokioIo::new(upgraded)).await;
        }
    });
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept_key(&key)) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

/// RFC 6455 4.2.2: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(context.finish())
}

async fn echo_frames<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> std::io::Result<()> {
    loop {
        let mut head = [0u8; 2];
        io.read_exact(&mut head).await?;
        let opcode = head[0] & 0x0f;
        let masked = head[1] & 0x80 != 0;
        let length = match head[1] & 0x7f {
            126 => u64::from(io.read_u16().await?),
            127 => io.read_u64().await?,
            n => u64::from(n),
        };
        let mut mask = [0u8; 4];
        if masked {
            io.read_exact(&mut mask).await?;
        }
        let length = usize::try_from(length.min(1 << 20)).unwrap_or(1 << 20);
        let mut payload = vec![0u8; length];
        io.read_exact(&mut payload).await?;
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= if masked { mask[i % 4] } else { 0 };
        }
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n @ 0..=125 => frame.push(n as u8),
            n @ 126..=0xffff => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        io.write_all(&frame).await?;
        if opcode == 0x8 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accept_key_matches_rfc_6455() {
        assert_eq!(
            super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
