//! ipvsadm's listings, byte for byte: the table of `-L` (with `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn`, `--tun-info`, `--exact`), the rules of `-S`, the
//! `--timeout` and `--daemon` lines, and its sort order.
//!
//! Everything here works on plain values ([`SvcRow`], [`DestRow`]), so it is tested without
//! a kernel.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ipvs_netlink::{
    DaemonState, Dest, DestEntry, Family, ForwardMethod, Netmask, Protocol, Service, ServiceEntry,
    ServiceFlags, ServiceKey, Stats, SyncDaemon, Timeouts, TunnelType,
};

use super::args::Format;
use super::names::Names;

/// A service as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcRow {
    /// Its configuration.
    pub service: Service,
    /// Its counters.
    pub counters: Stats,
}

impl SvcRow {
    /// A row with zero counters.
    #[must_use]
    pub fn new(service: Service) -> Self {
        Self {
            service,
            counters: Stats::default(),
        }
    }
}

impl From<ServiceEntry> for SvcRow {
    fn from(e: ServiceEntry) -> Self {
        Self {
            counters: e.stats,
            service: e.service,
        }
    }
}

/// A destination as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestRow {
    /// Its configuration.
    pub dest: Dest,
    /// `ActiveConn`.
    pub active: u32,
    /// `InActConn`.
    pub inactive: u32,
    /// `PersistConn`.
    pub persistent: u32,
    /// Its counters.
    pub counters: Stats,
}

impl DestRow {
    /// A row with zero connections and counters.
    #[must_use]
    pub fn new(dest: Dest) -> Self {
        Self {
            dest,
            active: 0,
            inactive: 0,
            persistent: 0,
            counters: Stats::default(),
        }
    }
}

impl From<DestEntry> for DestRow {
    fn from(e: DestEntry) -> Self {
        Self {
            counters: e.stats,
            active: e.active_conns,
            inactive: e.inactive_conns,
            persistent: e.persistent_conns,
            dest: e.dest,
        }
    }
}

/// A service with its destinations.
pub type Row = (SvcRow, Vec<DestRow>);

/// libipvs compares addresses by subtracting them as C `int`s; the sort order (including
/// its wrap-around for addresses more than 2^31 apart) follows that.
fn c_sub(a: u32, b: u32) -> Ordering {
    // The difference reinterpreted as a signed 32-bit number, as C's int arithmetic does.
    let d = i32::from_ne_bytes(a.wrapping_sub(b).to_ne_bytes());
    d.cmp(&0)
}

fn words(ip: IpAddr) -> Vec<u32> {
    match ip {
        IpAddr::V4(v4) => vec![u32::from(v4)],
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    }
}

fn cmp_addr(a: IpAddr, b: IpAddr) -> Ordering {
    for (x, y) in words(a).into_iter().zip(words(b)) {
        let o = c_sub(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn af(f: Family) -> u32 {
    u32::from(f.af())
}

fn parts(k: &ServiceKey) -> (u32, Family, u32, Option<SocketAddr>) {
    match *k {
        ServiceKey::Fwmark { family, mark } => {
            (mark, family, u32::from(Protocol::Tcp.number()), None)
        }
        ServiceKey::Inet { protocol, addr } => (
            0,
            Family::of(&addr.ip()),
            u32::from(protocol.number()),
            Some(addr),
        ),
        _ => (0, k.family(), 0, None),
    }
}

/// ipvsadm's service order: fwmark, family, protocol, address, port.
#[must_use]
pub fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> Ordering {
    let (ma, fa, pa, sa) = parts(a);
    let (mb, fb, pb, sb) = parts(b);
    c_sub(ma, mb)
        .then_with(|| c_sub(af(fa), af(fb)))
        .then_with(|| c_sub(pa, pb))
        .then_with(|| match (sa, sb) {
            (Some(x), Some(y)) => cmp_addr(x.ip(), y.ip())
                .then_with(|| c_sub(u32::from(x.port()), u32::from(y.port()))),
            _ => Ordering::Equal,
        })
}

/// ipvsadm's destination order: address, then port.
#[must_use]
pub fn cmp_dests(a: &SocketAddr, b: &SocketAddr) -> Ordering {
    cmp_addr(a.ip(), b.ip()).then_with(|| c_sub(u32::from(a.port()), u32::from(b.port())))
}

/// Sort a table the way ipvsadm does unless `--nosort`.
pub fn sort_table(rows: &mut [Row], format: Format) {
    if format.nosort {
        return;
    }
    rows.sort_by(|a, b| cmp_services(a.0.service.key(), b.0.service.key()));
    for (_, ds) in rows.iter_mut() {
        ds.sort_by(|a, b| cmp_dests(&a.dest.addr(), &b.dest.addr()));
    }
}

/// `IP Virtual Server version 1.2.1 (size=4096)`.
#[must_use]
pub fn version_line(version: u32, size: u32) -> String {
    let [_, a, b, c] = version.to_be_bytes();
    format!("IP Virtual Server version {a}.{b}.{c} (size={size})\n")
}

/// The column titles for `format` (nothing for rules).
#[must_use]
pub fn title(format: Format) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    const REMOTE: &str = "  -> RemoteAddress:Port\n";
    if format.rule {
        String::new()
    } else if format.stats {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format.rate {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format.thresholds {
        format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{REMOTE}",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format.persistent_conn {
        format!(
            "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format.tun_info {
        format!(
            "{PROT} Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
        )
    } else {
        format!(
            "{PROT} Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        )
    }
}

/// A counter in 9 columns, abbreviated with K/M/G/T unless `--exact`.
fn largenum(out: &mut String, n: u64, format: Format) {
    if format.exact {
        let s = n.to_string();
        let w = if s.len() <= 8 { 9 } else { s.len() + 1 };
        let _ = write!(out, "{s:>w$}");
        return;
    }
    let _ = if n < 100_000_000 {
        write!(out, "{n:>9}")
    } else if n < 1_000_000_000 {
        write!(out, "{:>8}K", n / 1000)
    } else if n < 100_000_000_000 {
        write!(out, "{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        write!(out, "{:>8}G", n / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", n / 1_000_000_000_000)
    };
}

fn addrport(ip: IpAddr, port: u16, proto: Protocol, format: Format, names: &dyn Names) -> String {
    let host = if format.numeric {
        ip.to_string()
    } else {
        names.addr_to_host(ip).unwrap_or_else(|| ip.to_string())
    };
    let port = if format.numeric {
        port.to_string()
    } else {
        names
            .port_to_service(port, proto)
            .unwrap_or_else(|| port.to_string())
    };
    match ip {
        IpAddr::V4(_) => format!("{host}:{port}"),
        IpAddr::V6(_) => format!("[{host}]:{port}"),
    }
}

fn truncate(s: &mut String, n: usize) {
    if s.len() > n {
        let mut cut = n;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// The service's name as ipvsadm writes it: `TCP  1.2.3.4:80` / `FWM  5` in tables,
/// `-t 1.2.3.4:80` / `-f 5 -6` in rules.
fn service_name(key: &ServiceKey, format: Format, names: &dyn Names) -> String {
    match *key {
        ServiceKey::Fwmark { family, mark } => match (format.rule, family) {
            (true, Family::V4) => format!("-f {mark}"),
            (true, Family::V6) => format!("-f {mark} -6"),
            (false, Family::V4) => format!("FWM  {mark}"),
            (false, Family::V6) => format!("FWM  {mark} IPv6"),
        },
        ServiceKey::Inet { protocol, addr } => {
            let v = addrport(addr.ip(), addr.port(), protocol, format, names);
            if format.rule {
                let p = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    _ => "--sctp-service",
                };
                format!("{p} {v}")
            } else {
                let p = match protocol {
                    Protocol::Tcp => "TCP",
                    Protocol::Udp => "UDP",
                    _ => "SCTP",
                };
                let mut s = format!("{p:<4} {v}");
                if addr.is_ipv4() {
                    truncate(&mut s, 33);
                }
                s
            }
        }
        _ => key.to_string(),
    }
}

/// `-b` flag names for the scheduler.
fn sched_flags(svc: &Service) -> String {
    let f = svc.flags();
    let (one, two) = match svc.scheduler().as_str() {
        "sh" => ("sh-fallback", "sh-port"),
        "mh" => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut v = Vec::new();
    if f.contains(ServiceFlags::SCHED1) {
        v.push(one);
    }
    if f.contains(ServiceFlags::SCHED2) {
        v.push(two);
    }
    if f.contains(ServiceFlags::SCHED3) {
        v.push("flag-3");
    }
    v.join(",")
}

fn has_sched_flags(svc: &Service) -> bool {
    let f = svc.flags();
    f.contains(ServiceFlags::SCHED1)
        || f.contains(ServiceFlags::SCHED2)
        || f.contains(ServiceFlags::SCHED3)
}

/// The `-M` / `mask` text, when the mask is not the full one.
fn mask_text(svc: &Service) -> Option<String> {
    let m = svc.netmask();
    (m != Netmask::full(svc.key().family())).then(|| m.to_string())
}

const fn fwd_name(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "Masq",
        ForwardMethod::Local => "Local",
        ForwardMethod::Tunnel(_) => "Tunnel",
        ForwardMethod::DirectRoute => "Route",
        _ => "",
    }
}

const fn fwd_switch(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "-m",
        ForwardMethod::Tunnel(_) => "-i",
        _ => "-g",
    }
}

const fn csum_short(flags: u16) -> &'static str {
    match flags {
        1 => "+c",
        2 => "r+c",
        _ => "-c",
    }
}

const fn csum_option(flags: u16) -> &'static str {
    match flags {
        1 => "--tun-csum",
        2 => "--tun-remcsum",
        _ => "--tun-nocsum",
    }
}

fn tun_info(f: ForwardMethod) -> String {
    match f {
        ForwardMethod::Tunnel(TunnelType::Ipip) => "ipip".to_owned(),
        ForwardMethod::Tunnel(TunnelType::Gue { port, flags }) => {
            format!("gue:{port}:{}", csum_short(flags))
        }
        ForwardMethod::Tunnel(TunnelType::Gre { flags }) => format!("gre:{}", csum_short(flags)),
        _ => "n/a".to_owned(),
    }
}

/// One service and its destinations, in `format`.
pub fn service_entry(out: &mut String, row: &Row, format: Format, names: &dyn Names) {
    let (svc_row, dests) = row;
    let svc = &svc_row.service;
    let key = svc.key();
    let name = service_name(key, format, names);
    let persistent = svc.flags().contains(ServiceFlags::PERSISTENT);
    let c = &svc_row.counters;
    if format.rule {
        let _ = write!(out, "-A {name} -s {}", svc.scheduler());
        if persistent {
            let _ = write!(out, " -p {}", svc.timeout());
            if let Some(m) = mask_text(svc) {
                let _ = write!(out, " -M {m}");
            }
        }
        if let Some(pe) = svc.pe_name() {
            let _ = write!(out, " --pe {pe}");
        }
        if svc.flags().contains(ServiceFlags::ONE_PACKET) {
            out.push_str(" -o");
        }
        if has_sched_flags(svc) {
            let _ = write!(out, " -b {}", sched_flags(svc));
        }
    } else if format.stats {
        let _ = write!(out, "{name:<33}");
        for n in [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes] {
            largenum(out, n, format);
        }
    } else if format.rate {
        let _ = write!(out, "{name:<33}");
        for n in [c.cps, c.inpps, c.outpps, c.inbps, c.outbps] {
            largenum(out, n, format);
        }
    } else {
        let _ = write!(out, "{name} {}", svc.scheduler());
        if has_sched_flags(svc) {
            let _ = write!(out, " ({})", sched_flags(svc));
        }
        if persistent {
            let _ = write!(out, " persistent {}", svc.timeout());
            if let Some(m) = mask_text(svc) {
                let _ = write!(out, " mask {m}");
            }
            if let Some(pe) = svc.pe_name() {
                let _ = write!(out, " pe {pe}");
            }
        }
        if svc.flags().contains(ServiceFlags::ONE_PACKET) {
            out.push_str(" ops");
        }
    }
    out.push('\n');

    let proto = match *key {
        ServiceKey::Inet { protocol, .. } => protocol,
        _ => Protocol::Tcp,
    };
    for d in dests {
        let dest = &d.dest;
        let addr = dest.addr();
        let mut dname = addrport(addr.ip(), addr.port(), proto, format, names);
        if !format.rule && key.family() == Family::V4 {
            truncate(&mut dname, 28);
        }
        let fwd = dest.forward();
        let c = &d.counters;
        if format.rule {
            let _ = write!(
                out,
                "-a {name} -r {dname} {} -w {}",
                fwd_switch(fwd),
                dest.weight()
            );
            match fwd {
                ForwardMethod::Tunnel(TunnelType::Ipip) => out.push_str(" --tun-type ipip"),
                ForwardMethod::Tunnel(TunnelType::Gue { port, flags }) => {
                    let _ = write!(
                        out,
                        " --tun-type gue --tun-port {port} {}",
                        csum_option(flags)
                    );
                }
                ForwardMethod::Tunnel(TunnelType::Gre { flags }) => {
                    let _ = write!(out, " --tun-type gre {}", csum_option(flags));
                }
                _ => {}
            }
            out.push('\n');
        } else if format.stats {
            let _ = write!(out, "  -> {dname:<28}");
            for n in [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes] {
                largenum(out, n, format);
            }
            out.push('\n');
        } else if format.rate {
            let _ = write!(out, "  -> {dname:<28}");
            for n in [c.cps, c.inpps, c.outpps, c.inbps, c.outbps] {
                largenum(out, n, format);
            }
            out.push('\n');
        } else if format.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                dest.upper_threshold(),
                dest.lower_threshold(),
                d.active,
                d.inactive
            );
        } else if format.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                dest.weight(),
                d.persistent,
                d.active,
                d.inactive
            );
        } else if format.tun_info {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                fwd_name(fwd),
                tun_info(fwd),
                dest.weight(),
                d.active,
                d.inactive
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(fwd),
                dest.weight(),
                d.active,
                d.inactive
            );
        }
    }
}

/// The whole listing: the version line (not for rules), the titles, every service.
/// `rows` is sorted here unless `--nosort`.
#[must_use]
pub fn list_all(
    version: Option<(u32, u32)>,
    rows: &mut [Row],
    format: Format,
    names: &dyn Names,
) -> String {
    let mut out = String::new();
    if !format.rule
        && let Some((v, size)) = version
    {
        out.push_str(&version_line(v, size));
    }
    sort_table(rows, format);
    out.push_str(&title(format));
    for row in rows.iter() {
        service_entry(&mut out, row, format, names);
    }
    out
}

/// One service (`-L -t …`): titles and the service, no version line.
#[must_use]
pub fn list_one(row: &mut Row, format: Format, names: &dyn Names) -> String {
    let mut out = title(format);
    if !format.nosort {
        row.1
            .sort_by(|a, b| cmp_dests(&a.dest.addr(), &b.dest.addr()));
    }
    service_entry(&mut out, row, format, names);
    out
}

/// `Timeout (tcp tcpfin udp): 900 120 300`.
#[must_use]
pub fn timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// One line per running sync daemon, master first.
#[must_use]
pub fn daemons(list: &[SyncDaemon]) -> String {
    let mut out = String::new();
    for state in [DaemonState::Master, DaemonState::Backup] {
        for d in list.iter().filter(|d| d.state == state) {
            let role = match state {
                DaemonState::Master => "master",
                DaemonState::Backup => "backup",
            };
            let _ = write!(
                out,
                "{role} sync daemon (mcast={}, syncid={}",
                d.mcast_ifn, d.syncid
            );
            if let Some(m) = d.sync_maxlen.filter(|m| *m != 0) {
                let _ = write!(out, ", maxlen={m}");
            }
            if let Some(g) = d.mcast_group {
                let _ = write!(out, ", group={g}");
            }
            if let Some(p) = d.mcast_port.filter(|p| *p != 0) {
                let _ = write!(out, ", port={p}");
            }
            if let Some(t) = d.mcast_ttl.filter(|t| *t != 0) {
                let _ = write!(out, ", ttl={t}");
            }
            out.push_str(")\n");
        }
    }
    out
}
