//! Benchmark mode (`hubgate sim --fast`). The echo answers every request with one small fixed
//! body instead of its JSON account of what arrived, and `GET /sim/stats` reports the counters
//! a benchmark reads. Nothing else changes: Hub's and YouTrack's token checks, status codes and
//! bodies are the same as without it, so a benchmark measures the same decisions the tests
//! check.
//!
//! Also here: minting many permanent tokens at once, so a benchmark can present a million
//! distinct valid tokens without a million calls to `permanenttokens` first.

use std::io::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use super::directory::{PermStyle, YOUTRACK_SERVICE_ID};
use super::http::{full, json_response, SimBody};
use super::Shared;

/// The counters endpoint; answered only in fast mode.
pub const STATS_PATH: &str = "/sim/stats";

/// What the echo answers in fast mode.
const FAST_BODY: &[u8] = br#"{"$type":"Echo","fast":true}"#;

/// The counters `GET /sim/stats` reports, all since the simulator started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `users/me` probes (Hub's and YouTrack's), whatever the token.
    pub probes: u64,
    /// Probes for a (token, service) pair that had been probed before.
    pub repeated_probes: u64,
    /// Requests the echo (the simulated YouTrack's other paths) answered.
    pub echoes: u64,
}

pub fn stats(shared: &Shared) -> Stats {
    let controls = &shared.controls;
    Stats {
        probes: controls.probe_total.load(Ordering::Relaxed),
        repeated_probes: controls.probe_repeats.load(Ordering::Relaxed),
        echoes: controls.echoes.load(Ordering::Relaxed),
    }
}

pub fn stats_response(shared: &Shared) -> Response<SimBody> {
    let stats = stats(shared);
    json_response(
        StatusCode::OK,
        &json!({"probes": stats.probes, "repeated_probes": stats.repeated_probes,
                "echoes": stats.echoes}),
    )
}

/// The echo of fast mode: reads the body through, answers 200 with a fixed small JSON body.
pub async fn fast_echo(request: Request<Incoming>) -> Response<SimBody> {
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    let mut response = Response::new(full(Bytes::from_static(FAST_BODY)));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    headers.insert("x-sim", HeaderValue::from_static("echo-fast"));
    response
}

/// Mints `count` permanent tokens for alice granted for YouTrack only (the entity-ID shape)
/// and writes them to `out`, one per line.
pub fn mint_tokens(shared: &Shared, count: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut directory = shared.directory();
    let alice = directory
        .user_by_login("alice")
        .map(|user| user.id.clone())
        .ok_or_else(|| std::io::Error::other("the seeded user alice is missing"))?;
    for _ in 0..count {
        let scope = vec![YOUTRACK_SERVICE_ID.to_owned()];
        let (token, _) = directory
            .mint_permanent(&alice, "bench", scope, PermStyle::EntityId)
            .ok_or_else(|| std::io::Error::other("cannot mint for alice"))?;
        out.write_all(token.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
