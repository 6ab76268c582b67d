//! A real browser through the gateway: headless Chromium (Debian's `chromium`) loads the
//! simulator's web-UI page through a gateway built from the shipped `config.example.toml`,
//! over HTTP/1.1 and over HTTP/2 with TLS. The page logs in with the implicit flow, calls both
//! APIs with Bearer, follows a live board with `EventSource`, decodes an avatar and a signed
//! attachment in `<img>` tags, and reports each step back to the simulator, where the test
//! reads it. Without the capability routes the same page fails, as it would in front of a real
//! YouTrack.
//!
//! The tests skip themselves when `chromium` is not installed, unless
//! `HUBGATE_REQUIRE_CHROMIUM=1` (as in CI) makes that a failure.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hubgate::sim::Sim;
use serde_json::Value;
use support::Gateway;

/// A bound on a hang, never a pause: the test goes on as soon as the page reports.
const PATIENCE: Duration = Duration::from_secs(90);

/// The browser, or `None` (with a note) when it is not installed and not required.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("HUBGATE_REQUIRE_CHROMIUM").is_none(),
            "chromium is required (HUBGATE_REQUIRE_CHROMIUM) but not installed"
        );
        eprintln!("chromium not installed: browser test skipped");
    }
    found
}

/// The shipped configuration in front of `sim`; `server_extra` lines go into `[server]`.
fn shipped_config(sim: SocketAddr, server_extra: &str) -> String {
    support::shipped_config(sim).replacen("[server]\n", &format!("[server]\n{server_extra}\n"), 1)
}

/// The same configuration without its capability routes: the gateway as it was before them.
fn without_capability_routes(text: &str) -> String {
    let mut table: toml::Table = text.parse().expect("TOML");
    let routes = table["routes"].as_array().expect("routes").clone();
    let kept: Vec<toml::Value> = routes
        .into_iter()
        .filter(|route| route.get("capability").is_none())
        .collect();
    table.insert("routes".into(), toml::Value::Array(kept));
    toml::to_string(&table).expect("serializes")
}

/// A running browser, killed when dropped.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens the simulator's web UI at `origin` as alice and returns the page's report.
async fn run_page(binary: &Path, sim: &Sim, origin: &str) -> Value {
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("{origin}/sim/webui?user=alice&password=alice");
    let report = sim.wait_report();
    let child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--ignore-certificate-errors",
            "--window-size=1000,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let _browser = Browser(child);
    match tokio::time::timeout(PATIENCE, report).await {
        Ok(report) => report,
        Err(_) => panic!("the page at {url} sent no report within {PATIENCE:?}"),
    }
}

/// The report's steps by name: whether each succeeded.
fn steps(report: &Value) -> Vec<(String, bool)> {
    report["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {report}"))
        .iter()
        .map(|step| {
            (
                step["name"].as_str().unwrap_or("?").to_owned(),
                step["ok"] == Value::Bool(true),
            )
        })
        .collect()
}

#[track_caller]
fn assert_every_step_passed(report: &Value) {
    let steps = steps(report);
    assert!(steps.len() >= 7, "{report:#}");
    assert!(steps.iter().all(|(_, ok)| *ok), "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_works_through_the_gateway_over_http1() {
    let Some(chromium) = chromium() else { return };
    let sim = Sim::start().await.expect("simulator");
    let gateway = Gateway::start(&shipped_config(sim.addr(), "")).await;
    let report = run_page(&chromium, &sim, &format!("http://{}", gateway.addr)).await;
    assert_every_step_passed(&report);
    assert_eq!(report["protocol"], "http/1.1", "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_works_through_the_gateway_over_http2_with_tls() {
    let Some(chromium) = chromium() else { return };
    let sim = Sim::start().await.expect("simulator");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let tls = format!("tls_cert = {cert:?}\ntls_key = {key:?}");
    let gateway = Gateway::start(&shipped_config(sim.addr(), &tls)).await;
    let report = run_page(&chromium, &sim, &format!("https://{}", gateway.addr)).await;
    assert_every_step_passed(&report);
    assert_eq!(report["protocol"], "h2", "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_capability_routes_the_web_ui_breaks() {
    let Some(chromium) = chromium() else { return };
    let sim = Sim::start().await.expect("simulator");
    let text = without_capability_routes(&shipped_config(sim.addr(), ""));
    let gateway = Gateway::start(&text).await;
    let report = run_page(&chromium, &sim, &format!("http://{}", gateway.addr)).await;
    assert_eq!(report["ok"], false, "{report:#}");
    let failed: Vec<String> = steps(&report)
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect();
    // The token-less requests fail; the Bearer calls still work.
    assert!(failed.len() >= 4, "{report:#}");
    let passed = steps(&report).len() - failed.len();
    assert!(passed >= 2, "{report:#}");
}
