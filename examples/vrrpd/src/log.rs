//! One line per event on stderr, `vrrpd[PID]: ...`, with a wall-clock timestamp.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Writes one log line to stderr.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let ms = now.subsec_millis();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{h:02}:{m:02}:{s:02}.{ms:03} vrrpd[{}]: {args}",
        std::process::id()
    );
}

/// `log!("...", args)`: one line on stderr.
macro_rules! log {
    ($($t:tt)*) => { $crate::log::line(format_args!($($t)*)) };
}
pub(crate) use log;
