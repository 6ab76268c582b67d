//! Hub's login page and session cookie, the implicit flow, and the web UI page with its report.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use hubgate::sim::{Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use serde_json::json;
use tokio::time::timeout;

use super::header;
use crate::support::sim::{
    assert_error, call_json, call_with_body, fetch, json_body, post_form, Auth, HUB_ME, YOUTRACK_ME,
};
use crate::support::{empty, get, send, Answer};

fn form<'a>(password: &'a str, target: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("username", "alice"),
        ("password", password),
        ("return", target),
    ]
}

fn location(answer: &Answer) -> String {
    assert_eq!(answer.status, 302, "{}", answer.text());
    header(answer, "location").to_owned()
}

fn auth_query(redirect_uri: &str, client_id: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "token"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", &format!("{HUB_SERVICE_ID} {YOUTRACK_SERVICE_ID}")),
            ("state", "s+1/="),
        ])
        .finish()
}

async fn with_cookie(sim: &Sim, target: &str, cookie: &str) -> Answer {
    let request = get(sim.addr(), target)
        .header("cookie", cookie)
        .body(empty());
    send(sim.addr(), request.expect("request")).await
}

/// Every `<script` of a page has a `src` (no inline script).
fn assert_no_inline_script(page: &str, src: &str) {
    assert!(
        page.contains(&format!("<script src=\"{src}\"></script>")),
        "{page}"
    );
    assert!(
        page.split("<script")
            .skip(1)
            .all(|tag| tag.starts_with(" src=")),
        "{page}"
    );
}

#[tokio::test]
async fn the_browser_logs_in_and_gets_a_token_in_the_fragment() {
    let sim = Sim::start().await.expect("sim starts");
    let query = auth_query("/sim/webui", YOUTRACK_SERVICE_ID);
    let authorize = format!("/hub/api/rest/oauth2/auth?{query}");
    let to_login = location(&fetch(sim.addr(), &authorize, Auth::Anonymous).await);
    assert_eq!(to_login, format!("/hub/auth/login?{query}"));
    let page = fetch(sim.addr(), &to_login, Auth::Anonymous).await;
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert_eq!(
        header(&page, "content-security-policy"),
        "default-src 'self'"
    );
    assert_no_inline_script(&page.text(), "/hub/auth/login.js");
    let escaped = authorize.replace('&', "&amp;");
    assert!(
        page.text().contains(&format!("value=\"{escaped}\"")),
        "{}",
        page.text()
    );
    let script = fetch(sim.addr(), "/hub/auth/login.js", Auth::Anonymous).await;
    assert!(script.text().contains("sessionStorage"));

    let login = "/hub/api/rest/oauth2/interactive/login";
    let wrong = post_form(
        sim.addr(),
        login,
        Auth::Anonymous,
        &form("nope", &authorize),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.headers.get("set-cookie").is_none());
    for elsewhere in [
        "https://evil.example/x",
        "//evil.example/hub/api/rest/oauth2/auth?x",
        "/sim/webui",
    ] {
        let answer = post_form(
            sim.addr(),
            login,
            Auth::Anonymous,
            &form("alice", elsewhere),
        )
        .await;
        assert_error(&answer, 400, "invalid_request");
    }
    let logged_in = post_form(
        sim.addr(),
        login,
        Auth::Anonymous,
        &form("alice", &authorize),
    )
    .await;
    assert_eq!(location(&logged_in), authorize);
    let set_cookie = header(&logged_in, "set-cookie");
    let (cookie, attributes) = set_cookie.split_once("; ").expect("attributes");
    assert!(
        cookie.starts_with("hub_session=") && cookie.len() > 20,
        "{set_cookie}"
    );
    assert_eq!(attributes, "Path=/hub; HttpOnly; SameSite=Lax");

    let back = location(&with_cookie(&sim, &authorize, cookie).await);
    let fragment = back
        .strip_prefix("/sim/webui#")
        .expect("back to the page with a fragment");
    let fragment: Vec<(String, String)> = form_urlencoded::parse(fragment.as_bytes())
        .into_owned()
        .collect();
    let value = |name: &str| {
        fragment
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("token_type"), Some("Bearer"));
    assert_eq!(value("expires_in"), Some("3600"));
    assert_eq!(value("state"), Some("s+1/="));
    assert_eq!(
        value("scope"),
        Some(format!("{HUB_SERVICE_ID} {YOUTRACK_SERVICE_ID}").as_str())
    );
    let token = value("access_token").expect("a token");
    assert!(token.contains(' '), "a token for two services: {token}");
    for probe in [HUB_ME, YOUTRACK_ME] {
        let body = json_body(&fetch(sim.addr(), probe, Auth::Bearer(token)).await, 200);
        assert_eq!(body["login"], "alice");
    }
    // Same-origin absolute redirect URIs are fine; foreign ones and unknown clients are not.
    let here = auth_query(
        &format!("http://{}/sim/webui", sim.addr()),
        YOUTRACK_SERVICE_ID,
    );
    let here =
        location(&with_cookie(&sim, &format!("/hub/api/rest/oauth2/auth?{here}"), cookie).await);
    assert!(here.starts_with(&format!("http://{}/sim/webui#access_token=", sim.addr())));
    for (uri, client, error) in [
        (
            "https://evil.example/cb",
            YOUTRACK_SERVICE_ID,
            "invalid_request",
        ),
        ("//evil.example/cb", YOUTRACK_SERVICE_ID, "invalid_request"),
        ("/sim/webui", "no-such-client", "invalid_client"),
    ] {
        let target = format!("/hub/api/rest/oauth2/auth?{}", auth_query(uri, client));
        assert_error(&with_cookie(&sim, &target, cookie).await, 400, error);
    }
    let stale = location(&with_cookie(&sim, &authorize, "hub_session=stale").await);
    assert!(stale.starts_with("/hub/auth/login?"), "{stale}");
    let code = "/hub/api/rest/oauth2/auth?response_type=code&client_id=x";
    assert_eq!(
        header(&fetch(sim.addr(), code, Auth::Anonymous).await, "x-sim"),
        "echo"
    );
}

#[tokio::test]
async fn the_web_ui_page_loads_its_script_and_reports_come_to_tests() {
    let sim = Sim::start().await.expect("sim starts");
    let page = fetch(sim.addr(), "/sim/webui", Auth::Anonymous).await;
    assert_eq!(page.status, 200);
    assert_no_inline_script(&page.text(), "/sim/webui.js");
    assert!(page
        .text()
        .contains(&format!("data-client-id=\"{YOUTRACK_SERVICE_ID}\"")));
    let script = fetch(sim.addr(), "/sim/webui.js", Auth::Anonymous).await;
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    assert!(script.text().contains("/sim/report") && script.text().contains("EventSource"));

    assert_eq!(sim.last_report(), None);
    let report = json!({"ok": true, "steps": [{"name": "config", "ok": true, "detail": "200"}],
                        "userAgent": "test"});
    let posted = call_json(
        sim.addr(),
        Method::POST,
        "/sim/report",
        Auth::Anonymous,
        &report,
    );
    assert_eq!(posted.await.status, 204);
    let received = timeout(Duration::from_secs(5), sim.wait_report()).await;
    assert_eq!(received.expect("the report arrived"), report);
    assert_eq!(sim.last_report(), Some(report));
    // The next call waits for a new one.
    assert!(timeout(Duration::from_millis(100), sim.wait_report())
        .await
        .is_err());
    let malformed = Bytes::from_static(b"{");
    let body = Some(("application/json", malformed));
    let answer = call_with_body(
        sim.addr(),
        Method::POST,
        "/sim/report",
        Auth::Anonymous,
        body,
    );
    assert_error(&answer.await, 400, "invalid_request");
}
