//! systemd's readiness protocol (`Type=notify`, sd_notify(3)): the service manager learns
//! when winsink serves, reloads and stops.
//!
//! `READY=1` is sent once every listen socket is bound and the policy is loaded, so
//! `systemctl start winsink` returns when queries are answered; `RELOADING=1` (with
//! `MONOTONIC_USEC`, which systemd 253 and later require) and `READY=1` bracket each
//! reload; `STOPPING=1` marks the start of a graceful shutdown. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call does nothing. A notification that cannot be sent
//! is logged and otherwise ignored: DNS service matters more than the manager's view.

use sd_notify::NotifyState;
use tracing::warn;

/// Startup is finished: sockets bound, policy loaded. `status` is shown by
/// `systemctl status`.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts; [`reloaded`] ends it.
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => warn!("sd_notify: cannot read the monotonic clock: {e}"),
    }
}

/// A reload ended, swapped in or not: winsink serves again.
pub(crate) fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// A graceful shutdown starts.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("sd_notify: cannot notify the service manager: {e}");
    }
}
