//! The daemon's signals: SIGTERM and SIGINT stop it gracefully, SIGHUP forces a reload of
//! the config.
//!
//! Only the binary handles signals. The server sees a shutdown token and the reloader a
//! "reload now" channel, so both stay testable without sending signals.

use std::io;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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

/// Sends `()` to `reload` on every SIGHUP until `shutdown` is cancelled.
pub(crate) fn on_hangup(
    reload: mpsc::Sender<()>,
    shutdown: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    info!("SIGHUP: reloading the config");
                    // A full channel already holds a pending reload: nothing is lost.
                    let _ = reload.try_send(());
                }
            }
        }
    }))
}
