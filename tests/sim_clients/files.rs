//! `DEMO-1`'s attachment list and the signed file URLs: the sign's MAC, expiry, user and file.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::Method;
use hubgate::sim::Sim;

use super::{assert_youtrack_error, header, png_size};
use crate::support::sim::{call, fetch, json_body, keys, user_id, Auth};

pub const ATTACHMENTS: &str = "/api/issues/DEMO-1/attachments?fields=id,name,url,thumbnailURL";

/// The `sign` of a file URL, decoded: `expiryMs|userId|fileId|MAC`, and the MIME text.
fn sign_of(url: &str) -> (Vec<String>, String) {
    let query = url.split_once('?').expect("a query").1;
    let sign = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "sign")
        .expect("a sign")
        .1
        .into_owned();
    let decoded = STANDARD.decode(sign.replace("\r\n", "")).expect("base64");
    let text = String::from_utf8(decoded).expect("text");
    (text.split('|').map(str::to_owned).collect(), sign)
}

/// A file URL with `parts` as its sign, encoded as YouTrack encodes them.
fn url_with_sign(file: &str, parts: &[String]) -> String {
    let encoded = STANDARD.encode(parts.join("|"));
    let lines: Vec<&str> = (0..encoded.len())
        .step_by(76)
        .map(|at| &encoded[at..(at + 76).min(encoded.len())])
        .collect();
    let sign: String = form_urlencoded::byte_serialize(lines.join("\r\n").as_bytes()).collect();
    format!("/api/files/{file}?sign={sign}&updated=1")
}

#[tokio::test]
async fn attachments_are_listed_with_signed_urls_that_need_no_header() {
    let sim = Sim::start().await.expect("sim starts");
    let token = sim.demo().youtrack_only.clone();
    let list = json_body(
        &fetch(sim.addr(), ATTACHMENTS, Auth::Bearer(&token)).await,
        200,
    );
    let attachment = &list[0];
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        keys(attachment),
        ["$type", "id", "name", "thumbnailURL", "url"]
    );
    let url = attachment["url"].as_str().expect("url");
    assert!(
        url.starts_with("/api/files/74-1?sign=") && url.contains("&updated="),
        "{url}"
    );
    assert!(url.contains("%0D%0A"), "a MIME-encoded sign: {url}");
    let (parts, _) = sign_of(url);
    let alice = user_id(sim.addr(), &sim.demo().hub_only, "alice").await;
    assert_eq!(
        (parts.len(), &parts[1], &parts[2]),
        (4, &alice, &"74-1".to_owned())
    );

    let signed = fetch(sim.addr(), url, Auth::Anonymous).await;
    assert_eq!(
        (signed.status.as_u16(), header(&signed, "content-type")),
        (200, "image/png")
    );
    assert_eq!(png_size(&signed.body), (96, 64));
    let direct = fetch(sim.addr(), "/api/files/74-1", Auth::Bearer(&token)).await;
    assert_eq!(direct.body, signed.body, "a credential needs no sign");
    let ide = fetch(sim.addr(), "/api/files/74-1", Auth::Basic("random", &token)).await;
    assert_eq!(ide.body, signed.body);
    let thumbnail = attachment["thumbnailURL"].as_str().expect("thumbnail");
    let thumbnail = fetch(sim.addr(), thumbnail, Auth::Anonymous).await;
    assert_eq!(png_size(&thumbnail.body), (24, 16));

    for auth in [Auth::Anonymous, Auth::Bearer(&sim.demo().hub_only)] {
        assert_youtrack_error(
            &fetch(sim.addr(), ATTACHMENTS, auth).await,
            401,
            "Unauthorized",
        );
    }
    let banned = Auth::Bearer(&sim.demo().banned);
    assert_youtrack_error(
        &fetch(sim.addr(), ATTACHMENTS, banned).await,
        403,
        "Forbidden",
    );
    let other = "/api/issues/DEMO-404/attachments";
    let other = fetch(sim.addr(), other, Auth::Bearer(&token)).await;
    assert_youtrack_error(&other, 404, "Not Found");
    // Uploads still reach the echo.
    let upload = call(sim.addr(), Method::POST, ATTACHMENTS, Auth::Bearer(&token)).await;
    assert_eq!(header(&upload, "x-sim"), "echo");
}

#[tokio::test]
async fn the_sign_is_a_per_user_per_file_time_limited_mac() {
    let sim = Sim::start().await.expect("sim starts");
    let url = sim.signed_file_url("alice", Duration::from_secs(60));
    assert_eq!(fetch(sim.addr(), &url, Auth::Anonymous).await.status, 200);
    let (parts, _) = sign_of(&url);
    let expiry: u64 = parts[0].parse().expect("epoch ms");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let now = now.expect("after 1970").as_millis() as u64;
    assert!(expiry > now && expiry <= now + 60_000, "{expiry} vs {now}");

    let admin = user_id(sim.addr(), &sim.demo().hub_only, "admin").await;
    let forged = |index: usize, value: &str| {
        let mut parts = parts.clone();
        parts[index] = value.to_owned();
        parts
    };
    for (case, target) in [
        ("another user", url_with_sign("74-1", &forged(1, &admin))),
        (
            "a later expiry",
            url_with_sign("74-1", &forged(0, &(expiry + 1).to_string())),
        ),
        (
            "another MAC",
            url_with_sign("74-1", &forged(3, &"0".repeat(64))),
        ),
        ("another file", url_with_sign("74-2", &parts)),
        ("garbage", "/api/files/74-1?sign=abc&updated=1".to_owned()),
    ] {
        let answer = fetch(sim.addr(), &target, Auth::Anonymous).await;
        assert_eq!(answer.status, 403, "{case}: {}", answer.text());
        assert_youtrack_error(&answer, 403, "Forbidden");
    }
    let expired = sim.signed_file_url("alice", Duration::ZERO);
    assert_youtrack_error(
        &fetch(sim.addr(), &expired, Auth::Anonymous).await,
        404,
        "Not Found",
    );
    let banned = sim.signed_file_url("bob", Duration::from_secs(60));
    assert_youtrack_error(
        &fetch(sim.addr(), &banned, Auth::Anonymous).await,
        403,
        "Forbidden",
    );
    let bare = fetch(sim.addr(), "/api/files/74-1?updated=1", Auth::Anonymous).await;
    assert_youtrack_error(&bare, 401, "Unauthorized");
    // A credential that is presented decides, sign or not.
    let revoked = fetch(sim.addr(), &url, Auth::Bearer(&sim.demo().revoked)).await;
    assert_youtrack_error(&revoked, 401, "Unauthorized");
}
