//! Unix signals for the daemon: SIGTERM/SIGINT stop it gracefully, SIGHUP reloads.
//!
//! Only the binary handles signals; the server crate sees a cancellation token and the
//! reloader a "reload now" channel, so both stay testable without sending signals.

use std::io;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Cancels `shutdown` on the first SIGTERM or SIGINT. A second one while shutting down
/// exits at once, for an operator who does not want to wait for in-flight queries.
pub(crate) fn on_terminate(shutdown: CancellationToken) -> io::Result<JoinHandle<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!("{name}: shutting down (answering queries in flight first)");
        shutdown.cancel();
        let (name, code) = tokio::select! {
            _ = term.recv() => ("SIGTERM", 128 + 15),
            _ = int.recv() => ("SIGINT", 128 + 2),
        };
        warn!("{name} again: exiting now");
        std::process::exit(code);
    }))
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
