//! The daemon's signals: SIGTERM and SIGINT stop it gracefully, SIGHUP forces a reload of
//! the config and reopens the query log file, SIGUSR1 only reopens the query log (for
//! tools that expect it; `logrotate`'s `create` mode and `mv q.log q.log.1` need one).
//!
//! Only the binary handles signals. The server sees a shutdown token and the reloader a
//! "reload now" channel, so both stay testable without sending signals.

use std::io;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use winsink_server::QueryLog;

/// Cancels `shutdown` on the first SIGTERM or SIGINT.
pub(crate) fn on_terminate(shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        wait_for_terminate().await;
        shutdown.cancel();
    })
}

async fn wait_for_terminate() {
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM: shutting down"),
                _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
            }
        }
        Err(e) => {
            warn!("cannot watch SIGTERM ({e}); only SIGINT stops winsink");
            let _ = tokio::signal::ctrl_c().await;
            info!("SIGINT: shutting down");
        }
    }
}

/// Until `shutdown` is cancelled: on every SIGHUP, sends `()` to `reload` and reopens
/// `log`; on every SIGUSR1, reopens `log`.
pub(crate) fn on_hangup(
    reload: mpsc::Sender<()>,
    log: Arc<QueryLog>,
    shutdown: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    info!("SIGHUP: reloading the config, reopening the query log");
                    log.reopen();
                    // A full channel already holds a pending reload: nothing is lost.
                    let _ = reload.try_send(());
                }
                got = usr1.recv() => {
                    if got.is_none() {
                        return;
                    }
                    info!("SIGUSR1: reopening the query log");
                    log.reopen();
                }
            }
        }
    }))
}
