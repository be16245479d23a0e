//! SIGHUP for the daemon: it forces a reload of the config.
//!
//! Only the binary handles signals (SIGTERM/SIGINT in `run_cmd.rs`); the reloader sees a
//! "reload now" channel, so it stays testable without sending signals.

use std::io;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

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
