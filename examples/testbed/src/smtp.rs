//! SMTP servers for alert tests: Debian's `python3-aiosmtpd` keeping every mail it is given,
//! and a server that accepts connections and never answers.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{Testbed, TestbedError};

/// Debian's Python, which `python3-aiosmtpd` installs into (a `python3` earlier in `PATH`,
/// such as pyenv's, would not have it).
const PYTHON: &str = "/usr/bin/python3";

/// The server: `MODE HOST PORT DIR`. `sink` keeps each message as `DIR/NNNN.eml` (the data as
/// received) and `DIR/NNNN.env` (HELO name, MAIL FROM, then one RCPT TO a line); `silent`
/// accepts connections and never answers. Both print `ready` once listening.
const SERVER: &str = r#"
import os, socket, sys, time
mode, host, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "silent":
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    print("ready", flush=True)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)
else:
    from aiosmtpd.controller import Controller
    class Keep:
        n = 0
        async def handle_DATA(self, server, session, envelope):
            Keep.n += 1
            base = os.path.join(out, "%04d" % Keep.n)
            with open(base + ".env.tmp", "w") as f:
                f.write("\n".join([session.host_name or "", envelope.mail_from] + envelope.rcpt_tos))
            with open(base + ".eml.tmp", "wb") as f:
                f.write(envelope.original_content)
            os.rename(base + ".env.tmp", base + ".env")
            os.rename(base + ".eml.tmp", base + ".eml")
            return "250 OK"
    c = Controller(Keep(), hostname=host, port=port)
    c.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)
"#;

/// One mail as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The name the client gave in `HELO`/`EHLO`.
    pub helo: String,
    /// `MAIL FROM`.
    pub mail_from: String,
    /// `RCPT TO`, in order.
    pub rcpt_to: Vec<String>,
    /// The data after `DATA`, as received (CRLF line ends).
    pub data: String,
}

impl Mail {
    /// The value of the first header called `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .split("\r\n")
            .filter_map(|l| l.split_once(": "))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The header section, without the empty line that ends it.
    #[must_use]
    pub fn headers(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or(&self.data, |(h, _)| h)
    }

    /// The text after the empty line.
    #[must_use]
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

/// A running test SMTP server; killed when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl SmtpServer {
    /// An aiosmtpd server keeping every mail, on `addr` of this machine, its mails in `dir`.
    ///
    /// # Errors
    /// It cannot be started or is not listening within 10 s.
    pub fn sink(addr: SocketAddr, dir: impl AsRef<Path>) -> Result<Self, TestbedError> {
        Self::start(Command::new(PYTHON), "sink", addr, dir.as_ref())
    }

    /// [`SmtpServer::sink`] inside `host` of `tb`, on the host's IPv4 address.
    ///
    /// # Errors
    /// As [`SmtpServer::sink`], or an unknown host.
    pub fn sink_in(tb: &Testbed, host: &str, port: u16) -> Result<Self, TestbedError> {
        let addr = SocketAddr::new(tb.addr4(host)?.into(), port);
        let dir = tb.run_dir().join(format!("smtp-{host}-{port}"));
        Self::start(tb.ns(host)?.command(PYTHON), "sink", addr, &dir)
    }

    /// A server inside `host` of `tb` that accepts connections and never answers.
    ///
    /// # Errors
    /// As [`SmtpServer::sink_in`].
    pub fn silent_in(tb: &Testbed, host: &str, port: u16) -> Result<Self, TestbedError> {
        let addr = SocketAddr::new(tb.addr4(host)?.into(), port);
        let dir = tb.run_dir().join(format!("smtp-{host}-{port}"));
        Self::start(tb.ns(host)?.command(PYTHON), "silent", addr, &dir)
    }

    fn start(
        mut cmd: Command,
        mode: &str,
        addr: SocketAddr,
        dir: &Path,
    ) -> Result<Self, TestbedError> {
        let io = |what: String| move |source| TestbedError::Io { what, source };
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let log = dir.join("server.log");
        let out = fs::File::create(&log).map_err(io(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io("duplicating the log file handle".into()))?;
        let child = cmd
            .args([
                "-c",
                SERVER,
                mode,
                &addr.ip().to_string(),
                &addr.port().to_string(),
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io("starting /usr/bin/python3".into()))?;
        let mut server = Self {
            child,
            dir: dir.to_owned(),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready") {
                return Ok(server);
            }
            if Instant::now() >= deadline || server.child.try_wait().ok().flatten().is_some() {
                return Err(TestbedError::Io {
                    what: format!("SMTP server on {addr} did not start:\n{text}"),
                    source: std::io::Error::other("not listening"),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The mails received so far, in order.
    #[must_use]
    pub fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| {
                let data = fs::read(p).ok()?;
                let env = fs::read_to_string(p.with_extension("env")).ok()?;
                let mut lines = env.lines().map(str::to_owned);
                Some(Mail {
                    helo: lines.next().unwrap_or_default(),
                    mail_from: lines.next().unwrap_or_default(),
                    rcpt_to: lines.collect(),
                    data: String::from_utf8_lossy(&data).into_owned(),
                })
            })
            .collect()
    }

    /// Waits up to `timeout` for at least `n` mails; returns those received by then.
    #[must_use]
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.mails();
            if m.len() >= n || Instant::now() >= deadline {
                return m;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether Debian's `python3` with `aiosmtpd` is here: else a test should skip (this prints
/// `skipped: …` and returns `false`), except with `CI=true`, where it is a failure (a panic).
#[allow(
    clippy::panic,
    reason = "a test guard: failing the test on CI is its purpose"
)]
#[track_caller]
pub fn aiosmtpd_or_skip() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd.controller"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("python3-aiosmtpd is missing on CI: apt-get install python3-aiosmtpd");
        }
        eprintln!("skipped: python3-aiosmtpd is not installed");
    }
    found
}
