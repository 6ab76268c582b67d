//! A real `redis-server` (Debian package `redis-server`) for the fleet tests: one per test, on
//! a free loopback port, without persistence, in a temporary directory, killed on drop.
//!
//! Without `redis-server` the fleet tests skip themselves with a notice, so `cargo test` works
//! on a bare machine; CI sets `HUBGATE_REQUIRE_REDIS=1`, which makes a missing server a failure
//! instead of a silent skip.

use std::fs::File;
use std::io::Write as _;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The environment variable that turns "redis-server missing" from a skip into a failure.
pub const REQUIRE_ENV: &str = "HUBGATE_REQUIRE_REDIS";

/// How long a starting server may take to answer PING.
const START_PATIENCE: Duration = Duration::from_secs(10);

/// Whether `redis-server` can be run here.
pub fn redis_available() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `Some(())` when `redis-server` is there. Otherwise `None`, after a notice that `test` is
/// skipped — or a panic when `HUBGATE_REQUIRE_REDIS=1` (CI), where skipping would hide that
/// the fleet went untested.
pub fn require_redis(test: &str) -> Option<()> {
    if redis_available() {
        return Some(());
    }
    if std::env::var(REQUIRE_ENV).is_ok_and(|value| value == "1") {
        panic!(
            "redis-server not installed, and {REQUIRE_ENV}=1 requires it for {test}: \
             install it (Debian: apt-get install redis-server)"
        );
    }
    // Written to stderr directly: the test harness captures `eprintln!` of passing tests, and
    // a skip nobody sees is as bad as a silent one.
    let _ = writeln!(
        std::io::stderr(),
        "redis-server not installed: skipping {test}; set {REQUIRE_ENV}=1 to make this a failure"
    );
    None
}

/// A running `redis-server` on 127.0.0.1.
pub struct RedisServer {
    port: u16,
    /// `requirepass`, if the server was started with one.
    password: Option<String>,
    child: Option<Child>,
    /// Its working directory and log; removed with the server.
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server on a free port, answering PING.
    pub async fn start() -> RedisServer {
        RedisServer::start_on(free_port()).await
    }

    /// A server on `port` (e.g. the port of one killed before: a Redis that comes back).
    pub async fn start_on(port: u16) -> RedisServer {
        RedisServer::launch(port, None).await
    }

    /// A server on a free port that wants `password` (`requirepass`) before any command.
    /// The password must be plain (letters, digits, `-`, `_`).
    pub async fn start_with_password(password: &str) -> RedisServer {
        RedisServer::launch(free_port(), Some(password.to_owned())).await
    }

    async fn launch(port: u16, password: Option<String>) -> RedisServer {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        let log = File::create(dir.path().join("redis.log")).expect("redis-server log file");
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = &password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        let mut server = RedisServer {
            port,
            password,
            child: Some(child),
            dir,
        };
        server.wait_ready().await;
        server
    }

    /// `redis://127.0.0.1:{port}/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// [`RedisServer::url`] with the password in it, for the tests' own connections.
    pub fn url_with_password(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/0", self.port),
            None => self.url(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server at once (SIGKILL), as a crash would: connections break, nothing is
    /// saved. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Polls the real socket until the server answers PING; fails early if it exits.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                    panic!(
                        "redis-server on port {} exited ({status}):\n{log}",
                        self.port
                    );
                }
            }
            if answers_ping(self.port, self.password.as_deref()).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within {START_PATIENCE:?}",
                self.port
            );
            tokio::task::yield_now().await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now (the kernel's pick for port 0).
pub fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Whether a Redis on `port` answers `PING` with `+PONG` (not `-LOADING`, not a refusal),
/// after `AUTH password` when it has one.
async fn answers_ping(port: u16, password: Option<&str>) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let (command, expected) = match password {
            Some(password) => (
                format!("AUTH {password}\r\nPING\r\n"),
                b"+OK\r\n+PONG\r\n".as_slice(),
            ),
            None => ("PING\r\n".to_owned(), b"+PONG\r\n".as_slice()),
        };
        stream.write_all(command.as_bytes()).await.ok()?;
        let mut answer = vec![0u8; expected.len()];
        stream.read_exact(&mut answer).await.ok()?;
        Some(answer == expected)
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
