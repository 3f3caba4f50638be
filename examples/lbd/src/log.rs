//! The access log: one line per request in nginx's `combined` format followed by the upstream
//! address(es), upstream status(es), upstream response time(s) and the request time:
//!
//! ```text
//! 127.0.0.1 - - [27/Nov/2026:01:50:33 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8" upstream=127.0.0.1:8081 ustatus=200 urt=0.001 rt=0.002
//! ```
//!
//! Without `buffer=`, each line is written with one `write(2)` (to a file opened with
//! `O_APPEND`), and no lock is taken except the standard-stream one for stdout/stderr. With
//! `buffer=SIZE` (nginx's `access_log PATH combined buffer=64k flush=1s`), each worker thread
//! gathers whole lines in a buffer of its own and writes it with one `write(2)` when the next
//! line would not fit, when `flush=` has passed (a timer on the control thread writes every
//! buffer at that interval), on a reopen (`SIGUSR1`), and when the configuration generation
//! ends (a reload or the stop). Lines are never split between writes.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Uri, Version};

use super::config::{LogBuffer, LogTarget};

/// Where lines go.
#[derive(Debug)]
enum Sink {
    /// Nowhere.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file opened for appending, and its path (for a reopen).
    File(RwLock<File>, PathBuf),
}

fn open_append(path: &PathBuf) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl Sink {
    fn write(&self, bytes: &[u8]) {
        // A full disk or a closed stream loses the line, as in nginx; the request is served.
        let _ = match self {
            Self::Off => Ok(()),
            Self::Stdout => std::io::stdout().lock().write_all(bytes),
            Self::Stderr => std::io::stderr().lock().write_all(bytes),
            Self::File(f, _) => {
                let f = f.read().unwrap_or_else(PoisonError::into_inner);
                let mut f: &File = &f;
                f.write_all(bytes)
            }
        };
    }
}

/// The per-worker buffers of `buffer=`.
#[derive(Debug)]
struct Buffers {
    size: usize,
    flush: Option<Duration>,
    shards: Box<[Mutex<Vec<u8>>]>,
}

/// Which buffer this thread writes to: threads are numbered as they first log.
fn shard_index(n: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|i| {
        if i.get() == usize::MAX {
            i.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        i.get() % n.max(1)
    })
}

#[derive(Debug)]
struct Inner {
    sink: Sink,
    buffers: Option<Buffers>,
}

impl Inner {
    fn write(&self, line: &[u8]) {
        let Some(b) = &self.buffers else {
            self.sink.write(line);
            return;
        };
        let Some(shard) = b.shards.get(shard_index(b.shards.len())) else {
            self.sink.write(line);
            return;
        };
        let mut buf = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.len() + line.len() > b.size && !buf.is_empty() {
            self.sink.write(&buf);
            buf.clear();
        }
        if line.len() >= b.size {
            self.sink.write(line);
        } else {
            if buf.capacity() == 0 {
                buf.reserve_exact(b.size);
            }
            buf.extend_from_slice(line);
        }
    }

    fn flush(&self) {
        let Some(b) = &self.buffers else {
            return;
        };
        for shard in &b.shards {
            let mut buf = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if !buf.is_empty() {
                self.sink.write(&buf);
                buf.clear();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The access log of one configuration generation (cheap to clone: the clones share the
/// file and the buffers; the last one to go writes what is still buffered).
#[derive(Clone, Debug)]
pub struct AccessLog(Arc<Inner>);

impl AccessLog {
    /// Open `target`, with `buffer` per worker thread (`threads` of them) when given.
    ///
    /// # Errors
    /// The I/O error of opening the file.
    pub fn open(
        target: &LogTarget,
        buffer: Option<LogBuffer>,
        threads: usize,
    ) -> std::io::Result<Self> {
        let sink = match target {
            LogTarget::Off => Sink::Off,
            LogTarget::Stdout => Sink::Stdout,
            LogTarget::Stderr => Sink::Stderr,
            LogTarget::File(p) => Sink::File(RwLock::new(open_append(p)?), p.clone()),
        };
        let buffers = match (&sink, buffer) {
            (Sink::Off, _) | (_, None) => None,
            (_, Some(b)) => Some(Buffers {
                size: b.size,
                flush: b.flush,
                shards: (0..threads.max(1))
                    .map(|_| Mutex::new(Vec::new()))
                    .collect(),
            }),
        };
        Ok(Self(Arc::new(Inner { sink, buffers })))
    }

    /// Whether lines are written at all.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !matches!(self.0.sink, Sink::Off)
    }

    /// `flush=`: how often the buffers are to be written ([`AccessLog::flush`]), if at all.
    #[must_use]
    pub fn flush_interval(&self) -> Option<Duration> {
        self.0.buffers.as_ref().and_then(|b| b.flush)
    }

    /// Write what the buffers hold.
    pub fn flush(&self) {
        self.0.flush();
    }

    /// Write what the buffers hold, then open the file again by its path (after a log
    /// rotation has renamed it; nginx's `-s reopen`, `SIGUSR1`). Standard streams and `off`
    /// have nothing to reopen.
    ///
    /// # Errors
    /// The I/O error of opening the file; the old file stays in use.
    pub fn reopen(&self) -> std::io::Result<()> {
        self.flush();
        if let Sink::File(f, path) = &self.0.sink {
            let new = open_append(path)?;
            *f.write().unwrap_or_else(PoisonError::into_inner) = new;
        }
        Ok(())
    }

    fn write(&self, line: &[u8]) {
        self.0.write(line);
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
    /// Which access log of the configuration the line goes to (see `State::log`).
    pub log: usize,
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

/// `d` in seconds with millisecond resolution, as nginx's `$request_time` (`0.042`), by integer
/// formatting (no float formatting per line).
fn seconds(d: Duration, out: &mut String) {
    push_int(out, d.as_secs());
    let ms = d.subsec_millis();
    out.push('.');
    for digit in [ms / 100, ms / 10 % 10, ms % 10] {
        out.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
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
    /// Capture the fields of `req` for `log`, the configuration's access log number `index`
    /// (nothing but the start time when it is off).
    #[must_use]
    pub fn new(
        req: &http::request::Parts,
        remote: SocketAddr,
        start: std::time::Instant,
        log: &AccessLog,
        index: usize,
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
                log: index,
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
            log: index,
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
            self.format(line, status, bytes);
            log.write(line.as_bytes());
        });
    }

    /// The line itself (into `line`, cleared first). Numbers and addresses are written by
    /// hand rather than through `core::fmt`, which cost most of a line's time.
    fn format(&self, line: &mut String, status: u16, bytes: u64) {
        line.clear();
        push_ip(line, self.remote.ip());
        line.push_str(" - - ");
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
        line.push_str(" \"");
        line.push_str(self.method.as_str());
        line.push(' ');
        match self.uri.path_and_query() {
            Some(pq) if self.uri.scheme().is_none() && self.uri.authority().is_none() => {
                line.push_str(pq.as_str());
            }
            _ => {
                let _ = write!(line, "{}", self.uri);
            }
        }
        line.push(' ');
        match self.version {
            Version::HTTP_09 => line.push_str("HTTP/0.9"),
            Version::HTTP_10 => line.push_str("HTTP/1.0"),
            Version::HTTP_11 => line.push_str("HTTP/1.1"),
            Version::HTTP_2 => line.push_str("HTTP/2.0"),
            v => {
                let _ = write!(line, "{v:?}");
            }
        }
        line.push_str("\" ");
        push_int(line, status);
        line.push(' ');
        push_int(line, bytes);
        line.push(' ');
        quoted(self.referer.as_ref(), line);
        line.push(' ');
        quoted(self.user_agent.as_ref(), line);
        line.push_str(" upstream=");
        self.each_attempt(line, |line, a| push_addr(line, a.addr));
        line.push_str(" ustatus=");
        self.each_attempt(line, |line, a| {
            if a.status == 0 {
                line.push('-');
            } else {
                push_int(line, a.status);
            }
        });
        line.push_str(" urt=");
        self.each_attempt(line, |line, a| seconds(a.time, line));
        line.push_str(" rt=");
        seconds(self.start.elapsed(), line);
        line.push('\n');
    }

    /// `-` without attempts, else `f` of each, comma-separated.
    fn each_attempt(&self, line: &mut String, mut f: impl FnMut(&mut String, &Attempt)) {
        if self.attempts.is_empty() {
            line.push('-');
        }
        for (i, a) in self.attempts.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            f(line, a);
        }
    }
}

fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_int(out, o);
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => push_ip(out, std::net::IpAddr::V4(*a.ip())),
        SocketAddr::V6(a) => {
            out.push('[');
            push_ip(out, std::net::IpAddr::V6(*a.ip()));
            out.push(']');
        }
    }
    out.push(':');
    push_int(out, addr.port());
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

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbd-log-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn buffer_writes_whole_lines_when_the_next_does_not_fit() {
        let d = temp("fit");
        let path = d.join("access.log");
        let buffer = Some(LogBuffer {
            size: 100,
            flush: None,
        });
        let log = AccessLog::open(&LogTarget::File(path.clone()), buffer, 1).unwrap();
        let line = |c: char| format!("{}\n", c.to_string().repeat(39));
        let read = || std::fs::read_to_string(&path).unwrap();
        log.write(line('a').as_bytes());
        log.write(line('b').as_bytes());
        assert_eq!(read(), "", "80 bytes fit in the 100-byte buffer");
        log.write(line('c').as_bytes());
        assert_eq!(read(), line('a') + &line('b'), "the third line did not fit");
        // A line as large as the buffer goes out at once, after what was buffered.
        let big = format!("{}\n", "x".repeat(120));
        log.write(big.as_bytes());
        assert_eq!(read(), line('a') + &line('b') + &line('c') + &big);
        log.write(line('d').as_bytes());
        log.flush();
        assert_eq!(
            read(),
            line('a') + &line('b') + &line('c') + &big + &line('d')
        );
        // What is buffered when the last handle goes is written too.
        log.write(line('e').as_bytes());
        let clone = log.clone();
        drop(log);
        assert!(!read().ends_with(&line('e')));
        drop(clone);
        assert!(read().ends_with(&line('e')));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_writers_lose_or_split_no_line() {
        let d = temp("threads");
        let path = d.join("access.log");
        let buffer = Some(LogBuffer {
            size: 1000,
            flush: None,
        });
        let log = AccessLog::open(&LogTarget::File(path.clone()), buffer, 4).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..100 {
                        log.write(format!("thread {t} line {i:03}\n").as_bytes());
                    }
                });
            }
        });
        log.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 400, "no line lost or split");
        // Each thread's lines are in order.
        for t in 0..4 {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let mut sorted = own.clone();
            sorted.sort_unstable();
            assert_eq!(own, sorted);
        }
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), 400);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn reopen_writes_the_buffer_to_the_old_file_then_follows_the_path() {
        let d = temp("reopen");
        let path = d.join("access.log");
        let rotated = d.join("access.log.1");
        let buffer = Some(LogBuffer {
            size: 4096,
            flush: None,
        });
        let log = AccessLog::open(&LogTarget::File(path.clone()), buffer, 1).unwrap();
        log.write(b"before\n");
        std::fs::rename(&path, &rotated).unwrap();
        log.write(b"rotated\n");
        log.reopen().unwrap();
        log.write(b"after\n");
        log.flush();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "before\nrotated\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        // Unbuffered, the same.
        let plain = AccessLog::open(&LogTarget::File(path.clone()), None, 1).unwrap();
        std::fs::remove_file(&path).unwrap();
        plain.write(b"gone\n");
        plain.reopen().unwrap();
        plain.write(b"new\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn record(uri: &str, remote: &str, attempts: &[(&str, u16, u64)]) -> Record {
        let req = http::Request::builder()
            .method("POST")
            .uri(uri)
            .version(Version::HTTP_10)
            .header("user-agent", "curl/8 \"x\"")
            .header("referer", "http://a/")
            .body(())
            .unwrap();
        let log = AccessLog::open(&LogTarget::Stderr, None, 1).unwrap();
        let mut r = Record::new(
            &req.into_parts().0,
            remote.parse().unwrap(),
            std::time::Instant::now(),
            &log,
            0,
        );
        for (addr, status, ms) in attempts {
            r.attempt(Attempt {
                addr: addr.parse().unwrap(),
                status: *status,
                time: Duration::from_millis(*ms),
            });
        }
        r
    }

    #[test]
    fn line_fields() {
        let mut line = String::new();
        let r = record(
            "/a/b?c=1",
            "192.0.2.7:5555",
            &[("10.0.0.1:80", 0, 1500), ("[2001:db8::1]:8080", 502, 42)],
        );
        r.format(&mut line, 502, 157);
        // The time between the brackets and the request time change; the rest is fixed.
        let (line_head, rt) = line.rsplit_once(" rt=").unwrap();
        let rt = rt.strip_suffix('\n').unwrap();
        let (whole, ms) = rt.split_once('.').unwrap();
        assert!(whole.parse::<u64>().is_ok() && ms.len() == 3, "{rt}");
        assert!(ms.bytes().all(|b| b.is_ascii_digit()), "{rt}");
        let (head, rest) = line_head.split_once(" [").unwrap();
        assert_eq!(head, "192.0.2.7 - -");
        let (_, rest) = rest.split_once("] ").unwrap();
        assert_eq!(
            rest,
            "\"POST /a/b?c=1 HTTP/1.0\" 502 157 \"http://a/\" \"curl/8 \\x22x\\x22\" \
             upstream=10.0.0.1:80,[2001:db8::1]:8080 ustatus=-,502 urt=1.500,0.042"
        );
        let r = record("http://h:81/p", "[::1]:9", &[]);
        r.format(&mut line, 400, 0);
        assert!(line.starts_with("::1 - - ["), "{line}");
        let (line, _) = line.rsplit_once(" rt=").unwrap();
        assert!(
            format!("{line} rt=").ends_with(
                "\"POST http://h:81/p HTTP/1.0\" 400 0 \"http://a/\" \"curl/8 \\x22x\\x22\" \
                 upstream=- ustatus=- urt=- rt="
            ),
            "{line}"
        );
    }

    #[test]
    fn seconds_have_millisecond_resolution() {
        let mut s = String::new();
        for d in [0, 1, 42, 999, 1000, 61_005] {
            seconds(Duration::from_millis(d), &mut s);
            s.push(' ');
        }
        seconds(Duration::from_micros(1999), &mut s);
        assert_eq!(s, "0.000 0.001 0.042 0.999 1.000 61.005 0.001");
    }

    #[test]
    fn quoting() {
        let mut s = String::new();
        quoted(Some(&HeaderValue::from_static("a\"b")), &mut s);
        quoted(None, &mut s);
        assert_eq!(s, "\"a\\x22b\"\"-\"");
    }
}
