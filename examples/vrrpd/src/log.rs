//! One line per event on stderr: `HH:MM:SS.mmm vrrpd[PID]: ...`, or, when stderr is systemd's
//! journal (`JOURNAL_STREAM` names it), the message alone: the journal stamps the time and the
//! process itself.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether `JOURNAL_STREAM` (`DEVICE:INODE`) is the file stderr writes to.
fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else {
            return false;
        };
        let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
            return false;
        };
        dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
    })
}

/// Writes one log line to stderr.
pub(crate) fn line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    if stderr_is_journal() {
        let _ = writeln!(err, "{args}");
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let ms = now.subsec_millis();
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
