//! Throw-away memcached and Redis processes for tests/memcached.rs and tests/redis.rs.
//!
//! Each server listens on 127.0.0.1 at a port picked here, never the system service. It is
//! started by a small `sh` reaper in its own process group whose standard input is a pipe from
//! this process: dropping the [`Proc`] (the test ended, passed or panicked) closes the pipe and
//! the reaper stops the server by PID and deletes its temp dir; if the test process itself dies
//! the pipe closes just the same. [`Proc::kill9`] kills the server by PID for failover tests.
//!
//! A missing server binary skips the tests that need it with a reason on stderr, except with
//! `CI=true`, where it is a failure.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::ffi::OsString;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "reaper.rs"]
mod reaper;
use reaper::spawn_reaped;
pub use reaper::{alive, is_root, try_free_port, which_any};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server; stopped (by PID, through its reaper) when dropped.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub kind: &'static str,
    /// The loopback port it listens on.
    pub port: u16,
    /// Its PID.
    pub pid: u32,
    /// Its temp dir (log, data, config); deleted by the reaper.
    pub dir: PathBuf,
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

impl Proc {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL, by PID, and wait until it is gone.
    pub fn kill9(&self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", &self.pid.to_string()])
            .status();
        let start = Instant::now();
        while alive(self.pid) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !alive(self.pid),
            "{} pid {} survived SIGKILL",
            self.kind,
            self.pid
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let taken = self
            .reaper
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin); // the reaper sends SIGTERM, waits, deletes the dir
            let _ = child.wait();
        }
    }
}

/// The server binary `name`, or `None` (printed; a panic under `CI=true`) if it is missing.
pub fn require(name: &str, package: &str) -> Option<PathBuf> {
    if let Some(p) = which(name) {
        return Some(p);
    }
    skip(&format!("no `{name}` binary (apt-get install {package})"))
}

/// Skips a test for `reason` (printed to stderr): returns `None`, or panics under `CI=true`.
pub fn skip<T>(reason: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true, so these tests may not be skipped: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "test skipped: {reason}");
    None
}

/// The first of `name` found on `PATH` or in /usr/sbin, /usr/bin.
pub fn which(name: &str) -> Option<PathBuf> {
    which_any(&[name])
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    try_free_port().unwrap()
}

/// A loopback port that refuses connections for the rest of the test process: a socket is bound
/// to it and never listens (and is never closed), so no other test takes the port and no
/// connect picks it as its own source port (a connect to itself would succeed).
pub fn refused_port() -> u16 {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    std::mem::forget(s);
    port
}

/// A fresh temp dir that the reaper will delete.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    dir.keep()
}

/// Starts `argv` under a reaper in `dir` (log: `dir/server.log`) and waits until `port`
/// accepts connections.
pub fn spawn(kind: &'static str, argv: &[OsString], port: u16, dir: &Path) -> Result<Proc, String> {
    let log = dir.join("server.log");
    let (pid, child, stdin) = spawn_reaped(argv, dir, &log, 10)?;
    let proc = Proc {
        kind,
        port,
        pid,
        dir: dir.to_path_buf(),
        reaper: Mutex::new(Some((child, stdin))),
    };
    let start = Instant::now();
    loop {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(proc);
        }
        if !alive(pid) {
            return Err(format!(
                "{kind} (pid {pid}) exited at start-up:\n{}",
                proc.log()
            ));
        }
        if start.elapsed() > START_TIMEOUT {
            return Err(format!(
                "{kind} not ready after {START_TIMEOUT:?}:\n{}",
                proc.log()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One memcached (`-m 16`, no UDP, as `nobody` when run as root) on `port`.
pub fn memcached_on(bin: &Path, port: u16) -> Result<Proc, String> {
    let dir = temp_dir("session-store-memcached-");
    let mut argv: Vec<OsString> = vec![bin.into()];
    for a in [
        "-p",
        &port.to_string(),
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-m",
        "16",
    ] {
        argv.push(a.into());
    }
    if is_root() {
        argv.push("-u".into());
        argv.push("nobody".into());
    }
    spawn("memcached", &argv, port, &dir)
}

/// `n` memcached servers, or `None` if the binary is missing (outside CI).
pub fn memcached_cluster(n: usize) -> Option<Vec<Proc>> {
    let bin = require("memcached", "memcached")?;
    Some(
        (0..n)
            .map(|_| {
                // The port was free a moment ago; another process may take it: try again.
                let mut last = String::new();
                for _ in 0..3 {
                    match memcached_on(&bin, free_port()) {
                        Ok(p) => return p,
                        Err(e) => last = e,
                    }
                }
                panic!("could not start memcached: {last}")
            })
            .collect(),
    )
}

/// Sends `cmd` to the memcached at `addr` and returns the reply up to and including a line in
/// `until` (e.g. `END`).
pub fn memcached_raw(addr: &str, cmd: &[u8], until: &[&str]) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(cmd).unwrap();
    let mut out = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if text.lines().any(|l| until.iter().any(|u| l.starts_with(u))) {
            return text;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "memcached {addr} closed the connection; got {text:?}"
        );
        out.extend_from_slice(&buf[..n]);
    }
}

/// One `redis-server` on `port` (no persistence, data in its temp dir), with `extra`
/// arguments (e.g. `--replicaof 127.0.0.1 PORT`).
pub fn redis_on(bin: &Path, port: u16, extra: &[&str]) -> Result<Proc, String> {
    let dir = temp_dir("session-store-redis-");
    let mut argv: Vec<OsString> = vec![bin.into()];
    for a in [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ] {
        argv.push(a.into());
    }
    argv.push("--dir".into());
    argv.push(dir.clone().into());
    argv.extend(extra.iter().map(OsString::from));
    spawn("redis-server", &argv, port, &dir)
}

/// A standalone `redis-server`, or `None` if the binary is missing (outside CI).
pub fn redis_standalone() -> Option<Proc> {
    let bin = require("redis-server", "redis-server")?;
    Some(retry_port(|port| redis_on(&bin, port, &[])))
}

/// A Redis Sentinel on `port` watching the master at `master_port` as `service`, with
/// quorum 2, down-after 1 s and a 5 s failover timeout (its config file is in its temp dir,
/// where Sentinel rewrites it).
pub fn sentinel_on(bin: &Path, port: u16, service: &str, master_port: u16) -> Result<Proc, String> {
    let dir = temp_dir("session-store-sentinel-");
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
             sentinel monitor {service} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 5000\n\
             sentinel parallel-syncs {service} 1\n",
            dir.display()
        ),
    )
    .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let argv: Vec<OsString> = vec![bin.into(), conf.into(), "--sentinel".into()];
    spawn("redis-sentinel", &argv, port, &dir)
}

/// Starts a server with `start(port)` on a free port, trying again if another process took
/// the port first.
pub fn retry_port(start: impl Fn(u16) -> Result<Proc, String>) -> Proc {
    let mut last = String::new();
    for _ in 0..3 {
        match start(free_port()) {
            Ok(p) => return p,
            Err(e) => last = e,
        }
    }
    panic!("could not start the server: {last}")
}
