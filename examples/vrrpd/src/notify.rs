//! systemd's readiness protocol (`Type=notify`): `READY=1` once the sockets are open and the
//! configuration runs, `RELOADING=1` around a SIGHUP reload, `STOPPING=1` on the way out,
//! `WATCHDOG=1` at half the unit's `WatchdogSec=`. Without `NOTIFY_SOCKET` (not run by
//! systemd) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

use crate::log::log;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log!("cannot notify the service manager: {e}");
    }
}

/// Startup finished: every instance runs.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload begins (with the monotonic time systemd's `Type=notify-reload` requires).
pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The daemon is stopping: instances release mastership.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to tell the watchdog that the loop is alive: half of `WatchdogSec=`, if set.
pub(crate) fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// The loop is alive.
pub(crate) fn watchdog() {
    send(&[NotifyState::Watchdog]);
}
