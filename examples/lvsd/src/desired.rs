//! From the typed `virtual_server` configuration and the real servers' health to the IPVS
//! table ipvs-netlink's `apply` should make: keepalived's rules.
//!
//! * A healthy real server is a destination with its configured weight.
//! * A failed one is removed, or kept with weight 0 (`inhibit_on_failure`), so established
//!   connections finish and no new ones arrive.
//! * When the healthy weight falls below `quorum` (default 1: no healthy server at all), the
//!   `sorry_server` is added; it goes again once the quorum is back (`hysteresis` widens the
//!   band: the sorry server leaves only at quorum + hysteresis).

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use ipvs_netlink::{
    ConfigError, DesiredService, Dest, Family, ForwardMethod, Netmask, Protocol, Service,
    ServiceKey, TunnelType,
};

use keepalived_conf::lvs::{Granularity, LbKind, LvsConf, VirtualServer, VsAddr};

/// The health of each real server, by (virtual server index, real server address).
pub type Health = HashMap<(usize, SocketAddr), bool>;

/// Whether each virtual server currently uses its sorry server, by index.
pub type Sorry = HashMap<usize, bool>;

/// A virtual server the kernel model refuses (bad scheduler, netmask, weight...).
#[derive(Debug, thiserror::Error)]
#[error("virtual_server {vs} ({file}:{line}): {source}")]
pub struct DesiredError {
    /// The virtual server.
    pub vs: String,
    /// Its file.
    pub file: String,
    /// Its line.
    pub line: u32,
    /// Why.
    #[source]
    pub source: ConfigError,
}

/// The key of a virtual server.
pub fn key(vs: &VirtualServer) -> ServiceKey {
    match vs.addr {
        VsAddr::Socket(addr) => ServiceKey::Inet {
            protocol: vs.protocol,
            addr,
        },
        VsAddr::Fwmark(mark) => ServiceKey::Fwmark {
            // A mark carries no family: take it from the real servers (IPv4 when none).
            family: if vs.real_servers.first().is_some_and(|r| r.addr.is_ipv6()) {
                Family::V6
            } else {
                Family::V4
            },
            mark,
        },
    }
}

fn forward(kind: LbKind) -> ForwardMethod {
    match kind {
        LbKind::Nat => ForwardMethod::Masq,
        LbKind::Dr => ForwardMethod::DirectRoute,
        LbKind::Tun => ForwardMethod::Tunnel(TunnelType::Ipip),
    }
}

fn service(vs: &VirtualServer) -> Result<Service, ConfigError> {
    let key = key(vs);
    let mut s = match vs.persistence_timeout {
        Some(t) => Service::new_persistent(key, vs.lb_algo.name(), t)?,
        None => Service::new(key, vs.lb_algo.name())?,
    };
    match vs.persistence_granularity {
        Some(Granularity::Mask(m)) => s = s.with_netmask(Netmask::v4(m)?)?,
        Some(Granularity::Prefix(p)) => s = s.with_netmask(Netmask::v6(p)?)?,
        None => {}
    }
    Ok(s)
}

/// Whether virtual server `i` needs its sorry server now, given the healthy weight and the
/// previous decision (hysteresis).
pub fn needs_sorry(vs: &VirtualServer, i: usize, health: &Health, was: bool) -> bool {
    if vs.sorry_server.is_none() {
        return false;
    }
    let alive: u64 = vs
        .real_servers
        .iter()
        .filter(|r| health.get(&(i, r.addr)).copied().unwrap_or(true))
        .map(|r| u64::from(r.weight))
        .sum();
    let quorum = u64::from(vs.quorum);
    if was {
        alive < quorum + u64::from(vs.hysteresis)
    } else {
        alive < quorum
    }
}

/// The table for `conf` with the given health (a server missing from `health` counts as
/// healthy, as keepalived starts them) and sorry-server state.
pub fn desired(
    conf: &LvsConf,
    health: &Health,
    sorry: &Sorry,
) -> Result<Vec<DesiredService>, DesiredError> {
    let mut out = Vec::new();
    for (i, vs) in conf.virtual_servers.iter().enumerate() {
        let err = |source| DesiredError {
            vs: vs.addr.to_string(),
            file: vs.pos.0.file.display().to_string(),
            line: vs.pos.0.line,
            source,
        };
        let svc = service(vs).map_err(err)?;
        let fwd = forward(vs.lb_kind);
        let mut dests = Vec::new();
        for rs in &vs.real_servers {
            let up = health.get(&(i, rs.addr)).copied().unwrap_or(true);
            let weight = match (up, rs.inhibit_on_failure) {
                (true, _) => rs.weight,
                (false, true) => 0,
                (false, false) => continue,
            };
            dests.push(
                Dest::new(rs.addr, fwd)
                    .and_then(|d| d.with_weight(weight))
                    .map_err(err)?,
            );
        }
        if sorry.get(&i).copied().unwrap_or(false)
            && let Some(s) = vs.sorry_server
            && !dests.iter().any(|d| d.addr() == s)
        {
            dests.push(Dest::new(s, fwd).map_err(err)?);
        }
        out.push(DesiredService::new(svc, dests));
    }
    Ok(out)
}

/// The ipvsadm commands that build `table` from an empty one (`lvsd --dry-run`).
pub fn ipvsadm_commands(conf: &LvsConf, table: &[DesiredService]) -> String {
    let mut s = String::new();
    for (vs, d) in conf.virtual_servers.iter().zip(table) {
        let svc = service_flag(&key(vs));
        let _ = write!(s, "ipvsadm -A {svc} -s {}", vs.lb_algo.name());
        if let Some(t) = vs.persistence_timeout {
            let _ = write!(s, " -p {t}");
        }
        match vs.persistence_granularity {
            Some(Granularity::Mask(m)) => {
                let _ = write!(s, " -M {m}");
            }
            Some(Granularity::Prefix(p)) => {
                let _ = write!(s, " -M {p}");
            }
            None => {}
        }
        s.push('\n');
        let kind = match vs.lb_kind {
            LbKind::Nat => "-m",
            LbKind::Dr => "-g",
            LbKind::Tun => "-i",
        };
        for dest in &d.dests {
            let _ = writeln!(
                s,
                "ipvsadm -a {svc} -r {} {kind} -w {}",
                bracket(dest.addr()),
                dest.weight()
            );
        }
    }
    s
}

fn bracket(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(_) => a.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
    }
}

fn service_flag(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Inet { protocol, addr } => {
            let f = match protocol {
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
                _ => "-t",
            };
            format!("{f} {}", bracket(*addr))
        }
        ServiceKey::Fwmark { family, mark } => match family {
            Family::V6 => format!("-f {mark} -6"),
            Family::V4 => format!("-f {mark}"),
        },
        _ => String::new(),
    }
}
