//! `lbd`: the nginx half of the failover pair, an HTTP/1.1 reverse proxy balancing with
//! [`lvs_sched`] (every nginx balancer and every IPVS scheduler).
//!
//! ```text
//! lbd -c /etc/lbd.conf [-t] [--pid FILE]
//! ```
//!
//! `-t` checks the configuration and exits. `SIGHUP` reloads it (a broken file is reported with
//! its file:line:column and the old configuration stays); `SIGUSR1` reopens the access logs
//! (after logrotate has renamed it, as nginx's `-s reopen`); `SIGTERM`, `SIGQUIT` and `SIGINT`
//! stop gracefully: the listeners close, requests in flight finish (at most
//! `shutdown_timeout`, default 30 s), and `lbd` exits with status 0.
//!
//! # Configuration (nginx syntax)
//!
//! ```text
//! workers 4;                      # or worker_processes / worker_threads; auto = one per CPU
//! node_name lb1;                  # what `lbd_status` answers (default: the host name)
//! pid /run/lbd.pid;
//! access_log /var/log/lbd.log;    # or stdout (default), stderr, off; after the path
//!                                 # optionally `combined buffer=64k flush=1s`
//! shutdown_timeout 30s;
//! upstream backend {
//!     # balancer: round robin by default, or one of
//!     #   ip_hash; least_conn; hash $remote_addr [consistent]; random [two [least_conn]];
//!     #   scheduler wlc;   (any lvs-sched name: rr wrr lc wlc sed nq dh sh lblc lblcr mh fo ovf twos ...)
//!     server 10.0.0.1:8080 weight=4 max_fails=2 fail_timeout=30s max_conns=100;
//!     server 10.0.0.2:8080 backup;
//!     server 10.0.0.3:8080 down;
//!     keepalive 32;                 # idle upstream connections kept (0: none)
//!     sticky cookie srv;            # optional: pin clients to the server named by the cookie
//!     health_check interval=2s timeout=1s rise=2 fall=3 uri=/health status=200;  # or type=tcp
//! }
//! server {
//!     listen 0.0.0.0:80;
//!     access_log /var/log/lbd/site.log;   # per server or location, as in nginx (inherited
//!                                         # top-level → server → location; `off` to silence)
//!     location / {
//!         proxy_pass http://backend;
//!         proxy_next_upstream error timeout http_502 http_503;   # also invalid_header,
//!                       # http_500 http_504 http_403 http_404 http_429 non_idempotent, off
//!         proxy_next_upstream_tries 3;
//!         proxy_next_upstream_timeout 10s;
//!         proxy_connect_timeout 2s;
//!         proxy_read_timeout 30s;
//!         proxy_send_timeout 30s;
//!         client_max_body_size 1m;
//!         proxy_set_header Host $host;
//!         proxy_set_header X-Real-IP $remote_addr;
//!         proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
//!         proxy_set_header X-Forwarded-Proto $scheme;
//!     }
//!     location = /lbd-status { lbd_status; access_log off; }
//!     location = /ping { return 200 "pong\n"; }
//! }
//! ```
//!
//! `http { }` and `events { }` wrappers are accepted. `proxy_*` settings at server level are
//! inherited by the locations. As in nginx, without `proxy_set_header Host` the upstream name
//! is sent as `Host`, `backup` is only allowed with round robin and `least_conn`,
//! `error`, `timeout` and `invalid_header` always count as failures, `http_500`...`http_429`
//! only when listed, and `http_403`/`http_404` never do. A request already sent is not retried
//! when it is non-idempotent (POST, LOCK, PATCH) unless `non_idempotent` is listed.
//! Unlike nginx, upstream connections always use HTTP/1.1 with keep-alive. `proxy_pass http://IP:PORT`
//! without an upstream of that name proxies to that one server (nginx's implicit upstream).
//! A reload keeps the health state of the servers it does not change (same upstream name and
//! address): their `max_fails` count and `fail_timeout` window, and, when the upstream has a
//! `health_check` before and after, the active check verdict and its `rise`/`fall` runs. New
//! servers start as configured (up, no failures); removed ones are dropped.
//!
//! Bad input: a request head over 32 KiB gets 431, a malformed request 400, a body over
//! `client_max_body_size` 413. An upstream that fails before a complete response head (closes,
//! sends garbage, or a head over 64 KiB) gives 502 (or the next server, per
//! `proxy_next_upstream`); once the head has been passed on, a broken body (bad chunking, the
//! upstream closing early) can no longer become a 502: the bytes received are sent and the
//! client connection is aborted, as nginx does.
//!
//! # Threads
//!
//! `workers N` starts N threads, each running its own single-threaded tokio runtime; the
//! listening sockets are accepted on the control thread (signals, reloads, health checks),
//! which deals the connections to the workers in turn. A client connection, the upstream
//! connections it uses and its requests then stay on one thread, with a keep-alive pool shard
//! of its own.
//!
//! With an IPVS scheduler, `max_fails`/`fail_timeout` are applied by asking the scheduler
//! again (round-robin-like schedulers move on; hashing ones such as `sh`, `dh`, `mh` answer
//! the same server, so a request for a failed server gets 502 until `fail_timeout` passes).
//!
//! # Configuration (TOML, files named `*.toml`)
//!
//! ```toml
//! workers = 4
//! node_name = "lb1"
//! access_log = "off"              # with a path: access_log_buffer = "64k", access_log_flush = "1s"
//! [upstream.backend]
//! balance = "least_conn"          # any name above; or `hash = "$remote_addr"`, `consistent = true`
//! sticky_cookie = "srv"
//! [[upstream.backend.server]]
//! addr = "10.0.0.1:8080"
//! weight = 4
//! max_fails = 2
//! fail_timeout = "30s"
//! [upstream.backend.health_check]
//! type = "http"
//! uri = "/health"
//! interval = "2s"
//! [[server]]
//! listen = ["0.0.0.0:80"]
//! [[server.location]]
//! path = "/"                      # or exact = "/lbd-status"
//! proxy_pass = "http://backend"
//! proxy_next_upstream = ["error", "timeout", "http_502"]
//! proxy_set_header = [["Host", "$host"], ["X-Real-IP", "$remote_addr"]]
//! [[server.location]]
//! exact = "/lbd-status"
//! lbd_status = true
//! ```

pub mod client;
pub mod config;
pub mod health;
pub mod idle;
pub mod log;
pub mod proxy;
pub mod template;
pub mod upstream;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sd_notify::NotifyState;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use config::{Action, Config, ConfigError, LogConf};
use log::AccessLog;
use proxy::{ConnInfo, Handler, ProxyRt, ServerRt};
use upstream::Upstream;

/// Why `lbd` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LbdError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listen address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another process using it, or is the address not local?)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The access log could not be opened.
    #[error(
        "cannot open the access log: {0} (check the directory and permissions, or use `access_log off`)"
    )]
    AccessLog(std::io::Error),
    /// The pid file could not be written.
    #[error("cannot write the pid file {}: {source}", path.display())]
    Pid {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The runtime or a signal handler could not be set up.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// The state one configuration generation serves with.
#[derive(Debug)]
pub struct State {
    /// The `server` blocks.
    pub servers: Vec<ServerRt>,
    /// The upstreams, in configuration order.
    pub upstreams: Vec<Arc<Upstream>>,
    /// The top-level access log ([`State::log`] `0`).
    pub log: AccessLog,
    /// The other access logs of `server` and `location` blocks ([`State::log`] `1..`), each
    /// file and buffer setting opened once.
    pub other_logs: Vec<(LogConf, AccessLog)>,
    /// `node_name`.
    pub node_name: Box<str>,
    /// Listen address → server block.
    pub listen: Vec<(SocketAddr, usize)>,
    /// The configuration.
    pub conf: Config,
    stop: watch::Sender<bool>,
}

impl State {
    /// Build the run-time state of `conf` (pools sized for `workers` threads).
    ///
    /// # Errors
    /// [`LbdError::AccessLog`].
    pub fn new(conf: Config, workers: usize) -> Result<Self, LbdError> {
        Self::with_previous(conf, workers, None)
    }

    /// Build the state of `conf` for a reload from `prev`, the running generation: the
    /// servers it keeps (same upstream name and address) keep their health state (see
    /// [`Upstream::with_previous`]).
    ///
    /// # Errors
    /// [`LbdError::AccessLog`].
    pub fn with_previous(
        conf: Config,
        workers: usize,
        prev: Option<&Self>,
    ) -> Result<Self, LbdError> {
        let upstreams: Vec<Arc<Upstream>> = conf
            .upstreams
            .iter()
            .map(|u| {
                let old = prev.and_then(|p| p.upstreams.iter().find(|o| *o.name == *u.name));
                Arc::new(Upstream::with_previous(u, workers, old.map(|o| &**o)))
            })
            .collect();
        let node_name: Box<str> = conf.node_name.as_str().into();
        let log = AccessLog::open(&conf.access_log, conf.access_log_buffer, workers)
            .map_err(LbdError::AccessLog)?;
        let top = LogConf {
            target: conf.access_log.clone(),
            buffer: conf.access_log_buffer,
        };
        let mut other_logs: Vec<(LogConf, AccessLog)> = Vec::new();
        // The index of a block's access log: 0 for the top-level one, else its place in
        // `other_logs` + 1, opening it on first use.
        let mut log_index = |l: Option<&LogConf>| -> Result<usize, LbdError> {
            let Some(l) = l.filter(|l| **l != top) else {
                return Ok(0);
            };
            if let Some(i) = other_logs.iter().position(|(c, _)| c == l) {
                return Ok(i + 1);
            }
            let opened =
                AccessLog::open(&l.target, l.buffer, workers).map_err(LbdError::AccessLog)?;
            other_logs.push((l.clone(), opened));
            Ok(other_logs.len())
        };
        let mut servers = Vec::new();
        let mut listen = Vec::new();
        for (si, s) in conf.servers.iter().enumerate() {
            let mut rt = ServerRt {
                log: log_index(s.access_log.as_ref())?,
                ..ServerRt::default()
            };
            for l in &s.locations {
                let h = match &l.action {
                    Action::Status => Handler::Status(Bytes::from(format!("{node_name}\n"))),
                    Action::Return { status, body } => Handler::Return(
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
                        Bytes::from(body.clone()),
                    ),
                    Action::Proxy(p) => {
                        // `validate` guarantees the upstream exists; a location naming
                        // none is skipped rather than served wrongly.
                        let Some(up) = upstreams.iter().find(|u| *u.name == *p.upstream) else {
                            continue;
                        };
                        Handler::Proxy(Box::new(ProxyRt::new(p.clone(), Arc::clone(up))))
                    }
                };
                let log = log_index(l.access_log.as_ref())?;
                let path: Box<str> = l.path.as_str().into();
                if l.exact {
                    rt.exact.push((path, h, log));
                } else {
                    rt.prefix.push((path, h, log));
                }
            }
            rt.prefix.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
            for a in &s.listen {
                if !listen.iter().any(|(x, _)| x == a) {
                    listen.push((*a, si));
                }
            }
            servers.push(rt);
        }
        Ok(Self {
            servers,
            upstreams,
            log,
            other_logs,
            node_name,
            listen,
            conf,
            stop: watch::channel(false).0,
        })
    }

    /// Start the health checkers and the access log's `flush=` timer (call inside the
    /// runtime).
    pub fn start_health(&self) {
        let rx = self.stop.subscribe();
        for u in &self.upstreams {
            health::spawn(u, &rx);
        }
        for log in self.logs() {
            let Some(every) = log.flush_interval() else {
                continue;
            };
            let log = log.clone();
            let mut stop = rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => log.flush(),
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            });
        }
    }

    /// Stop the health checkers and the log timer (what is still buffered is written when
    /// the last connection of this generation is done with it).
    pub fn stop_health(&self) {
        self.stop.send_replace(true);
    }

    /// Access log number `i` (0: the top-level one; an unknown number gets it too).
    #[must_use]
    pub fn log(&self, i: usize) -> &AccessLog {
        i.checked_sub(1)
            .and_then(|j| self.other_logs.get(j))
            .map_or(&self.log, |(_, l)| l)
    }

    /// Every access log of this generation.
    pub fn logs(&self) -> impl Iterator<Item = &AccessLog> {
        std::iter::once(&self.log).chain(self.other_logs.iter().map(|(_, l)| l))
    }

    /// `SIGUSR1`: write what is buffered and reopen every log file.
    fn reopen_logs(&self) {
        let mut failed = false;
        for log in self.logs() {
            if let Err(e) = log.reopen() {
                failed = true;
                eprintln!(
                    "lbd: [alert] cannot reopen an access log, still writing to the old file: {e}"
                );
            }
        }
        if !failed {
            eprintln!("lbd: [notice] access logs reopened");
        }
    }

    fn server_for(&self, addr: SocketAddr) -> Option<usize> {
        self.listen
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, s)| *s)
    }
}

/// The command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-c FILE`.
    pub config: PathBuf,
    /// `-t`.
    pub test: bool,
    /// `--pid FILE`.
    pub pid: Option<PathBuf>,
}

/// Usage text.
pub const USAGE: &str = "usage: lbd -c FILE [-t] [--pid FILE]\n  -c FILE     configuration (nginx syntax, or TOML if it ends in .toml)\n  -t          check the configuration and exit\n  --pid FILE  write the process id to FILE\n";

impl Options {
    /// Parse the arguments (without the program name).
    ///
    /// # Errors
    /// [`UsageError`] naming the bad argument, or [`UsageError::Help`] for `-h`.
    pub fn parse<I>(args: I) -> Result<Self, UsageError>
    where
        I: IntoIterator,
        I::Item: Into<std::ffi::OsString>,
    {
        use lexopt::prelude::*;
        let mut o = Self::default();
        let mut have_c = false;
        let mut p = lexopt::Parser::from_args(args);
        while let Some(arg) = p.next()? {
            match arg {
                Short('c') | Long("config") => {
                    o.config = p.value()?.into();
                    have_c = true;
                }
                Short('t') | Long("test") => o.test = true,
                Short('p') | Long("pid") => o.pid = Some(p.value()?.into()),
                Short('h') | Long("help") => return Err(UsageError::Help),
                _ => return Err(arg.unexpected().into()),
            }
        }
        if !have_c {
            return Err(UsageError::NoConfig);
        }
        Ok(o)
    }
}

/// Why the command line was refused; `lbd` prints it and [`USAGE`] and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An unknown option, a missing or malformed value: lexopt's words.
    #[error(transparent)]
    Args(#[from] lexopt::Error),
    /// `-h` / `--help`: print the usage only.
    #[error("help requested")]
    Help,
    /// No `-c FILE`: lbd needs a configuration.
    #[error("-c FILE is required")]
    NoConfig,
}

/// `lbd`'s `main`.
#[must_use]
pub fn run() -> ExitCode {
    let opts = match Options::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if !matches!(e, UsageError::Help) {
                eprintln!("lbd: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let conf = match config::load(&opts.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lbd: [emerg] {e}");
            if opts.test {
                eprintln!(
                    "lbd: configuration file {} test failed",
                    opts.config.display()
                );
            }
            return ExitCode::from(1);
        }
    };
    if opts.test {
        eprintln!(
            "lbd: the configuration file {} syntax is ok",
            opts.config.display()
        );
        eprintln!(
            "lbd: configuration file {} test is successful",
            opts.config.display()
        );
        return ExitCode::SUCCESS;
    }
    match start(opts, conf) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lbd: [emerg] {e}");
            ExitCode::from(1)
        }
    }
}

fn start(opts: Options, conf: Config) -> Result<(), LbdError> {
    let workers = if conf.workers == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        conf.workers
    };
    // The control runtime (signals, reloads, health checks) runs on this thread; the client
    // connections on `workers` threads of their own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LbdError::Runtime)?;
    let pool = Workers::start(workers)?;
    let pid = opts.pid.clone().or_else(|| conf.pid_file.clone());
    if let Some(p) = &pid {
        std::fs::write(p, format!("{}\n", std::process::id())).map_err(|source| LbdError::Pid {
            path: p.clone(),
            source,
        })?;
    }
    let r = rt.block_on(serve(opts.config, conf, &pool));
    if let Some(p) = &pid {
        let _ = std::fs::remove_file(p);
    }
    // Do not wait for stray tasks (idle upstream connections, health probes).
    pool.stop();
    rt.shutdown_timeout(Duration::from_millis(100));
    r
}

/// The worker threads, each running a single-threaded tokio runtime: a client connection,
/// its upstream connections and its requests stay on the thread that accepted it, so no work
/// moves between threads and the per-thread keep-alive pool shards are never contended.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Workers {
    fn start(n: usize) -> Result<Self, LbdError> {
        let (stop, stop_rx) = watch::channel(false);
        let mut w = Self {
            handles: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
            stop,
        };
        for _ in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(LbdError::Runtime)?;
            w.handles.push(rt.handle().clone());
            let mut stop = stop_rx.clone();
            let t = std::thread::Builder::new()
                .name("lbd-worker".into())
                .spawn(move || {
                    rt.block_on(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    });
                    rt.shutdown_timeout(Duration::from_millis(100));
                })
                .map_err(LbdError::Runtime)?;
            w.threads.push(t);
        }
        Ok(w)
    }

    /// Stop the runtimes (their remaining tasks are dropped) and wait for the threads.
    fn stop(mut self) {
        self.stop.send_replace(true);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // On an early error return: let the threads end rather than block forever.
        self.stop.send_replace(true);
    }
}

/// Bind a listening socket with `SO_REUSEADDR` and a deep backlog.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, LbdError> {
    let e = |source| LbdError::Bind { addr, source };
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .map_err(e)?;
    sock.set_reuse_address(true).map_err(e)?;
    sock.set_nonblocking(true).map_err(e)?;
    sock.bind(&addr.into()).map_err(e)?;
    sock.listen(4096).map_err(e)?;
    Ok(sock.into())
}

/// How long a client connection may still start a request after a reload or stop.
const DRAIN_GRACE: Duration = Duration::from_millis(300);

/// Counts live client connections; decremented on drop.
struct ConnGuard(Arc<AtomicUsize>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Clone)]
struct Shared {
    state: watch::Receiver<Arc<State>>,
    drain: watch::Receiver<u64>,
    active: Arc<AtomicUsize>,
}

/// Accept on `listener` (on the control thread) and hand the connections to the workers in
/// turn, so that each gets its share however the kernel would have spread the wake-ups.
fn spawn_listener(
    listener: &std::net::TcpListener,
    addr: SocketAddr,
    shared: &Shared,
    workers: &Workers,
) -> Vec<JoinHandle<()>> {
    let listener = match listener.try_clone().and_then(TcpListener::from_std) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lbd: [alert] cannot register the listener on {addr}: {e}");
            return Vec::new();
        }
    };
    let handles = workers.handles.clone();
    vec![tokio::spawn(accept_loop(
        listener,
        addr,
        shared.clone(),
        handles,
    ))]
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Shared,
    workers: Vec<tokio::runtime::Handle>,
) {
    let mut next = 0usize;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("lbd: [alert] accept on {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&shared.state.borrow());
        let Some(server) = state.server_for(addr) else {
            continue;
        };
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let Some(worker) = workers.get(next % workers.len().max(1)) else {
            continue;
        };
        next = next.wrapping_add(1);
        shared.active.fetch_add(1, Ordering::AcqRel);
        let guard = ConnGuard(Arc::clone(&shared.active));
        let drain = shared.drain.clone();
        worker.spawn(async move {
            if let Ok(stream) = TcpStream::from_std(stream) {
                serve_conn(state, server, stream, remote, addr, drain, guard).await;
            }
        });
    }
}

async fn serve_conn(
    state: Arc<State>,
    server: usize,
    stream: TcpStream,
    remote: SocketAddr,
    local: SocketAddr,
    mut drain: watch::Receiver<u64>,
    guard: ConnGuard,
) {
    let _ = stream.set_nodelay(true);
    drain.borrow_and_update();
    let info = ConnInfo { remote, local };
    let activity = Arc::new(idle::Activity::default());
    let io = idle::IdleIo::new(stream, Arc::clone(&activity), idle::HEADER_TIMEOUT);
    let svc = service_fn(move |req| {
        // Counted from the head's arrival to the end of the response body (or its drop).
        let busy = activity.begin();
        let resp = proxy::handle(Arc::clone(&state), server, info, req);
        async move {
            let resp = resp.await?;
            Ok::<_, std::convert::Infallible>(resp.map(|body| proxy::Tracked::new(body, busy)))
        }
    });
    // No hyper timer: the header timeout is `IdleIo`'s (one timer per connection instead of
    // one per request).
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .max_header_size(32 * 1024)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let drained = drained(&mut drain);
    tokio::pin!(drained);
    tokio::select! {
        biased;
        _ = conn.as_mut() => {}
        () = drained => {
            // A connection accepted just before the reload or stop may not have sent its
            // request yet, and hyper would close it as idle: give it a moment first.
            let grace = tokio::time::sleep(DRAIN_GRACE);
            tokio::select! {
                _ = conn.as_mut() => return,
                () = grace => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
    drop(guard);
}

/// `drain.changed()` (a reload or stop, or the sender gone), cheap to poll again: tokio's
/// `Notified` takes the channel's waiter lock on every poll, shared by all the connections of
/// all the workers, and a connection's task is woken several times per request. Once it has
/// registered this task's waker, it is only polled again when the version moved.
async fn drained(drain: &mut watch::Receiver<u64>) {
    let probe = drain.clone();
    let changed = drain.changed();
    tokio::pin!(changed);
    let mut registered: Option<Waker> = None;
    std::future::poll_fn(|cx| {
        if registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
            && probe.has_changed().is_ok_and(|c| !c)
        {
            return Poll::Pending;
        }
        registered = Some(cx.waker().clone());
        changed.as_mut().poll(cx).map(|_| ())
    })
    .await;
}

async fn serve(path: PathBuf, conf: Config, pool: &Workers) -> Result<(), LbdError> {
    let workers = pool.handles.len();
    let shutdown_timeout = conf.shutdown_timeout;
    let state = Arc::new(State::new(conf, workers)?);
    let mut listeners: HashMap<SocketAddr, Vec<JoinHandle<()>>> = HashMap::new();
    let mut bound = Vec::new();
    for (addr, _) in &state.listen {
        bound.push((*addr, bind(*addr)?));
    }
    let (state_tx, state_rx) = watch::channel(Arc::clone(&state));
    let (drain_tx, drain_rx) = watch::channel(0u64);
    let shared = Shared {
        state: state_rx,
        drain: drain_rx,
        active: Arc::new(AtomicUsize::new(0)),
    };
    for (addr, l) in bound {
        listeners.insert(addr, spawn_listener(&l, addr, &shared, pool));
    }
    state.start_health();
    drop(state);
    let mut hup = signal(SignalKind::hangup()).map_err(LbdError::Runtime)?;
    let mut term = signal(SignalKind::terminate()).map_err(LbdError::Runtime)?;
    let mut quit = signal(SignalKind::quit()).map_err(LbdError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(LbdError::Runtime)?;
    let mut usr1 = signal(SignalKind::user_defined1()).map_err(LbdError::Runtime)?;
    eprintln!(
        "lbd: [notice] started, {workers} worker threads, pid {}",
        std::process::id()
    );
    // Under systemd (Type=notify): the listening sockets are bound, ready.
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                match NotifyState::monotonic_usec_now() {
                    Ok(now) => notify(&[NotifyState::Reloading, now]),
                    Err(_) => notify(&[NotifyState::Reloading]),
                }
                let status = match reload(&path, pool, &state_tx, &drain_tx, &mut listeners, &shared) {
                    Ok(()) => "serving; reload done".to_owned(),
                    Err(e) => format!("reload failed, running configuration kept: {e}"),
                };
                notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
            }
            _ = usr1.recv() => state_tx.borrow().reopen_logs(),
            _ = term.recv() => break,
            _ = quit.recv() => break,
            _ = int.recv() => break,
        }
    }
    notify(&[NotifyState::Stopping]);
    eprintln!("lbd: [notice] stopping: closing listeners, finishing requests in flight");
    for h in listeners.drain().flat_map(|(_, v)| v) {
        h.abort();
    }
    state_tx.borrow().stop_health();
    drain_tx.send_modify(|g| *g += 1);
    let deadline = tokio::time::Instant::now() + shutdown_timeout;
    while shared.active.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = shared.active.load(Ordering::Acquire);
    if left > 0 {
        eprintln!(
            "lbd: [warn] shutdown_timeout passed with {left} connection(s) still open; closing them"
        );
    }
    // The buffered lines of the requests served (older generations wrote theirs when their
    // last connection closed).
    for log in state_tx.borrow().logs() {
        log.flush();
    }
    eprintln!("lbd: [notice] exiting");
    Ok(())
}

/// Tells systemd (through `NOTIFY_SOCKET`, when it is set) how the service is doing.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        eprintln!("lbd: [warn] cannot notify the service manager: {e}");
    }
}

fn reload(
    path: &Path,
    pool: &Workers,
    state_tx: &watch::Sender<Arc<State>>,
    drain_tx: &watch::Sender<u64>,
    listeners: &mut HashMap<SocketAddr, Vec<JoinHandle<()>>>,
    shared: &Shared,
) -> Result<(), String> {
    let workers = pool.handles.len();
    let conf = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lbd: [emerg] reload failed, keeping the running configuration: {e}");
            return Err(e.to_string());
        }
    };
    if conf.workers != 0 && conf.workers != workers {
        eprintln!("lbd: [warn] the worker count changes only on restart (running with {workers})");
    }
    let prev = Arc::clone(&state_tx.borrow());
    let state = match State::with_previous(conf, workers, Some(&prev)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("lbd: [emerg] reload failed, keeping the running configuration: {e}");
            return Err(e.to_string());
        }
    };
    let mut fresh = Vec::new();
    for (addr, _) in &state.listen {
        if listeners.contains_key(addr) {
            continue;
        }
        match bind(*addr) {
            Ok(l) => fresh.push((*addr, l)),
            Err(e) => {
                eprintln!("lbd: [emerg] reload failed, keeping the running configuration: {e}");
                return Err(e.to_string());
            }
        }
    }
    listeners.retain(|addr, tasks| {
        let keep = state.listen.iter().any(|(a, _)| a == addr);
        if !keep {
            for h in tasks.iter() {
                h.abort();
            }
        }
        keep
    });
    for (addr, l) in fresh {
        listeners.insert(addr, spawn_listener(&l, addr, shared, pool));
    }
    state.start_health();
    let old = state_tx.send_replace(state);
    old.stop_health();
    // Connections of the old generation finish their request and close.
    drain_tx.send_modify(|g| *g += 1);
    eprintln!(
        "lbd: [notice] configuration reloaded from {}",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn options() {
        let a = |v: &[&str]| Options::parse(v.iter().copied());
        let o = a(&["-c", "x.conf", "-t", "--pid", "p"]).unwrap();
        assert_eq!(o.config, PathBuf::from("x.conf"));
        assert!(o.test);
        assert_eq!(o.pid, Some(PathBuf::from("p")));
        assert!(matches!(a(&["-t"]), Err(UsageError::NoConfig)));
        assert!(matches!(a(&["-h"]), Err(UsageError::Help)));
        assert!(matches!(a(&["-c"]), Err(UsageError::Args(_))));
        assert!(
            a(&["-c", "x", "-z"])
                .unwrap_err()
                .to_string()
                .contains("-z")
        );
        assert_eq!(
            a(&["--config=y.conf"]).unwrap().config,
            PathBuf::from("y.conf")
        );
        // A file name need not be UTF-8.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let raw = std::ffi::OsStr::from_bytes(b"conf\xff.conf");
            let o = Options::parse([std::ffi::OsStr::new("-c"), raw]).unwrap();
            assert_eq!(o.config.as_os_str(), raw);
        }
    }

    #[test]
    fn locations_exact_then_longest_prefix() {
        let text = "upstream u { server 127.0.0.1:1; }\nserver { listen 127.0.0.1:1;\n location / { proxy_pass http://u; }\n location /api/ { return 201; }\n location = /api/x { lbd_status; }\n}\n";
        let conf = config::parse_str(Path::new("t.conf"), text).unwrap();
        let st = State::new(conf, 1).unwrap();
        let s = &st.servers[0];
        assert!(matches!(s.find("/api/x"), Some((Handler::Status(_), 0))));
        assert!(matches!(s.find("/api/y"), Some((Handler::Return(..), 0))));
        assert!(matches!(s.find("/other"), Some((Handler::Proxy(_), 0))));
    }
}
