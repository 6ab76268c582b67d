//! The `hubgate` binary: `check` validates like `nginx -t`.

use std::process::Command;

fn hubgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hubgate"))
}

#[test]
fn check_accepts_the_example_configuration() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let output = hubgate()
        .args(["check", "--config", example])
        .output()
        .expect("run hubgate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("/hub/api/rest/oauth2"), "{stdout}");
    assert!(stdout.contains("0-0-0-0-0"), "{stdout}");
    assert!(stdout.contains("test is successful"), "{stdout}");
}

#[test]
fn check_names_every_problem_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        r#"
[server]
listen = "127.0.0.1:8080"
lisen_backlog = 10

[upstreams.youtrack]
url = "http://127.0.0.1:8081"

[cache]
ttl = "30 seconds"

[[routes]]
prefix = "/api"
upstream = "yt"
"#,
    )
    .expect("write config");
    let output = hubgate()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .expect("run hubgate");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(stderr.contains("server.lisen_backlog"), "{stderr}");
    assert!(stderr.contains("cache.ttl"), "{stderr}");
    assert!(stderr.contains("routes[0].upstream"), "{stderr}");
}

#[test]
fn check_reports_a_missing_file() {
    let output = hubgate()
        .args(["check", "--config", "/nonexistent/hubgate.toml"])
        .output()
        .expect("run hubgate");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/hubgate.toml"));
}
