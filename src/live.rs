//! The configuration in force, and its replacement on SIGHUP or `POST /reload`. A reload reads
//! the file again and loads the TLS certificates again; if anything is wrong, every problem is
//! logged and counted and the running configuration keeps serving. A new configuration serves
//! the next request — on open connections too — while requests in flight finish with the one
//! they started with; the verdict cache carries over unless its meaning changed.

use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio_rustls::TlsAcceptor;

use crate::config::{self, Config, ConfigError};
use crate::metrics::Metrics;
use crate::proxy::State;
use crate::revocation::set::RevocationSet;
use crate::systemd;
use crate::tls::{self, TlsError};

/// hyper's HTTP/1 read buffer cannot be smaller than this.
const MIN_BUF_SIZE: usize = 8192;

/// What outlives every configuration: the metrics and the revocations in force.
#[derive(Clone, Default)]
pub struct Common {
    pub metrics: Arc<Metrics>,
    pub revocations: Arc<RevocationSet>,
}

/// Everything built from one configuration.
pub struct Generation {
    pub config: Config,
    pub state: State,
    /// Used for connections accepted while this generation is current.
    pub tls: Option<TlsAcceptor>,
    pub http: auto::Builder<TokioExecutor>,
}

impl Generation {
    /// `previous`: the generation being replaced (its verdict cache may carry over).
    pub fn new(
        config: Config,
        common: &Common,
        previous: Option<&Generation>,
    ) -> Result<Generation, TlsError> {
        let tls = match &config.server.tls {
            Some(files) => Some(TlsAcceptor::from(tls::server_config(
                &files.cert,
                &files.key,
            )?)),
            None => None,
        };
        let state = State::new(&config, common, previous.map(|p| &p.state))?;
        Ok(Generation {
            http: http_builder(&config.server),
            config,
            state,
            tls,
        })
    }
}

/// hyper's server with every limit of `[server]` switched on (hyper has none by default).
fn http_builder(limits: &config::Server) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the configuration was not read from a file: nothing to reload")]
    NoSource,
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The current generation, swapped whole by [`Live::reload`].
pub struct Live {
    current: ArcSwap<Generation>,
    common: Common,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    pub fn new(generation: Generation, common: Common) -> Live {
        Live {
            current: ArcSwap::from_pointee(generation),
            common,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.common.metrics
    }

    pub fn common(&self) -> &Common {
        &self.common
    }

    /// Reads the configuration file again and, if it is sound, serves with it from the next
    /// request on. Counted in `hubgate_config_reloads_total` either way.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _one = self.reloading.lock().await;
        systemd::reloading();
        let result = self.replace();
        self.common.metrics.config_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!("configuration reloaded"),
            Err(error) => {
                tracing::error!("reload refused, the previous configuration keeps serving: {error}")
            }
        }
        systemd::ready();
        result
    }

    fn replace(&self) -> Result<(), ReloadError> {
        let old = self.current();
        let path = old.config.source.as_deref().ok_or(ReloadError::NoSource)?;
        let config = Config::load(path)?;
        for setting in restart_only_changes(&old.config, &config) {
            tracing::warn!("{setting} changed: it takes effect at the next restart");
        }
        let generation = Generation::new(config, &self.common, Some(&old))?;
        self.current.store(Arc::new(generation));
        Ok(())
    }
}

/// Settings a reload cannot apply: the listening sockets, the connection limit, the worker
/// threads, logging, and what the revocation service was started with.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("server.listen", old.server.listen != new.server.listen);
    check("admin.listen", old.admin.listen != new.admin.listen);
    check(
        "server.max_connections",
        old.server.max_connections != new.server.max_connections,
    );
    check("server.workers", old.server.workers != new.server.workers);
    check(
        "admin.state_dir",
        old.admin.state_dir != new.admin.state_dir,
    );
    check("[hub]", old.hub != new.hub);
    check("[fleet]", old.fleet != new.fleet);
    check("log.level", old.log.level != new.log.level);
    check("log.format", old.log.format != new.log.format);
    changed
}
