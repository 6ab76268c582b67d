//! The `hubgate` command: `run` serves, `check` validates a configuration like `nginx -t`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use hubgate::config::{Config, LogFormat, DEFAULT_CONFIG_PATH};
use hubgate::server::{ReloadHandle, Server, ShutdownHandle};
use hubgate::systemd;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::field::MakeExt;

#[derive(Parser)]
#[command(
    version,
    about = "Authentication gateway for JetBrains YouTrack and Hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with the given configuration until SIGTERM or SIGINT; SIGHUP reloads it.
    Run {
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Log format, instead of the configuration's `[log] format`.
        #[arg(long, value_enum)]
        log_format: Option<FormatArg>,
    },
    /// Validate the configuration, print the effective routes, exit 0 (valid) or 1.
    Check {
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Ask Hub, as the `[hub]` bot, for what the configuration needs.
    Hub {
        #[command(subcommand)]
        command: HubCommand,
    },
    /// Run the simulator and a gateway in front of it, and print curl lines to try.
    Demo {
        /// The gateway's port; the simulator takes the next one.
        #[arg(long, default_value_t = hubgate::demo::DEFAULT_PORT)]
        port: u16,
        /// Print the demo's configuration for a gateway in front of the simulator (or any
        /// upstream) at this address, and exit; `bench/run.sh` starts from it.
        #[arg(long, value_name = "ADDR")]
        print_config: Option<SocketAddr>,
        /// With --print-config: the gateway's listener.
        #[arg(long, requires = "print_config", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// With --print-config: the admin listener.
        #[arg(long, requires = "print_config", default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
    },
    /// Revoke a token or a user at a running gateway (and its fleet), optionally in Hub too.
    /// The token is read from a file or stdin (`-`), never from the command line.
    #[command(group(clap::ArgGroup::new("what").required(true)))]
    Revoke {
        /// The admin listener.
        #[arg(long, default_value = "http://127.0.0.1:9901")]
        admin: http::Uri,
        /// The file holding the admin token (`[admin] token_file`).
        #[arg(long)]
        admin_token_file: PathBuf,
        /// A file holding the token to revoke; `-` reads it from stdin.
        #[arg(long, group = "what")]
        token_file: Option<PathBuf>,
        /// The token's fingerprint as the access log shows it (12 to 64 hex digits).
        #[arg(long, group = "what")]
        fingerprint: Option<String>,
        /// Every token of this user (needs --ttl).
        #[arg(long, group = "what")]
        login: Option<String>,
        /// Also delete the token (or the user's tokens) in Hub.
        #[arg(long)]
        in_hub: bool,
        /// Why, for the list of revocations and the log.
        #[arg(long)]
        reason: Option<String>,
        /// How long the revocation lasts ("24h", or seconds); tokens default to forever.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Run the YouTrack + Hub simulator (seeded demo users and tokens) until Ctrl-C.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Benchmark mode: the echo answers a small fixed body, only warnings are logged, and
        /// GET /sim/stats reports probe and echo counters. Token checks are unchanged.
        #[arg(long)]
        fast: bool,
        /// Delay before Hub answers, probes included (e.g. "2ms").
        #[arg(long, value_parser = hubgate::config::parse_duration)]
        hub_latency: Option<std::time::Duration>,
        /// Mint this many permanent tokens for alice (YouTrack scope) at start.
        #[arg(long, requires = "bench_token_file")]
        bench_tokens: Option<u64>,
        /// Where the minted tokens go, one per line (written before the banner is printed).
        #[arg(long, requires = "bench_tokens")]
        bench_token_file: Option<PathBuf>,
        /// Worker threads (default: one per CPU core).
        #[arg(long)]
        workers: Option<usize>,
    },
}

/// `hubgate hub …`: both read `[hub] url` and `admin_token_file` from the configuration.
#[derive(Subcommand)]
enum HubCommand {
    /// Print the `[services.youtrack]` and `[services.hub]` tables for this Hub.
    Discover {
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Register a client service in Hub; write its secret to a new 0600 file, print its ID.
    Register {
        /// The service's name in Hub.
        #[arg(long)]
        name: String,
        /// The service's home URL (also its one redirect URI).
        #[arg(long)]
        home_url: String,
        /// Where the client secret goes (created with mode 0600).
        #[arg(long)]
        secret_file: PathBuf,
        /// Replace an existing secret file.
        #[arg(long)]
        force: bool,
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, log_format } => run(&config, log_format),
        Command::Check { config } => check(&config),
        Command::Hub { command } => hub(command),
        Command::Revoke {
            admin,
            admin_token_file,
            token_file,
            fingerprint,
            login,
            in_hub,
            reason,
            ttl,
        } => {
            use hubgate::revocation::client::{RevokeCommand, What};
            let what = match (token_file, fingerprint, login) {
                (Some(file), _, _) => Some(What::TokenFile(file)),
                (_, Some(fingerprint), _) => Some(What::Fingerprint(fingerprint)),
                (_, _, Some(login)) => Some(What::Login(login)),
                (None, None, None) => None,
            };
            match what {
                Some(what) => revoke(RevokeCommand {
                    admin,
                    admin_token_file,
                    what,
                    reason,
                    ttl,
                    in_hub,
                }),
                None => Err(anyhow::anyhow!(
                    "give --token-file, --fingerprint or --login"
                )),
            }
        }
        Command::Sim {
            listen,
            fast,
            hub_latency,
            bench_tokens,
            bench_token_file,
            workers,
        } => sim(SimOptions {
            listen,
            fast,
            hub_latency,
            bench_tokens: bench_tokens.zip(bench_token_file),
            workers,
        }),
        Command::Demo {
            print_config: Some(upstream),
            listen,
            admin,
            ..
        } => {
            print!(
                "{}",
                hubgate::demo::config_text(listen, admin, upstream, "")
            );
            Ok(())
        }
        Command::Demo { port, .. } => demo(port),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hubgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (the journal under systemd); `RUST_LOG`, when set, wins over `level`.
fn init_tracing(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(plain_fields())
            .init(),
    }
}

/// Text-format fields as `name=value`, like the default formatter but without its styling of
/// names, which cost about as much as the rest of an access line (measured: 8,500 of the
/// 21,000 instructions of one line, even with ANSI colours off).
fn plain_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{field}={value:?}")
        }
    })
    .delimited(" ")
}

fn run(path: &Path, log_format: Option<FormatArg>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let format = match log_format {
        Some(FormatArg::Json) => LogFormat::Json,
        Some(FormatArg::Text) => LogFormat::Text,
        None => config.log.format,
    };
    init_tracing(&config.log.level, format);
    runtime_with(config.server.workers)?.block_on(async {
        let server = Server::bind(&config).await?;
        // Handlers exist before READY=1: a signal that early must not hit its default action.
        let signals = Signals::install()?;
        tokio::spawn(stop_on_signal(server.shutdown_handle(), signals.stop));
        tokio::spawn(reload_on_hangup(server.reload_handle(), signals.hangup));
        let (listen, admin) = (server.local_addr(), server.admin_addr());
        tracing::info!(%listen, %admin, "loading revocations");
        let cut = server
            .run_with(|| {
                systemd::ready();
                let config = path.display();
                tracing::info!(%listen, %admin, %config, "hubgate serving");
            })
            .await;
        tracing::info!(cut, "hubgate stopped");
        Ok(())
    })
}

/// The signals `run` handles, installed before it reports readiness.
struct Signals {
    stop: (Signal, Signal),
    hangup: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot install the {name} handler"))
        };
        Ok(Signals {
            stop: (
                install(SignalKind::terminate(), "SIGTERM")?,
                install(SignalKind::interrupt(), "SIGINT")?,
            ),
            hangup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// SIGHUP reloads the configuration and TLS certificates (`systemctl reload hubgate`).
async fn reload_on_hangup(reload: ReloadHandle, mut hangup: Signal) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the configuration");
        // The outcome is logged and counted by the reload itself.
        let _ = reload.reload().await;
    }
}

/// SIGTERM or SIGINT starts a graceful shutdown; a second one closes what is still open.
async fn stop_on_signal(shutdown: ShutdownHandle, (mut term, mut int): (Signal, Signal)) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received: draining"),
        _ = int.recv() => tracing::info!("SIGINT received: draining"),
    }
    systemd::stopping();
    shutdown.shutdown();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second signal: closing open connections now");
    shutdown.force();
}

/// Validates the file, and loads what a start would load (TLS certificates, upstream CAs).
fn check(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    hubgate::live::Generation::new(config.clone(), &hubgate::live::Common::default(), None)?;
    print!("{}", config.describe());
    for warning in config.warnings() {
        eprintln!("hubgate: {}: warning: {warning}", path.display());
    }
    println!(
        "hubgate: configuration file {} test is successful",
        path.display()
    );
    Ok(())
}

fn hub(command: HubCommand) -> anyhow::Result<()> {
    init_tracing("warn", LogFormat::Text);
    match command {
        HubCommand::Discover { config } => hub_discover(&config),
        HubCommand::Register {
            name,
            home_url,
            secret_file,
            force,
            config,
        } => hub_register(&config, &name, &home_url, &secret_file, force),
    }
}

/// A Hub admin client from the configuration's `[hub]` (and `[introspection] ca_file`).
fn hub_client(path: &Path) -> anyhow::Result<hubgate::hub::HubClient> {
    let config = Config::load(path)?;
    let Some(hub) = &config.hub else {
        anyhow::bail!(
            "{}: no [hub] section: set hub.url (Hub's base URL, e.g. \
             \"https://youtrack.example.com/hub\") and hub.admin_token_file (a file holding a \
             permanent token with YouTrack Administration scope)",
            path.display()
        );
    };
    Ok(hubgate::hub::HubClient::new(
        hub,
        config.introspection.ca_file.as_deref(),
    )?)
}

/// Prints the ready-to-paste `[services.*]` block.
fn hub_discover(path: &Path) -> anyhow::Result<()> {
    let client = hub_client(path)?;
    let services = runtime()?.block_on(client.services())?;
    print!(
        "{}",
        hubgate::hub::discover::render(client.base(), &services)?
    );
    Ok(())
}

/// Registers the service; the secret goes only to `secret_file`, the ID to stdout.
fn hub_register(
    path: &Path,
    name: &str,
    home_url: &str,
    secret_file: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let web = home_url.parse::<http::Uri>().ok().is_some_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
    });
    anyhow::ensure!(
        web,
        "--home-url {home_url:?} is not an absolute http(s) URL"
    );
    let client = hub_client(path)?;
    // Claimed first: a file problem must not strand a secret Hub has just issued.
    let file = hubgate::hub::secret_file::SecretFile::reserve(secret_file, force)?;
    let registered = runtime()?.block_on(client.register(name, home_url))?;
    file.commit(&registered.secret).with_context(|| {
        format!(
            "service {} registered, but its secret could not be written; \
             generate a new one in Hub",
            registered.id
        )
    })?;
    println!("{}", registered.id);
    eprintln!(
        "hubgate: registered service {name:?} in Hub; its secret is in {} (mode 0600)",
        secret_file.display()
    );
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// A runtime with `workers` threads (`None`: one per CPU core).
fn runtime_with(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The simulator and a gateway in front of it, until Ctrl-C.
fn demo(port: u16) -> anyhow::Result<()> {
    init_tracing("info", LogFormat::Text);
    runtime()?.block_on(async {
        let demo = hubgate::demo::start(port).await?;
        print!("{}", demo.banner());
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        demo.shutdown.shutdown();
        demo.stopped.await.context("gateway task")?;
        Ok(())
    })
}

/// Sends the revocation and prints the admin API's answer (JSON).
fn revoke(command: hubgate::revocation::client::RevokeCommand) -> anyhow::Result<()> {
    let answer = runtime()?.block_on(command.run())?;
    println!("{}", answer.trim_end());
    Ok(())
}

/// `hubgate sim`'s options.
struct SimOptions {
    listen: SocketAddr,
    fast: bool,
    hub_latency: Option<std::time::Duration>,
    /// How many tokens to mint, and the file they go to.
    bench_tokens: Option<(u64, PathBuf)>,
    workers: Option<usize>,
}

/// The simulator as a process, for manual trials and benchmarks.
fn sim(options: SimOptions) -> anyhow::Result<()> {
    let listen = options.listen;
    init_tracing(if options.fast { "warn" } else { "info" }, LogFormat::Text);
    runtime_with(options.workers)?.block_on(async {
        let sim = hubgate::sim::Sim::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        sim.set_fast(options.fast);
        if let Some(latency) = options.hub_latency {
            sim.set_hub_latency(latency);
        }
        if let Some((count, path)) = &options.bench_tokens {
            let write = || -> std::io::Result<()> {
                let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
                sim.mint_bench_tokens(*count, &mut out)?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()
            };
            write().with_context(|| format!("cannot write {}", path.display()))?;
        }
        print!("{}", sim_banner(&sim));
        if let Some((count, path)) = &options.bench_tokens {
            println!(
                "  {count} bench tokens (alice, YouTrack only) in {}",
                path.display()
            );
        }
        if options.fast {
            println!(
                "  fast mode: small fixed echo; counters at {}{}",
                sim.url(),
                hubgate::sim::STATS_PATH
            );
        }
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        Ok(())
    })
}

/// What `hubgate sim` prints: where it listens and its seeded demo credentials.
fn sim_banner(sim: &hubgate::sim::Sim) -> String {
    use hubgate::sim::{HUB_SERVICE_ID, YOUTRACK_SERVICE_ID};
    let demo = sim.demo();
    format!(
        "hubgate simulator (YouTrack + Hub) on {url}
  services: YouTrack {YOUTRACK_SERVICE_ID}, Hub {HUB_SERVICE_ID}
  users (login/password): admin/admin (administrator), alice/alice, bob/bob (banned), guest
  client (for oauth2/token and {rfc}): {id} / {secret}
  demo tokens (simulator-only, minted at start):
    alice, YouTrack only (perm:):   {yt}
    alice, Hub only (perm-):        {hub}
    alice, OAuth, YouTrack + Hub:   {both}
    alice, deleted in Hub:          {revoked}
    bob (banned), YouTrack + Hub:   {banned}
    admin, Hub + YouTrack:          {admin}
  try: curl -s {url}/api/users/me -H 'Authorization: Bearer {yt}'
Ctrl-C stops it.
",
        url = sim.url(),
        rfc = hubgate::sim::RFC7662_PATH,
        id = demo.client_id,
        secret = demo.client_secret,
        yt = demo.youtrack_only,
        hub = demo.hub_only,
        both = demo.both_oauth,
        revoked = demo.revoked,
        banned = demo.banned,
        admin = demo.admin,
    )
}
