//! The access log: one line per request in nginx's `combined` format followed by the upstream
//! address(es), upstream status(es), upstream response time(s) and the request time:
//!
//! ```text
//! 127.0.0.1 - - [27/Nov/2026:01:50:33 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" upstream=127.0.0.1:8081 ustatus=200 urt=0.001 rt=0.002
//! ```
//!
//! Each line is written with one `write(2)` (to a file opened with `O_APPEND`), like nginx
//! without `buffer=`, and no lock is taken except the standard-stream one for stdout/stderr.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Uri, Version};

use super::config::LogTarget;

/// Where lines go.
#[derive(Debug)]
pub enum AccessLog {
    /// Nowhere.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file opened for appending.
    File(File),
}

impl AccessLog {
    /// Open `target`.
    ///
    /// # Errors
    /// The I/O error of opening the file.
    pub fn open(target: &LogTarget) -> std::io::Result<Self> {
        Ok(match target {
            LogTarget::Off => Self::Off,
            LogTarget::Stdout => Self::Stdout,
            LogTarget::Stderr => Self::Stderr,
            LogTarget::File(p) => Self::File(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
        })
    }

    /// Whether lines are written at all.
    #[must_use]
    pub const fn enabled(&self) -> bool {
        !matches!(self, Self::Off)
    }

    fn write(&self, line: &[u8]) {
        let _ = match self {
            Self::Off => Ok(()),
            Self::Stdout => std::io::stdout().lock().write_all(line),
            Self::Stderr => std::io::stderr().lock().write_all(line),
            Self::File(f) => {
                let mut f: &File = f;
                f.write_all(line)
            }
        };
    }
}

/// One upstream attempt, for the log.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// The server.
    pub addr: SocketAddr,
    /// Its status (0: no response).
    pub status: u16,
    /// Time to the response header (or the error).
    pub time: Duration,
}

/// What the log line needs from the request, captured before it is consumed (all cheap
/// clones: `Uri` and `HeaderValue` share their bytes).
#[derive(Debug)]
pub struct Record {
    /// Client address.
    pub remote: SocketAddr,
    /// Request method.
    pub method: Method,
    /// Request URI.
    pub uri: Uri,
    /// HTTP version.
    pub version: Version,
    /// `Referer`.
    pub referer: Option<HeaderValue>,
    /// `User-Agent`.
    pub user_agent: Option<HeaderValue>,
    /// When the request started.
    pub start: std::time::Instant,
    /// The upstream attempts.
    pub attempts: Vec<Attempt>,
    /// Whether the line will be written (with `access_log off` nothing is captured).
    pub enabled: bool,
}

thread_local! {
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    static CLOCK: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `[27/Nov/2026:01:50:33 +0000]` for `secs` since the epoch (UTC).
fn format_time(secs: u64, out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = i64::try_from(secs / 86400).unwrap_or(0);
    let rem = secs % 86400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let month = usize::try_from(m - 1)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .unwrap_or(&"Jan");
    let _ = write!(
        out,
        "[{d:02}/{month}/{y}:{:02}:{:02}:{:02} +0000]",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

fn quoted(v: Option<&HeaderValue>, out: &mut String) {
    out.push('"');
    match v {
        Some(v) if !v.is_empty() => {
            for &b in v.as_bytes() {
                if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
                    let _ = write!(out, "\\x{b:02X}");
                } else {
                    out.push(char::from(b));
                }
            }
        }
        _ => out.push('-'),
    }
    out.push('"');
}

impl Record {
    /// Capture the fields of `req` for `log` (nothing but the start time when it is off).
    #[must_use]
    pub fn new(
        req: &http::request::Parts,
        remote: SocketAddr,
        start: std::time::Instant,
        log: &AccessLog,
    ) -> Self {
        if !log.enabled() {
            return Self {
                remote,
                method: Method::GET,
                uri: Uri::default(),
                version: req.version,
                referer: None,
                user_agent: None,
                start,
                attempts: Vec::new(),
                enabled: false,
            };
        }
        Self {
            remote,
            method: req.method.clone(),
            uri: req.uri.clone(),
            version: req.version,
            referer: req.headers.get(http::header::REFERER).cloned(),
            user_agent: req.headers.get(http::header::USER_AGENT).cloned(),
            start,
            attempts: Vec::new(),
            enabled: true,
        }
    }

    /// Note an upstream attempt (kept only when the line will be written).
    pub fn attempt(&mut self, a: Attempt) {
        if self.enabled {
            self.attempts.push(a);
        }
    }

    /// Write the line for a response with `status` and `bytes` body bytes sent.
    pub fn write(&self, log: &AccessLog, status: u16, bytes: u64) {
        if !log.enabled() || !self.enabled {
            return;
        }
        LINE.with_borrow_mut(|line| {
            line.clear();
            let _ = write!(line, "{} - - ", self.remote.ip());
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            CLOCK.with_borrow_mut(|(at, text)| {
                if *at != secs {
                    text.clear();
                    format_time(secs, text);
                    *at = secs;
                }
                line.push_str(text);
            });
            let _ = write!(
                line,
                " \"{} {} {:?}\" {status} {bytes} ",
                self.method, self.uri, self.version
            );
            quoted(self.referer.as_ref(), line);
            line.push(' ');
            quoted(self.user_agent.as_ref(), line);
            line.push_str(" upstream=");
            if self.attempts.is_empty() {
                line.push('-');
            }
            for (i, a) in self.attempts.iter().enumerate() {
                let _ = write!(line, "{}{}", if i > 0 { "," } else { "" }, a.addr);
            }
            line.push_str(" ustatus=");
            if self.attempts.is_empty() {
                line.push('-');
            }
            for (i, a) in self.attempts.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                if a.status == 0 {
                    let _ = write!(line, "{sep}-");
                } else {
                    let _ = write!(line, "{sep}{}", a.status);
                }
            }
            line.push_str(" urt=");
            if self.attempts.is_empty() {
                line.push('-');
            }
            for (i, a) in self.attempts.iter().enumerate() {
                let _ = write!(
                    line,
                    "{}{:.3}",
                    if i > 0 { "," } else { "" },
                    a.time.as_secs_f64()
                );
            }
            let _ = writeln!(line, " rt={:.3}", self.start.elapsed().as_secs_f64());
            log.write(line.as_bytes());
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn time_format() {
        let mut s = String::new();
        format_time(0, &mut s);
        assert_eq!(s, "[01/Jan/1970:00:00:00 +0000]");
        s.clear();
        // 2024-02-29 12:34:56 UTC
        format_time(1_709_210_096, &mut s);
        assert_eq!(s, "[29/Feb/2024:12:34:56 +0000]");
    }

    #[test]
    fn quoting() {
        let mut s = String::new();
        quoted(Some(&HeaderValue::from_static("a\"b")), &mut s);
        quoted(None, &mut s);
        assert_eq!(s, "\"a\\x22b\"\"-\"");
    }
}
