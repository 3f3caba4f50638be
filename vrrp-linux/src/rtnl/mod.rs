//! Linux route-netlink helpers for the VRRP daemon: links, addresses, macvlans (keepalived's
//! `use_vmac`), routes and policy-routing rules (keepalived's `virtual_routes`, `virtual_rules`,
//! `static_routes`, `static_rules`), link notifications and interface sysctls.
//!
//! [`Rtnl`] is one blocking `NETLINK_ROUTE` socket that sends a request and reads its
//! replies (multi-part dumps up to `NLMSG_DONE`, ACKs and errors), skipping anything that
//! answers another sequence number. Every reply is untrusted input: lengths are checked
//! before use and anything that does not decode is a typed [`RtnlError`], never a panic.
//! A receive timeout makes sure no call hangs for ever.
//!
//! [`LinkWatcher`] is a non-blocking socket subscribed to link notifications, meant to be
//! wrapped in `tokio::io::unix::AsyncFd`; [`AsyncLinkWatcher`] does that wrapping. [`sysctl_set`] and [`sysctl_set_iface`] write
//! under `/proc/sys` (for the network namespace of the calling thread).
//!
//! All of it needs `CAP_NET_ADMIN` for changes; reading works unprivileged.

mod error;
mod route;
mod sysctl;
mod watch;
mod wire;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo,
    LinkMessage, MacVlanMode,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_ROUTE};

pub use self::error::RtnlError;
pub use self::route::{Route, RouteKind, Rule, RuleAction};
pub use self::sysctl::{sysctl_get, sysctl_set, sysctl_set_iface};
pub use self::watch::{AsyncLinkWatcher, LinkChange, LinkWatcher};
use self::wire::Reply;

/// How long [`Rtnl`] waits for the kernel's answer to one request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// `MSG_TRUNC`: make `recv` return the real datagram length so truncation is detected.
const MSG_TRUNC: i32 = libc::MSG_TRUNC;
/// Receive buffer for one datagram; the kernel builds dump datagrams of at most 32 KiB.
const RX_BUF: usize = 64 * 1024;
/// How often a dump is restarted when the kernel flags it inconsistent.
const DUMP_ATTEMPTS: usize = 4;
/// `IFNAMSIZ - 1`: the longest interface name.
const IFNAME_MAX: usize = 15;

/// One network interface as [`Rtnl`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The interface index.
    pub index: u32,
    /// The interface name.
    pub name: String,
    /// The hardware address; all zeros for links without a 6-byte address (tunnels, tun).
    pub mac: [u8; 6],
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING`: up with carrier and operationally up (or of unknown operational state,
    /// as for dummies), i.e. able to pass traffic.
    pub running: bool,
    /// The MTU (0 if the kernel did not report one).
    pub mtu: u32,
}

/// One address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The local address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
    /// Link scope (IPv6 `fe80::/10`, or an IPv4 address added with `scope link`).
    pub link_local: bool,
    /// `IFA_F_SECONDARY` (for IPv6 the same bit means a temporary privacy address).
    pub secondary: bool,
}

/// A blocking `NETLINK_ROUTE` socket: one request at a time, each answered before the call
/// returns or times out (see [`Rtnl::set_timeout`]).
#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    timeout: Duration,
    rx: Vec<u8>,
}

impl Rtnl {
    /// Opens and binds the socket.
    ///
    /// Fails with [`RtnlError::Io`] when netlink sockets cannot be created (seccomp,
    /// exhausted file descriptors).
    pub fn open() -> Result<Self, RtnlError> {
        let op = "open the route netlink socket";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(RtnlError::io(op))?;
        sock.bind_auto().map_err(RtnlError::io(op))?;
        sock.connect(&NlAddr::new(0, 0))
            .map_err(RtnlError::io(op))?;
        // Best effort: each makes replies smaller or filtering stricter, none is required.
        let _ = sock.set_rx_buf_sz(1024 * 1024_i32);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_netlink_get_strict_chk(true);
        let mut rtnl = Self {
            sock,
            seq: 0,
            timeout: DEFAULT_TIMEOUT,
            rx: Vec::with_capacity(RX_BUF),
        };
        rtnl.set_timeout(DEFAULT_TIMEOUT)?;
        Ok(rtnl)
    }

    /// How long to wait for the kernel's answer to one request (default
    /// [`DEFAULT_TIMEOUT`]); past it a call fails with [`RtnlError::Timeout`].
    /// A zero duration is raised to one millisecond (zero would mean "wait for ever").
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), RtnlError> {
        let timeout = timeout.max(Duration::from_millis(1));
        socket2::SockRef::from(&self.sock)
            .set_read_timeout(Some(timeout))
            .map_err(RtnlError::io("set the netlink receive timeout"))?;
        self.timeout = timeout;
        Ok(())
    }

    /// The link called `name`.
    ///
    /// [`RtnlError::NoSuchLink`] when there is none; [`RtnlError::InvalidName`] for a name
    /// no interface can have.
    pub fn link_by_name(&mut self, name: &str) -> Result<Link, RtnlError> {
        link_of(&self.link_msg_by_name(name)?, "get link by name")
    }

    /// The link with interface index `index`; [`RtnlError::NoSuchIndex`] when there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Link, RtnlError> {
        link_of(&self.link_msg_by_index(index)?, "get link by index")
    }

    /// Every link in the network namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, RtnlError> {
        let op = "list links";
        let replies = self.dump(op, || {
            let mut m = LinkMessage::default();
            m.attributes
                .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
            RouteNetlinkMessage::GetLink(m)
        })?;
        replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(link_of(m, op)),
                _ => None,
            })
            .collect()
    }

    /// Every IPv4 and IPv6 address on link `index`.
    ///
    /// An unknown index gives [`RtnlError::NoSuchIndex`] (kernels before 4.20, which lack
    /// strict dump checking, give an empty list instead).
    pub fn addrs(&mut self, index: u32) -> Result<Vec<IfAddr>, RtnlError> {
        let op = "list addresses";
        let replies = self
            .dump(op, || {
                let mut m = AddressMessage::default();
                // With strict checking the kernel filters by index itself; older kernels
                // send every address, so the filter below is needed either way.
                m.header.index = index;
                RouteNetlinkMessage::GetAddress(m)
            })
            .map_err(|e| match e {
                RtnlError::Kernel {
                    errno: libc::ENODEV,
                    ..
                } => RtnlError::NoSuchIndex { index },
                e => e,
            })?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewAddress(m) if m.header.index == index => ifaddr_of(m),
                _ => None,
            })
            .collect())
    }

    /// Adds `addr/prefix` to link `index`. IPv6 addresses get `IFA_F_NODAD` so that a
    /// virtual address is usable at once instead of going through duplicate address
    /// detection.
    ///
    /// `Ok(true)` if added, `Ok(false)` if it was already there (`EEXIST`). An unknown index
    /// gives [`RtnlError::Kernel`] with `ENODEV`.
    pub fn add_addr(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<bool, RtnlError> {
        let op = "add address";
        let m = addr_msg(index, addr, prefix)?;
        match self.request(
            op,
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(true),
            Err(RtnlError::Kernel {
                errno: libc::EEXIST,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `addr/prefix` from link `index`.
    ///
    /// `Ok(true)` if removed, `Ok(false)` if it was not there (`EADDRNOTAVAIL` / `ENOENT`).
    pub fn del_addr(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<bool, RtnlError> {
        let op = "delete address";
        let m = addr_msg(index, addr, prefix)?;
        match self.request(op, RouteNetlinkMessage::DelAddress(m), NLM_F_ACK) {
            Ok(_) => Ok(true),
            Err(RtnlError::Kernel {
                errno: libc::EADDRNOTAVAIL | libc::ENOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `route`. `Ok(true)` if added, `Ok(false)` if the kernel already had it
    /// (`EEXIST`, which keepalived also counts as done). keepalived's default: neither
    /// replace nor append, so a different route to the same destination and metric is
    /// refused with `EEXIST` too.
    pub fn add_route(&mut self, route: &Route) -> Result<bool, RtnlError> {
        let op = "add route";
        let m = route::route_msg(route, false)?;
        match self.request(
            op,
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_ACK | NLM_F_CREATE,
        ) {
            Ok(_) => Ok(true),
            Err(RtnlError::Kernel {
                errno: libc::EEXIST,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `route`. `Ok(true)` if removed, `Ok(false)` if it was not there (`ESRCH` /
    /// `ENOENT`).
    pub fn del_route(&mut self, route: &Route) -> Result<bool, RtnlError> {
        let op = "delete route";
        let m = route::route_msg(route, true)?;
        match self.request(op, RouteNetlinkMessage::DelRoute(m), NLM_F_ACK) {
            Ok(_) => Ok(true),
            Err(RtnlError::Kernel {
                errno: libc::ESRCH | libc::ENOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `rule` (exclusively, as keepalived does). `Ok(true)` if added, `Ok(false)` if an
    /// identical rule was there (`EEXIST`).
    pub fn add_rule(&mut self, rule: &Rule) -> Result<bool, RtnlError> {
        let op = "add rule";
        let m = route::rule_msg(rule)?;
        match self.request(
            op,
            RouteNetlinkMessage::NewRule(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(true),
            Err(RtnlError::Kernel {
                errno: libc::EEXIST,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes `rule`. `Ok(true)` if removed, `Ok(false)` if it was not there (`ENOENT`).
    pub fn del_rule(&mut self, rule: &Rule) -> Result<bool, RtnlError> {
        let op = "delete rule";
        let m = route::rule_msg(rule)?;
        match self.request(op, RouteNetlinkMessage::DelRule(m), NLM_F_ACK) {
            Ok(_) => Ok(true),
            Err(RtnlError::Kernel {
                errno: libc::ENOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// keepalived's `use_vmac`: a macvlan in private mode called `name` on link `parent`
    /// with hardware address `mac`, brought up. Returns its index.
    ///
    /// If a link called `name` already exists and is a macvlan on `parent`, it is reused:
    /// its MAC is set to `mac`, its mode to private, and it is brought up. Any other link of
    /// that name gives [`RtnlError::LinkConflict`]. A kernel without macvlan support gives
    /// [`RtnlError::Kernel`] with `EOPNOTSUPP`.
    pub fn add_macvlan(&mut self, name: &str, parent: u32, mac: [u8; 6]) -> Result<u32, RtnlError> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(RtnlError::InvalidMac { mac });
        }
        validate_ifname(name)?;
        // Two rounds: if the link appears between our lookup and our create (EEXIST), the
        // second round takes the reuse path.
        for _ in 0..2 {
            match self.link_msg_by_name(name) {
                Ok(existing) => return self.reuse_macvlan(name, &existing, parent, mac),
                Err(RtnlError::NoSuchLink { .. }) => {}
                Err(e) => return Err(e),
            }
            let mut m = LinkMessage::default();
            m.header.flags = LinkFlags::Up;
            m.header.change_mask = LinkFlags::Up;
            m.attributes.push(LinkAttribute::IfName(name.to_owned()));
            m.attributes.push(LinkAttribute::Link(parent));
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
            m.attributes.push(macvlan_info());
            match self.request(
                "create macvlan",
                RouteNetlinkMessage::NewLink(m),
                NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            ) {
                Ok(_) => return self.link_by_name(name).map(|l| l.index),
                Err(RtnlError::Kernel {
                    errno: libc::EEXIST,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(RtnlError::LinkConflict {
            name: name.to_owned(),
            index: 0,
            found: "being created and removed concurrently by someone else".to_owned(),
        })
    }

    /// Deletes link `index` (a macvlan made by [`Rtnl::add_macvlan`], for instance).
    pub fn del_link(&mut self, index: u32) -> Result<(), RtnlError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request("delete link", RouteNetlinkMessage::DelLink(m), NLM_F_ACK)
            .map(drop)
    }

    /// Sets or clears `IFF_UP` on link `index`.
    pub fn set_link_up(&mut self, index: u32, up: bool) -> Result<(), RtnlError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        let op = if up { "set link up" } else { "set link down" };
        self.request(op, RouteNetlinkMessage::SetLink(m), NLM_F_ACK)
            .map(drop)
    }

    fn reuse_macvlan(
        &mut self,
        name: &str,
        existing: &LinkMessage,
        parent: u32,
        mac: [u8; 6],
    ) -> Result<u32, RtnlError> {
        let index = existing.header.index;
        let (kind, lower) = kind_and_parent(existing);
        if kind != Some(&InfoKind::MacVlan) || lower != Some(parent) {
            let found = match (kind, lower) {
                (Some(InfoKind::MacVlan), Some(p)) => {
                    format!("a macvlan on link index {p}, not {parent}")
                }
                (Some(InfoKind::MacVlan), None) => "a macvlan without a parent".to_owned(),
                (Some(k), _) => format!("a {k} link, not a macvlan"),
                (None, _) => "a physical or untyped link, not a macvlan".to_owned(),
            };
            return Err(RtnlError::LinkConflict {
                name: name.to_owned(),
                index,
                found,
            });
        }
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        let current_mac = existing.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(v) => Some(v.as_slice()),
            _ => None,
        });
        if current_mac != Some(mac.as_slice()) {
            m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        m.attributes.push(macvlan_info());
        self.request("reuse macvlan", RouteNetlinkMessage::NewLink(m), NLM_F_ACK)?;
        Ok(index)
    }

    fn link_msg_by_name(&mut self, name: &str) -> Result<LinkMessage, RtnlError> {
        validate_ifname(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        match self.get_link(m, "get link by name") {
            Err(RtnlError::Kernel {
                errno: libc::ENODEV,
                ..
            }) => Err(RtnlError::NoSuchLink {
                name: name.to_owned(),
            }),
            other => other,
        }
    }

    fn link_msg_by_index(&mut self, index: u32) -> Result<LinkMessage, RtnlError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        match self.get_link(m, "get link by index") {
            Err(RtnlError::Kernel {
                errno: libc::ENODEV,
                ..
            }) => Err(RtnlError::NoSuchIndex { index }),
            other => other,
        }
    }

    fn get_link(&mut self, m: LinkMessage, op: &'static str) -> Result<LinkMessage, RtnlError> {
        self.request(op, RouteNetlinkMessage::GetLink(m), NLM_F_ACK)?
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(m),
                _ => None,
            })
            .ok_or(RtnlError::Malformed {
                op,
                what: "the kernel acknowledged without sending the link",
            })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// A dump, restarted when the kernel flags it as interrupted by concurrent changes.
    fn dump(
        &mut self,
        op: &'static str,
        build: impl Fn() -> RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, RtnlError> {
        for _ in 0..DUMP_ATTEMPTS {
            match self.request(op, build(), NLM_F_DUMP) {
                Err(RtnlError::DumpInterrupted { .. }) => {}
                other => return other,
            }
        }
        Err(RtnlError::DumpInterrupted { op })
    }

    /// Sends one request and collects its data replies until the ACK, error or `NLMSG_DONE`
    /// that ends it. Messages for other sequence numbers (late answers to a request that
    /// timed out) and from anyone but the kernel are skipped.
    fn request(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, RtnlError> {
        let seq = self.next_seq();
        let bytes = wire::encode(msg, flags, seq);
        let sent = self.sock.send(&bytes, 0).map_err(RtnlError::io(op))?;
        if sent != bytes.len() {
            return Err(RtnlError::Malformed {
                op,
                what: "short send on the netlink socket",
            });
        }
        let deadline = Instant::now() + self.timeout;
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            if Instant::now() > deadline {
                return Err(RtnlError::Timeout {
                    op,
                    timeout: self.timeout,
                });
            }
            self.rx.clear();
            let (n, from) = match self.sock.recv_from(&mut self.rx, MSG_TRUNC) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(RtnlError::Timeout {
                        op,
                        timeout: self.timeout,
                    });
                }
                Err(source) => return Err(RtnlError::Io { op, source }),
            };
            if from.port_number() != 0 {
                continue;
            }
            if n > self.rx.len() {
                return Err(RtnlError::Malformed {
                    op,
                    what: "reply datagram larger than the receive buffer",
                });
            }
            for frame in wire::split(op, &self.rx)? {
                if frame.seq != seq {
                    continue;
                }
                match frame.classify(op)? {
                    Reply::Data {
                        msg,
                        interrupted: i,
                    } => {
                        interrupted |= i;
                        out.push(msg);
                    }
                    Reply::Noop => {}
                    Reply::Ack => return Ok(out),
                    Reply::Error(errno) => return Err(RtnlError::Kernel { errno, op }),
                    Reply::Done(0) if interrupted => {
                        return Err(RtnlError::DumpInterrupted { op });
                    }
                    Reply::Done(0) => return Ok(out),
                    Reply::Done(errno) => return Err(RtnlError::Kernel { errno, op }),
                }
            }
        }
    }
}

/// Checks `name` the way the kernel's `dev_valid_name` does.
pub(crate) fn validate_ifname(name: &str) -> Result<(), RtnlError> {
    let why = if name.is_empty() {
        Some("an interface name cannot be empty")
    } else if name.len() > IFNAME_MAX {
        Some("an interface name has at most 15 bytes")
    } else if name == "." || name == ".." {
        Some("\".\" and \"..\" are not interface names")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        Some("an interface name cannot contain '/', ':', NUL or white space")
    } else {
        None
    };
    match why {
        Some(why) => Err(RtnlError::InvalidName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

fn macvlan_info() -> LinkAttribute {
    LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
            MacVlanMode::Private,
        )])),
    ])
}

fn kind_and_parent(m: &LinkMessage) -> (Option<&InfoKind>, Option<u32>) {
    let mut kind = None;
    let mut parent = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::LinkInfo(infos) => {
                kind = infos.iter().find_map(|i| match i {
                    LinkInfo::Kind(k) => Some(k),
                    _ => None,
                });
            }
            LinkAttribute::Link(p) => parent = Some(*p),
            _ => {}
        }
    }
    (kind, parent)
}

/// The [`Link`] a `RTM_NEWLINK` / `RTM_DELLINK` message describes.
pub(crate) fn link_of(m: &LinkMessage, op: &'static str) -> Result<Link, RtnlError> {
    let mut name = None;
    let mut mac = [0u8; 6];
    let mut mtu = 0;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(v) => {
                if let Ok(a) = <[u8; 6]>::try_from(v.as_slice()) {
                    mac = a;
                }
            }
            LinkAttribute::Mtu(v) => mtu = *v,
            _ => {}
        }
    }
    let name = name.ok_or(RtnlError::Malformed {
        op,
        what: "link message without IFLA_IFNAME",
    })?;
    Ok(Link {
        index: m.header.index,
        name,
        mac,
        up: m.header.flags.contains(LinkFlags::Up),
        running: m.header.flags.contains(LinkFlags::Running),
        mtu,
    })
}

/// The [`IfAddr`] of an `RTM_NEWADDR` message; `None` for families other than IPv4/IPv6 or
/// a message without an address.
fn ifaddr_of(m: &AddressMessage) -> Option<IfAddr> {
    if !matches!(m.header.family, AddressFamily::Inet | AddressFamily::Inet6) {
        return None;
    }
    let mut local = None;
    let mut address = None;
    let mut secondary = m.header.flags.contains(AddressHeaderFlags::Secondary);
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => secondary |= f.contains(AddressFlags::Secondary),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links and the same as IFA_LOCAL (or alone, for IPv6) otherwise.
    Some(IfAddr {
        addr: local.or(address)?,
        prefix: m.header.prefix_len,
        link_local: m.header.scope == AddressScope::Link,
        secondary,
    })
}

/// The request body shared by add and delete address.
fn addr_msg(index: u32, addr: IpAddr, prefix: u8) -> Result<AddressMessage, RtnlError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(RtnlError::InvalidPrefix { addr, prefix });
    }
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.header.prefix_len = prefix;
    match addr {
        IpAddr::V4(v4) => {
            m.header.family = AddressFamily::Inet;
            // As `ip addr add` does: loopback addresses get host scope, others universe.
            m.header.scope = if v4.is_loopback() {
                AddressScope::Host
            } else {
                AddressScope::Universe
            };
            m.attributes.push(AddressAttribute::Local(addr));
            m.attributes.push(AddressAttribute::Address(addr));
        }
        IpAddr::V6(_) => {
            m.header.family = AddressFamily::Inet6;
            m.header.flags = AddressHeaderFlags::Nodad;
            m.attributes.push(AddressAttribute::Address(addr));
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    Ok(m)
}

/// The reply path of [`Rtnl`] on arbitrary bytes, for the `rtnl_reply` fuzz target: split
/// the datagram, classify each message, and turn link and address messages into [`Link`] /
/// [`IfAddr`]. Returns how many items came out; it must never panic.
#[cfg(feature = "fuzzing")]
pub fn fuzz_reply(datagram: &[u8]) -> usize {
    let Ok(frames) = wire::split("fuzz", datagram) else {
        return 0;
    };
    let mut n = 0;
    for f in frames {
        let Ok(reply) = f.classify("fuzz") else {
            continue;
        };
        if let Reply::Data { msg, .. } = reply {
            match msg {
                RouteNetlinkMessage::NewLink(m) | RouteNetlinkMessage::DelLink(m) => {
                    n += usize::from(link_of(&m, "fuzz").is_ok());
                }
                RouteNetlinkMessage::NewAddress(m) | RouteNetlinkMessage::DelAddress(m) => {
                    n += usize::from(ifaddr_of(&m).is_some());
                }
                _ => {}
            }
        }
    }
    n
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "unit tests")]
mod tests {
    use super::*;

    #[test]
    fn ifnames_are_checked_like_the_kernel() {
        for ok in ["eth0", "vrrp.51", "a", "123456789012345"] {
            assert!(validate_ifname(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a:1", "1234567890123456"] {
            assert!(
                matches!(validate_ifname(bad), Err(RtnlError::InvalidName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn prefixes_are_bounded_per_family() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(addr_msg(1, v4, 32).is_ok());
        assert!(matches!(
            addr_msg(1, v4, 33),
            Err(RtnlError::InvalidPrefix { .. })
        ));
        assert!(addr_msg(1, v6, 128).is_ok());
        assert!(matches!(
            addr_msg(1, v6, 129),
            Err(RtnlError::InvalidPrefix { .. })
        ));
        let m = addr_msg(1, v6, 64).unwrap();
        assert!(m.header.flags.contains(AddressHeaderFlags::Nodad));
    }

    #[test]
    fn kernel_errors_name_the_errno() {
        let e = RtnlError::Kernel {
            errno: libc::EPERM,
            op: "add address",
        };
        let s = e.to_string();
        assert!(s.contains("EPERM") && s.contains("root"), "{s}");
        assert!(e.is_permission_denied());
        assert_eq!(e.errno(), Some(libc::EPERM));
    }

    #[test]
    fn link_without_name_is_malformed() {
        let m = LinkMessage::default();
        assert!(matches!(link_of(&m, "t"), Err(RtnlError::Malformed { .. })));
    }
}
