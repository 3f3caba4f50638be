//! A stand-in for systemd's end of the readiness protocol: a datagram socket a test binds and
//! names in a daemon's `NOTIFY_SOCKET`, and reads the daemon's `READY=1`, `RELOADING=1`,
//! `STOPPING=1`, `STATUS=...` messages from.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{TestbedError, io_err};

/// A bound `NOTIFY_SOCKET`.
#[derive(Debug)]
pub struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    /// Binds `dir/notify.sock` (replacing a stale one).
    ///
    /// # Errors
    /// The socket cannot be bound.
    pub fn bind(dir: &Path) -> Result<Self, TestbedError> {
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock =
            UnixDatagram::bind(&path).map_err(io_err(format!("binding {}", path.display())))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io_err("setting a read timeout"))?;
        Ok(Self { sock, path })
    }

    /// `NOTIFY_SOCKET=<path>`, for `env` or `Command::env`.
    pub fn env(&self) -> String {
        format!("NOTIFY_SOCKET={}", self.path.display())
    }

    /// The messages received until one has the line `want` (that one included), or `None`
    /// when none came within `timeout`.
    pub fn until(&self, want: &str, timeout: Duration) -> Option<Vec<String>> {
        let end = Instant::now() + timeout;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l == want);
                seen.push(msg);
                if hit {
                    return Some(seen);
                }
            }
        }
        None
    }
}
