//! Host and service names, both ways: what ipvsadm gets from gethostbyname/getservbyname
//! on input and gethostbyaddr/getservbyport on output (without `-n`).
//!
//! [`SystemNames`] reads `/etc/services` and `/etc/hosts` itself and resolves forward host
//! names through the system resolver; reverse DNS is not queried (a name that only DNS
//! knows prints as its address, as with `-n`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::sync::OnceLock;

use ipvs_netlink::Protocol;

/// Name lookups used by the parser and the formatter.
pub trait Names {
    /// A host name to its first IPv4 address.
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr>;
    /// A service name (`http`) to its port for `proto`.
    fn service_to_port(&self, name: &str, proto: Protocol) -> Option<u16>;
    /// An address to a host name.
    fn addr_to_host(&self, ip: IpAddr) -> Option<String>;
    /// A port to its service name for `proto`.
    fn port_to_service(&self, port: u16, proto: Protocol) -> Option<String>;
}

/// No names at all: every lookup fails (what `-n` prints, and what tests use).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNames;

impl Names for NoNames {
    fn host_to_addr(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn service_to_port(&self, _: &str, _: Protocol) -> Option<u16> {
        None
    }
    fn addr_to_host(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn port_to_service(&self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// The protocol's name in `/etc/services` (SCTP has no getservby* lookups in ipvsadm).
const fn proto_name(p: Protocol) -> Option<&'static str> {
    match p {
        Protocol::Tcp => Some("tcp"),
        Protocol::Udp => Some("udp"),
        _ => None,
    }
}

/// `/etc/services`: (name or alias, proto) → port, and (port, proto) → first name.
#[derive(Debug, Default)]
struct Services {
    by_name: HashMap<(String, String), u16>,
    by_port: HashMap<(u16, String), String>,
}

fn parse_services(text: &str) -> Services {
    let mut s = Services::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let (Some(name), Some(pp)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((port, proto)) = pp.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        s.by_port
            .entry((port, proto.to_owned()))
            .or_insert_with(|| name.to_owned());
        for n in std::iter::once(name).chain(f) {
            s.by_name
                .entry((n.to_owned(), proto.to_owned()))
                .or_insert(port);
        }
    }
    s
}

/// `/etc/hosts`: address → first name.
fn parse_hosts(text: &str) -> HashMap<IpAddr, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let (Some(addr), Some(name)) = (f.next(), f.next()) else {
            continue;
        };
        if let Ok(ip) = addr.parse::<IpAddr>() {
            m.entry(ip).or_insert_with(|| name.to_owned());
        }
    }
    m
}

/// The system's names: `/etc/services`, `/etc/hosts`, and the resolver for host names.
#[derive(Debug, Default)]
pub struct SystemNames {
    services: OnceLock<Services>,
    hosts: OnceLock<HashMap<IpAddr, String>>,
}

impl SystemNames {
    /// Lookups read the files on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    fn services(&self) -> &Services {
        self.services.get_or_init(|| {
            std::fs::read_to_string("/etc/services")
                .map(|t| parse_services(&t))
                .unwrap_or_default()
        })
    }
    fn hosts(&self) -> &HashMap<IpAddr, String> {
        self.hosts.get_or_init(|| {
            std::fs::read_to_string("/etc/hosts")
                .map(|t| parse_hosts(&t))
                .unwrap_or_default()
        })
    }
}

impl Names for SystemNames {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        (name, 0)
            .to_socket_addrs()
            .ok()?
            .find_map(|a| match a.ip() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    }
    fn service_to_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        let p = proto_name(proto)?;
        self.services()
            .by_name
            .get(&(name.to_owned(), p.to_owned()))
            .copied()
    }
    fn addr_to_host(&self, ip: IpAddr) -> Option<String> {
        self.hosts().get(&ip).cloned()
    }
    fn port_to_service(&self, port: u16, proto: Protocol) -> Option<String> {
        let p = proto_name(proto)?;
        self.services().by_port.get(&(port, p.to_owned())).cloned()
    }
}

/// Fixed tables, for tests and for callers that carry their own names.
#[derive(Debug, Default, Clone)]
pub struct TableNames {
    services: Vec<(String, u16, Protocol)>,
    hosts: Vec<(String, IpAddr)>,
}

impl TableNames {
    /// Empty tables.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    /// Add a service name.
    #[must_use]
    pub fn service(mut self, name: &str, port: u16, proto: Protocol) -> Self {
        self.services.push((name.to_owned(), port, proto));
        self
    }
    /// Add a host name.
    #[must_use]
    pub fn host(mut self, name: &str, ip: IpAddr) -> Self {
        self.hosts.push((name.to_owned(), ip));
        self
    }
}

impl Names for TableNames {
    fn host_to_addr(&self, name: &str) -> Option<Ipv4Addr> {
        self.hosts.iter().find_map(|(n, ip)| match ip {
            IpAddr::V4(v4) if n == name => Some(*v4),
            _ => None,
        })
    }
    fn service_to_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        self.services
            .iter()
            .find(|(n, _, p)| n == name && *p == proto)
            .map(|(_, port, _)| *port)
    }
    fn addr_to_host(&self, ip: IpAddr) -> Option<String> {
        self.hosts
            .iter()
            .find(|(_, a)| *a == ip)
            .map(|(n, _)| n.clone())
    }
    fn port_to_service(&self, port: u16, proto: Protocol) -> Option<String> {
        self.services
            .iter()
            .find(|(_, p, pr)| *p == port && *pr == proto)
            .map(|(n, _, _)| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_file_both_ways() {
        let s = parse_services("http 80/tcp www # web\nhttp 80/udp\ndomain 53/udp\n");
        assert_eq!(s.by_name.get(&("www".into(), "tcp".into())), Some(&80));
        assert_eq!(s.by_port.get(&(53, "udp".into())), Some(&"domain".into()));
        assert_eq!(s.by_port.get(&(53, "tcp".into())), None);
    }

    #[test]
    fn hosts_file_first_name_wins() {
        let h = parse_hosts("127.0.0.1 localhost lh\n127.0.0.1 other\n::1 ip6-localhost\n");
        assert_eq!(
            h.get(&IpAddr::V4(Ipv4Addr::LOCALHOST)).map(String::as_str),
            Some("localhost")
        );
        assert_eq!(h.len(), 2);
    }
}
