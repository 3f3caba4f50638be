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
//! and analyses the probe's samples ([`outage`], [`takeover`], [`serving_at`]); [`smtp`] runs
//! SMTP servers for alert tests. Dropping a
//! [`Testbed`] kills the processes it started and deletes its namespaces.
//!
//! [`keepalived`]: fn@keepalived
//! [`outage`]: fn@outage

mod daemon;
mod keepalived;
pub mod netns;
mod notify;
mod outage;
mod probe;
mod responder;
pub mod smtp;

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::daemon::{Registry, kill_proc};
use crate::netns::{Netns, NetnsError};

pub use crate::daemon::Daemon;
pub use crate::keepalived::{keepalived, keepalived_or_skip, keepalived_program};
pub use crate::notify::NotifySocket;
pub use crate::outage::{outage, serving_at, takeover};
pub use crate::probe::{Probe, Sample};
pub use crate::responder::Responder;

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

#[cfg(test)]
mod tests {
    use super::*;

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
