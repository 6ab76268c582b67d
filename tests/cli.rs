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

/// `hubgate sim` runs the simulator as a process and prints working demo credentials.
#[test]
fn sim_runs_as_a_process_with_working_demo_tokens() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = KillOnDrop(
        hubgate()
            .args(["sim", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start hubgate sim"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut banner = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("banner line");
        let done = line.starts_with("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let find = |prefix: &str| {
        banner
            .iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)
                    .map(|rest| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {prefix:?} in {banner:#?}"))
    };
    let url = find("hubgate simulator (YouTrack + Hub) on ");
    let token = find("alice, YouTrack only (perm:):");
    let addr = url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect to the simulator");
    write!(
        stream,
        "GET /api/users/me?fields=login HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    drop(child);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"login\":\"alice\""), "{response}");
}

#[test]
fn check_warns_about_risky_settings_and_still_accepts_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("risky.toml");
    let example = include_str!("../config.example.toml");
    assert!(example.contains("listen = \"0.0.0.0:8080\""));
    std::fs::write(&file, example).expect("write config");
    let output = hubgate()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .expect("run hubgate");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: server.tls_cert: TLS is off on 0.0.0.0"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("TOKEN CHECK"), "{stdout}");
    assert!(
        stdout.contains("probe http://127.0.0.1:8081/hub/api/rest/users/me"),
        "{stdout}"
    );
}

/// Under systemd (`Type=notify`), `run` reports READY=1 once it listens and STOPPING=1 when
/// SIGTERM starts the drain, then exits 0.
#[test]
fn run_notifies_systemd_of_readiness_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    let config = dir.path().join("hubgate.toml");
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    std::fs::write(
        &config,
        hubgate::demo::config_text(listen, listen, upstream, ""),
    )
    .expect("config");
    let child = hubgate()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start hubgate run");
    let mut child = KillOnDrop(child);
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notification");
    assert_eq!(buf[..n].trim_ascii(), b"READY=1");
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let n = socket.recv(&mut buf).expect("a notification");
    assert_eq!(buf[..n].trim_ascii(), b"STOPPING=1");
    let status = child.0.wait().expect("hubgate exits");
    assert!(status.success(), "{status:?}");
}

/// A child process that does not outlive a failed test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `demo --print-config` prints the demo's configuration for a given upstream (what
/// `bench/run.sh` starts from), and it is a valid one.
#[test]
fn demo_prints_its_configuration_for_an_upstream() {
    let output = hubgate()
        .args(["demo", "--print-config", "127.0.0.1:4242"])
        .args(["--listen", "127.0.0.1:4243", "--admin", "127.0.0.1:4244"])
        .output()
        .expect("run hubgate");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let addr = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(
        text,
        hubgate::demo::config_text(addr(4243), addr(4244), addr(4242), "")
    );
    let config = hubgate::config::Config::parse(&text, std::path::Path::new("demo.toml"))
        .expect("a valid configuration");
    assert_eq!(config.server.listen, addr(4243));
    assert_eq!(config.admin.listen, addr(4244));
}
