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
use winsink_policy::{LogFormat as ConfigFormat, Policy};
use winsink_server::{bind, LogFormat, LogTarget, QueryLog, Server, ServerConfig, ServerError};

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

pub(crate) fn run(args: RunArgs) -> ExitCode {
    init_tracing();
    let source = ConfigSource::discover(args.config.as_deref());
    info!("{}", source.describe());
    let loaded = match source
        .load()
        .with_context(|| format!("{source} does not load"))
    {
        Ok(l) => l,
        Err(e) => {
            error!("{e:#}");
            return ExitCode::from(crate::EXIT_INPUT);
        }
    };
    for w in &loaded.warnings {
        warn!("{w}");
    }
    let policy = loaded.policy;

    // Flags replace the config's values; they are start-time settings, so a reload of
    // the config never undoes them.
    let mut server_settings = policy.server().clone();
    if !args.listen.is_empty() {
        server_settings.listen = args.listen.clone();
    }
    if !args.upstream.is_empty() {
        server_settings.upstreams = args.upstream.clone();
    }
    let config = match ServerConfig::from_settings(&server_settings, policy.cache()) {
        Ok(c) => c,
        Err(e) => {
            // Name where the bad value came from: the flag replaces the file's list.
            if args.upstream.is_empty() {
                error!("{source}: {e}");
            } else {
                error!("--upstream: {e}");
            }
            return ExitCode::from(crate::EXIT_INPUT);
        }
    };

    let log_settings = policy.log().clone();
    let target = log_settings
        .file
        .clone()
        .map_or(LogTarget::Stdout, LogTarget::File);
    let format = match (args.log_format, log_settings.format) {
        (Some(LogFormatArg::Json), _) | (None, ConfigFormat::Json) => LogFormat::Json,
        (Some(LogFormatArg::Pretty), _) | (None, ConfigFormat::Pretty) => LogFormat::Pretty,
        (None, ConfigFormat::Auto)
            if target == LogTarget::Stdout && std::io::stdout().is_terminal() =>
        {
            LogFormat::Pretty
        }
        (None, ConfigFormat::Auto) => LogFormat::Json,
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
    let watch = crate::reload::Watch {
        config: source,
        files: loaded.files,
        warnings: loaded.warnings,
    };
    let result = runtime.block_on(serve(
        server_settings,
        config,
        policy,
        target,
        format,
        log_settings.queue,
        watch,
    ));
    // Tasks abandoned by the drain must not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
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

async fn serve(
    settings: winsink_policy::ServerSettings,
    config: ServerConfig,
    policy: Policy,
    target: LogTarget,
    format: LogFormat,
    queue: usize,
    watch: crate::reload::Watch,
) -> anyhow::Result<()> {
    let listeners = bind(&settings.listen, settings.udp_sockets)?;
    let listening: Vec<String> = listeners
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let log = Arc::new(QueryLog::start(&target, format, queue)?);
    let upstreams: Vec<String> = config.upstreams.iter().map(ToString::to_string).collect();
    info!(
        rules = policy.rule_count(),
        upstreams = %upstreams.join(", "),
        "winsink {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let server = Server::new(config, Arc::new(ArcSwap::from_pointee(policy)), log.clone());
    let shutdown = CancellationToken::new();
    crate::signals::on_terminate(shutdown.clone());
    let reloader = crate::reload::start(watch, server.policy(), shutdown.clone());
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
    // Says how many lines were dropped over the run, if any.
    log.close();
    Ok(result?)
}
