//! `hubgate demo`: the simulator and a gateway in front of it on fixed loopback ports, with
//! ready-to-paste `curl` lines for tokens of each kind and the status each will get.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::Config;
use crate::server::{Server, ShutdownHandle, StartError};
use crate::sim::Sim;

/// The gateway's port unless `--port` moves it; the simulator listens on the next one, the
/// admin listener on the one after.
pub const DEFAULT_PORT: u16 = 8080;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("port {port} on 127.0.0.1 is taken ({cause}); move the demo with --port")]
    PortTaken { port: u16, cause: std::io::Error },
    #[error("demo configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// One request the demo suggests, and the status the gateway gives it.
#[derive(Debug, Clone)]
pub struct DemoLine {
    pub what: &'static str,
    pub method: &'static str,
    pub path: String,
    pub bearer: Option<String>,
    /// HTTP Basic user and password (the IDE clients' credentials).
    pub basic: Option<(String, String)>,
    /// HTTP Basic client credentials and a form body (the OAuth token endpoint).
    pub basic_form: Option<(String, String, &'static str)>,
    pub status: u16,
}

impl DemoLine {
    /// The line as a shell command (single-quoted: tokens contain spaces, `$` appears in URLs).
    pub fn curl(&self, gateway: SocketAddr) -> String {
        let mut line = format!("curl -i --path-as-is 'http://{gateway}{}'", self.path);
        if self.method != "GET" {
            line.push_str(&format!(" -X {}", self.method));
        }
        if let Some(token) = &self.bearer {
            line.push_str(&format!(" -H 'Authorization: Bearer {token}'"));
        }
        if let Some((user, password)) = &self.basic {
            line.push_str(&format!(" -u '{user}:{password}'"));
        }
        if let Some((id, secret, form)) = &self.basic_form {
            line.push_str(&format!(" -u '{id}:{secret}' -d '{form}'"));
        }
        line
    }
}

/// A running demo.
pub struct Demo {
    pub sim: Sim,
    pub gateway: SocketAddr,
    pub admin: SocketAddr,
    pub shutdown: ShutdownHandle,
    pub stopped: tokio::task::JoinHandle<usize>,
    pub lines: Vec<DemoLine>,
}

/// The gateway configuration the demo runs with: the shipped routes of a YouTrack with its
/// built-in Hub ([`crate::config::YOUTRACK_ROUTES`]), with `upstream` (the
/// simulator) as YouTrack and Hub, the admin listener on `admin`; `server_extra` lines are
/// added to `[server]`.
pub fn config_text(
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: SocketAddr,
    server_extra: &str,
) -> String {
    let sim = upstream;
    format!(
        r#"[server]
listen = "{listen}"
{server_extra}

[admin]
listen = "{admin}"

[upstreams.youtrack]
url = "http://{sim}"

[services.youtrack]
id = "{yt}"
probe = "http://{sim}/api/users/me?fields=id,login,name,banned,guest"

[services.hub]
id = "{hub}"
probe = "http://{sim}/hub/api/rest/users/me?fields=id,login,name,banned,guest"

{routes}"#,
        yt = crate::sim::YOUTRACK_SERVICE_ID,
        hub = crate::sim::HUB_SERVICE_ID,
        routes = crate::config::YOUTRACK_ROUTES,
    )
}

fn lines(sim: &Sim) -> Vec<DemoLine> {
    let demo = sim.demo();
    let line = |what, path: &str, bearer: Option<&String>, status| DemoLine {
        what,
        method: "GET",
        path: path.to_owned(),
        bearer: bearer.cloned(),
        basic: None,
        basic_form: None,
        status,
    };
    let basic = |what, user: &str, password: &str, status| DemoLine {
        basic: Some((user.to_owned(), password.to_owned())),
        ..line(what, "/api/users/me?fields=login,name", None, status)
    };
    let app_password = sim
        .create_app_password("alice", "demo: IntelliJ tasks")
        .unwrap_or_default();
    let signed = sim.signed_file_url("alice", std::time::Duration::from_secs(24 * 3600));
    let unsigned = signed
        .split_once('?')
        .map_or(signed.as_str(), |(path, _)| path);
    vec![
        line(
            "alice's YouTrack-only token on the YouTrack API",
            "/api/users/me?fields=login,name",
            Some(&demo.youtrack_only),
            200,
        ),
        line(
            "the same token on the Hub API: wrong scope",
            "/hub/api/rest/users/me",
            Some(&demo.youtrack_only),
            403,
        ),
        line(
            "alice's Hub-only perm- token on the Hub API",
            "/hub/api/rest/users/me?fields=login",
            Some(&demo.hub_only),
            200,
        ),
        line(
            "the same token on the YouTrack API: wrong scope",
            "/api/issues?$top=5",
            Some(&demo.hub_only),
            403,
        ),
        line(
            "an OAuth token for both services (it contains a space)",
            "/api/issues?$top=5",
            Some(&demo.both_oauth),
            200,
        ),
        line(
            "the same OAuth token on the Hub API",
            "/hub/api/rest/users/me?fields=login",
            Some(&demo.both_oauth),
            200,
        ),
        basic(
            "the IDE plugin's Basic credentials: a token as the password",
            "random",
            &demo.youtrack_only,
            200,
        ),
        basic(
            "IntelliJ Tasks' Basic credentials: login and application password",
            "alice",
            &app_password,
            200,
        ),
        basic("Basic with a wrong password", "alice", "wrong", 401),
        line(
            "a token deleted in Hub",
            "/api/issues",
            Some(&demo.revoked),
            401,
        ),
        line(
            "a banned user's token",
            "/api/issues",
            Some(&demo.banned),
            401,
        ),
        line("no token on a protected route", "/api/issues", None, 401),
        line(
            "the mobile app's discovery needs no token (capability route)",
            "/api/config?fields=ring(url,serviceId),version",
            None,
            200,
        ),
        line(
            "the web UI's backend check needs no token",
            "/hub/api/rest/settings/public?fields=id",
            None,
            200,
        ),
        line(
            "a signed attachment link, as an <img> loads it: YouTrack checks the sign",
            &signed,
            None,
            200,
        ),
        line("the same attachment without its sign", unsigned, None, 401),
        line(
            "an ambiguous path, refused before any token check",
            "/api/../hub/api/rest/users",
            Some(&demo.youtrack_only),
            400,
        ),
        line("the web UI's public pages need no token", "/", None, 200),
        DemoLine {
            what: "the OAuth token endpoint: client credentials, no bearer",
            method: "POST",
            path: "/hub/api/rest/oauth2/token".to_owned(),
            bearer: None,
            basic: None,
            basic_form: Some((
                demo.client_id.clone(),
                demo.client_secret.clone(),
                "grant_type=client_credentials",
            )),
            status: 200,
        },
    ]
}

async fn bind_check(port: u16) -> Result<(), DemoError> {
    if port == 0 {
        return Ok(());
    }
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map(drop)
        .map_err(|cause| DemoError::PortTaken { port, cause })
}

/// Starts the gateway on `port`, the simulator on `port + 1` and the admin listener on
/// `port + 2` (all ephemeral for 0).
pub async fn start(port: u16) -> Result<Demo, DemoError> {
    let next = |n: u16| if port == 0 { 0 } else { port.wrapping_add(n) };
    let (sim_port, admin_port) = (next(1), next(2));
    bind_check(port).await?;
    bind_check(admin_port).await?;
    let sim = Sim::bind(SocketAddr::from(([127, 0, 0, 1], sim_port)))
        .await
        .map_err(|cause| DemoError::PortTaken {
            port: sim_port,
            cause,
        })?;
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    let config = Config::parse(
        &config_text(listen, admin, sim.addr(), ""),
        Path::new("demo"),
    )
    .map_err(|e| DemoError::Config(e.to_string()))?;
    let server = Server::bind(&config).await.map_err(|e| match e {
        StartError::Bind { cause, .. } => DemoError::PortTaken { port, cause },
        other => DemoError::Start(other),
    })?;
    let gateway = server.local_addr();
    let admin = server.admin_addr();
    let shutdown = server.shutdown_handle();
    let stopped = tokio::spawn(server.run());
    let lines = lines(&sim);
    Ok(Demo {
        sim,
        gateway,
        admin,
        shutdown,
        stopped,
        lines,
    })
}

impl Demo {
    /// What `hubgate demo` prints.
    pub fn banner(&self) -> String {
        let mut text = format!(
            "hubgate demo: gateway on http://{} in front of the YouTrack + Hub simulator on {}\n\
             (simulator-only demo tokens; `hubgate sim` documents them)\n\n",
            self.gateway,
            self.sim.url()
        );
        for line in &self.lines {
            text.push_str(&format!(
                "# {}  {}\n{}\n\n",
                line.status,
                line.what,
                line.curl(self.gateway)
            ));
        }
        text.push_str(&format!(
            "# the admin listener: metrics (also /healthz and /readyz)\n\
             curl -s http://{}/metrics\n\n\
             # the web UI, played by the simulator through the gateway (log in as alice/alice)\n\
             http://{}/sim/webui?user=alice&password=alice\n\n\
             One access line per request goes to stderr. Ctrl-C stops the demo.\n",
            self.admin, self.gateway
        ));
        text
    }
}
