//! `failover-demo`: the classic nginx + keepalived failover pair, built for real in network
//! namespaces and driven through its failures while a client measures what users would see.
//!
//! ```text
//!                      client (10.99.0.2)
//!                            |  http://10.99.0.100/ (the VIP)
//!           +----------------+----------------+
//!   lb1 (10.99.0.11)                  lb2 (10.99.0.12)
//!   vrrpd priority 100 + lbd          vrrpd priority 99 + lbd
//!   track_script: http-check of its own lbd (the classic nginx_check.sh),
//!   or with --track process: track_process of its own lbd (weight 0: FAULT when it dies)
//!           +----------------+----------------+
//!   rs1 (10.99.0.21:8080)             rs2 (10.99.0.22:8080)
//!   demo-web, sessions in one shared session-store (SQLite file by default)
//! ```
//!
//! All hosts hang off one bridge (the [`Testbed`]). The demo starts the real servers, the two
//! balancers and their VRRP daemons, logs a client in once through the VIP and then requests
//! the VIP at a fixed rate (one connection per request) while it
//!
//! 1. kills lb1's proxy (`SIGKILL`): lb1's `track_script` fails, its priority drops to 80, lb2
//!    takes the VIP (with `--track process`: the kernel reports the death at once, lb1 goes to
//!    FAULT and releases the VIP with priority 0, lb2 takes it after its Skew_Time);
//! 2. restarts lb1's proxy: the script recovers, lb1 (priority 100) preempts the VIP back;
//! 3. kills rs1: the balancer's `proxy_next_upstream` retries rs2, `max_fails` takes rs1 out;
//! 4. restarts rs1: after `fail_timeout` it is used again.
//!
//! It prints a timeline of who answered, writes an SVG chart, checks that no answer came from a
//! party that could not have given it, that the session was never lost (every answer names
//! the logged-in user and a request counter that only grows, written by whichever real
//! server answered), and ends with one JSON summary line. Everything it made (namespaces,
//! processes, files) is removed at the end, also on Ctrl-C.

pub mod check;
pub mod client;
pub mod report;
#[cfg(feature = "web")]
pub mod webapp;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use client::{ClientPlan, Live, Sample};
use report::{Event, Summary};

use testbed::{Daemon, Testbed, TestbedError};

/// The virtual IP the pair shares.
pub const VIP: &str = "10.99.0.100";
/// The session cookie's name.
pub const COOKIE: &str = "sid";
/// Set by the SIGINT/SIGTERM watcher: stop at the next step and tear everything down.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// Not root, no namespaces, or a program missing.
    #[error("cannot run the demo: {0}")]
    Prerequisite(String),
    /// Building or driving the namespaces failed.
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    /// A file could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Something did not happen in time; the logs of the daemons involved follow.
    #[error("{what} did not happen within {after:?}\n{logs}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long the demo waited.
        after: Duration,
        /// The tails of the relevant logs.
        logs: String,
    },
    /// The client could not log in.
    #[error(transparent)]
    Login(#[from] client::LoginError),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted; everything the demo made has been removed")]
    Interrupted,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// Where the real servers keep their sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// One SQLite file both real servers open (default: in the demo's run directory).
    Sqlite(Option<PathBuf>),
    /// A redis-server the demo starts on a `db` host.
    Redis,
    /// Two memcached instances the demo starts on a `db` host (ketama ring over both, each
    /// session written to both).
    Memcached,
    /// A store URL passed as it is (`redis://...`, `memcached://...`, `sqlite:...`); it must
    /// be reachable from inside the demo's namespaces.
    Url(String),
}

impl StoreChoice {
    fn parse(s: &str) -> Result<Self, DemoError> {
        Ok(match s {
            "sqlite" => Self::Sqlite(None),
            "redis" => Self::Redis,
            "memcached" => Self::Memcached,
            _ if s.starts_with("sqlite:") => {
                Self::Sqlite(Some(PathBuf::from(s.trim_start_matches("sqlite:"))))
            }
            _ if s.starts_with("redis://")
                || s.starts_with("redis+sentinel://")
                || s.starts_with("memcached://") =>
            {
                Self::Url(s.to_owned())
            }
            _ => {
                return Err(DemoError::Usage(format!(
                    "--store {s:?}: expected sqlite, sqlite:PATH, redis, memcached, redis://HOST:PORT or memcached://HOST:PORT[,HOST:PORT...]"
                )));
            }
        })
    }

    fn name(&self) -> String {
        match self {
            Self::Sqlite(_) => "sqlite".into(),
            Self::Redis => "redis".into(),
            Self::Memcached => "memcached".into(),
            Self::Url(u) => u.split(':').next().unwrap_or("url").to_owned(),
        }
    }
}

/// How each balancer's VRRP daemon learns that its proxy died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracking {
    /// The classic `vrrp_script` (an HTTP check of the local proxy every advertisement
    /// interval, `fall 2`, `weight -20`).
    Script,
    /// `vrrp_track_process` on the proxy's command line with weight 0: the kernel's process
    /// events report the death at once and the instance goes to FAULT.
    Process,
}

impl Tracking {
    /// The name used on the command line and in the summary.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::Process => "process",
        }
    }
}

/// The demo's options.
#[derive(Clone, Debug)]
pub struct Options {
    /// How the balancers track their proxy.
    pub track: Tracking,
    /// Session store of the real servers.
    pub store: StoreChoice,
    /// VRRP advertisement interval (VRRPv3 below 1 s, VRRPv2 with PASS at 1 s and above,
    /// like the classic keepalived.conf).
    pub advert_int: Duration,
    /// Total requests per second.
    pub rate: f64,
    /// Client threads, each with its own login session.
    pub clients: usize,
    /// How long to watch the pair after each event once it has settled.
    pub settle: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Where to write the SVG chart (`None`: not written).
    pub svg: Option<PathBuf>,
    /// Directory with `vrrpd`, `lbd`, `demo-web` and `http-check` (default: next to this
    /// program).
    pub bin_dir: Option<PathBuf>,
    /// Do not print the timeline (the summary still goes out).
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            track: Tracking::Script,
            store: StoreChoice::Sqlite(None),
            advert_int: Duration::from_millis(100),
            rate: 200.0,
            clients: 1,
            settle: Duration::from_millis(1500),
            timeout: Duration::from_millis(500),
            svg: Some(PathBuf::from("failover-demo.svg")),
            bin_dir: None,
            quiet: false,
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
usage: failover-demo [options]          (as root)
  --store S          where rs1 and rs2 keep sessions: sqlite (default, a shared file),
                     sqlite:PATH, redis, memcached (started by the demo on a `db` host),
                     or a URL reachable from the namespaces (redis://..., memcached://...)
  --advert-int SECS  VRRP advertisement interval (0.1; >= 1 uses VRRPv2 with PASS)
  --track T          how a balancer notices its proxy died: script (a vrrp_script HTTP
                     check, fall 2, weight -20; default) or process (vrrp_track_process,
                     weight 0: FAULT at once)
  --rate N           requests per second through the VIP, all clients together (200)
  --clients N        client threads, each logged in with its own session (1)
  --settle SECS      how long to watch after each event (1.5)
  --timeout SECS     per-request timeout (0.5)
  --svg FILE         chart output (failover-demo.svg); --no-svg to skip
  --bin-dir DIR      where vrrpd, lbd, demo-web and http-check are (next to this program)
  --quiet            no timeline, only the summary
The last line of standard output is a JSON summary.
";

fn secs(flag: &str, v: &str) -> Result<Duration, lexopt::Error> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{flag} {v:?}: expected seconds, e.g. 0.5").into())
}

impl Options {
    /// Parses the command line (without the program name).
    ///
    /// # Errors
    /// [`DemoError::Usage`] for an unknown flag or a bad value; `Usage("")` for `--help`.
    pub fn parse(
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
    ) -> Result<Self, DemoError> {
        let mut o = Self::default();
        let mut help = false;
        o.parse_into(args, &mut help)
            .map_err(|e| DemoError::Usage(e.to_string()))?;
        if help {
            return Err(DemoError::Usage(String::new()));
        }
        Ok(o)
    }

    fn parse_into(
        &mut self,
        args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
        help: &mut bool,
    ) -> Result<(), lexopt::Error> {
        use lexopt::prelude::*;
        let mut p = lexopt::Parser::from_args(args);
        while let Some(arg) = p.next()? {
            match arg {
                Long("store") => {
                    let v = p.value()?.string()?;
                    self.store = StoreChoice::parse(&v).map_err(|e| e.to_string())?;
                }
                Long("advert-int") => {
                    self.advert_int = secs("--advert-int", &p.value()?.string()?)?
                }
                Long("track") => {
                    self.track = match p.value()?.string()?.as_str() {
                        "script" => Tracking::Script,
                        "process" => Tracking::Process,
                        v => {
                            return Err(format!("--track {v:?}: expected script or process").into());
                        }
                    }
                }
                Long("settle") => self.settle = secs("--settle", &p.value()?.string()?)?,
                Long("timeout") => self.timeout = secs("--timeout", &p.value()?.string()?)?,
                Long("rate") => {
                    let r: f64 = p.value()?.parse()?;
                    if !(r.is_finite() && (1.0..=100_000.0).contains(&r)) {
                        return Err("--rate: expected requests/s in 1..=100000".into());
                    }
                    self.rate = r;
                }
                Long("clients") => {
                    let n: usize = p.value()?.parse()?;
                    if !(1..=256).contains(&n) {
                        return Err("--clients: expected 1..=256".into());
                    }
                    self.clients = n;
                }
                Long("svg") => self.svg = Some(p.value()?.into()),
                Long("no-svg") => self.svg = None,
                Long("bin-dir") => self.bin_dir = Some(p.value()?.into()),
                Short('q') | Long("quiet") => self.quiet = true,
                Short('h') | Long("help") => {
                    *help = true;
                    return Ok(());
                }
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(())
    }

    /// VRRP version used for this advertisement interval.
    #[must_use]
    pub fn vrrp_version(&self) -> u8 {
        if self.advert_int >= Duration::from_secs(1) {
            2
        } else {
            3
        }
    }

    /// The track script's interval: the advertisement interval, at least 50 ms.
    fn script_interval(&self) -> Duration {
        self.advert_int.max(Duration::from_millis(50))
    }

    /// The longest a balancer failover may take. With the track script: the script noticing
    /// the dead proxy (`fall` failures plus one interval of phase), the backup's
    /// Master_Down_Interval (3 × advert + skew for priority 99), one more advertisement
    /// interval for the announcements, and 100 ms for process start-up and scheduling on a
    /// busy machine. With process tracking the master releases at once (priority 0), so the
    /// backup takes over after its Skew_Time: skew + one advertisement interval + 100 ms,
    /// plus one request timeout: between the release and the backup's announcement no
    /// balancer holds the VIP, and a connection attempted then goes unanswered until its
    /// client gives up (with many clients the others see the backup at once).
    #[must_use]
    pub fn vrrp_bound(&self) -> Duration {
        let adv = self.advert_int;
        let skew = adv * (256 - 99) / 256;
        match self.track {
            Tracking::Script => {
                self.script_interval() * (SCRIPT_FALL + 1)
                    + adv * 3
                    + skew
                    + adv
                    + Duration::from_millis(100)
            }
            Tracking::Process => skew + adv + Duration::from_millis(100) + self.timeout,
        }
    }
}

const SCRIPT_FALL: u32 = 2;
const SCRIPT_RISE: u32 = 2;

/// Starts the thread that turns SIGINT and SIGTERM into [`DemoError::Interrupted`] at the
/// demo's next step. Call once, from `main`.
///
/// # Errors
/// The signal handlers could not be installed.
pub fn watch_signals() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("failover-demo: interrupted, tearing down");
        })?;
    Ok(())
}

fn interrupted() -> Result<(), DemoError> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(DemoError::Interrupted)
    } else {
        Ok(())
    }
}

/// Sleeps, waking every 10 ms to notice Ctrl-C.
fn pause(d: Duration) -> Result<(), DemoError> {
    let until = Instant::now() + d;
    loop {
        interrupted()?;
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        thread::sleep((until - now).min(Duration::from_millis(10)));
    }
}

/// Waits for `cond`, checking for Ctrl-C.
fn wait_for(
    what: &str,
    timeout: Duration,
    logs: &[&Daemon],
    mut cond: impl FnMut() -> bool,
) -> Result<(), DemoError> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        interrupted()?;
        if Instant::now() >= deadline {
            return Err(DemoError::Timeout {
                what: what.to_owned(),
                after: timeout,
                logs: log_tails(logs),
            });
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn log_tails(ds: &[&Daemon]) -> String {
    let mut s = String::new();
    for d in ds {
        let log = d.log().unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        s.push_str(&format!("--- {} ---\n{}\n", d.name(), tail.join("\n")));
    }
    s
}

/// The programs the demo runs.
#[derive(Clone, Debug)]
struct Programs {
    vrrpd: PathBuf,
    lbd: PathBuf,
    web: PathBuf,
    check: PathBuf,
}

impl Programs {
    fn find(dir: Option<&Path>) -> Result<Self, DemoError> {
        let dir = match dir {
            Some(d) => d.to_owned(),
            None => std::env::current_exe()
                .map_err(io_err("finding this program's directory"))?
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        };
        let get = |name: &str| {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(DemoError::Prerequisite(format!(
                    "{} is missing: build the examples first (cargo build --release -p failover-demo -p vrrpd -p lbd --bins) or pass --bin-dir",
                    p.display()
                )))
            }
        };
        Ok(Self {
            vrrpd: get("vrrpd")?,
            lbd: get("lbd")?,
            web: get("demo-web")?,
            check: get("http-check")?,
        })
    }
}

fn ensure_program(name: &str, package: &str) -> Result<PathBuf, DemoError> {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DemoError::Prerequisite(format!(
        "{name} is not installed (apt-get install {package})"
    )))
}

/// Waits until `d`'s log contains `needle` (more times than `before`).
fn wait_log(d: &Daemon, needle: &str, before: usize, timeout: Duration) -> Result<(), DemoError> {
    wait_for(
        &format!("{} logging {needle:?}", d.name()),
        timeout,
        &[d],
        || {
            d.log()
                .map(|l| l.matches(needle).count() > before)
                .unwrap_or(false)
        },
    )?;
    Ok(())
}

fn count_in_log(tb: &Testbed, name: &str, needle: &str) -> usize {
    fs::read_to_string(tb.run_dir().join(format!("{name}.log")))
        .map(|l| l.matches(needle).count())
        .unwrap_or(0)
}

struct Pair<'a> {
    tb: &'a Testbed,
    progs: Programs,
    opts: &'a Options,
    store_arg: String,
}

impl Pair<'_> {
    fn web(&self, rs: &str) -> Result<Daemon, DemoError> {
        let name = format!("web-{rs}");
        let before = count_in_log(self.tb, &name, "listening on");
        let addr = format!("{}:8080", self.tb.addr4(rs)?);
        let d = self.tb.spawn(
            rs,
            &name,
            &self.progs.web.display().to_string(),
            [
                "--name",
                rs,
                "--listen",
                &addr,
                "--store",
                &self.store_arg,
                "--cookie",
                COOKIE,
            ],
        )?;
        wait_log(&d, "listening on", before, Duration::from_secs(15))?;
        Ok(d)
    }

    fn lbd_conf_path(&self, lb: &str) -> PathBuf {
        self.tb.run_dir().join(lb).join("lbd.conf")
    }

    fn lbd_conf(&self, lb: &str) -> Result<PathBuf, DemoError> {
        let dir = self.tb.run_dir().join(lb);
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let conf = format!(
            "# lbd on {lb}: a classic nginx.conf, balancing the two real servers.
workers 1;
node_name {lb};
access_log {log};
shutdown_timeout 1s;
upstream realservers {{
    server {rs1}:8080 max_fails=1 fail_timeout=2s;
    server {rs2}:8080 max_fails=1 fail_timeout=2s;
    keepalive 16;
}}
server {{
    listen 0.0.0.0:80;
    location / {{
        proxy_pass http://realservers;
        proxy_next_upstream error timeout http_502 http_503 http_504;
        proxy_next_upstream_tries 2;
        proxy_connect_timeout 200ms;
        proxy_read_timeout 2s;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
    location = /ping {{ return 200 \"pong\\n\"; }}
}}
",
            log = dir.join("access.log").display(),
            rs1 = self.tb.addr4("rs1")?,
            rs2 = self.tb.addr4("rs2")?,
        );
        let path = self.lbd_conf_path(lb);
        fs::write(&path, conf).map_err(io_err(format!("writing {}", path.display())))?;
        Ok(path)
    }

    fn lbd(&self, lb: &str) -> Result<Daemon, DemoError> {
        let conf = self.lbd_conf(lb)?;
        let name = format!("lbd-{lb}");
        let before = count_in_log(self.tb, &name, "started");
        let d = self.tb.spawn(
            lb,
            &name,
            &self.progs.lbd.display().to_string(),
            ["-c", &conf.display().to_string()],
        )?;
        wait_log(&d, "started", before, Duration::from_secs(10))?;
        Ok(d)
    }

    fn vrrpd(&self, lb: &str, prio: u8) -> Result<Daemon, DemoError> {
        let dir = self.tb.run_dir().join(lb);
        fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let adv = self.opts.advert_int.as_secs_f64();
        let script_int = self.opts.script_interval().as_secs_f64();
        let v2 = self.opts.vrrp_version() == 2;
        let auth = if v2 {
            "    authentication {\n        auth_type PASS\n        auth_pass hapri1\n    }\n"
        } else {
            ""
        };
        let tracking = match self.opts.track {
            Tracking::Script => format!(
                "# vrrpd on {lb}: a classic keepalived.conf; chk_proxy is its nginx_check.sh.
global_defs {{
    router_id {lb}
}}
vrrp_script chk_proxy {{
    script \"{check} http://127.0.0.1/ping\"
    interval {script_int}
    timeout {timeout}
    fall {SCRIPT_FALL}
    rise {SCRIPT_RISE}
    weight -20
}}
",
                check = self.progs.check.display(),
                timeout = script_int.max(0.2),
            ),
            // The proxy's whole command line: its own configuration file tells the two
            // balancers' proxies apart (the kernel reports every process on the machine).
            Tracking::Process => format!(
                "# vrrpd on {lb}: keepalived's process tracking of its own proxy.
global_defs {{
    router_id {lb}
}}
vrrp_track_process chk_proxy {{
    process \"{lbd}\" -c \"{conf}\"
    weight 0
}}
",
                lbd = self.progs.lbd.display(),
                conf = self.lbd_conf_path(lb).display(),
            ),
        };
        let track_block = match self.opts.track {
            Tracking::Script => "track_script",
            Tracking::Process => "track_process",
        };
        let conf = format!(
            "{tracking}vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int {adv}
    version {version}
{auth}    {track_block} {{
        chk_proxy
    }}
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
",
            state = if prio == 100 { "MASTER" } else { "BACKUP" },
            version = self.opts.vrrp_version(),
        );
        let path = dir.join("keepalived.conf");
        fs::write(&path, conf).map_err(io_err(format!("writing {}", path.display())))?;
        let name = format!("vrrpd-{lb}");
        let d = self.tb.spawn(
            lb,
            &name,
            &self.progs.vrrpd.display().to_string(),
            [
                "-f".to_owned(),
                path.display().to_string(),
                "--pid".into(),
                dir.join("vrrpd.pid").display().to_string(),
                "--data-file".into(),
                dir.join("vrrpd.data").display().to_string(),
                "--stats-file".into(),
                dir.join("vrrpd.stats").display().to_string(),
            ],
        )?;
        wait_log(&d, "started:", 0, Duration::from_secs(10))?;
        Ok(d)
    }
}

/// Stops and joins the client threads when dropped.
struct Clients {
    live: Vec<Arc<Live>>,
    threads: Vec<JoinHandle<Option<()>>>,
}

impl Clients {
    fn stop(&mut self) {
        for l in &self.live {
            l.stop();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn samples(&self) -> Vec<Sample> {
        let mut all: Vec<Sample> = self.live.iter().flat_map(|l| l.snapshot()).collect();
        all.sort_by_key(|s| s.start);
        all
    }

    /// `true` when every client's latest answer satisfies `f`.
    fn all_last(&self, f: impl Fn(&client::Answer) -> bool) -> bool {
        self.live.iter().all(|l| {
            l.last().is_some_and(|s| match &s.outcome {
                client::Outcome::Answer(a) => f(a),
                _ => false,
            })
        })
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop();
    }
}

fn progress(epoch: Instant, msg: &str) {
    eprintln!("[{:7.3} s] {msg}", epoch.elapsed().as_secs_f64());
}

/// The outcome of a demo run, before teardown.
struct Run {
    summary: Summary,
    timeline: String,
    pids: Vec<u32>,
    prefix: String,
}

/// Runs the demo; returns the summary (its `teardown_clean` checked after everything was
/// removed) and the timeline text.
///
/// # Errors
/// [`DemoError`]: prerequisites, a step that did not happen in time, Ctrl-C.
pub fn run(opts: &Options) -> Result<(Summary, String), DemoError> {
    testbed::netns::prereq().map_err(DemoError::Prerequisite)?;
    let progs = Programs::find(opts.bin_dir.as_deref())?;
    let needs_db = matches!(opts.store, StoreChoice::Redis | StoreChoice::Memcached);
    let mut hosts = vec!["client", "lb1", "lb2", "rs1", "rs2"];
    if needs_db {
        hosts.push("db");
    }
    let t0 = Instant::now();
    progress(t0, &format!("building namespaces: {}", hosts.join(", ")));
    let tb = Testbed::new(&hosts)?;
    let result = drive(&tb, opts, progs, t0);
    let prefix = tb.prefix().to_owned();
    drop(tb);
    let mut run = result?;
    debug_assert_eq!(run.prefix, prefix);
    run.summary.teardown_clean = teardown_clean(&prefix, &run.pids);
    progress(
        t0,
        if run.summary.teardown_clean {
            "torn down: no namespace or process left"
        } else {
            "teardown incomplete: a namespace or process is left"
        },
    );
    Ok((run.summary, run.timeline))
}

/// `true` when no namespace with `prefix` is left and none of `pids` runs.
#[must_use]
pub fn teardown_clean(prefix: &str, pids: &[u32]) -> bool {
    let ns_left = fs::read_dir(testbed::netns::NETNS_RUN_DIR)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
        .unwrap_or(false);
    let proc_left = pids
        .iter()
        .any(|p| Path::new(&format!("/proc/{p}")).exists());
    !ns_left && !proc_left
}

#[allow(clippy::too_many_lines)]
fn drive(tb: &Testbed, opts: &Options, progs: Programs, t0: Instant) -> Result<Run, DemoError> {
    let mut pids = Vec::new();
    let mut extra: Vec<Daemon> = Vec::new();
    let store_arg = match &opts.store {
        StoreChoice::Sqlite(p) => format!(
            "sqlite:{}",
            p.clone()
                .unwrap_or_else(|| tb.run_dir().join("sessions.db"))
                .display()
        ),
        StoreChoice::Url(u) => u.clone(),
        StoreChoice::Redis => {
            let prog = ensure_program("redis-server", "redis-server")?;
            let db = tb.addr4("db")?;
            let d = tb.spawn(
                "db",
                "redis",
                &prog.display().to_string(),
                [
                    "--bind",
                    &db.to_string(),
                    "--port",
                    "6379",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    &tb.run_dir().display().to_string(),
                ],
            )?;
            wait_log(
                &d,
                "Ready to accept connections",
                0,
                Duration::from_secs(10),
            )?;
            pids.push(d.pid());
            extra.push(d);
            format!("redis://{db}:6379/")
        }
        StoreChoice::Memcached => {
            let prog = ensure_program("memcached", "memcached")?;
            let db = tb.addr4("db")?;
            for port in ["11211", "11212"] {
                let d = tb.spawn(
                    "db",
                    &format!("memcached-{port}"),
                    &prog.display().to_string(),
                    [
                        "-u",
                        "nobody",
                        "-l",
                        &db.to_string(),
                        "-p",
                        port,
                        "-U",
                        "0",
                        "-m",
                        "64",
                    ],
                )?;
                pids.push(d.pid());
                extra.push(d);
            }
            // memcached logs nothing on start: wait until both ports accept.
            let ns = tb.ns("db")?;
            for port in [11211_u16, 11212] {
                let addr = SocketAddr::new(db.into(), port);
                wait_for(
                    &format!("memcached on {addr}"),
                    Duration::from_secs(10),
                    &[],
                    || {
                        ns.run(|| {
                            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100))
                                .is_ok()
                        })
                        .unwrap_or(false)
                    },
                )?;
            }
            format!("memcached://{db}:11211,{db}:11212?replicas=2")
        }
    };
    let pair = Pair {
        tb,
        progs,
        opts,
        store_arg,
    };
    progress(
        t0,
        &format!("starting rs1 and rs2 (sessions in {})", pair.store_arg),
    );
    let mut rs1 = pair.web("rs1")?;
    let rs2 = pair.web("rs2")?;
    progress(t0, "starting lbd on lb1 and lb2");
    let mut lbd1 = pair.lbd("lb1")?;
    let lbd2 = pair.lbd("lb2")?;
    progress(
        t0,
        "starting vrrpd on lb1 (priority 100) and lb2 (priority 99)",
    );
    let v1 = pair.vrrpd("lb1", 100)?;
    let v2 = pair.vrrpd("lb2", 99)?;
    for d in [&rs1, &rs2, &lbd1, &lbd2, &v1, &v2] {
        pids.push(d.pid());
    }
    let vip: std::net::IpAddr = VIP
        .parse()
        .map_err(|_| DemoError::Usage(format!("bad VIP {VIP}")))?;
    wait_for(
        "lb1 holding the VIP alone",
        Duration::from_secs(10),
        &[&v1, &v2],
        || tb.vip_holders(vip).is_ok_and(|h| h == ["lb1"]),
    )?;
    progress(t0, &format!("lb1 holds {VIP}; logging the client in"));

    // The clients.
    let balancers = vec![
        (tb.addr4("lb1")?.to_string(), "lb1".to_owned()),
        (tb.addr4("lb2")?.to_string(), "lb2".to_owned()),
    ];
    #[allow(clippy::cast_precision_loss)]
    let per_client = opts.rate / opts.clients as f64;
    let mut clients = Clients {
        live: Vec::new(),
        threads: Vec::new(),
    };
    let mut users = Vec::new();
    for i in 0..opts.clients {
        let user = if opts.clients == 1 {
            "alice".to_owned()
        } else {
            format!("user{i}")
        };
        users.push(user.clone());
        let plan = ClientPlan {
            target: SocketAddr::new(vip, 80),
            rate: per_client,
            timeout: opts.timeout,
            user,
            cookie_name: COOKIE.into(),
            balancers: balancers.clone(),
        };
        let cookie = tb
            .ns("client")?
            .run(|| client::login(&plan, Duration::from_secs(5)))
            .map_err(io_err("entering the client namespace"))??;
        let live = Arc::new(Live::default());
        let l2 = Arc::clone(&live);
        let handle = tb
            .ns("client")?
            .spawn(&format!("client-{i}"), move || {
                client::run(i, &plan, &cookie, &l2);
            })
            .map_err(io_err("starting a client thread"))?;
        clients.live.push(live);
        clients.threads.push(handle);
    }
    progress(
        t0,
        &format!(
            "{} client(s) logged in; requesting http://{VIP}/whoami at {} req/s",
            opts.clients, opts.rate
        ),
    );
    let epoch = Instant::now();
    pause(opts.settle)?;
    let mut events: Vec<Event> = Vec::new();
    // `at`: when the action starts; `settled`: see `Event::settled`.
    let mut event = |key: &str, label: &str, node: &str, down: bool, at: Instant| {
        progress(t0, label);
        events.push(Event {
            key: key.into(),
            label: label.into(),
            at,
            settled: if down { Instant::now() } else { at },
            node: node.into(),
            down,
        });
    };

    // 1. lb1's proxy dies.
    let at = Instant::now();
    lbd1.kill9()?;
    event(
        "lb1_proxy_killed",
        match opts.track {
            Tracking::Script => "kill -9 lbd on lb1 (its track_script fails, priority 100 -> 80)",
            Tracking::Process => {
                "kill -9 lbd on lb1 (track_process: FAULT at once, priority-0 release)"
            }
        },
        "lb1",
        true,
        at,
    );
    wait_for(
        "answers through lb2",
        Duration::from_secs(10),
        &[&v1, &v2],
        || clients.all_last(|a| a.via == "lb2"),
    )?;
    pause(opts.settle)?;

    // 2. lb1's proxy comes back; lb1 preempts.
    event(
        "lb1_proxy_restored",
        match opts.track {
            Tracking::Script => "lbd restarted on lb1 (script recovers, lb1 preempts)",
            Tracking::Process => "lbd restarted on lb1 (process back, FAULT ends, lb1 preempts)",
        },
        "lb1",
        false,
        Instant::now(),
    );
    lbd1 = pair.lbd("lb1")?;
    pids.push(lbd1.pid());
    wait_for(
        "answers through lb1 again",
        Duration::from_secs(10),
        &[&v1, &v2, &lbd1],
        || clients.all_last(|a| a.via == "lb1"),
    )?;
    pause(opts.settle)?;

    // 3. rs1 dies; lbd retries rs2.
    let at = Instant::now();
    rs1.kill9()?;
    event(
        "rs1_killed",
        "kill -9 demo-web on rs1 (lbd retries on rs2)",
        "rs1",
        true,
        at,
    );
    pause(opts.settle)?;

    // 4. rs1 comes back; used again after fail_timeout.
    event(
        "rs1_restored",
        "demo-web restarted on rs1 (back after fail_timeout 2s)",
        "rs1",
        false,
        Instant::now(),
    );
    rs1 = pair.web("rs1")?;
    pids.push(rs1.pid());
    wait_for(
        "answers from rs1 again",
        Duration::from_secs(10),
        &[&rs1, &lbd1],
        || {
            clients.live.iter().any(|l| {
                l.last().is_some_and(
                    |s| matches!(&s.outcome, client::Outcome::Answer(a) if a.served_by == "rs1"),
                )
            })
        },
    )?;
    pause(opts.settle)?;
    clients.stop();
    progress(t0, "stopping; analysing");

    let samples = clients.samples();
    let start = samples.first().map_or(epoch, |s| s.start.min(epoch));
    let known = ["lb1", "lb2", "rs1", "rs2"];
    let per_event = report::per_event(&samples, &events, start);
    let bound = opts.vrrp_bound();
    let within = per_event
        .iter()
        .all(|e| e.outage_ms <= bound.as_secs_f64() * 1e3);
    let session_errors = report::session_errors(&samples, &users);
    let mut outage = serde_json::Map::new();
    for e in &per_event {
        outage.insert(e.event.clone(), serde_json::json!(e.outage_ms));
    }
    let svg_path = match &opts.svg {
        Some(p) => {
            let title = format!(
                "failover-demo: {} req/s through {VIP}, VRRP advert {} s, sessions in {}",
                opts.rate,
                opts.advert_int.as_secs_f64(),
                opts.store.name()
            );
            fs::write(p, report::svg(&samples, &events, start, &title))
                .map_err(io_err(format!("writing {}", p.display())))?;
            Some(p.display().to_string())
        }
        None => None,
    };
    let summary = Summary {
        track: opts.track.name().into(),
        store: opts.store.name(),
        clients: opts.clients,
        rate: opts.rate,
        advert_int_ms: opts.advert_int.as_secs_f64() * 1e3,
        vrrp_bound_ms: bound.as_secs_f64() * 1e3,
        requests: samples.len(),
        errors: samples.iter().filter(|s| !s.outcome.is_ok()).count(),
        wrong_answers: report::wrong_answers(&samples, &events, &known),
        session_errors,
        session_kept: session_errors == 0 && !samples.is_empty(),
        outage_ms: outage,
        events: per_event,
        latency_ms: report::latency(&samples),
        within_bound: within,
        teardown_clean: false,
        svg: svg_path,
    };
    let timeline = report::timeline(&samples, &events, start);
    for d in [&rs1, &rs2, &lbd1, &lbd2, &v1, &v2] {
        let _ = d.stop();
    }
    drop(extra);
    Ok(Run {
        summary,
        timeline,
        pids,
        prefix: tb.prefix().to_owned(),
    })
}

/// `failover-demo`'s `main`: prints progress to standard error, the timeline and a human
/// summary to standard output, and the JSON summary as the last line.
#[must_use]
pub fn main_with(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(DemoError::Usage(m)) => {
            if m.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("failover-demo: {m}");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("failover-demo: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = watch_signals() {
        eprintln!("failover-demo: cannot watch for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    match run(&opts) {
        Ok((s, timeline)) => {
            if !opts.quiet {
                println!("timeline (request start times; runs of identical outcomes merged):");
                print!("{timeline}");
                println!();
                for e in &s.events {
                    println!(
                        "{:<20} outage {:>8.1} ms  errors {:>4}  {}max latency {:.1} ms",
                        e.event,
                        e.outage_ms,
                        e.errors,
                        e.switch_ms
                            .map(|m| format!("switched after {m:.1} ms  "))
                            .unwrap_or_default(),
                        e.max_latency_ms
                    );
                }
                println!(
                    "tracking {}  requests {}  errors {}  wrong answers {}  session kept {}  (bound {:.0} ms: {})",
                    s.track,
                    s.requests,
                    s.errors,
                    s.wrong_answers,
                    s.session_kept,
                    s.vrrp_bound_ms,
                    if s.within_bound { "met" } else { "MISSED" }
                );
                if let Some(p) = &s.svg {
                    println!("chart: {p}");
                }
            }
            match serde_json::to_string(&s) {
                Ok(j) => println!("{j}"),
                Err(e) => {
                    eprintln!("failover-demo: cannot encode the summary: {e}");
                    return ExitCode::FAILURE;
                }
            }
            if s.wrong_answers == 0 && s.session_kept && s.within_bound && s.teardown_clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("failover-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Options, DemoError> {
        Options::parse(a.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn command_line() {
        let o = parse(&[
            "--rate",
            "1000",
            "--clients",
            "8",
            "--advert-int",
            "0.2",
            "-q",
            "--no-svg",
        ])
        .unwrap();
        assert_eq!(
            (o.rate, o.clients, o.quiet, o.svg.clone()),
            (1000.0, 8, true, None)
        );
        assert_eq!(o.advert_int, Duration::from_millis(200));
        assert_eq!(o.vrrp_version(), 3);
        assert_eq!(parse(&["--advert-int", "1"]).unwrap().vrrp_version(), 2);
        assert_eq!(parse(&[]).unwrap().track, Tracking::Script);
        let p = parse(&["--track", "process"]).unwrap();
        assert_eq!(p.track, Tracking::Process);
        // Process tracking: Skew_Time (61 ms at 0.1 s) + one interval + 100 ms + the
        // request timeout (0.5 s).
        assert_eq!(
            p.vrrp_bound(),
            Duration::from_nanos(61_328_125 + 200_000_000 + 500_000_000)
        );
        assert!(matches!(parse(&["--help"]), Err(DemoError::Usage(m)) if m.is_empty()));
        for bad in [
            &["--rate", "0"][..],
            &["--clients", "300"],
            &["--timeout", "-1"],
            &["--bogus"],
            &["--store"],
            &["--store", "nosuch"],
            &["--track", "pgrep"],
        ] {
            assert!(
                matches!(parse(bad), Err(DemoError::Usage(m)) if !m.is_empty()),
                "{bad:?}"
            );
        }
    }
}
