//! The LVS part of keepalived.conf: `virtual_server` blocks, for `lvsd`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::render::{close, line, open, opt_line};
use super::vrrp::{LVS_TOP, OTHER_TOP, VRRP_TOP};
use super::{
    ConfError, Ctx, Node, Options, Pos, SourcePos, Warning, arg, bad_value, block, bool_arg,
    command_arg, fmt_secs, int_arg, ip_arg, narrow, parse_tree, parse_tree_str, secs_arg,
};
use crate::GlobalDefs;

const SECS_DAY: Duration = Duration::from_secs(86_400);

/// The LVS configuration: the `virtual_server` blocks, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LvsConf {
    /// The virtual servers.
    pub virtual_servers: Vec<VirtualServer>,
}

/// What a virtual server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VsAddr {
    /// `virtual_server IP [PORT]` (port 0 when not given).
    Socket(SocketAddr),
    /// `virtual_server fwmark N`.
    Fwmark(u32),
}

impl fmt::Display for VsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(s) => write!(f, "{} {}", s.ip(), s.port()),
            Self::Fwmark(m) => write!(f, "fwmark {m}"),
        }
    }
}

/// `lb_algo`: the IPVS scheduler, one of lvs-sched's IPVS kinds (`rr wrr lc wlc sed nq dh sh
/// lblc lblcr mh fo ovf twos`; never an nginx balancer, which IPVS does not have).
pub type LbAlgo = lvs_sched::SchedulerKind;

/// The IPVS scheduler named `name` (the kernel's module suffix), if any.
#[must_use]
pub fn lb_algo_from_name(name: &str) -> Option<LbAlgo> {
    name.parse::<LbAlgo>().ok().filter(|k| !k.is_nginx())
}

/// The names `lb_algo` accepts, space-separated.
fn lb_algo_names() -> String {
    LbAlgo::ALL
        .iter()
        .filter(|k| !k.is_nginx())
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `lb_kind`: the forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbKind {
    /// `NAT`, masquerading (the default).
    #[default]
    Nat,
    /// `DR`, direct routing.
    Dr,
    /// `TUN`, IP-in-IP tunnelling.
    Tun,
}

/// `protocol`: the transport protocol of a virtual server (UDP when not given), the type
/// ipvs-netlink uses for the kernel's services.
pub use ipvs_netlink::Protocol;

/// `persistence_granularity`: a netmask (IPv4) or a prefix length (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// `255.255.255.0`.
    Mask(Ipv4Addr),
    /// `64`.
    Prefix(u8),
}

/// The connection settings shared by the checkers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `connect_timeout` (5 s).
    pub connect_timeout: Duration,
    /// `connect_port` (the real server's port when unset).
    pub connect_port: Option<u16>,
    /// `connect_ip` (the real server's address when unset).
    pub connect_ip: Option<IpAddr>,
    /// `retry` (1; HTTP_GET also reads the old `nb_get_retry`).
    pub retry: u32,
    /// `delay_before_retry` (1 s for TCP_CHECK, 3 s for HTTP_GET).
    pub delay_before_retry: Duration,
}

impl Default for Connect {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            connect_port: None,
            connect_ip: None,
            retry: 1,
            delay_before_retry: Duration::from_secs(1),
        }
    }
}

/// `url { path P status_code N digest D }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `path`.
    pub path: String,
    /// `status_code` (keepalived accepts any 2xx when unset).
    pub status_code: Option<u16>,
    /// `digest`: the MD5 of the body, in hex.
    pub digest: Option<String>,
}

/// A health check of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `TCP_CHECK`: a TCP connect.
    Tcp(Connect),
    /// `HTTP_GET`: HTTP requests of the URLs.
    Http {
        /// The connection settings.
        connect: Connect,
        /// The URLs to fetch.
        urls: Vec<Url>,
    },
}

/// `real_server IP [PORT] { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Where it was defined (not compared).
    pub pos: SourcePos,
    /// The address and port (a missing or DR/TUN-mismatched port is the service's, as keepalived
    /// fits it).
    pub addr: SocketAddr,
    /// `weight` (1).
    pub weight: u32,
    /// `inhibit_on_failure`: set the weight to 0 on failure instead of removing the server.
    pub inhibit_on_failure: bool,
    /// The checkers.
    pub checks: Vec<Check>,
    /// `notify_up`.
    pub notify_up: Option<String>,
    /// `notify_down`.
    pub notify_down: Option<String>,
    /// `smtp_alert [BOOL]` as written (unset: `None`); [`RealServer::smtp_alert`] resolves it.
    pub smtp_alert: Option<bool>,
}

impl RealServer {
    /// Whether this real server going up or down is mailed, as keepalived resolves it: its
    /// `smtp_alert`, else `smtp_alert_checker`, else `smtp_alert` of `global_defs`, else yes
    /// (keepalived's default for real servers, unlike that of virtual servers and VRRP
    /// instances).
    #[must_use]
    pub fn smtp_alert(&self, global: &GlobalDefs) -> bool {
        self.smtp_alert
            .or(global.smtp.alert_checker)
            .or(global.smtp.alert)
            .unwrap_or(true)
    }
}

/// `virtual_server IP PORT { ... }` or `virtual_server fwmark N { ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// Where it was defined (not compared).
    pub pos: SourcePos,
    /// What it listens on.
    pub addr: VsAddr,
    /// `delay_loop` between checks (60 s).
    pub delay_loop: Duration,
    /// `lb_algo` (wlc when unset, with a warning, as keepalived does).
    pub lb_algo: LbAlgo,
    /// `lb_kind` (NAT when unset, with a warning, as keepalived does).
    pub lb_kind: LbKind,
    /// `persistence_timeout` in seconds (no persistence when unset, except for a port-0
    /// service, which gets [`DEFAULT_PERSISTENCE`] as in keepalived).
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity`.
    pub persistence_granularity: Option<Granularity>,
    /// `protocol` (UDP when unset, with a warning, as keepalived does; always UDP, and not
    /// written, for a fwmark service, which has none).
    pub protocol: Protocol,
    /// `quorum` (1).
    pub quorum: u32,
    /// `hysteresis` (0).
    pub hysteresis: u32,
    /// `virtualhost` for HTTP checks.
    pub virtualhost: Option<String>,
    /// `sorry_server IP PORT`.
    pub sorry_server: Option<SocketAddr>,
    /// `smtp_alert [BOOL]` as written (unset: `None`); [`VirtualServer::smtp_alert`] resolves
    /// it.
    pub smtp_alert: Option<bool>,
    /// The real servers.
    pub real_servers: Vec<RealServer>,
}

impl VirtualServer {
    /// Whether this virtual server's own events (its quorum) are mailed, as keepalived
    /// resolves it: its `smtp_alert`, else `smtp_alert_checker`, else `smtp_alert` of
    /// `global_defs`, else no.
    #[must_use]
    pub fn smtp_alert(&self, global: &GlobalDefs) -> bool {
        self.smtp_alert
            .or(global.smtp.alert_checker)
            .or(global.smtp.alert)
            .unwrap_or(false)
    }
}

/// Reads the LVS configuration of `path` and its includes.
pub fn parse_lvs(path: &Path) -> Result<(LvsConf, Vec<Warning>), ConfError> {
    let (nodes, mut warnings) = parse_tree(path, &Options::default())?;
    let (conf, w) = LvsConf::from_nodes(&nodes)?;
    warnings.extend(w);
    Ok((conf, warnings))
}

/// Parses LVS configuration text; `name` is used in positions and as the base of includes.
pub fn parse_lvs_str(
    text: &str,
    name: impl AsRef<Path>,
) -> Result<(LvsConf, Vec<Warning>), ConfError> {
    let (nodes, mut warnings) = parse_tree_str(text, name, &Options::default())?;
    let (conf, w) = LvsConf::from_nodes(&nodes)?;
    warnings.extend(w);
    Ok((conf, warnings))
}

fn u32_arg(n: &Node, i: usize, min: i64) -> Result<u32, ConfError> {
    narrow(n, int_arg(n, i, min, i64::from(u32::MAX))?)
}

fn port_arg(n: &Node, i: usize) -> Result<u16, ConfError> {
    narrow(n, int_arg(n, i, 0, 65_535)?)
}

/// keepalived's persistence for a port-0 service set without one (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE: u32 = 360;

/// `IP [PORT]`: a missing port is 0, as keepalived reads it.
fn socket_opt_port(n: &Node, i: usize) -> Result<SocketAddr, ConfError> {
    let ip = ip_arg(n, i)?;
    let port = if n.args.len() > i + 1 {
        port_arg(n, i + 1)?
    } else {
        0
    };
    Ok(SocketAddr::new(ip, port))
}

fn socket_args(n: &Node, i: usize) -> Result<SocketAddr, ConfError> {
    let ip = ip_arg(n, i)?;
    let port = port_arg(n, i + 1)?;
    Ok(SocketAddr::new(ip, port))
}

impl LvsConf {
    /// Builds the LVS configuration from a parsed tree. VRRP blocks are skipped silently;
    /// unknown top-level keywords are warnings.
    pub fn from_nodes(nodes: &[Node]) -> Result<(Self, Vec<Warning>), ConfError> {
        let mut ctx = Ctx::default();
        let mut conf = Self::default();
        let mut seen: HashMap<(VsAddr, Protocol), Pos> = HashMap::new();
        for node in nodes {
            match node.keyword.as_str() {
                "virtual_server" => {
                    if node.args.first().map(String::as_str) == Some("group") {
                        ctx.warn(
                            &node.pos,
                            "`virtual_server group` is not supported; ignored",
                        );
                        continue;
                    }
                    // keepalived skips a virtual server whose address it cannot read.
                    let vs = match virtual_server(node, &mut ctx) {
                        Ok(Some(vs)) => vs,
                        Ok(None) => continue,
                        Err(e) => {
                            ctx.lenient(Err(e))?;
                            continue;
                        }
                    };
                    // keepalived configures both, and the kernel refuses the second.
                    if let Some(first) = seen.get(&(vs.addr, vs.protocol)) {
                        ctx.warn(
                            &node.pos,
                            format!(
                                "virtual_server `{}` is already defined at {first}; this one \
                                 is ignored (IPVS refuses a second service at the same address)",
                                vs.addr
                            ),
                        );
                        continue;
                    }
                    seen.insert((vs.addr, vs.protocol), node.pos.clone());
                    conf.virtual_servers.push(vs);
                }
                "virtual_server_group" => ctx.unsupported(node),
                k if VRRP_TOP.contains(&k) || OTHER_TOP.contains(&k) => {}
                k if LVS_TOP.contains(&k) => {}
                _ => ctx.unknown(node, "the top level"),
            }
        }
        Ok((conf, ctx.warnings))
    }
}

fn virtual_server(node: &Node, ctx: &mut Ctx) -> Result<Option<VirtualServer>, ConfError> {
    let addr = if node.args.first().map(String::as_str) == Some("fwmark") {
        VsAddr::Fwmark(u32_arg(node, 1, 1)?)
    } else {
        // keepalived takes `virtual_server IP` without a port as port 0.
        VsAddr::Socket(socket_opt_port(node, 0)?)
    };
    ctx.max_args(node, 2);
    let (mut algo_set, mut kind_set, mut protocol_set) = (false, false, false);
    let mut vs = VirtualServer {
        pos: SourcePos(node.pos.clone()),
        addr,
        delay_loop: Duration::from_secs(60),
        lb_algo: LbAlgo::Wlc,
        lb_kind: LbKind::Nat,
        persistence_timeout: None,
        persistence_granularity: None,
        protocol: Protocol::Udp,
        quorum: 1,
        hysteresis: 0,
        virtualhost: None,
        sorry_server: None,
        smtp_alert: None,
        real_servers: Vec::new(),
    };
    let mut seen: HashMap<SocketAddr, Pos> = HashMap::new();
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            if n.keyword != "real_server" {
                ctx.no_block(n);
            }
            match n.keyword.as_str() {
                "delay_loop" => vs.delay_loop = secs_arg(n, 0, Duration::from_millis(1), SECS_DAY)?,
                "lb_algo" => {
                    ctx.max_args(n, 1);
                    let s = arg(n, 0, "a scheduler name")?;
                    vs.lb_algo = lb_algo_from_name(s).ok_or_else(|| {
                        bad_value(n, s, &format!("a scheduler: {}", lb_algo_names()))
                    })?;
                    algo_set = true;
                }
                "lb_kind" => {
                    ctx.max_args(n, 1);
                    let s = arg(n, 0, "NAT, DR or TUN")?;
                    // Upper case only, as keepalived reads it.
                    vs.lb_kind = match s {
                        "NAT" => LbKind::Nat,
                        "DR" => LbKind::Dr,
                        "TUN" => LbKind::Tun,
                        _ => return Err(bad_value(n, s, "NAT, DR or TUN")),
                    };
                    kind_set = true;
                }
                "persistence_timeout" => vs.persistence_timeout = Some(u32_arg(n, 0, 1)?),
                "persistence_granularity" => {
                    let s = arg(n, 0, "a netmask or a prefix length")?;
                    vs.persistence_granularity = Some(if let Ok(m) = s.parse::<Ipv4Addr>() {
                        Granularity::Mask(m)
                    } else {
                        Granularity::Prefix(narrow(n, int_arg(n, 0, 1, 128)?)?)
                    });
                }
                "protocol" => {
                    ctx.max_args(n, 1);
                    let s = arg(n, 0, "TCP, UDP or SCTP")?;
                    vs.protocol = match s.to_ascii_uppercase().as_str() {
                        "TCP" => Protocol::Tcp,
                        "UDP" => Protocol::Udp,
                        "SCTP" => Protocol::Sctp,
                        _ => return Err(bad_value(n, s, "TCP, UDP or SCTP")),
                    };
                    protocol_set = true;
                }
                "quorum" => vs.quorum = u32_arg(n, 0, 1)?,
                "hysteresis" => vs.hysteresis = u32_arg(n, 0, 0)?,
                "virtualhost" => vs.virtualhost = Some(arg(n, 0, "a host name")?.to_string()),
                "sorry_server" => vs.sorry_server = Some(socket_args(n, 0)?),
                "smtp_alert" => {
                    if let Some(b) = bool_arg(n, ctx) {
                        vs.smtp_alert = Some(b);
                    }
                }
                "real_server" => {
                    let rs = real_server(n, ctx)?;
                    // keepalived keeps the first of two identical real servers.
                    if let Some(first) = seen.get(&rs.addr) {
                        ctx.warn(
                            &n.pos,
                            format!(
                                "real_server `{} {}` is already defined at {first}; this one \
                                 is ignored",
                                rs.addr.ip(),
                                rs.addr.port()
                            ),
                        );
                    } else {
                        seen.insert(rs.addr, n.pos.clone());
                        vs.real_servers.push(rs);
                    }
                }
                "alpha"
                | "omega"
                | "quorum_up"
                | "quorum_down"
                | "ha_suspend"
                | "ops"
                | "one_packet_scheduling"
                | "retry"
                | "delay_before_retry"
                | "warmup"
                | "inhibit_on_failure"
                | "virtualhost_name"
                | "lvs_method"
                | "lvs_sched"
                | "sorry_server_inhibit"
                | "sorry_server_lvs_method"
                | "ip_family" => {
                    ctx.unsupported(n);
                }
                _ => ctx.unknown(n, "virtual_server"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    if vs.real_servers.is_empty() {
        ctx.warn(
            &node.pos,
            format!(
                "virtual_server `{}` has no real servers; ignored, as keepalived does",
                vs.addr
            ),
        );
        return Ok(None);
    }
    keepalived_defaults(&mut vs, (algo_set, kind_set, protocol_set), ctx);
    Ok(Some(vs))
}

/// What keepalived does once a `virtual_server` block is read: defaults it reports (protocol
/// UDP, scheduler wlc, forwarding NAT), persistence for a port-0 service, the real servers'
/// ports fitted to the service, quorum and hysteresis within the real servers' weight.
fn keepalived_defaults(vs: &mut VirtualServer, set: (bool, bool, bool), ctx: &mut Ctx) {
    let (algo_set, kind_set, protocol_set) = set;
    let pos = vs.pos.0.clone();
    let name = vs.addr.to_string();
    let fwmark = matches!(vs.addr, VsAddr::Fwmark(_));
    if protocol_set && fwmark {
        ctx.warn(
            &pos,
            format!(
                "virtual_server `{name}`: a fwmark service has no protocol; `protocol` ignored"
            ),
        );
    }
    if fwmark {
        vs.protocol = Protocol::Udp;
    }
    if !protocol_set && !fwmark {
        ctx.warn(
            &pos,
            format!("virtual_server `{name}`: no protocol set; using UDP, as keepalived does"),
        );
    }
    if !algo_set {
        ctx.warn(
            &pos,
            format!("virtual_server `{name}`: no lb_algo set; using wlc, as keepalived does"),
        );
    }
    if !kind_set && !vs.real_servers.is_empty() {
        ctx.warn(
            &pos,
            format!("virtual_server `{name}`: no lb_kind set; using NAT, as keepalived does"),
        );
    }
    let vs_port = match vs.addr {
        VsAddr::Socket(a) => Some(a.port()),
        VsAddr::Fwmark(_) => None,
    };
    if vs_port == Some(0) && vs.persistence_timeout.is_none() {
        ctx.warn(
            &pos,
            format!(
                "virtual_server `{name}`: port 0 is only valid for a persistent service; \
                 persistence_timeout {DEFAULT_PERSISTENCE} set, as keepalived does"
            ),
        );
        vs.persistence_timeout = Some(DEFAULT_PERSISTENCE);
    }
    let nat = vs.lb_kind == LbKind::Nat;
    for rs in &mut vs.real_servers {
        let port = rs.addr.port();
        match vs_port {
            // NAT maps ports: only an unset one takes the service's.
            Some(p) if nat => {
                if port == 0 {
                    rs.addr.set_port(p);
                }
            }
            // DR and TUN cannot change the port.
            Some(p) => {
                if port != 0 && port != p {
                    ctx.warn(
                        &rs.pos.0,
                        format!(
                            "real_server `{}` port {port} does not match virtual_server `{name}` \
                             (DR and TUN keep the port); using {p}, as keepalived does",
                            rs.addr.ip()
                        ),
                    );
                }
                rs.addr.set_port(p);
            }
            None if nat => {}
            None => {
                if port != 0 {
                    ctx.warn(
                        &rs.pos.0,
                        format!(
                            "real_server `{}` of fwmark virtual_server `{name}` has port {port}; \
                             cleared, as keepalived does",
                            rs.addr.ip()
                        ),
                    );
                    rs.addr.set_port(0);
                }
            }
        }
    }
    // Two real servers that differ only in a port the service overrides are one IPVS
    // destination: keepalived keeps both in its configuration and the kernel refuses the second
    // (`EEXIST`), so the first is the one that runs.
    let mut kept: Vec<RealServer> = Vec::with_capacity(vs.real_servers.len());
    for rs in std::mem::take(&mut vs.real_servers) {
        if let Some(first) = kept.iter().find(|k| k.addr == rs.addr) {
            ctx.warn(
                &rs.pos.0,
                format!(
                    "real_server `{}` is the same destination as the one at {} once its port \
                     is fitted to virtual_server `{name}`; the kernel takes only the first, so \
                     this one is ignored",
                    rs.addr, first.pos.0
                ),
            );
        } else {
            kept.push(rs);
        }
    }
    vs.real_servers = kept;
    let weights: u64 = vs.real_servers.iter().map(|r| u64::from(r.weight)).sum();
    let total = u32::try_from(weights).unwrap_or(u32::MAX);
    if u64::from(vs.quorum) > weights {
        ctx.warn(
            &pos,
            format!(
                "virtual_server `{name}`: quorum {} exceeds the real servers' total weight \
                 {total}; using {total}, as keepalived does",
                vs.quorum
            ),
        );
        vs.quorum = total;
    }
    if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
        let h = vs.quorum.saturating_sub(1);
        ctx.warn(
            &pos,
            format!(
                "virtual_server `{name}`: hysteresis {} is not below quorum {}; using {h}, as \
                 keepalived does",
                vs.hysteresis, vs.quorum
            ),
        );
        vs.hysteresis = h;
    }
}

fn real_server(node: &Node, ctx: &mut Ctx) -> Result<RealServer, ConfError> {
    ctx.max_args(node, 2);
    let mut rs = RealServer {
        pos: SourcePos(node.pos.clone()),
        addr: socket_opt_port(node, 0)?,
        weight: 1,
        inhibit_on_failure: false,
        checks: Vec::new(),
        notify_up: None,
        notify_down: None,
        smtp_alert: None,
    };
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            if !n.keyword.ends_with("_CHECK") && !n.keyword.ends_with("_GET") {
                ctx.no_block(n);
            }
            match n.keyword.as_str() {
                "weight" => rs.weight = narrow(n, int_arg(n, 0, 0, 65_535)?)?,
                "inhibit_on_failure" => rs.inhibit_on_failure = true,
                "notify_up" => rs.notify_up = Some(command_arg(n)?),
                "notify_down" => rs.notify_down = Some(command_arg(n)?),
                "smtp_alert" => {
                    if let Some(b) = bool_arg(n, ctx) {
                        rs.smtp_alert = Some(b);
                    }
                }
                "TCP_CHECK" => rs.checks.push(Check::Tcp(connect_block(n, ctx, false)?.0)),
                "HTTP_GET" => {
                    let (connect, urls) = connect_block(n, ctx, true)?;
                    if urls.is_empty() {
                        // keepalived drops an HTTP_GET without a usable url, with a message.
                        ctx.warn(
                            &n.pos,
                            "HTTP_GET has no url; the checker is ignored, as keepalived does",
                        );
                    } else {
                        rs.checks.push(Check::Http { connect, urls });
                    }
                }
                "SSL_GET" | "MISC_CHECK" | "SMTP_CHECK" | "DNS_CHECK" | "BFD_CHECK"
                | "UDP_CHECK" | "PING_CHECK" | "FILE_CHECK" => ctx.warn(
                    &n.pos,
                    format!("`{}` is not supported; this checker is ignored", n.keyword),
                ),
                "uthreshold" | "lthreshold" | "alpha" | "omega" | "delay_loop" | "virtualhost"
                | "retry" | "delay_before_retry" | "warmup" => ctx.unsupported(n),
                _ => ctx.unknown(n, "real_server"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    Ok(rs)
}

fn connect_block(node: &Node, ctx: &mut Ctx, http: bool) -> Result<(Connect, Vec<Url>), ConfError> {
    let mut c = Connect::default();
    if http {
        // keepalived's HTTP_GET waits 3 s before a retry, TCP_CHECK 1 s.
        c.delay_before_retry = Duration::from_secs(3);
    }
    let mut urls = Vec::new();
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            if n.keyword != "url" {
                ctx.no_block(n);
            }
            match n.keyword.as_str() {
                "connect_timeout" => {
                    c.connect_timeout = secs_arg(n, 0, Duration::from_millis(1), SECS_DAY)?;
                }
                "connect_port" => c.connect_port = Some(narrow(n, int_arg(n, 0, 1, 65_535)?)?),
                "connect_ip" => c.connect_ip = Some(ip_arg(n, 0)?),
                "retry" => c.retry = u32_arg(n, 0, 0)?,
                // HTTP_GET's old name for `retry`; TCP_CHECK never had it.
                "nb_get_retry" if http => {
                    ctx.warn(&n.pos, "nb_get_retry is deprecated; read as `retry`");
                    c.retry = u32_arg(n, 0, 0)?;
                }
                "delay_before_retry" => {
                    c.delay_before_retry = secs_arg(n, 0, Duration::ZERO, SECS_DAY)?;
                }
                "url" if http => urls.extend(url(n, ctx)?),
                "bindto" | "bind_port" | "bind_if" | "fwmark" | "warmup" | "delay_loop"
                | "alpha" | "omega" | "virtualhost" | "http_protocol" | "connect_ipv6" => {
                    ctx.unsupported(n)
                }
                _ => ctx.unknown(n, &node.keyword),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    Ok((c, urls))
}

fn url(node: &Node, ctx: &mut Ctx) -> Result<Option<Url>, ConfError> {
    let mut path = None;
    let mut u = Url {
        path: String::new(),
        status_code: None,
        digest: None,
    };
    for n in block(node)? {
        // keepalived ignores a line whose value it cannot use, with a message.
        let line = (|| -> Result<(), ConfError> {
            ctx.no_block(n);
            match n.keyword.as_str() {
                "path" => {
                    ctx.max_args(n, 1);
                    path = Some(arg(n, 0, "a URL path")?.to_string());
                }
                "status_code" => {
                    ctx.max_args(n, 1);
                    u.status_code = Some(narrow(n, int_arg(n, 0, 100, 599)?)?);
                }
                "digest" => {
                    ctx.max_args(n, 1);
                    let d = arg(n, 0, "an MD5 digest in hex")?;
                    if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(bad_value(n, d, "an MD5 digest: 32 hex digits"));
                    }
                    u.digest = Some(d.to_ascii_lowercase());
                }
                _ => ctx.unknown(n, "url"),
            }
            Ok(())
        })();
        ctx.lenient(line)?;
    }
    // keepalived drops a url without a path, with a message.
    let Some(path) = path else {
        ctx.warn(&node.pos, "url has no `path`; ignored, as keepalived does");
        return Ok(None);
    };
    u.path = path;
    Ok(Some(u))
}

fn connect_lines(f: &mut fmt::Formatter<'_>, c: &Connect) -> fmt::Result {
    line(f, 3, "connect_timeout", &[&fmt_secs(c.connect_timeout)])?;
    if let Some(p) = c.connect_port {
        line(f, 3, "connect_port", &[&p.to_string()])?;
    }
    if let Some(ip) = c.connect_ip {
        line(f, 3, "connect_ip", &[&ip.to_string()])?;
    }
    line(f, 3, "retry", &[&c.retry.to_string()])?;
    line(
        f,
        3,
        "delay_before_retry",
        &[&fmt_secs(c.delay_before_retry)],
    )
}

impl fmt::Display for RealServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ip, port) = (self.addr.ip().to_string(), self.addr.port().to_string());
        open(f, 1, "real_server", &[&ip, &port])?;
        line(f, 2, "weight", &[&self.weight.to_string()])?;
        if self.inhibit_on_failure {
            line(f, 2, "inhibit_on_failure", &[])?;
        }
        for c in &self.checks {
            match c {
                Check::Tcp(conn) => {
                    open(f, 2, "TCP_CHECK", &[])?;
                    connect_lines(f, conn)?;
                }
                Check::Http { connect, urls } => {
                    open(f, 2, "HTTP_GET", &[])?;
                    for u in urls {
                        open(f, 3, "url", &[])?;
                        line(f, 4, "path", &[&u.path])?;
                        if let Some(s) = u.status_code {
                            line(f, 4, "status_code", &[&s.to_string()])?;
                        }
                        opt_line(f, 4, "digest", u.digest.as_deref())?;
                        close(f, 3)?;
                    }
                    connect_lines(f, connect)?;
                }
            }
            close(f, 2)?;
        }
        opt_line(f, 2, "notify_up", self.notify_up.as_deref())?;
        opt_line(f, 2, "notify_down", self.notify_down.as_deref())?;
        if let Some(b) = self.smtp_alert {
            line(f, 2, "smtp_alert", &[if b { "true" } else { "false" }])?;
        }
        close(f, 1)
    }
}

impl fmt::Display for VirtualServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            VsAddr::Socket(s) => open(
                f,
                0,
                "virtual_server",
                &[&s.ip().to_string(), &s.port().to_string()],
            )?,
            VsAddr::Fwmark(m) => open(f, 0, "virtual_server", &["fwmark", &m.to_string()])?,
        }
        line(f, 1, "delay_loop", &[&fmt_secs(self.delay_loop)])?;
        line(f, 1, "lb_algo", &[self.lb_algo.name()])?;
        let kind = match self.lb_kind {
            LbKind::Nat => "NAT",
            LbKind::Dr => "DR",
            LbKind::Tun => "TUN",
        };
        line(f, 1, "lb_kind", &[kind])?;
        if let Some(t) = self.persistence_timeout {
            line(f, 1, "persistence_timeout", &[&t.to_string()])?;
        }
        match self.persistence_granularity {
            Some(Granularity::Mask(m)) => line(f, 1, "persistence_granularity", &[&m.to_string()])?,
            Some(Granularity::Prefix(p)) => {
                line(f, 1, "persistence_granularity", &[&p.to_string()])?;
            }
            None => {}
        }
        let number;
        let proto = match self.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            // The reader makes only the three above; a protocol IPVS may add later is
            // written as its number rather than misnamed.
            other => {
                number = other.number().to_string();
                &number
            }
        };
        // A fwmark service has no protocol.
        if matches!(self.addr, VsAddr::Socket(_)) {
            line(f, 1, "protocol", &[proto])?;
        }
        line(f, 1, "quorum", &[&self.quorum.to_string()])?;
        line(f, 1, "hysteresis", &[&self.hysteresis.to_string()])?;
        opt_line(f, 1, "virtualhost", self.virtualhost.as_deref())?;
        if let Some(s) = self.sorry_server {
            line(
                f,
                1,
                "sorry_server",
                &[&s.ip().to_string(), &s.port().to_string()],
            )?;
        }
        if let Some(b) = self.smtp_alert {
            line(f, 1, "smtp_alert", &[if b { "true" } else { "false" }])?;
        }
        for rs in &self.real_servers {
            rs.fmt(f)?;
        }
        close(f, 0)
    }
}

/// The whole LVS configuration, one `virtual_server` block after another.
impl fmt::Display for LvsConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, vs) in self.virtual_servers.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            vs.fmt(f)?;
        }
        Ok(())
    }
}
