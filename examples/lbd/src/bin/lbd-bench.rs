//! `lbd-bench`: `lbd` against nginx as reverse proxies in front of the same two upstreams on
//! loopback, measured with `wrk` in the same run.
//!
//! ```text
//! lbd-bench [-w 1,2] [-c 50] [-d 10s] [-t 2] [-r 3] [--body 2] [--warmup 1s]
//!           [--access-log] [--log-buffer SIZE] [--lbd PATH] [--nginx PATH] [--wrk PATH] [--baseline PATH]
//! ```
//!
//! `--baseline PATH` runs another `lbd` binary (an older build) in nginx's place, with the
//! same configuration as the `lbd` under test: an A/B comparison of two builds in one run.
//!
//! It installs nothing: `nginx` and `wrk` must be on the machine (`apt-get install
//! nginx-light wrk`). For each worker count it starts, for every round, a fresh nginx
//! (`worker_processes N`) and a fresh `lbd` (`workers N`) with equivalent configurations
//! (round robin over the two upstreams, 64 idle keep-alive upstream connections, access log off
//! unless `--access-log`, HTTP/1.1 to the upstreams), warms each up, runs
//! `wrk -t T -c C -d D --latency` against it, and alternates which proxy goes first from one
//! round to the next. It prints a markdown table of the medians of requests/s and of the 99th
//! percentile latency, with the lbd/nginx ratios, and the CPU time each proxy spent per request
//! (user + system, all its threads and worker processes, from `/proc`): on a machine whose
//! cores the proxies share with `wrk`, the upstreams and anything else running, it is the
//! steadier figure.
//!
//! The two upstreams are served by `lbd-bench` itself, each on its own thread (a single-thread
//! tokio runtime): a minimal keep-alive HTTP/1.1 responder answering every request with `200`
//! and a body of `--body` bytes. It is the same for both proxies, costs less CPU than another
//! nginx or a full HTTP stack would (the machine's cores are shared by the proxy under test,
//! the upstreams and `wrk`), and so the proxy is what is measured.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const USAGE: &str = "usage: lbd-bench [options]
  -w, --workers LIST   worker counts to compare, comma-separated (default 1,2)
  -c, --connections N  wrk connections (default 50)
  -d, --duration D     wrk duration per run, e.g. 10s (default 10s)
  -t, --threads N      wrk threads (default 2)
  -r, --rounds N       runs of each proxy per worker count (default 3)
  --body N             upstream response body size in bytes (default 2)
  --warmup D           unmeasured wrk run before each measured one (default 1s, 0 for none)
  --access-log         have both proxies write an access log (to a file in the temp dir)
  --log-buffer SIZE    the same, buffered: `access_log FILE combined buffer=SIZE flush=1s`
  --lbd PATH           the lbd binary (default: next to lbd-bench)
  --nginx PATH         the nginx binary (default: nginx, looked up in PATH and /usr/sbin)
  --wrk PATH           the wrk binary (default: wrk)
  --baseline PATH      run this lbd binary (another build) in nginx's place, to compare
                       two lbd builds in one run
  --keep               keep the temporary directory (configurations, logs)
";

/// Why the bench could not run.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    /// A bad command line.
    #[error("{0}")]
    Usage(String),
    /// A required program is missing.
    #[error("`{0}` not found: install it with `apt-get install nginx-light wrk` (or nginx)")]
    Missing(String),
    /// An I/O error.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A proxy did not come up.
    #[error("{0}")]
    Start(String),
    /// wrk failed or printed something unexpected.
    #[error("wrk: {0}")]
    Wrk(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

#[derive(Debug)]
struct Opts {
    workers: Vec<usize>,
    conns: u32,
    duration: Duration,
    threads: u32,
    rounds: usize,
    body: usize,
    warmup: Duration,
    access_log: bool,
    /// `buffer=` of both access logs.
    log_buffer: Option<String>,
    lbd: Option<PathBuf>,
    nginx: Option<PathBuf>,
    wrk: Option<PathBuf>,
    baseline: Option<PathBuf>,
    keep: bool,
    help: bool,
}

fn parse_duration(s: &str) -> Result<Duration, BenchError> {
    let bad = || BenchError::Usage(format!("bad duration `{s}` (write 10s, 500ms or 1m)"));
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1000)
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    Ok(Duration::from_millis(n.checked_mul(mult).ok_or_else(bad)?))
}

impl Opts {
    fn parse(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
    ) -> Result<Self, BenchError> {
        let mut o = Self {
            workers: vec![1, 2],
            conns: 50,
            duration: Duration::from_secs(10),
            threads: 2,
            rounds: 3,
            body: 2,
            warmup: Duration::from_secs(1),
            access_log: false,
            log_buffer: None,
            lbd: None,
            nginx: None,
            wrk: None,
            baseline: None,
            keep: false,
            help: false,
        };
        o.read_args(args)
            .map_err(|e| BenchError::Usage(e.to_string()))?;
        if o.help {
            return Err(BenchError::Usage(String::new()));
        }
        if o.conns == 0 || o.threads == 0 || o.rounds == 0 || o.duration.is_zero() {
            return Err(BenchError::Usage(
                "connections, threads, rounds and duration must be positive".into(),
            ));
        }
        if o.threads > o.conns {
            o.threads = o.conns;
        }
        Ok(o)
    }

    fn read_args(
        &mut self,
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
    ) -> Result<(), lexopt::Error> {
        use lexopt::prelude::*;
        let mut p = lexopt::Parser::from_args(args);
        while let Some(arg) = p.next()? {
            match arg {
                Short('w') | Long("workers") => {
                    let v = p.value()?.string()?;
                    self.workers = v
                        .split(',')
                        .map(|w| {
                            w.trim()
                                .parse::<usize>()
                                .ok()
                                .filter(|&n| n > 0)
                                .ok_or_else(|| format!("bad worker count `{w}`"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                Short('c') | Long("connections") => self.conns = p.value()?.parse()?,
                Short('d') | Long("duration") => {
                    self.duration =
                        parse_duration(&p.value()?.string()?).map_err(|e| e.to_string())?;
                }
                Short('t') | Long("threads") => self.threads = p.value()?.parse()?,
                Short('r') | Long("rounds") => self.rounds = p.value()?.parse()?,
                Long("body") => self.body = p.value()?.parse()?,
                Long("warmup") => {
                    self.warmup =
                        parse_duration(&p.value()?.string()?).map_err(|e| e.to_string())?;
                }
                Long("access-log") => self.access_log = true,
                Long("log-buffer") => {
                    self.access_log = true;
                    self.log_buffer = Some(p.value()?.string()?);
                }
                Long("lbd") => self.lbd = Some(p.value()?.into()),
                Long("nginx") => self.nginx = Some(p.value()?.into()),
                Long("wrk") => self.wrk = Some(p.value()?.into()),
                Long("baseline") => self.baseline = Some(p.value()?.into()),
                Long("keep") => self.keep = true,
                Short('h') | Long("help") => {
                    self.help = true;
                    return Ok(());
                }
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(())
    }
}

/// `name` if it is a path, else the first match in `PATH` and the sbin directories.
fn find_program(given: Option<&Path>, name: &str) -> Result<PathBuf, BenchError> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(BenchError::Missing(p.display().to_string()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| BenchError::Missing(name.to_owned()))
}

// ---------------------------------------------------------------------------------------
// The upstreams.

/// Serve `listener` on this thread: every request (head, plus a `Content-Length` body if any)
/// gets `response`; `Connection: close` closes after the answer.
fn serve_upstream(listener: std::net::TcpListener, response: Vec<u8>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lbd-bench: upstream runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let Ok(listener) = TcpListener::from_std(listener) else {
            return;
        };
        let response: &'static [u8] = response.leak();
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut out = Vec::with_capacity(response.len() * 4);
                let mut have = 0;
                // Request body bytes still to skip.
                let mut skip = 0usize;
                loop {
                    if have == buf.len() {
                        // A head larger than the buffer: not what the proxies send.
                        return;
                    }
                    let n = match s.read(&mut buf[have..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    have += n;
                    let mut close = false;
                    let mut pos = 0;
                    loop {
                        if skip > 0 {
                            let k = skip.min(have - pos);
                            skip -= k;
                            pos += k;
                            if skip > 0 {
                                break;
                            }
                        }
                        let Some(end) = buf[pos..have].windows(4).position(|w| w == b"\r\n\r\n")
                        else {
                            break;
                        };
                        let head = &buf[pos..pos + end];
                        let (len, conn_close) = scan_head(head);
                        skip = len;
                        close |= conn_close;
                        pos += end + 4;
                        out.extend_from_slice(response);
                    }
                    buf.copy_within(pos..have, 0);
                    have -= pos;
                    if !out.is_empty() {
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                    if close {
                        let _ = s.shutdown().await;
                        return;
                    }
                }
            });
        }
    });
}

/// The `Content-Length` of a request head and whether it asks to close.
fn scan_head(head: &[u8]) -> (usize, bool) {
    let mut len = 0;
    let mut close = false;
    for line in head.split(|&c| c == b'\n').skip(1) {
        let line = line.trim_ascii();
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            len = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        } else if name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    (len, close)
}

fn start_upstream(body: usize) -> Result<SocketAddr, BenchError> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("upstream bind"))?;
    l.set_nonblocking(true).map_err(io("upstream socket"))?;
    let addr = l.local_addr().map_err(io("upstream address"))?;
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body}\r\n\r\n")
            .into_bytes();
    response.extend(std::iter::repeat_n(b'x', body));
    std::thread::Builder::new()
        .name("bench-upstream".into())
        .spawn(move || serve_upstream(l, response))
        .map_err(io("upstream thread"))?;
    Ok(addr)
}

// ---------------------------------------------------------------------------------------
// The proxies.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proxy {
    Nginx,
    Lbd,
}

impl Proxy {
    const fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Lbd => "lbd",
        }
    }
}

/// Idle keep-alive connections to the upstreams, the same number in both configurations.
const KEEPALIVE: usize = 64;

/// The `access_log` directive: off, or to `file` in `dir`, buffered when `buffer` is given.
fn access_log(dir: &Path, file: &str, log: bool, buffer: Option<&str>) -> String {
    match (log, buffer) {
        (false, _) => "access_log off;".to_owned(),
        (true, None) => format!("access_log {}/{file};", dir.display()),
        (true, Some(b)) => format!(
            "access_log {}/{file} combined buffer={b} flush=1s;",
            dir.display()
        ),
    }
}

fn nginx_conf(dir: &Path, workers: usize, port: u16, ups: &[SocketAddr], access: &str) -> String {
    let d = dir.display();
    let mut servers = String::new();
    for u in ups {
        let _ = writeln!(servers, "        server {u};");
    }
    format!(
        "# written by lbd-bench
worker_processes {workers};
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    {access}
    client_body_temp_path {d}/nginx-body;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    upstream backend {{
{servers}        keepalive {KEEPALIVE};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}

fn lbd_conf(workers: usize, port: u16, ups: &[SocketAddr], access: &str) -> String {
    let mut servers = String::new();
    for u in ups {
        let _ = writeln!(servers, "    server {u};");
    }
    format!(
        "# written by lbd-bench
workers {workers};
{access}
upstream backend {{
{servers}    keepalive {KEEPALIVE};
}}
server {{
    listen 127.0.0.1:{port};
    location / {{
        proxy_pass http://backend;
    }}
}}
"
    )
}

/// A proxy process, stopped (by its pid) on drop.
struct Running {
    child: Child,
    name: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SIGQUIT: nginx's graceful stop; lbd stops gracefully on it too.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGQUIT,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("lbd-bench: {} did not stop in 5 s, killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("port probe"))?;
    Ok(l.local_addr().map_err(io("port probe"))?.port())
}

/// One `GET /` with `Connection: close`; whether it answered 200.
fn probe(port: u16) -> bool {
    let Ok(mut s) = StdStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out.starts_with(b"HTTP/1.1 200")
}

struct Env {
    dir: PathBuf,
    lbd: PathBuf,
    nginx: PathBuf,
    wrk: PathBuf,
    baseline: Option<PathBuf>,
    ups: Vec<SocketAddr>,
}

impl Env {
    /// What the proxy in slot `p` is called in the output.
    const fn label(&self, p: Proxy) -> &'static str {
        match (p, &self.baseline) {
            (Proxy::Nginx, Some(_)) => "base",
            _ => p.name(),
        }
    }
}

fn start_proxy(
    env: &Env,
    o: &Opts,
    p: Proxy,
    workers: usize,
) -> Result<(Running, u16), BenchError> {
    let port = free_port()?;
    let lbd_bin = match p {
        Proxy::Lbd => Some(&env.lbd),
        Proxy::Nginx => env.baseline.as_ref(),
    };
    let (mut cmd, conf_path) = match lbd_bin {
        None => {
            let conf = env.dir.join("nginx.conf");
            std::fs::write(
                &conf,
                nginx_conf(
                    &env.dir,
                    workers,
                    port,
                    &env.ups,
                    &access_log(
                        &env.dir,
                        "nginx-access.log",
                        o.access_log,
                        o.log_buffer.as_deref(),
                    ),
                ),
            )
            .map_err(io("write nginx.conf"))?;
            let mut c = Command::new(&env.nginx);
            c.arg("-p")
                .arg(&env.dir)
                .arg("-e")
                .arg(env.dir.join("nginx-error.log"))
                .arg("-c")
                .arg(&conf);
            (c, conf)
        }
        Some(bin) => {
            let conf = env.dir.join(format!("{}.conf", env.label(p)));
            std::fs::write(
                &conf,
                lbd_conf(
                    workers,
                    port,
                    &env.ups,
                    &access_log(
                        &env.dir,
                        "lbd-access.log",
                        o.access_log,
                        o.log_buffer.as_deref(),
                    ),
                ),
            )
            .map_err(io("write lbd.conf"))?;
            let mut c = Command::new(bin);
            c.arg("-c").arg(&conf);
            (c, conf)
        }
    };
    let name = env.label(p);
    let err_path = env.dir.join(format!("{name}-stderr.log"));
    let err_file = std::fs::File::create(&err_path).map_err(io("stderr log"))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .map_err(io(format!("start {name}")))?;
    let mut running = Running { child, name };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if probe(port) {
            return Ok((running, port));
        }
        if let Ok(Some(st)) = running.child.try_wait() {
            let log = std::fs::read_to_string(&err_path).unwrap_or_default();
            return Err(BenchError::Start(format!(
                "{name} ({}) exited with {st}: {log}",
                conf_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(BenchError::Start(format!(
        "{name} ({}) did not answer 200 within 10 s",
        conf_path.display()
    )))
}

// ---------------------------------------------------------------------------------------
// wrk.

#[derive(Clone, Copy, Debug)]
struct Sample {
    rps: f64,
    /// Requests completed.
    requests: u64,
    /// CPU time of the proxy (all its threads and worker processes) per request.
    cpu_per_req: Option<Duration>,
    /// The 99th percentile latency.
    p99: Duration,
    /// Socket errors plus non-2xx/3xx responses.
    errors: u64,
}

/// `1.23ms`, `456.00us`, `1.02s`, `2.00m`.
fn parse_latency(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let v: f64 = num.parse().ok()?;
    Duration::try_from_secs_f64(v * scale).ok()
}

fn parse_wrk(out: &str) -> Result<Sample, String> {
    let mut rps = None;
    let mut p99 = None;
    let mut requests = 0;
    let mut errors = 0u64;
    for line in out.lines() {
        let t = line.trim();
        if let Some((n, _)) = t.split_once(" requests in ") {
            requests = n.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = parse_latency(v.trim());
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // connect 0, read 0, write 0, timeout 0
            errors += v
                .split(',')
                .filter_map(|f| f.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    match (rps, p99) {
        (Some(rps), Some(p99)) => Ok(Sample {
            rps,
            requests,
            cpu_per_req: None,
            p99,
            errors,
        }),
        _ => Err(format!("no Requests/sec or 99% line in:\n{out}")),
    }
}

fn wrk_secs(d: Duration) -> String {
    format!("{}s", d.as_secs().max(1))
}

fn run_wrk(env: &Env, o: &Opts, port: u16, d: Duration) -> Result<Sample, BenchError> {
    let out = Command::new(&env.wrk)
        .arg("-t")
        .arg(o.threads.to_string())
        .arg("-c")
        .arg(o.conns.to_string())
        .arg("-d")
        .arg(wrk_secs(d))
        .arg("--latency")
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .output()
        .map_err(io("run wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(BenchError::Wrk(format!(
            "exited with {}: {text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    parse_wrk(&text).map_err(BenchError::Wrk)
}

/// User plus system CPU time of process `pid` and of its child processes (nginx's workers),
/// from `/proc` (in USER_HZ ticks, 100 per second on Linux).
fn cpu_time(pid: u32) -> Option<Duration> {
    // After the `(comm)` field: state ppid ... utime (index 11) stime (12).
    fn stat(path: &Path) -> Option<(u32, u64)> {
        let text = std::fs::read_to_string(path).ok()?;
        let rest = text.get(text.rfind(')')? + 1..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1)?.parse().ok()?;
        let t = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some((ppid, t))
    }
    let (_, mut ticks) = stat(&PathBuf::from(format!("/proc/{pid}/stat")))?;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && let Some((ppid, t)) = stat(&e.path().join("stat"))
            && ppid == pid
        {
            ticks += t;
        }
    }
    Some(Duration::from_millis(ticks * 10))
}

fn measure(env: &Env, o: &Opts, p: Proxy, workers: usize) -> Result<Sample, BenchError> {
    let (running, port) = start_proxy(env, o, p, workers)?;
    if !o.warmup.is_zero() {
        run_wrk(env, o, port, o.warmup)?;
    }
    let pid = running.child.id();
    let before = cpu_time(pid);
    let mut s = run_wrk(env, o, port, o.duration)?;
    let after = cpu_time(pid);
    if let (Some(b), Some(a)) = (before, after)
        && s.requests > 0
    {
        s.cpu_per_req = a
            .checked_sub(b)
            .map(|d| d / u32::try_from(s.requests).unwrap_or(u32::MAX));
    }
    drop(running);
    Ok(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: f64) -> String {
    format!("{:.2} ms", d * 1e3)
}

fn run(o: &Opts) -> Result<(), BenchError> {
    let nginx = find_program(o.nginx.as_deref(), "nginx")?;
    let wrk = find_program(o.wrk.as_deref(), "wrk")?;
    let lbd = match &o.lbd {
        Some(p) => find_program(Some(p), "lbd")?,
        None => {
            let me = std::env::current_exe().map_err(io("current executable"))?;
            let p = me.with_file_name("lbd");
            if !p.is_file() {
                return Err(BenchError::Missing(format!(
                    "{} (build it: cargo build --release -p lbd --bin lbd, or pass --lbd)",
                    p.display()
                )));
            }
            p
        }
    };
    let dir = std::env::temp_dir().join(format!("lbd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    let ups = vec![start_upstream(o.body)?, start_upstream(o.body)?];
    let env = Env {
        dir,
        lbd,
        nginx,
        wrk,
        baseline: match &o.baseline {
            Some(p) => Some(find_program(Some(p), "lbd")?),
            None => None,
        },
        ups,
    };
    let nginx_version = Command::new(&env.nginx)
        .arg("-v")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stderr).trim().to_owned())
        .unwrap_or_default();
    eprintln!(
        "lbd-bench: {nginx_version}; lbd {}; upstreams {} and {} ({}-byte body); wrk -t {} -c {} -d {} --latency; {} round(s), warm-up {:?}",
        env.lbd.display(),
        env.ups[0],
        env.ups[1],
        o.body,
        o.threads,
        o.conns,
        wrk_secs(o.duration),
        o.rounds,
        o.warmup
    );
    let n = env.label(Proxy::Nginx);
    let mut table = format!(
        "| workers | {n} req/s | lbd req/s | lbd/{n} req/s | {n} p99 | lbd p99 | lbd/{n} p99 | {n} CPU µs/req | lbd CPU µs/req |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let result = (|| {
        for &w in &o.workers {
            let mut got: [(Vec<f64>, Vec<f64>, Vec<f64>); 2] = Default::default();
            for round in 0..o.rounds {
                let order = if round % 2 == 0 {
                    [Proxy::Nginx, Proxy::Lbd]
                } else {
                    [Proxy::Lbd, Proxy::Nginx]
                };
                for p in order {
                    let s = measure(&env, o, p, w)?;
                    let cpu = s.cpu_per_req.map_or(0.0, |d| d.as_secs_f64() * 1e6);
                    eprintln!(
                        "lbd-bench: workers {w} round {} {:>5}: {:>10.0} req/s  p99 {}  CPU {cpu:.1} µs/req{}",
                        round + 1,
                        env.label(p),
                        s.rps,
                        ms(s.p99.as_secs_f64()),
                        if s.errors > 0 {
                            format!("  ({} errors)", s.errors)
                        } else {
                            String::new()
                        }
                    );
                    let slot = &mut got[usize::from(p == Proxy::Lbd)];
                    slot.0.push(s.rps);
                    slot.1.push(s.p99.as_secs_f64());
                    slot.2.push(cpu);
                }
            }
            let [(n_rps, n_p99, n_cpu), (l_rps, l_p99, l_cpu)] = got;
            let (n_rps, n_p99, l_rps, l_p99) =
                (median(n_rps), median(n_p99), median(l_rps), median(l_p99));
            let (n_cpu, l_cpu) = (median(n_cpu), median(l_cpu));
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
            let _ = writeln!(
                table,
                "| {w} | {n_rps:.0} | {l_rps:.0} | {:.2}× | {} | {} | {:.2}× | {n_cpu:.1} | {l_cpu:.1} |",
                ratio(l_rps, n_rps),
                ms(n_p99),
                ms(l_p99),
                ratio(l_p99, n_p99),
            );
        }
        Ok(())
    })();
    if o.keep {
        eprintln!("lbd-bench: kept {}", env.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&env.dir);
    }
    result?;
    println!(
        "\nMedians of {} round(s); wrk -t {} -c {} -d {} --latency; {}-byte upstream body; access log {}.\n",
        o.rounds,
        o.threads,
        o.conns,
        wrk_secs(o.duration),
        o.body,
        match (o.access_log, &o.log_buffer) {
            (false, _) => "off".to_owned(),
            (true, None) => "on".to_owned(),
            (true, Some(b)) => format!("on, buffer={b} flush=1s"),
        }
    );
    print!("{table}");
    Ok(())
}

fn main() -> ExitCode {
    let o = match Opts::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(BenchError::Usage(e)) => {
            if !e.is_empty() {
                eprintln!("lbd-bench: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("lbd-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ BenchError::Missing(_)) => {
            eprintln!("lbd-bench: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("lbd-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn wrk_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 50 connections\n  Latency Distribution\n     50%  500.00us\n     75%    1.00ms\n     90%    2.00ms\n     99%    3.50ms\n  100 requests in 10.00s, 1.00KB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  12345.67\nTransfer/sec:      1.00MB\n";
        let s = parse_wrk(out).unwrap();
        assert!((s.rps - 12345.67).abs() < 1e-6);
        assert_eq!(s.p99, Duration::from_micros(3500));
        assert_eq!(s.errors, 7);
        assert_eq!(s.requests, 100);
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn heads_and_options() {
        assert_eq!(
            scan_head(b"POST / HTTP/1.1\r\nContent-Length: 12\r\nConnection: close\r"),
            (12, true)
        );
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\nHost: x\r"), (0, false));
        let o = Opts::parse(["-w", "1,2", "-c", "10", "-d", "3s"].map(String::from)).unwrap();
        assert_eq!(o.workers, vec![1, 2]);
        assert_eq!(o.duration, Duration::from_secs(3));
        assert!(Opts::parse(["-w", "0"].map(String::from)).is_err());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
