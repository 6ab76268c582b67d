//! `hubgate run` as operators run it: a child process serving from a configuration file,
//! reloaded with SIGHUP, stopped with SIGTERM, logging one JSON object per line to stderr.
//! Every wait reads the child's log (readiness, reload outcome, exit), never a timer; the
//! only clock is a bound that turns a hang into a failure.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hubgate::auth::cache::fingerprint;
use hubgate::sim::Sim;
use serde_json::Value;
use support::{collect, empty, get, send, Answer, Upstream};
use tokio::sync::mpsc;

/// The longest any one wait for the child may take before the test fails. A bound on a hang,
/// never a pause: every wait ends as soon as the line it waits for arrives.
const PATIENCE: Duration = Duration::from_secs(10);

const RELOADED: &str = "configuration reloaded";
const REFUSED: &str = "reload refused, the previous configuration keeps serving";

/// `127.0.0.1:0`: every listener takes an ephemeral port.
fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The demo configuration (routes `/api`, `/hub/api`, `/`, ...) with every upstream and probe
/// at `upstream`, both listeners on ephemeral ports.
fn config_for(upstream: SocketAddr, server_extra: &str) -> String {
    hubgate::demo::config_text(any_port(), any_port(), upstream, server_extra)
}

/// A configuration file in a directory of its own, removed with it.
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = ConfigFile {
            path: dir.path().join("hubgate.toml"),
            _dir: dir,
        };
        file.write(text);
        file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).expect("write the configuration file");
    }
}

/// A running `hubgate run --log-format json`, killed if a test fails before it stops it.
struct Hubgate {
    child: Child,
    /// stderr lines, forwarded by a reader thread; closed when the child exits.
    lines: mpsc::UnboundedReceiver<String>,
    /// Every stderr line received so far.
    stderr: Vec<String>,
    /// Strings no diagnostic may print (raw tokens), replaced by their fingerprints.
    secrets: Vec<String>,
    listen: SocketAddr,
    admin: SocketAddr,
}

impl Hubgate {
    /// Starts the binary on `config` with `RUST_LOG=rust_log`, and returns once it logged
    /// "hubgate serving" with the addresses it bound.
    async fn start(config: &Path, rust_log: &str, secrets: &[&str]) -> Hubgate {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hubgate"))
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hubgate run");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || forward_lines(stderr, tx));
        let mut hubgate = Hubgate {
            child,
            lines,
            stderr: Vec::new(),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            listen: any_port(),
            admin: any_port(),
        };
        let serving = hubgate
            .wait_for("hubgate serving", &["hubgate serving"])
            .await;
        hubgate.listen = address(&serving, "listen");
        hubgate.admin = address(&serving, "admin");
        hubgate
    }

    /// The next stderr line, or `None` once the child has closed stderr (it exited).
    async fn next_line(&mut self, waiting_for: &str) -> Option<String> {
        match tokio::time::timeout(PATIENCE, self.lines.recv()).await {
            Ok(line) => {
                self.stderr.extend(line.clone());
                line
            }
            Err(_) => panic!(
                "no {waiting_for:?} from hubgate within {PATIENCE:?}; its log so far:\n{}",
                self.recent()
            ),
        }
    }

    /// Reads the log up to the first event whose message starts with one of `messages`, and
    /// returns that event.
    async fn wait_for(&mut self, what: &str, messages: &[&str]) -> Value {
        while let Some(line) = self.next_line(what).await {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let message = event["message"].as_str().unwrap_or_default();
            if messages.iter().any(|m| message.starts_with(m)) {
                return event;
            }
        }
        panic!(
            "hubgate exited before {what:?}; its log:\n{}",
            self.recent()
        )
    }

    /// Sends `signal` (`HUP`, `TERM`) to the child.
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// SIGHUP, then the event that reports how the reload went.
    async fn reload(&mut self) -> Value {
        self.signal("HUP");
        self.wait_for("the reload outcome", &[RELOADED, REFUSED])
            .await
    }

    /// SIGTERM, then every stderr line up to the child's exit, which must be a clean one.
    async fn stop(mut self) -> Vec<String> {
        self.signal("TERM");
        while self.next_line("the end of stderr").await.is_some() {}
        let status = self.child.wait().expect("wait for hubgate");
        assert!(status.success(), "hubgate exited with {status:?}");
        std::mem::take(&mut self.stderr)
    }

    /// The last lines of the log, with every secret replaced by its fingerprint.
    fn recent(&self) -> String {
        let from = self.stderr.len().saturating_sub(30);
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(&self.stderr[from..].join("\n"), &secrets)
    }
}

impl Drop for Hubgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Forwards each stderr line (lossily decoded: a stray byte must not end the log) until EOF.
fn forward_lines(stderr: std::process::ChildStderr, tx: mpsc::UnboundedSender<String>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                if tx.send(text).is_err() {
                    return;
                }
            }
        }
    }
}

/// A socket address field of a log event.
fn address(event: &Value, field: &str) -> SocketAddr {
    event[field]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address {field:?} in {event}"))
}

/// `text` with every one of `secrets` replaced by its fingerprint, for failure messages.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret, &format!("<token {}>", fp(secret)))
    })
}

/// A token's fingerprint: what logs may show of it.
/// The fingerprint the access log shows: of the token's identity.
fn fp(token: &str) -> String {
    fingerprint(&hubgate::auth::identity::identity(token))
}

/// `future`'s output; a failure if it takes longer than [`PATIENCE`].
async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(output) => output,
        Err(_) => panic!("no {what} within {PATIENCE:?}"),
    }
}

/// `GET target` on a fresh connection, without credentials.
async fn get_plain(addr: SocketAddr, target: &str) -> Answer {
    send(addr, get(addr, target).body(empty()).expect("request")).await
}

/// `hubgate_config_reloads_total` on the admin listener: (success, error), absent as 0.
async fn reload_counts(admin: SocketAddr) -> (u64, u64) {
    let answer = get_plain(admin, "/metrics").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    let count = |result: &str| {
        let series = format!("hubgate_config_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |n| n.parse().expect("a counter value"))
    };
    (count("success"), count("error"))
}

/// The targets an upstream received, in order.
fn targets(upstream: &Upstream) -> Vec<String> {
    upstream.seen().into_iter().map(|s| s.target).collect()
}

/// One client connection kept open across requests (HTTP/1.1 keep-alive).
struct KeptConnection {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl KeptConnection {
    async fn open(addr: SocketAddr) -> KeptConnection {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to hubgate");
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("http1 handshake");
        tokio::spawn(connection);
        KeptConnection { addr, sender }
    }

    async fn get(&mut self, target: &str) -> Answer {
        self.sender
            .ready()
            .await
            .expect("the connection stays open");
        let request = get(self.addr, target).body(empty()).expect("request");
        let response = self.sender.send_request(request).await.expect("response");
        collect(response).await
    }
}

/// An answer the upstream's catch-all gave: 200, "0 bytes for {target}".
#[track_caller]
fn assert_echoed(answer: &Answer, target: &str, by: &str) {
    assert_eq!(answer.status, 200, "{target} via {by}: {}", answer.text());
    assert_eq!(answer.text(), format!("0 bytes for {target}"), "{target}");
}

/// A reload on SIGHUP changes where the very next request goes — on a new connection and on
/// one opened before the reload — while a request already at the old upstream finishes
/// there with its full answer, and the reload is counted as a success.
#[tokio::test]
async fn sighup_changes_routing_for_the_next_request_while_a_slow_one_completes() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let config = ConfigFile::new(&config_for(a.addr, ""));
    let mut hubgate = Hubgate::start(&config.path, "info", &[]).await;
    let mut kept = KeptConnection::open(hubgate.listen).await;
    assert_echoed(&kept.get("/before").await, "/before", "A");

    let held = get(hubgate.listen, "/hold").body(empty()).expect("request");
    let held = tokio::spawn(send(hubgate.listen, held));
    bounded("the held request at A", a.arrived.notified()).await;

    config.write(&config_for(b.addr, ""));
    let outcome = hubgate.reload().await;
    assert_eq!(outcome["message"], RELOADED, "{outcome}");
    assert_eq!(outcome["level"], "INFO", "{outcome}");

    assert_echoed(&get_plain(hubgate.listen, "/after").await, "/after", "B");
    assert_echoed(&kept.get("/again").await, "/again", "B");
    assert!(
        !held.is_finished(),
        "the held request finished before release"
    );

    a.release.notify_one();
    let answer = bounded("the held request's answer", held).await;
    let answer = answer.expect("the held request's task");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.text(),
        "released",
        "the held request's answer is A's"
    );

    assert_eq!(targets(&a), ["/before", "/hold"], "what reached A");
    assert_eq!(targets(&b), ["/after", "/again"], "what reached B");
    let metrics = get_plain(hubgate.admin, "/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"hubgate_config_reloads_total{result="success"} 1"#),
        "{metrics}"
    );
    assert_eq!(reload_counts(hubgate.admin).await, (1, 0));
    hubgate.stop().await;
}

/// A file with several problems is refused as a whole on SIGHUP: one ERROR line names every
/// problem by its key path, the previous configuration keeps routing, and the refusal is
/// counted as an error. Fixing the file and sending SIGHUP again applies it.
#[tokio::test]
async fn sighup_with_a_broken_file_keeps_the_old_configuration() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let config = ConfigFile::new(&config_for(a.addr, ""));
    let mut hubgate = Hubgate::start(&config.path, "info", &[]).await;
    assert_echoed(&get_plain(hubgate.listen, "/first").await, "/first", "A");

    // Points at B too: had any of it been applied, the next request would reach B.
    let broken = config_for(b.addr, "lisen_backlog = 10")
        + "\n[cache]\nttl = \"30 seconds\"\n\n[[routes]]\nprefix = \"/extra\"\nupstream = \"yt\"\n";
    config.write(&broken);
    let outcome = hubgate.reload().await;
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(REFUSED), "{outcome}");
    assert_eq!(outcome["level"], "ERROR", "{outcome}");
    assert!(message.contains("hubgate.toml: 3 problems"), "{message}");
    assert_eq!(message.matches("\n  - ").count(), 3, "{message}");
    for problem in [
        "unknown key server.lisen_backlog",
        "cache.ttl: \"30 seconds\" is not a duration",
        "].upstream: no upstream named \"yt\"",
    ] {
        assert!(message.contains(problem), "{problem:?} missing: {message}");
    }

    assert_echoed(&get_plain(hubgate.listen, "/second").await, "/second", "A");
    assert_eq!(reload_counts(hubgate.admin).await, (0, 1));

    config.write(&config_for(b.addr, ""));
    let outcome = hubgate.reload().await;
    assert_eq!(outcome["message"], RELOADED, "{outcome}");
    assert_echoed(&get_plain(hubgate.listen, "/third").await, "/third", "B");
    assert_eq!(reload_counts(hubgate.admin).await, (1, 1));

    assert_eq!(targets(&a), ["/first", "/second"], "what reached A");
    assert_eq!(targets(&b), ["/third"], "what reached B");
    hubgate.stop().await;
}

/// One scripted request and the access line it must produce.
struct Case {
    what: &'static str,
    http2: bool,
    target: &'static str,
    token: Option<String>,
    /// The `X-Request-Id` the client sends; without one the gateway makes one up.
    request_id: Option<&'static str>,
    status: u16,
    route: &'static str,
    auth: &'static str,
    cache: Option<&'static str>,
    login: Option<&'static str>,
}

impl Case {
    fn request(&self, addr: SocketAddr) -> Request<Empty<Bytes>> {
        let mut builder = if self.http2 {
            Request::get(format!("http://{addr}{}", self.target))
        } else {
            get(addr, self.target)
        };
        if let Some(token) = &self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(id) = self.request_id {
            builder = builder.header("x-request-id", id);
        }
        builder.body(empty()).expect("request")
    }

    async fn send(&self, addr: SocketAddr) -> Answer {
        let request = self.request(addr);
        if self.http2 {
            support::h2c::send(addr, request).await
        } else {
            send(addr, request).await
        }
    }

    /// The path the access line must show: the target without its query.
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// The scripted requests: every outcome a token can have, a request without a token, a
/// public page with a query, and HTTP/2 as well as HTTP/1.1.
fn script(sim: &Sim, garbage: &str) -> Vec<Case> {
    let demo = sim.demo();
    let case = |what, target, token: Option<&str>, status, route, auth| Case {
        what,
        http2: false,
        target,
        token: token.map(str::to_owned),
        request_id: None,
        status,
        route,
        auth,
        cache: None,
        login: None,
    };
    vec![
        Case {
            request_id: Some("ops-youtrack-first"),
            cache: Some("miss"),
            login: Some("alice"),
            ..case(
                "YouTrack token, first use",
                "/api/issues",
                Some(&demo.youtrack_only),
                200,
                "/api",
                "allowed",
            )
        },
        Case {
            cache: Some("hit"),
            login: Some("alice"),
            ..case(
                "YouTrack token, again",
                "/api/issues",
                Some(&demo.youtrack_only),
                200,
                "/api",
                "allowed",
            )
        },
        Case {
            request_id: Some("ops-hub-only"),
            cache: Some("miss"),
            ..case(
                "Hub-only token on the YouTrack API",
                "/api/issues",
                Some(&demo.hub_only),
                403,
                "/api",
                "insufficient_scope",
            )
        },
        Case {
            cache: Some("miss"),
            ..case(
                "garbage token",
                "/api/issues",
                Some(garbage),
                401,
                "/api",
                "invalid",
            )
        },
        Case {
            request_id: Some("ops-oauth-hub"),
            cache: Some("miss"),
            login: Some("alice"),
            ..case(
                "OAuth token with a space on the Hub API",
                "/hub/api/rest/users/me",
                Some(&demo.both_oauth),
                200,
                "/hub/api",
                "allowed",
            )
        },
        Case {
            http2: true,
            request_id: Some("ops-oauth-h2"),
            cache: Some("miss"),
            login: Some("alice"),
            ..case(
                "OAuth token with a space on the YouTrack API over HTTP/2",
                "/api/issues?$top=5",
                Some(&demo.both_oauth),
                200,
                "/api",
                "allowed",
            )
        },
        case(
            "no token on the YouTrack API",
            "/api/issues",
            None,
            401,
            "/api",
            "missing",
        ),
        Case {
            request_id: Some("ops-public"),
            ..case(
                "public page with a query",
                "/?q=secret-query",
                None,
                200,
                "/",
                "anonymous",
            )
        },
    ]
}

/// What must never appear in a log line: the raw token, the forms its space takes when
/// encoded, each of its space-separated halves, and its secret tail (after the last `.`).
fn needles(token: &str) -> Vec<String> {
    let mut needles = vec![
        token.to_owned(),
        token.replace(' ', "%20"),
        token.replace(' ', "+"),
    ];
    needles.extend(token.split(' ').map(str::to_owned));
    needles.extend(token.rsplit('.').next().map(str::to_owned));
    needles.retain(|n| n.len() >= 16);
    needles.dedup();
    needles
}

/// Who wrote a log line: its level and target (never its content, which may hold a token).
fn whose(line: &str) -> String {
    let event: Value = serde_json::from_str(line).unwrap_or_default();
    format!("{} {}", event["level"], event["target"])
}

/// The access line for the request whose `X-Request-Id` came back as `request_id`.
#[track_caller]
fn access_line<'a>(access: &'a [Value], request_id: &str, what: &str) -> &'a Value {
    let mut found = access.iter().filter(|l| l["request_id"] == request_id);
    match (found.next(), found.next()) {
        (Some(line), None) => line,
        (None, _) => panic!("{what}: no access line for request {request_id}"),
        (Some(_), Some(_)) => panic!("{what}: several access lines for request {request_id}"),
    }
}

/// Checks every field of one request's access line; failures show it with `tokens` redacted.
#[track_caller]
fn assert_access_line(line: &Value, case: &Case, tokens: &[&str]) {
    let what = case.what;
    let shown = redact(&line.to_string(), tokens);
    assert_eq!(line["level"], "INFO", "{what}: {shown}");
    assert_eq!(line["message"], "request", "{what}: {shown}");
    assert_eq!(line["client"], "127.0.0.1", "{what}: {shown}");
    assert_eq!(line["method"], "GET", "{what}: {shown}");
    assert_eq!(line["path"], case.path(), "{what}: {shown}");
    assert_eq!(line["route"], case.route, "{what}: {shown}");
    assert_eq!(line["status"], case.status, "{what}: {shown}");
    assert_eq!(line["auth"], case.auth, "{what}: {shown}");
    assert_eq!(line["cache"].as_str(), case.cache, "{what}: {shown}");
    assert_eq!(line["login"].as_str(), case.login, "{what}: {shown}");
    assert_eq!(line["complete"], true, "{what}: {shown}");
    assert!(line["duration_ms"].as_f64().is_some(), "{what}: {shown}");
    let bytes = line["bytes"].as_u64();
    assert!(bytes.is_some_and(|b| b > 0), "{what}: {shown}");
    let forwarded = case.status == 200;
    let upstream_ms = line["upstream_ms"].as_f64();
    assert_eq!(upstream_ms.is_some(), forwarded, "{what}: {shown}");
    match &case.token {
        Some(token) => {
            let field = line["token"].as_str().unwrap_or_default();
            let hex = field
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            assert!(field.len() == 12 && hex, "{what}: {shown}");
            assert_eq!(
                field,
                fp(token),
                "{what}: the fingerprint of the token sent"
            );
        }
        None => assert!(line.get("token").is_none(), "{what}: {shown}"),
    }
}

/// Every stderr line that holds token material, named by position and writer only.
fn leaks(stderr: &[String], tokens: &[&str]) -> Vec<String> {
    let mut leaks = Vec::new();
    for token in tokens {
        for needle in needles(token) {
            for (n, line) in stderr.iter().enumerate() {
                if line.contains(&needle) {
                    leaks.push(format!(
                        "stderr line {n} ({}) holds a {}-byte part of token {}",
                        whose(line),
                        needle.len(),
                        fp(token)
                    ));
                }
            }
        }
    }
    leaks
}

/// Every access line carries every field, with the token only as its 12-hex-digit
/// fingerprint and the path without its query; and with every crate logging at trace level
/// (hyper-util's client, h2, rustls through `log`), no line anywhere on stderr contains a raw
/// token or a recognisable part of one.
#[tokio::test]
async fn access_log_lines_carry_every_field_and_never_a_token() {
    let sim = Sim::start().await.expect("simulator");
    let garbage = "hubgate-test:not=a=token:Zm9vYmFyYmF6cXV4";
    let cases = script(&sim, garbage);
    let tokens: Vec<&str> = cases.iter().filter_map(|c| c.token.as_deref()).collect();
    assert!(
        tokens.iter().any(|t| t.contains(' ')),
        "a token with a space"
    );
    let config = ConfigFile::new(&config_for(sim.addr(), ""));
    let hubgate = Hubgate::start(&config.path, "trace", &tokens).await;

    let mut request_ids = Vec::new();
    for case in &cases {
        let answer = case.send(hubgate.listen).await;
        let body = redact(&answer.text(), &tokens);
        assert_eq!(answer.status, case.status, "{}: {body}", case.what);
        let id = answer.headers["x-request-id"].to_str().expect("ASCII id");
        match case.request_id {
            Some(sent) => assert_eq!(id, sent, "{}: the client's id is kept", case.what),
            None => assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: a generated id {id:?}",
                case.what
            ),
        }
        request_ids.push(id.to_owned());
    }
    let stderr = hubgate.stop().await;

    let leaks = leaks(&stderr, &tokens);
    assert!(leaks.is_empty(), "token material in the log: {leaks:#?}");
    let events: Vec<Value> = stderr
        .iter()
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("stderr line {n} is not JSON ({} bytes)", line.len()))
        })
        .collect();
    assert!(
        events.iter().any(|e| e["level"] == "TRACE"),
        "RUST_LOG=trace took effect"
    );
    let access: Vec<Value> = events
        .into_iter()
        .filter(|e| e["target"] == hubgate::access::TARGET)
        .collect();
    assert_eq!(access.len(), cases.len(), "one access line per request");
    for (case, id) in cases.iter().zip(&request_ids) {
        assert_access_line(access_line(&access, id, case.what), case, &tokens);
    }
    let first = access_line(&access, &request_ids[0], "first");
    let again = access_line(&access, &request_ids[1], "again");
    assert_eq!(first["token"], again["token"], "one token, one fingerprint");
    for line in &access {
        let text = line.to_string();
        assert!(!text.contains("secret-query"), "a query in an access line");
    }
}

/// The signal handlers exist before READY=1 and the "serving" line: a SIGHUP sent the moment
/// hubgate reports readiness reloads, repeatedly, instead of killing the process.
#[tokio::test]
async fn a_sighup_right_after_readiness_reloads_instead_of_killing() {
    let upstream = Upstream::start().await;
    let config = ConfigFile::new(&config_for(upstream.addr, ""));
    for _ in 0..5 {
        let mut hubgate = Hubgate::start(&config.path, "info", &[]).await;
        let outcome = hubgate.reload().await;
        assert_eq!(outcome["message"], RELOADED, "{outcome}");
        assert_eq!(reload_counts(hubgate.admin).await, (1, 0));
        hubgate.stop().await;
    }
}

/// A process's memory figure from `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unreadable {line:?}"));
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_multipart_upload_streams_through_in_bounded_memory() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 3200; // 200 MiB
    let sim = Sim::start().await.expect("simulator");
    let token = sim.demo().admin.clone();
    let config = ConfigFile::new(&config_for(sim.addr(), ""));
    let hubgate = Hubgate::start(&config.path, "info,hubgate::access=off", &[&token]).await;
    let pid = hubgate.child.id();
    let before = memory(pid, "VmRSS");

    let boundary = "hubgate-upload-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() + CHUNK * CHUNKS + tail.len();
    let (tx, body) = support::ChannelBody::new();
    let request = get(hubgate.listen, "/api/issues/DEMO-1/attachments?fields=id")
        .method("POST")
        .header("authorization", format!("Bearer {token}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", length)
        .body(body)
        .expect("request");
    let feeder = tokio::spawn(async move {
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        let chunks = (0..CHUNKS).map(|n| Bytes::from(vec![(n % 251) as u8; CHUNK]));
        let parts = std::iter::once(Bytes::from(head))
            .chain(chunks)
            .chain(std::iter::once(Bytes::from(tail)));
        for part in parts {
            hash.update(&part);
            tx.send(part).await.expect("sent");
        }
        hash.finish()
    });
    // A bound on a hang only: 200 MiB through a debug build takes a few seconds.
    let answer = tokio::time::timeout(Duration::from_secs(180), send(hubgate.listen, request))
        .await
        .expect("the upload's answer within 3 minutes");
    let sent_hash = feeder.await.expect("feeder");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let echo: Value = serde_json::from_slice(&answer.body).expect("echo JSON");
    assert_eq!(echo["body_length"], length as u64);
    let hex: String = sent_hash
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(echo["body_sha256"], hex);
    let peak = memory(pid, "VmHWM");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "200 MiB upload: gateway RSS {} MiB before, peak {} MiB, growth {} KiB",
        before >> 20,
        peak >> 20,
        growth >> 10
    );
    assert!(
        growth < 32 << 20,
        "the gateway's memory grew by {} MiB for a 200 MiB upload",
        growth >> 20
    );
    hubgate.stop().await;
}
