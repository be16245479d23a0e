//! `winsink run`: the daemon.
//!
//! Loads the config exactly as `winsink check` does, applies the command-line overrides,
//! binds every listen address (a failure names the address and the OS error and exits
//! 1), then serves until SIGTERM or SIGINT: it stops accepting, lets queries in flight
//! finish (at most two seconds), flushes the query log and exits 0.
//!
//! Query lines go to stdout (or `log.file`); the daemon's own messages are `tracing`
//! events on stderr, filtered by `RUST_LOG` (default `info`, with hickory's crates at
//! `warn`). The first lines say where it listens: `listening on 127.0.0.1:5353 (udp x2,
//! tcp)`, with the real port when port 0 was asked for.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;
use winsink_policy::{LogFormat as ConfigFormat, Policy, Startup, Upstream};
use winsink_server::http::{bind_http, config_routes, ConfigFile, HttpConfig};
use winsink_server::tls::Certificate;
use winsink_server::{
    bind, bind_encrypted, LogFormat, LogTarget, Metrics, MetricsConfig, QueryLog, Server,
    ServerConfig, ServerError,
};

use crate::config_path::ConfigSource;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// One JSON object per line.
    Json,
    /// One human-readable line per query.
    Pretty,
}

/// `winsink run [--config FILE] [--listen ADDR:PORT]... [--upstream URL]... [--log-format F]`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The config file. Default: $WINSINK_CONFIG, else ./config/winsink.toml, else
    /// /etc/winsink/winsink.toml, else the built-in defaults (the shipped config); the
    /// first log line says which.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve DNS on this address, UDP and TCP (repeatable; replaces `server.listen`).
    /// Port 0 picks a free port, printed at start.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Forward to this upstream, `udp://IP:PORT` or `tcp://IP:PORT` (repeatable; replaces
    /// `server.upstreams`).
    #[arg(long, value_name = "URL")]
    upstream: Vec<String>,
    /// Query-log format (default: `log.format`, where `auto` means pretty on a terminal).
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormatArg>,
    /// Serve HTTP (`/metrics`, health, the JSON API) on this address, or `off`
    /// (repeatable; replaces `http.listen`). Port 0 picks a free port, printed at start.
    #[arg(long, value_name = "ADDR:PORT|off")]
    http: Vec<HttpArg>,
}

/// One `--http` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpArg {
    /// No HTTP listener.
    Off,
    /// Listen here.
    Addr(SocketAddr),
}

impl std::str::FromStr for HttpArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(Self::Off);
        }
        s.parse()
            .map(Self::Addr)
            .map_err(|_| format!("{s:?} is neither ADDR:PORT nor off"))
    }
}

/// The default `RUST_LOG`: hickory's crates log every request at `info`.
const DEFAULT_FILTER: &str = "info,hickory_server=warn,hickory_net=warn,hickory_proto=warn";

fn init_tracing() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The command-line values that replace the config's start-time settings. They are
/// applied at start and to every reload's settings, so a reload of the config never
/// undoes them, nor reports them as changes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    /// `--listen`.
    pub(crate) listen: Vec<SocketAddr>,
    /// `--upstream`, parsed.
    pub(crate) upstreams: Vec<Upstream>,
    /// `--log-format`.
    pub(crate) log_format: Option<ConfigFormat>,
    /// `--http`: the HTTP listen addresses (empty for `off`).
    pub(crate) http: Option<Vec<SocketAddr>>,
}

impl Overrides {
    /// The flags of `args`; a bad `--upstream` is an error naming the flag.
    fn of(args: &RunArgs) -> Result<Self, String> {
        let upstreams = args
            .upstream
            .iter()
            .map(|u| u.parse::<Upstream>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("--upstream: {e}"))?;
        Ok(Self {
            listen: args.listen.clone(),
            upstreams,
            log_format: args.log_format.map(|f| match f {
                LogFormatArg::Json => ConfigFormat::Json,
                LogFormatArg::Pretty => ConfigFormat::Pretty,
            }),
            http: (!args.http.is_empty()).then(|| {
                args.http
                    .iter()
                    .filter_map(|h| match h {
                        HttpArg::Addr(a) => Some(*a),
                        HttpArg::Off => None,
                    })
                    .collect()
            }),
        })
    }

    /// Replaces what the flags give in `startup`.
    pub(crate) fn apply(&self, mut startup: Startup) -> Startup {
        if !self.listen.is_empty() {
            startup.listen.clone_from(&self.listen);
        }
        if !self.upstreams.is_empty() {
            startup.upstreams.clone_from(&self.upstreams);
        }
        if let Some(format) = self.log_format {
            startup.log.format = format;
        }
        if let Some(http) = &self.http {
            startup.http.listen.clone_from(http);
        }
        startup
    }
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    init_tracing();
    let daemon = match prepare(&args) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::from(crate::EXIT_RUNTIME);
        }
    };
    crate::loaded_state::record(&daemon.watch.config, &daemon.policy);
    let result = runtime.block_on(daemon.serve());
    // Tasks abandoned by the drain must not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    crate::loaded_state::forget();
    match result {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e:#}");
            ExitCode::from(crate::EXIT_RUNTIME)
        }
    }
}

/// Phase one of `run`: the flags, the config found and loaded, the startup settings
/// checked; each failure logged, with the exit code of a config error.
fn prepare(args: &RunArgs) -> Result<Daemon, ExitCode> {
    let overrides = match Overrides::of(args) {
        Ok(o) => o,
        Err(e) => {
            error!("{e}");
            return Err(ExitCode::from(crate::EXIT_INPUT));
        }
    };
    let source = ConfigSource::discover(args.config.as_deref());
    info!("{}", source.describe());
    winsink_server::memory::tune();
    let loaded = match source
        .load()
        .with_context(|| format!("{source} does not load"))
    {
        Ok(l) => l,
        Err(e) => {
            error!("{e:#}");
            return Err(ExitCode::from(crate::EXIT_INPUT));
        }
    };
    for w in &loaded.warnings {
        warn!("{w}");
    }
    // The load's transient tables are freed: give their pages back.
    winsink_server::memory::release_freed();
    let startup = overrides.apply(loaded.startup);
    let config = match ServerConfig::from_startup(&startup) {
        Ok(c) => c,
        Err(e) => {
            error!("{source}: {e}");
            return Err(ExitCode::from(crate::EXIT_INPUT));
        }
    };
    let http = match HttpConfig::from_settings(&startup.http, None) {
        Ok(h) => h,
        Err(e) => {
            if overrides.http.is_some() {
                error!("--http: {e}");
            } else {
                error!("{source}: {e}");
            }
            return Err(ExitCode::from(crate::EXIT_INPUT));
        }
    };
    // The DoT and DoH certificate: a pair that does not load is a config error.
    let cert = match startup.tls.as_ref().map(Certificate::load).transpose() {
        Ok(c) => c,
        Err(e) => {
            error!("{source}: {e}");
            return Err(ExitCode::from(crate::EXIT_INPUT));
        }
    };
    if let Some(w) = cert
        .as_ref()
        .and_then(|c| c.validity_warning(std::time::SystemTime::now()))
    {
        warn!("{source}: {w}");
    }
    let (target, format) = query_log(&startup);
    Ok(Daemon {
        config,
        policy: loaded.policy,
        target,
        format,
        http,
        cert,
        watch: crate::reload::Watch {
            config: source,
            files: loaded.files,
            warnings: loaded.warnings,
            startup,
            overrides,
        },
    })
}

/// Where query lines go and in which format: `auto` is pretty on a terminal, else JSON.
fn query_log(startup: &Startup) -> (LogTarget, LogFormat) {
    let target = startup
        .log
        .file
        .clone()
        .map_or(LogTarget::Stdout, LogTarget::File);
    let format = match startup.log.format {
        ConfigFormat::Json => LogFormat::Json,
        ConfigFormat::Pretty => LogFormat::Pretty,
        ConfigFormat::Auto if target == LogTarget::Stdout && std::io::stdout().is_terminal() => {
            LogFormat::Pretty
        }
        ConfigFormat::Auto => LogFormat::Json,
    };
    (target, format)
}

/// What `winsink run` serves, once loaded.
struct Daemon {
    config: ServerConfig,
    policy: Policy,
    target: LogTarget,
    format: LogFormat,
    /// The metrics and API listener.
    http: HttpConfig,
    /// The certificate of the DoT and DoH listeners, when `[tls]` names one.
    cert: Option<Certificate>,
    /// For the reloader; holds the running [`Startup`] too.
    watch: crate::reload::Watch,
}

impl Daemon {
    async fn serve(self) -> anyhow::Result<()> {
        let Self {
            config,
            policy,
            target,
            format,
            http,
            cert,
            watch,
        } = self;
        let startup = &watch.startup;
        let mut listeners = bind(&startup.listen, startup.udp_sockets)?;
        listeners.encrypted = bind_encrypted(&startup.listen_tls, &startup.listen_https)?;
        let listening = as_text(&listeners.local_addrs());
        let http_listeners = bind_http(&http.listen)?;
        for a in http_listeners.local_addrs() {
            info!("http: serving /metrics, /healthz, /readyz and /api/v1/ on {a}");
        }
        let metrics = (!http.listen.is_empty()).then(|| {
            Arc::new(Metrics::new(&MetricsConfig {
                recent_queries: startup.http.recent_queries,
                microsoft_suffixes: startup.http.microsoft_suffixes.clone(),
            }))
        });
        let log = Arc::new(QueryLog::start(&target, format, startup.log.queue)?);
        let upstreams: Vec<String> = config.upstreams.iter().map(ToString::to_string).collect();
        info!(
            rules = policy.rule_count(),
            upstreams = %upstreams.join(", "),
            "winsink {} starting",
            env!("CARGO_PKG_VERSION")
        );
        let mut server = Server::new(config, Arc::new(ArcSwap::from_pointee(policy)), log.clone());
        if let Some(m) = &metrics {
            server = server.with_metrics(m.clone());
        }
        let shutdown = CancellationToken::new();
        if let (Some(cert), Some(files)) = (cert, &startup.tls) {
            let slot = Arc::new(ArcSwap::from_pointee(cert));
            server = server.with_tls(slot.clone());
            // Renewals (certbot, cert-manager) are picked up without a restart.
            crate::reload::cert::start(files.clone(), slot, shutdown.clone());
        }
        // The dashboard's toggles edit the file this process was started with.
        let config_file = ConfigFile {
            path: match &watch.config {
                ConfigSource::File(path, _) => Some(path.clone()),
                ConfigSource::Builtin => None,
            },
            token: http.has_token(),
            allow_changes: startup.http.allow_changes,
        };
        let http_task = server.http(&http).map(|app| {
            let changes = config_routes(app.state(), config_file);
            tokio::spawn(app.merge(changes).serve(http_listeners, shutdown.clone()))
        });
        crate::signals::on_terminate(shutdown.clone());
        let reloader =
            crate::reload::start(watch, server.policy(), metrics.clone(), shutdown.clone());
        // A list by URL that downloads a new copy reloads the policy, as an edit would.
        tokio::spawn(winsink_server::fetch::refresh(
            server.policy(),
            reloader.force.clone(),
            shutdown.clone(),
        ));
        crate::signals::on_hangup(reloader.force, log.clone(), shutdown.clone())
            .context("cannot listen for SIGHUP and SIGUSR1")?;
        let stopping = shutdown.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            crate::notify::stopping();
        });
        // The sockets are bound and the policy loaded: queries sent now are answered.
        crate::notify::ready(&format!("serving {}", listening.join(", ")));
        let result: Result<(), ServerError> = server.run(listeners, shutdown).await;
        if let Some(t) = http_task {
            let _ = t.await;
        }
        // Says how many lines were dropped over the run, if any.
        log.close();
        Ok(result?)
    }
}

/// Addresses as text, for the log.
fn as_text(addrs: &[SocketAddr]) -> Vec<String> {
    addrs.iter().map(ToString::to_string).collect()
}
