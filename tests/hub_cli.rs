//! `hubgate hub discover` and `hubgate hub register`, the real binary against the simulator.
//! The proof that discovery works is a gateway: the printed block, pasted into a
//! configuration, passes `hubgate check` and grants a valid token on `/api`.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use hubgate::sim::{Sim, HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
use support::sim::{fetch, post_form, Auth, TOKEN_PATH};
use support::Gateway;
use tempfile::TempDir;

/// A simulator and a configuration whose `[hub]` points at it with `admin_token`.
struct Setup {
    sim: Sim,
    dir: TempDir,
    config: PathBuf,
}

impl Setup {
    async fn new() -> Setup {
        let sim = Sim::start().await.expect("simulator");
        let admin = sim.demo().admin.clone();
        Setup::with_admin_token(sim, &admin)
    }

    fn with_admin_token(sim: Sim, admin_token: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("hub-admin-token");
        std::fs::write(&token_file, format!("{admin_token}\n")).expect("token file");
        let hub = format!(
            "\n[hub]\nurl = \"{}/hub\"\nadmin_token_file = {}\n",
            sim.url(),
            toml::Value::String(token_file.display().to_string())
        );
        let config = dir.path().join("hubgate.toml");
        let text = support::config_text(sim.addr(), "") + &hub;
        std::fs::write(&config, text).expect("config file");
        Setup { sim, dir, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn discover(&self) -> Output {
        hubgate(&["hub", "discover", "--config", &shown(&self.config)]).await
    }

    async fn register(&self, name: &str, secret_file: &Path, force: bool) -> Output {
        let (config, secret_file) = (shown(&self.config), shown(secret_file));
        let mut args = vec!["hub", "register", "--name", name, "--home-url"];
        args.extend(["https://ci.example.com", "--secret-file", &secret_file]);
        args.extend(["--config", &config]);
        if force {
            args.push("--force");
        }
        hubgate(&args).await
    }

    async fn register_with_home_url(&self, home_url: &str) -> Output {
        let secret_file = shown(&self.path("never.secret"));
        let config = shown(&self.config);
        let mut args = vec!["hub", "register", "--name", "x", "--home-url", home_url];
        args.extend(["--secret-file", &secret_file, "--config", &config]);
        hubgate(&args).await
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// Runs the binary off the runtime's threads: the simulator answers it from this process.
async fn hubgate(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hubgate"))
            .args(&args)
            .output()
            .expect("run hubgate")
    })
    .await
    .expect("hubgate ran")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Exit code 1, and what the operator reads.
fn failure(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "stdout: {}", stdout(output));
    stderr(output)
}

fn assert_never_shows(output: &Output, secret: &str) {
    let all = format!("{}{}", stdout(output), stderr(output));
    assert!(!all.contains(secret), "a secret was printed:\n{all}");
}

/// The test configuration with its `[services.*]` and routes replaced by the discovered block.
fn with_services(config: &Path, discovered: &toml::Table) -> String {
    let text = std::fs::read_to_string(config).expect("config");
    let mut table: toml::Table = text.parse().expect("config is TOML");
    table.insert("services".into(), discovered["services"].clone());
    table.insert("routes".into(), discovered["routes"].clone());
    toml::to_string(&table).expect("serializes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_services_make_a_working_gateway() {
    let setup = Setup::new().await;
    let output = setup.discover().await;
    assert_success(&output);
    assert_never_shows(&output, &setup.sim.demo().admin);
    let text = stdout(&output);
    let block: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    let id = |service: &str| block["services"][service]["id"].as_str().map(str::to_owned);
    assert_eq!(
        id("youtrack").as_deref(),
        Some(YOUTRACK_SERVICE_ID),
        "{text}"
    );
    assert_eq!(id("hub").as_deref(), Some(HUB_SERVICE_ID), "{text}");
    assert!(
        text.contains("# Assumed: Hub is built into YouTrack"),
        "{text}"
    );
    assert!(
        text.contains(&setup.sim.demo().client_id),
        "other services listed: {text}"
    );

    let gateway_config = setup.path("gateway.toml");
    std::fs::write(&gateway_config, with_services(&setup.config, &block)).expect("write");
    assert_success(&hubgate(&["check", "--config", &shown(&gateway_config)]).await);

    let gateway = Gateway::from_file(&gateway_config).await;
    let demo = setup.sim.demo();
    let me = "/api/users/me?fields=id,login";
    let hub_me = "/hub/api/rest/users/me?fields=id,login";
    let granted = fetch(gateway.addr, me, Auth::Bearer(&demo.youtrack_only)).await;
    assert_eq!(granted.status, 200, "{}", granted.text());
    let hub = fetch(gateway.addr, hub_me, Auth::Bearer(&demo.hub_only)).await;
    assert_eq!(hub.status, 200, "{}", hub.text());
    let other = fetch(gateway.addr, hub_me, Auth::Bearer(&demo.youtrack_only)).await;
    assert_eq!(other.status, 403, "{}", other.text());
    let revoked = fetch(gateway.addr, me, Auth::Bearer(&demo.revoked)).await;
    assert_eq!(revoked.status, 401, "{}", revoked.text());
    // The discovered routes carry the capability routes real clients need.
    let config = fetch(gateway.addr, "/api/config?fields=version", Auth::Anonymous).await;
    assert_eq!(config.status, 200, "{}", config.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_service_gets_a_private_secret_that_works() {
    let setup = Setup::new().await;
    let secret_file = setup.path("ci.secret");
    let output = setup.register("ci-bot", &secret_file, false).await;
    assert_success(&output);
    let id = stdout(&output).trim().to_owned();
    let mode = std::fs::metadata(&secret_file)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = std::fs::read_to_string(&secret_file).expect("readable");
    assert!(!secret.is_empty() && !secret.contains('\n'), "{secret:?}");
    assert_never_shows(&output, &secret);
    assert_never_shows(&output, &setup.sim.demo().admin);

    let discovered = setup.discover().await;
    assert_success(&discovered);
    assert!(stdout(&discovered).contains(&id), "{}", stdout(&discovered));

    let form = [("grant_type", "client_credentials")];
    let answer = post_form(
        setup.sim.addr(),
        TOKEN_PATH,
        Auth::Basic(&id, &secret),
        &form,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let refused = setup.register("ci-bot-2", &secret_file, false).await;
    let message = failure(&refused);
    assert!(
        message.contains("already exists") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(&secret_file).expect("kept"), secret);
    let listed = stdout(&setup.discover().await);
    assert!(
        !listed.contains("ci-bot-2"),
        "refused before registering: {listed}"
    );

    let replaced = setup.register("ci-bot-3", &secret_file, true).await;
    assert_success(&replaced);
    let new_secret = std::fs::read_to_string(&secret_file).expect("replaced");
    assert_ne!(new_secret, secret);
    let mode = std::fs::metadata(&secret_file)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_leaves_no_file() {
    let sim = Sim::start().await.expect("simulator");
    let not_admin = sim.demo().hub_only.clone();
    let setup = Setup::with_admin_token(sim, &not_admin);
    let secret_file = setup.path("ci.secret");
    let output = setup.register("ci-bot", &secret_file, false).await;
    let message = failure(&output);
    assert!(message.contains("registering the service"), "{message}");
    assert!(
        message.contains("403") && message.contains("Access denied"),
        "{message}"
    );
    assert_never_shows(&output, &not_admin);
    assert!(!secret_file.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_settings_and_hub_refusals_are_clear_errors() {
    let setup = Setup::new().await;
    let text = std::fs::read_to_string(&setup.config).expect("config");
    let without_hub = &text[..text.find("\n[hub]").expect("has [hub]")];
    std::fs::write(&setup.config, without_hub).expect("write");
    let message = failure(&setup.discover().await);
    assert!(message.contains("no [hub] section"), "{message}");
    assert!(message.contains("hub.url") && message.contains("hub.admin_token_file"));
    assert!(message.contains("hubgate.toml"), "{message}");

    let no_token_file = format!("{without_hub}\n[hub]\nurl = \"{}/hub\"\n", setup.sim.url());
    std::fs::write(&setup.config, no_token_file).expect("write");
    let message = failure(&setup.discover().await);
    assert!(
        message.contains("hub.admin_token_file: missing"),
        "{message}"
    );

    let sim = Sim::start().await.expect("simulator");
    let youtrack_only = sim.demo().youtrack_only.clone();
    let output = Setup::with_admin_token(sim, &youtrack_only)
        .discover()
        .await;
    let message = failure(&output);
    assert!(
        message.contains("listing services") && message.contains("401"),
        "{message}"
    );
    assert!(message.contains("can't be used for 0-0-0-0-0"), "{message}");
    assert_never_shows(&output, &youtrack_only);

    let bad_url = setup.register_with_home_url("not a url").await;
    assert!(failure(&bad_url).contains("--home-url"));
}
