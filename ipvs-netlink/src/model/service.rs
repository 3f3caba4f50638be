//! Virtual services: what identifies one ([`ServiceKey`]), one to create or edit
//! ([`Service`]) and one as the kernel reports it ([`ServiceEntry`]).

use std::fmt;
use std::net::SocketAddr;

use super::addr::{from_inet_addr, inet_addr, protocol_from_number, protocol_number};
use super::{ConfigError, Family, Name, Netmask, Protocol, ServiceFlags, Stats};
use crate::wire::ServiceAttr;

/// What identifies a virtual service.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceKey {
    /// A protocol, address and port (`-t/-u/--sctp-service ADDR:PORT`).
    Inet {
        /// TCP, UDP or SCTP.
        protocol: Protocol,
        /// The virtual address and port.
        addr: SocketAddr,
    },
    /// A firewall mark (`-f MARK`, with `-6` for IPv6).
    Fwmark {
        /// The family of the packets the mark matches.
        family: Family,
        /// The mark.
        mark: u32,
    },
}

impl ServiceKey {
    /// A TCP service.
    #[must_use]
    pub const fn tcp(addr: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::Tcp,
            addr,
        }
    }
    /// A UDP service.
    #[must_use]
    pub const fn udp(addr: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::Udp,
            addr,
        }
    }
    /// The family of the service.
    #[must_use]
    pub const fn family(&self) -> Family {
        match self {
            Self::Inet { addr, .. } => Family::of(&addr.ip()),
            Self::Fwmark { family, .. } => *family,
        }
    }
    /// The attributes that identify the service (AF and either FWMARK or PROTOCOL+ADDR+PORT).
    #[must_use]
    pub fn attrs(&self) -> Vec<ServiceAttr> {
        match self {
            Self::Inet { protocol, addr } => vec![
                ServiceAttr::Af(Family::of(&addr.ip()).af()),
                ServiceAttr::Protocol(protocol_number(*protocol)),
                ServiceAttr::Addr(inet_addr(&addr.ip())),
                ServiceAttr::Port(addr.port()),
            ],
            Self::Fwmark { family, mark } => {
                vec![ServiceAttr::Af(family.af()), ServiceAttr::Fwmark(*mark)]
            }
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet { protocol, addr } => match protocol {
                Protocol::Tcp => write!(f, "TCP {addr}"),
                Protocol::Udp => write!(f, "UDP {addr}"),
                Protocol::Sctp => write!(f, "SCTP {addr}"),
                other => write!(f, "protocol {} {addr}", other.number()),
            },
            Self::Fwmark { family, mark } => match family {
                Family::V4 => write!(f, "FWM {mark}"),
                Family::V6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// A virtual service and its options (`ipvsadm -A`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    key: ServiceKey,
    scheduler: Name,
    flags: ServiceFlags,
    timeout: u32,
    netmask: Netmask,
    pe_name: Option<Name>,
}

impl Service {
    /// A non-persistent service with scheduler `scheduler` (e.g. `"wlc"`).
    ///
    /// Fails on an invalid scheduler name, or on port 0 (only persistent services may have it;
    /// call [`Service::persistent`] on a service built with a non-zero port, or use
    /// [`Service::new_persistent`]).
    pub fn new(key: ServiceKey, scheduler: &str) -> Result<Self, ConfigError> {
        if let ServiceKey::Inet { addr, .. } = key
            && addr.port() == 0
        {
            return Err(ConfigError::ZeroPort);
        }
        Self::build(key, scheduler)
    }

    /// A persistent service (`-p TIMEOUT`), where port 0 ("all ports") is allowed.
    pub fn new_persistent(
        key: ServiceKey,
        scheduler: &str,
        timeout: u32,
    ) -> Result<Self, ConfigError> {
        Ok(Self::build(key, scheduler)?.persistent(timeout))
    }

    fn build(key: ServiceKey, scheduler: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            key,
            scheduler: Name::scheduler(scheduler)?,
            flags: ServiceFlags::empty(),
            timeout: 0,
            netmask: Netmask::full(key.family()),
            pe_name: None,
        })
    }

    /// Make the service persistent for `timeout` seconds (`-p`); sets `PERSISTENT`.
    #[must_use]
    pub fn persistent(mut self, timeout: u32) -> Self {
        self.flags = self.flags | ServiceFlags::PERSISTENT;
        self.timeout = timeout;
        self
    }

    /// Persistence granularity (`-M`). Fails when the mask's family is not the service's.
    pub fn with_netmask(mut self, netmask: Netmask) -> Result<Self, ConfigError> {
        if netmask.family() != self.key.family() {
            return Err(ConfigError::BadNetmask {
                value: netmask.to_string(),
            });
        }
        self.netmask = netmask;
        Ok(self)
    }

    /// Add scheduler / one-packet flags (`-b`, `-o`).
    #[must_use]
    pub fn with_flags(mut self, flags: ServiceFlags) -> Self {
        self.flags = self.flags | flags;
        self
    }

    /// A persistence engine (`--pe sip`).
    pub fn with_pe(mut self, pe: &str) -> Result<Self, ConfigError> {
        self.pe_name = Some(Name::persistence_engine(pe)?);
        Ok(self)
    }

    /// The key.
    #[must_use]
    pub const fn key(&self) -> &ServiceKey {
        &self.key
    }
    /// The scheduler name.
    #[must_use]
    pub const fn scheduler(&self) -> &Name {
        &self.scheduler
    }
    /// The flags (without the kernel's `HASHED`).
    #[must_use]
    pub const fn flags(&self) -> ServiceFlags {
        self.flags
    }
    /// The persistence timeout in seconds (0 when not persistent).
    #[must_use]
    pub const fn timeout(&self) -> u32 {
        self.timeout
    }
    /// The persistence netmask.
    #[must_use]
    pub const fn netmask(&self) -> Netmask {
        self.netmask
    }
    /// The persistence engine.
    #[must_use]
    pub const fn pe_name(&self) -> Option<&Name> {
        self.pe_name.as_ref()
    }

    /// The full attribute set for NEW_SERVICE / SET_SERVICE.
    #[must_use]
    pub fn attrs(&self) -> Vec<ServiceAttr> {
        let mut a = self.key.attrs();
        a.push(ServiceAttr::SchedName(self.scheduler.0.clone()));
        if let Some(pe) = &self.pe_name {
            a.push(ServiceAttr::PeName(pe.0.clone()));
        }
        a.push(ServiceAttr::Flags {
            flags: self.flags.bits(),
            mask: u32::MAX,
        });
        a.push(ServiceAttr::Timeout(self.timeout));
        a.push(ServiceAttr::Netmask(self.netmask.raw()));
        a
    }
}

/// A service as the kernel reports it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The configuration.
    pub service: Service,
    /// Counters (64-bit when available).
    pub stats: Stats,
}

impl ServiceEntry {
    /// Build from the attributes of a service reply.
    pub fn from_attrs(attrs: &[ServiceAttr]) -> Result<Self, ConfigError> {
        let (mut af, mut proto, mut addr, mut port, mut fwmark) = (None, None, None, None, None);
        let (mut sched, mut flags, mut timeout, mut netmask, mut pe) = (None, 0, 0, None, None);
        let (mut stats, mut stats64) = (None, None);
        for a in attrs {
            match a {
                ServiceAttr::Af(v) => af = Some(*v),
                ServiceAttr::Protocol(v) => proto = Some(*v),
                ServiceAttr::Addr(v) => addr = Some(*v),
                ServiceAttr::Port(v) => port = Some(*v),
                ServiceAttr::Fwmark(v) => fwmark = Some(*v),
                ServiceAttr::SchedName(v) => sched = Some(v.clone()),
                ServiceAttr::Flags { flags: f, .. } => flags = *f,
                ServiceAttr::Timeout(v) => timeout = *v,
                ServiceAttr::Netmask(v) => netmask = Some(*v),
                ServiceAttr::PeName(v) => pe = Some(v.clone()),
                ServiceAttr::Stats(v) => stats = Some(v),
                ServiceAttr::Stats64(v) => stats64 = Some(v),
                _ => {}
            }
        }
        let family = Family::from_af(af.ok_or(ConfigError::Missing {
            field: "IPVS_SVC_ATTR_AF",
        })?)?;
        let key = match fwmark {
            Some(mark) if mark != 0 => ServiceKey::Fwmark { family, mark },
            _ => ServiceKey::Inet {
                protocol: protocol_from_number(proto.ok_or(ConfigError::Missing {
                    field: "IPVS_SVC_ATTR_PROTOCOL",
                })?)?,
                addr: SocketAddr::new(
                    from_inet_addr(
                        family,
                        addr.ok_or(ConfigError::Missing {
                            field: "IPVS_SVC_ATTR_ADDR",
                        })?,
                    ),
                    port.ok_or(ConfigError::Missing {
                        field: "IPVS_SVC_ATTR_PORT",
                    })?,
                ),
            },
        };
        // Names from the kernel are trusted as they are (they named a loaded module).
        let scheduler = Name(sched.ok_or(ConfigError::Missing {
            field: "IPVS_SVC_ATTR_SCHED_NAME",
        })?);
        let netmask = match netmask {
            Some(raw) => Netmask::from_raw(family, raw)?,
            None => Netmask::full(family),
        };
        let service = Service {
            key,
            scheduler,
            flags: ServiceFlags::from_bits(flags),
            timeout,
            netmask,
            pe_name: pe.filter(|p| !p.is_empty()).map(Name),
        };
        let stats = stats64
            .or(stats)
            .map(|s| Stats::from_attrs(s))
            .unwrap_or_default();
        Ok(Self { service, stats })
    }
}
