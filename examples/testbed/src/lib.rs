//! A network-namespace test bed for VRRP daemons: hosts on one Linux bridge.
//!
//! ```text
//!            namespace "<prefix>sw": bridge br0 (stp off, forward delay 0, mcast_snooping 0)
//!            │ p-client      p-lb1          p-lb2  ...  (one bridge port per host)
//!   <prefix>client 10.99.0.2   <prefix>lb1 10.99.0.11   <prefix>lb2 10.99.0.12   ...
//! ```
//!
//! Each host namespace has one veth `eth0` with MAC `02:99:00:00:00:<id>`, IPv4
//! `10.99.0.<id>/24` and IPv6 `fd99:0:0:99::<id>/64` (no DAD), where the id is fixed for the
//! usual names (client 2, lb1 11, lb2 12, rs1 21, rs2 22) and allocated for others. Every test
//! bed has its own bridge, so several can run at once with the same addresses; the namespace
//! names carry a per-instance prefix.
//!
//! The bed also runs programs inside hosts ([`Daemon`], [`keepalived`]), serves and probes a
//! TCP service to see which host answers for a virtual address ([`Responder`], [`Probe`]),
//! and analyses the probe's samples ([`outage`], [`takeover`], [`serving_at`]). Dropping a
//! [`Testbed`] kills the processes it started and deletes its namespaces.

pub mod netns;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::netns::{Netns, NetnsError};

/// Name of the bridge inside the switch namespace.
pub const BRIDGE: &str = "br0";
/// Name of the interface inside every host namespace.
pub const IFACE: &str = "eth0";
/// How long [`Daemon::stop`] waits after SIGTERM before it sends SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// What went wrong while building or using a test bed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A namespace or `ip` operation failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The host name is not usable.
    #[error(
        "invalid host name {name:?}: {reason}; use 1 to 12 characters from [a-z0-9], unique, not \"sw\""
    )]
    InvalidHost {
        /// The rejected name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The host is not part of this test bed.
    #[error("unknown host {0:?}: it was not passed to Testbed::new")]
    UnknownHost(String),
    /// More hosts than free addresses in 10.99.0.0/24.
    #[error("too many hosts: no free host id left in 10.99.0.0/24")]
    TooManyHosts,
    /// No free namespace prefix was found.
    #[error(
        "could not find a free namespace prefix (last tried {last:?}); remove stale namespaces with `ip netns list` / `ip netns del`"
    )]
    NoPrefix {
        /// The last prefix tried.
        last: String,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A daemon exited while it was expected to run.
    #[error("{name} exited ({status}) during start-up; its log ends with:\n{log_tail}")]
    DaemonExited {
        /// The daemon name.
        name: String,
        /// Its exit status.
        status: String,
        /// The last lines of its log.
        log_tail: String,
    },
    /// The daemon is no longer tracked (the test bed was dropped, or it was reaped).
    #[error("{0} is no longer running under this test bed (already reaped)")]
    Gone(String),
    /// A signal could not be sent.
    #[error("cannot send {signal} to {name} (pid {pid}): {source}")]
    Signal {
        /// The daemon name.
        name: String,
        /// The target PID.
        pid: u32,
        /// The signal.
        signal: Signal,
        /// The error from `kill(2)`.
        #[source]
        source: nix::Error,
    },
    /// Output of a tool could not be understood.
    #[error("cannot parse the output of {what}: {text:?}")]
    Parse {
        /// Which tool / query.
        what: String,
        /// The offending text.
        text: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> TestbedError {
    let what = what.into();
    move |source| TestbedError::Io { what, source }
}

/// One host of the test bed.
#[derive(Debug)]
struct Host {
    name: String,
    id: u8,
    ns: Netns,
}

/// A process started by the test bed, tracked until it is reaped.
#[derive(Debug)]
struct Proc {
    child: Child,
    /// A pid file naming a second process to kill with this one (keepalived's VRRP child).
    companion: Option<PathBuf>,
}

type Registry = Arc<Mutex<BTreeMap<u64, Proc>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The test bed: a bridge namespace and one namespace per host. See the module docs.
#[derive(Debug)]
pub struct Testbed {
    prefix: String,
    run_dir: PathBuf,
    hosts: Vec<Host>,
    procs: Registry,
    next_proc: AtomicU64,
    keep_run_dir: bool,
    // Declared last: deleted after the hosts' namespaces.
    sw: Netns,
}

/// The usual host ids (last IPv4 octet, last MAC byte).
fn well_known_id(name: &str) -> Option<u8> {
    match name {
        "client" => Some(2),
        "lb1" => Some(11),
        "lb2" => Some(12),
        "rs1" => Some(21),
        "rs2" => Some(22),
        _ => None,
    }
}

fn validate_host(name: &str) -> Result<(), TestbedError> {
    let bad = |reason| {
        Err(TestbedError::InvalidHost {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 12 {
        return bad("length out of range (the bridge port p-<name> must fit in 15 characters)");
    }
    if name == "sw" {
        return bad("\"sw\" is the bridge namespace");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return bad("unsupported character");
    }
    Ok(())
}

/// Assigns ids: the well-known ones first, then free ids from 31 up (100, the usual VIP, and
/// 255 are skipped).
fn assign_ids(hosts: &[&str]) -> Result<Vec<u8>, TestbedError> {
    let mut used: Vec<u8> = hosts.iter().filter_map(|h| well_known_id(h)).collect();
    let mut next = 31u8;
    let mut ids = Vec::with_capacity(hosts.len());
    for h in hosts {
        if let Some(id) = well_known_id(h) {
            ids.push(id);
            continue;
        }
        while used.contains(&next) || next == 100 {
            next = next
                .checked_add(1)
                .filter(|n| *n < 255)
                .ok_or(TestbedError::TooManyHosts)?;
        }
        used.push(next);
        ids.push(next);
    }
    Ok(ids)
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

impl Testbed {
    /// Builds a test bed with the given hosts; logs and configuration files go to
    /// `$HAPRI_TESTBED_DIR/<prefix>` (default: the system temporary directory,
    /// `hapri-testbed/<prefix>`).
    ///
    /// # Errors
    /// See [`Testbed::new_in`].
    pub fn new(hosts: &[&str]) -> Result<Self, TestbedError> {
        let base = std::env::var_os("HAPRI_TESTBED_DIR")
            .map_or_else(|| std::env::temp_dir().join("hapri-testbed"), PathBuf::from);
        Self::new_in(hosts, base)
    }

    /// Builds a test bed with the given hosts, with its run directory (logs, configuration and
    /// pid files) at `base/<prefix>`. The run directory is removed on drop unless the thread is
    /// panicking (a failing test) or `HAPRI_TESTBED_KEEP` is set.
    ///
    /// # Errors
    /// Invalid or duplicate host names, no free namespace prefix, or any namespace, `ip` or
    /// sysctl step failing (typically: not root). Whatever was built is torn down again.
    pub fn new_in(hosts: &[&str], base: impl AsRef<Path>) -> Result<Self, TestbedError> {
        for (i, h) in hosts.iter().enumerate() {
            validate_host(h)?;
            if hosts[..i].contains(h) {
                return Err(TestbedError::InvalidHost {
                    name: (*h).to_owned(),
                    reason: "duplicate",
                });
            }
        }
        let ids = assign_ids(hosts)?;
        let (prefix, sw) = Self::claim_prefix()?;
        let run_dir = base.as_ref().join(prefix.trim_end_matches('-'));
        let mut tb = Self {
            prefix,
            run_dir,
            hosts: Vec::with_capacity(hosts.len()),
            procs: Arc::default(),
            next_proc: AtomicU64::new(0),
            keep_run_dir: std::env::var_os("HAPRI_TESTBED_KEEP").is_some(),
            sw,
        };
        // From here on, an error drops `tb`, which removes whatever was built.
        fs::create_dir_all(&tb.run_dir).map_err(io_err(format!(
            "creating run directory {}",
            tb.run_dir.display()
        )))?;
        tb.sw.ip(["link", "set", "lo", "up"])?;
        tb.sw.ip([
            "link",
            "add",
            BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        tb.sw.ip(["link", "set", BRIDGE, "up"])?;
        for (name, id) in hosts.iter().zip(ids) {
            let host = tb.add_host(name, id)?;
            tb.hosts.push(host);
        }
        tb.wait_link_locals(Duration::from_secs(5))?;
        Ok(tb)
    }

    /// Finds a prefix `h<pid % 10000>-<n>-` whose switch namespace can be created.
    fn claim_prefix() -> Result<(String, Netns), TestbedError> {
        let pid = std::process::id() % 10_000;
        let mut last = String::new();
        for _ in 0..64 {
            let n = INSTANCE.fetch_add(1, Ordering::Relaxed);
            let prefix = format!("h{pid}-{n}-");
            match Netns::create(&format!("{prefix}sw")) {
                Ok(ns) => return Ok((prefix, ns)),
                Err(NetnsError::Exists { .. }) => last = prefix,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TestbedError::NoPrefix { last })
    }

    fn add_host(&self, name: &str, id: u8) -> Result<Host, TestbedError> {
        let ns = Netns::create(&format!("{}{name}", self.prefix))?;
        // Before the interface exists, so that "default" applies to it.
        for (key, value) in [
            ("net.ipv6.conf.default.accept_dad", "0"),
            ("net.ipv6.conf.all.accept_dad", "0"),
            ("net.ipv6.conf.default.dad_transmits", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
        ] {
            ns.sysctl(key, value)?;
        }
        let port = format!("p-{name}");
        self.sw.ip([
            "link",
            "add",
            &port,
            "type",
            "veth",
            "peer",
            "name",
            IFACE,
            "netns",
            ns.name(),
        ])?;
        self.sw.ip(["link", "set", &port, "master", BRIDGE, "up"])?;
        ns.ip(["link", "set", "lo", "up"])?;
        ns.ip(["link", "set", IFACE, "address", &format_mac(&host_mac(id))])?;
        ns.ip(["addr", "add", &format!("{}/24", host_ip4(id)), "dev", IFACE])?;
        ns.ip([
            "-6",
            "addr",
            "add",
            &format!("{}/64", host_ip6(id)),
            "dev",
            IFACE,
            "nodad",
        ])?;
        ns.ip(["link", "set", IFACE, "up"])?;
        if name.starts_with("lb") {
            // Load balancers may bind the VIP before owning it and answer ARP only for
            // addresses of the receiving interface.
            for (key, value) in [
                ("net.ipv4.ip_nonlocal_bind", "1"),
                ("net.ipv6.ip_nonlocal_bind", "1"),
                ("net.ipv4.conf.eth0.arp_ignore", "1"),
                ("net.ipv4.conf.eth0.arp_announce", "2"),
            ] {
                ns.sysctl(key, value)?;
            }
        }
        Ok(Host {
            name: name.to_owned(),
            id,
            ns,
        })
    }

    fn wait_link_locals(&self, timeout: Duration) -> Result<(), TestbedError> {
        let deadline = Instant::now() + timeout;
        for h in &self.hosts {
            loop {
                let out =
                    h.ns.ip(["-6", "-br", "addr", "show", "dev", IFACE, "scope", "link"])?;
                if out.contains("fe80:") {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(TestbedError::Timeout {
                        what: format!("the IPv6 link-local address of {} on {IFACE}", h.name),
                        after: timeout,
                    });
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    fn host(&self, name: &str) -> Result<&Host, TestbedError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| TestbedError::UnknownHost(name.to_owned()))
    }

    /// The namespace prefix of this instance, e.g. `h1234-0-`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The run directory (logs, configuration and pid files).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The host names, in the order given to [`Testbed::new`].
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|h| h.name.as_str())
    }

    /// The namespace of `host`.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`].
    pub fn ns(&self, host: &str) -> Result<&Netns, TestbedError> {
        Ok(&self.host(host)?.ns)
    }

    /// The namespace holding the bridge.
    pub fn switch_ns(&self) -> &Netns {
        &self.sw
    }

    /// The id of `host` (last IPv4 octet and MAC byte).
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`].
    pub fn id(&self, host: &str) -> Result<u8, TestbedError> {
        Ok(self.host(host)?.id)
    }

    /// The IPv4 address of `host`: `10.99.0.<id>`.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`].
    pub fn addr4(&self, host: &str) -> Result<Ipv4Addr, TestbedError> {
        Ok(host_ip4(self.host(host)?.id))
    }

    /// The global IPv6 address of `host`: `fd99:0:0:99::<id>`.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`].
    pub fn addr6(&self, host: &str) -> Result<Ipv6Addr, TestbedError> {
        Ok(host_ip6(self.host(host)?.id))
    }

    /// The MAC address of `host`'s `eth0`: `02:99:00:00:00:<id>`.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`].
    pub fn mac(&self, host: &str) -> Result<[u8; 6], TestbedError> {
        Ok(host_mac(self.host(host)?.id))
    }

    /// Sets the bridge port `p-<host>` down (`up == false`: the cable is pulled; `host` sees
    /// NO-CARRIER) or up again.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`] or the `ip link set` failure.
    pub fn set_port(&self, host: &str, up: bool) -> Result<(), TestbedError> {
        let h = self.host(host)?;
        let port = format!("p-{}", h.name);
        self.sw
            .ip(["link", "set", &port, if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// The hosts that have the address `vip` configured on any interface (in any state), in
    /// host order.
    ///
    /// # Errors
    /// An `ip addr` query failed.
    pub fn vip_holders(&self, vip: IpAddr) -> Result<Vec<String>, TestbedError> {
        let mut holders = Vec::new();
        for h in &self.hosts {
            // Every interface: with keepalived's use_vmac the VIP lives on the VMAC one.
            let out = h.ns.ip(["-br", "addr", "show"])?;
            if brief_addr_has(&out, vip) {
                holders.push(h.name.clone());
            }
        }
        Ok(holders)
    }

    /// The link-layer address of `ip` in `host`'s neighbour table (ARP / NDP) on `eth0`, or
    /// `None` if there is no entry with an address (absent, INCOMPLETE or FAILED).
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], the `ip neigh` failure, or unparsable output.
    pub fn neigh_mac(&self, host: &str, ip: IpAddr) -> Result<Option<[u8; 6]>, TestbedError> {
        let h = self.host(host)?;
        let out =
            h.ns.ip(["neigh", "show", "to", &ip.to_string(), "dev", IFACE])?;
        let mut words = out.split_whitespace();
        while let Some(w) = words.next() {
            if w == "lladdr" {
                let text = words.next().unwrap_or_default();
                return parse_mac(text)
                    .map(Some)
                    .ok_or_else(|| TestbedError::Parse {
                        what: "ip neigh".into(),
                        text: out.clone(),
                    });
            }
        }
        Ok(None)
    }

    /// Starts `program ARGS...` inside `host` (through `ip netns exec`), with stdin from
    /// `/dev/null` and stdout and stderr appended to `<run dir>/<name>.log`.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], the log file cannot be created, or the spawn fails.
    pub fn spawn<I, S>(
        &self,
        host: &str,
        name: &str,
        program: &str,
        args: I,
    ) -> Result<Daemon, TestbedError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.host(host)?.ns.command(program);
        cmd.args(args);
        self.spawn_command(name, cmd, None)
    }

    fn spawn_command(
        &self,
        name: &str,
        mut cmd: Command,
        companion: Option<PathBuf>,
    ) -> Result<Daemon, TestbedError> {
        let log_path = self.run_dir.join(format!("{name}.log"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(format!("creating log file {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(io_err("duplicating the log file handle"))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        let child = cmd.spawn().map_err(io_err(format!(
            "starting {name}: `{}`",
            netns::cmdline(&cmd)
        )))?;
        let pid = child.id();
        let key = self.next_proc.fetch_add(1, Ordering::Relaxed);
        lock(&self.procs).insert(key, Proc { child, companion });
        Ok(Daemon {
            key,
            pid,
            name: name.to_owned(),
            log_path,
            procs: Arc::clone(&self.procs),
        })
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let procs = std::mem::take(&mut *lock(&self.procs));
        for (_, mut p) in procs {
            kill_proc(&mut p);
        }
        // Host namespaces go first (field order), then the switch; both by Netns::drop.
        self.hosts.clear();
        if !self.keep_run_dir && !thread::panicking() {
            let _ = fs::remove_dir_all(&self.run_dir);
        } else {
            eprintln!(
                "test bed {}: logs kept in {}",
                self.prefix,
                self.run_dir.display()
            );
        }
    }
}

fn host_ip4(id: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 99, 0, id)
}

fn host_ip6(id: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd99, 0, 0, 0x99, 0, 0, 0, u16::from(id))
}

fn host_mac(id: u8) -> [u8; 6] {
    [0x02, 0x99, 0, 0, 0, id]
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Whether `ip -br addr` output lists `addr` (as `addr/len`).
fn brief_addr_has(out: &str, addr: IpAddr) -> bool {
    out.lines().any(|line| {
        line.split_whitespace()
            .skip(2)
            .filter_map(|w| w.split('/').next())
            .any(|a| a.parse::<IpAddr>().is_ok_and(|a| a == addr))
    })
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A process started in a host of a [`Testbed`]. It is killed (SIGKILL, with its companion
/// process if any) when dropped, and by the test bed's drop if it is still running then.
#[derive(Debug)]
pub struct Daemon {
    key: u64,
    pid: u32,
    name: String,
    log_path: PathBuf,
    procs: Registry,
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().map(Pid::from_raw)
}

/// Reads a pid file and returns the PID if that process still runs, is the same program as
/// `parent` (when `parent` still exists) and, if `require_child`, is `parent`'s child.
fn companion_pid(file: &Path, parent: u32, require_child: bool) -> Option<u32> {
    let pid: u32 = fs::read_to_string(file).ok()?.trim().parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ppid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let parent_comm = fs::read_to_string(format!("/proc/{parent}/comm")).ok();
    let same_program = parent_comm.is_none_or(|pc| pc.trim() == comm.trim());
    if (require_child && ppid != parent) || !same_program {
        return None;
    }
    Some(pid)
}

/// SIGKILLs a tracked process and its companion, then reaps it. The parent is stopped first
/// so that it cannot respawn the companion (keepalived respawns a dead VRRP child at once).
fn kill_proc(p: &mut Proc) -> Option<ExitStatus> {
    let running = matches!(p.child.try_wait(), Ok(None));
    let pid = p.child.id();
    if running && let Some(parent) = to_pid(pid) {
        let _ = kill(parent, Signal::SIGSTOP);
    }
    let companion = p
        .companion
        .as_deref()
        .and_then(|f| companion_pid(f, pid, running));
    if let Some(c) = companion.and_then(to_pid) {
        let _ = kill(c, Signal::SIGKILL);
    }
    if running {
        let _ = p.child.kill();
    }
    let status = p.child.wait().ok();
    if let Some(c) = companion {
        // Not our child: wait (briefly) until it has gone.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Path::new(&format!("/proc/{c}")).exists() && Instant::now() < deadline {
            if fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            }) {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
    status
}

impl Daemon {
    /// The daemon's name (also its log file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID of the started program.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The PID of the companion process (keepalived's VRRP child) if it runs now.
    pub fn companion_pid(&self) -> Option<u32> {
        let procs = lock(&self.procs);
        let p = procs.get(&self.key)?;
        companion_pid(p.companion.as_deref()?, self.pid, true)
    }

    /// The path of the log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log text so far.
    ///
    /// # Errors
    /// The log file cannot be read.
    pub fn log(&self) -> Result<String, TestbedError> {
        let bytes = fs::read(&self.log_path)
            .map_err(io_err(format!("reading {}", self.log_path.display())))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn with_proc<T>(
        &self,
        f: impl FnOnce(&mut Proc) -> Result<T, TestbedError>,
    ) -> Result<T, TestbedError> {
        let mut procs = lock(&self.procs);
        let p = procs
            .get_mut(&self.key)
            .ok_or_else(|| TestbedError::Gone(self.name.clone()))?;
        f(p)
    }

    /// Sends `signal` to the started program (for keepalived: the parent, which forwards
    /// SIGTERM / SIGHUP to its VRRP child).
    ///
    /// # Errors
    /// [`TestbedError::Gone`] if the process was reaped, [`TestbedError::Signal`] if `kill(2)`
    /// fails.
    pub fn signal(&self, signal: Signal) -> Result<(), TestbedError> {
        self.with_proc(|p| {
            if !matches!(p.child.try_wait(), Ok(None)) {
                return Err(TestbedError::Gone(self.name.clone()));
            }
            let err = |source| TestbedError::Signal {
                name: self.name.clone(),
                pid: self.pid,
                signal,
                source,
            };
            let pid = to_pid(self.pid).ok_or(err(nix::Error::ESRCH))?;
            kill(pid, signal).map_err(err)
        })
    }

    /// Sends `signal` to the started program and then to its companion process if one runs
    /// (keepalived: parent, then VRRP child). With SIGSTOP / SIGCONT this freezes or thaws
    /// the whole daemon, as a hung machine would.
    ///
    /// # Errors
    /// As [`Daemon::signal`].
    pub fn signal_all(&self, signal: Signal) -> Result<(), TestbedError> {
        self.signal(signal)?;
        if let Some(c) = self.companion_pid()
            && let Some(pid) = to_pid(c)
        {
            kill(pid, signal).map_err(|source| TestbedError::Signal {
                name: format!("{} (companion)", self.name),
                pid: c,
                signal,
                source,
            })?;
        }
        Ok(())
    }

    /// Kills the program with SIGKILL, together with its companion process (keepalived's VRRP
    /// child, which would otherwise be respawned or left behind), and reaps it.
    ///
    /// # Errors
    /// [`TestbedError::Gone`] if it was reaped already.
    pub fn kill9(&self) -> Result<Option<ExitStatus>, TestbedError> {
        self.with_proc(|p| Ok(kill_proc(p)))
    }

    /// Waits up to `timeout` for the program to exit; `Ok(None)` if it still runs.
    ///
    /// # Errors
    /// [`TestbedError::Gone`], or `waitpid` failing.
    pub fn wait_exit(&self, timeout: Duration) -> Result<Option<ExitStatus>, TestbedError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.with_proc(|p| {
                p.child
                    .try_wait()
                    .map_err(io_err(format!("waiting for {}", self.name)))
            })?;
            if status.is_some() || Instant::now() >= deadline {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Graceful stop: SIGTERM, then up to [`STOP_GRACE`] for it to exit, then SIGKILL (with
    /// the companion). Returns the exit status.
    ///
    /// # Errors
    /// [`TestbedError::Gone`], or signalling / waiting failed.
    pub fn stop(&self) -> Result<Option<ExitStatus>, TestbedError> {
        match self.signal(Signal::SIGTERM) {
            Ok(()) => {}
            // Exited already: fall through to collect the status.
            Err(TestbedError::Gone(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(status) = self.wait_exit(STOP_GRACE)? {
            return Ok(Some(status));
        }
        self.kill9()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let proc = lock(&self.procs).remove(&self.key);
        if let Some(mut p) = proc {
            kill_proc(&mut p);
        }
    }
}

/// Writes `conf` to `<run dir>/keepalived-<host>/keepalived.conf` and starts Debian's
/// keepalived in `host`, in the foreground, VRRP only, logging to its log file:
/// `keepalived -n -P -l -D -G -f CONF -p PID -r VRRPPID -c CHKPID -i HOST`.
/// Every instance gets its own pid files (the defaults are global and a second instance would
/// exit with "daemon is already running"). Returns once the VRRP child has written its pid file.
///
/// The returned [`Daemon`] is the keepalived parent; [`Daemon::signal`] goes to it (it
/// forwards to the VRRP child) and [`Daemon::kill9`] kills both.
///
/// # Errors
/// [`TestbedError::UnknownHost`], file errors, the spawn failing, keepalived exiting during
/// start-up ([`TestbedError::DaemonExited`] with its log) or not starting its VRRP child within
/// 5 s ([`TestbedError::Timeout`]).
pub fn keepalived(tb: &Testbed, host: &str, conf: &str) -> Result<Daemon, TestbedError> {
    let ns = tb.ns(host)?;
    let dir = tb.run_dir.join(format!("keepalived-{host}"));
    fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let conf_path = dir.join("keepalived.conf");
    let pid_file = dir.join("keepalived.pid");
    let vrrp_pid = dir.join("vrrp.pid");
    let chk_pid = dir.join("checkers.pid");
    fs::write(&conf_path, conf).map_err(io_err(format!("writing {}", conf_path.display())))?;
    for f in [&pid_file, &vrrp_pid, &chk_pid] {
        match fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("removing stale {}", f.display()))(e)),
        }
    }
    let mut cmd = ns.command(keepalived_program());
    cmd.args(["-n", "-P", "-l", "-D", "-G", "-f"])
        .arg(&conf_path)
        .arg("-p")
        .arg(&pid_file)
        .arg("-r")
        .arg(&vrrp_pid)
        .arg("-c")
        .arg(&chk_pid)
        .arg("-i")
        .arg(host);
    let daemon = tb.spawn_command(&format!("keepalived-{host}"), cmd, Some(vrrp_pid.clone()))?;
    let timeout = Duration::from_secs(5);
    let deadline = Instant::now() + timeout;
    loop {
        if daemon.companion_pid().is_some() {
            return Ok(daemon);
        }
        if let Some(status) = daemon.wait_exit(Duration::ZERO)? {
            let log = daemon.log().unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            return Err(TestbedError::DaemonExited {
                name: daemon.name.clone(),
                status: status.to_string(),
                log_tail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        if Instant::now() >= deadline {
            return Err(TestbedError::Timeout {
                what: format!("keepalived on {host} to write {}", vrrp_pid.display()),
                after: timeout,
            });
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The keepalived binary: `$KEEPALIVED` if set, else `/usr/sbin/keepalived` if it exists,
/// else `keepalived` from `PATH`.
pub fn keepalived_program() -> PathBuf {
    if let Some(p) = std::env::var_os("KEEPALIVED") {
        return PathBuf::from(p);
    }
    let debian = Path::new("/usr/sbin/keepalived");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("keepalived")
    }
}

// ---------------------------------------------------------------------------------------------
// Responder and probe

/// A TCP service in one host that answers every connection with the host name (one line) and
/// closes it. Used to see which host a virtual address leads to.
#[derive(Debug)]
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    local: SocketAddr,
}

impl Responder {
    /// Listens on `0.0.0.0:port` inside `host` (the socket is created in the host's namespace)
    /// and serves it from a background thread.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], or creating / binding the socket failed.
    pub fn start(tb: &Testbed, host: &str, port: u16) -> Result<Self, TestbedError> {
        let ns = tb.ns(host)?;
        let what = format!("listening on 0.0.0.0:{port} in {host}");
        let listener = ns
            .run(|| -> io::Result<TcpListener> {
                let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
                s.set_reuse_address(true)?;
                s.bind(&SockAddr::from(SocketAddr::from((
                    Ipv4Addr::UNSPECIFIED,
                    port,
                ))))?;
                s.listen(1024)?;
                // accept() returns EAGAIN after this, so the thread can notice `stop`.
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s.into())
            })
            .and_then(|r| r)
            .map_err(io_err(what.clone()))?;
        let local = listener.local_addr().map_err(io_err(what))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let answer = format!("{host}\n").into_bytes();
        let thread = thread::Builder::new()
            .name(format!("responder-{host}"))
            .spawn(move || serve(&listener, &flag, &answer))
            .map_err(io_err("starting the responder thread"))?;
        Ok(Self {
            stop,
            thread: Some(thread),
            local,
        })
    }

    /// The bound address (inside the host's namespace).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops serving and closes the listener.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, answer: &[u8]) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
                let _ = conn.write_all(answer);
                let _ = conn.shutdown(std::net::Shutdown::Write);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // ECONNABORTED and friends: the client gave up; EMFILE: back off a little.
            Err(_) => thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// One probe of a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the probe's connection was started.
    pub sent: Instant,
    /// When the answer (or the error) came; this is the time the analyses use.
    pub t: Instant,
    /// The answering host's name, if the exchange succeeded.
    pub answer: Option<String>,
    /// What went wrong otherwise (`TimedOut` for a probe that got no answer in time).
    pub error: Option<io::ErrorKind>,
}

/// A client that opens a fresh TCP connection to a service every interval from inside one host
/// and records who answered (see [`Responder`]). Probes run concurrently, so a lost SYN never
/// delays later probes.
#[derive(Debug)]
pub struct Probe {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<()>>>,
    epoch: Instant,
}

impl Probe {
    /// Starts probing `target:port` from `host` every `interval`; each probe times out after
    /// four intervals, at least 20 ms.
    ///
    /// # Errors
    /// [`TestbedError::UnknownHost`], or the probe thread / its runtime could not be started.
    pub fn start(
        tb: &Testbed,
        host: &str,
        target: IpAddr,
        port: u16,
        interval: Duration,
    ) -> Result<Self, TestbedError> {
        let ns = tb.ns(host)?;
        let interval = interval.max(Duration::from_millis(1));
        let timeout = (interval * 4).max(Duration::from_millis(20));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(io_err("building the probe runtime"))?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let (s2, stop2) = (Arc::clone(&samples), Arc::clone(&stop));
        let addr = SocketAddr::new(target, port);
        // The runtime runs on this thread, in the host's namespace: every socket it creates
        // belongs to that namespace.
        let thread = ns
            .spawn(&format!("probe-{host}"), move || {
                runtime.block_on(probe_loop(addr, interval, timeout, s2, stop2));
            })
            .map_err(io_err(format!("starting the probe thread in {host}")))?;
        Ok(Self {
            samples,
            stop,
            thread: Some(thread),
            epoch,
        })
    }

    /// When the probe started.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// A copy of the samples so far, in completion order.
    pub fn snapshot(&self) -> Vec<Sample> {
        lock(&self.samples).clone()
    }

    /// The answer of the latest successful probe.
    pub fn last_answer(&self) -> Option<String> {
        lock(&self.samples)
            .iter()
            .rev()
            .find_map(|s| s.answer.clone())
    }

    /// Waits up to `timeout` until a probe completed after this call is answered by `name`.
    /// Returns whether that happened.
    pub fn wait_for_answer(&self, name: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            let seen = lock(&self.samples)
                .iter()
                .rev()
                .take_while(|s| s.t >= start)
                .any(|s| s.answer.as_deref() == Some(name));
            if seen {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops probing, waits for the probes in flight and returns all samples sorted by `t`.
    pub fn stop(mut self) -> Vec<Sample> {
        self.shutdown();
        let mut samples = std::mem::take(&mut *lock(&self.samples));
        samples.sort_by_key(|s| s.t);
        samples
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn probe_loop(
    addr: SocketAddr,
    interval: Duration,
    timeout: Duration,
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tasks = tokio::task::JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let samples = Arc::clone(&samples);
        tasks.spawn(async move {
            let sample = probe_once(addr, timeout).await;
            lock(&samples).push(sample);
        });
        // Reap finished tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(timeout + Duration::from_millis(100), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

async fn probe_once(addr: SocketAddr, timeout: Duration) -> Sample {
    use tokio::io::AsyncReadExt;
    let sent = Instant::now();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut buf = Vec::with_capacity(32);
        stream.read_to_end(&mut buf).await?;
        Ok::<_, io::Error>(buf)
    };
    let result = tokio::time::timeout(timeout, exchange).await;
    let t = Instant::now();
    let (answer, error) = match result {
        Ok(Ok(buf)) => {
            let text = String::from_utf8_lossy(&buf);
            match text.lines().next().map(str::trim) {
                Some(name) if !name.is_empty() => (Some(name.to_owned()), None),
                _ => (None, Some(io::ErrorKind::UnexpectedEof)),
            }
        }
        Ok(Err(e)) => (None, Some(e.kind())),
        Err(_) => (None, Some(io::ErrorKind::TimedOut)),
    };
    Sample {
        sent,
        t,
        answer,
        error,
    }
}

// ---------------------------------------------------------------------------------------------
// Analyses (as the shell harness's probe.py)

fn answered_by<'a>(samples: &'a [Sample], name: &'a str) -> impl Iterator<Item = &'a Sample> {
    samples
        .iter()
        .filter(move |s| s.answer.as_deref() == Some(name))
}

/// The switch-over gap a client saw: the first answer from `to` at or after `after`, minus the
/// last answer from `from` received before it. `None` if `to` never answered after `after` or
/// `from` never answered before that.
pub fn outage(samples: &[Sample], from: &str, to: &str, after: Instant) -> Option<Duration> {
    let first_to = answered_by(samples, to)
        .filter(|s| s.t >= after)
        .map(|s| s.t)
        .min()?;
    let last_from = answered_by(samples, from)
        .filter(|s| s.t <= first_to)
        .map(|s| s.t)
        .max()?;
    Some(first_to.saturating_duration_since(last_from))
}

/// From the fault to the first answer from `to` at or after it.
pub fn takeover(samples: &[Sample], to: &str, fault_at: Instant) -> Option<Duration> {
    let first_to = answered_by(samples, to)
        .filter(|s| s.t >= fault_at)
        .map(|s| s.t)
        .min()?;
    Some(first_to.saturating_duration_since(fault_at))
}

/// Who was serving at `t`: the answer of the last successful probe completed at or before `t`.
pub fn serving_at(samples: &[Sample], t: Instant) -> Option<&str> {
    samples
        .iter()
        .filter(|s| s.t <= t)
        .filter_map(|s| s.answer.as_deref().map(|a| (s.t, a)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(base: Instant, ms: u64, answer: Option<&str>) -> Sample {
        let t = base + Duration::from_millis(ms);
        Sample {
            sent: t,
            t,
            answer: answer.map(str::to_owned),
            error: answer.is_none().then_some(io::ErrorKind::TimedOut),
        }
    }

    #[test]
    fn analyses() {
        let b = Instant::now();
        let s = vec![
            sample(b, 0, Some("lb1")),
            sample(b, 5, Some("lb1")),
            sample(b, 10, None),
            sample(b, 300, Some("lb2")),
            sample(b, 305, Some("lb1")),
            sample(b, 310, Some("lb2")),
        ];
        let fault = b + Duration::from_millis(7);
        assert_eq!(
            outage(&s, "lb1", "lb2", fault),
            Some(Duration::from_millis(295))
        );
        assert_eq!(takeover(&s, "lb2", fault), Some(Duration::from_millis(293)));
        assert_eq!(serving_at(&s, b + Duration::from_millis(200)), Some("lb1"));
        assert_eq!(serving_at(&s, b + Duration::from_millis(300)), Some("lb2"));
        assert_eq!(outage(&s, "lb1", "lb3", fault), None);
        assert_eq!(serving_at(&s[2..], b + Duration::from_millis(20)), None);
    }

    #[test]
    fn ids_and_parsing() {
        assert_eq!(
            assign_ids(&["lb1", "x", "client", "y"]).ok(),
            Some(vec![11, 31, 2, 32])
        );
        assert!(validate_host("p-lb1").is_err());
        assert!(validate_host("sw").is_err());
        assert_eq!(parse_mac("02:99:00:00:00:0c"), Some([2, 0x99, 0, 0, 0, 12]));
        assert_eq!(parse_mac("02:99:00:00:00"), None);
        assert_eq!(format_mac(&[2, 0x99, 0, 0, 0, 12]), "02:99:00:00:00:0c");
        let out = "eth0@if7  UP  10.99.0.11/24 10.99.0.100/24 fd99:0:0:99::b/64\n";
        assert!(brief_addr_has(
            out,
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100))
        ));
        assert!(!brief_addr_has(
            out,
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))
        ));
    }
}
