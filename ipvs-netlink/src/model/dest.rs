//! Real servers: how packets reach them ([`ForwardMethod`], [`TunnelType`]), one to add or
//! edit ([`Dest`]) and one as the kernel reports it ([`DestEntry`]).

use std::net::SocketAddr;

use super::addr::{from_inet_addr, inet_addr};
use super::{ConfigError, Family, Stats};
use crate::wire::DestAttr;
use crate::wire::consts as c;

/// Tunnel encapsulation (`--tun-type`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelType {
    /// IP-in-IP (the default).
    Ipip,
    /// Generic UDP Encapsulation on `port`.
    Gue {
        /// UDP port (`--tun-port`).
        port: u16,
        /// `IP_VS_TUNNEL_ENCAP_FLAG_*` (`--tun-nocsum/--tun-csum/--tun-remcsum`).
        flags: u16,
    },
    /// GRE.
    Gre {
        /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
        flags: u16,
    },
}

/// Forwarding method of a destination.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ForwardMethod {
    /// NAT (`-m`).
    Masq,
    /// Local node.
    Local,
    /// Tunnelling (`-i`).
    Tunnel(TunnelType),
    /// Direct routing (`-g`, the ipvsadm default).
    DirectRoute,
    /// Cache bypass.
    Bypass,
}

impl ForwardMethod {
    fn bits(self) -> u32 {
        match self {
            Self::Masq => c::IP_VS_CONN_F_MASQ,
            Self::Local => c::IP_VS_CONN_F_LOCALNODE,
            Self::Tunnel(_) => c::IP_VS_CONN_F_TUNNEL,
            Self::DirectRoute => c::IP_VS_CONN_F_DROUTE,
            Self::Bypass => c::IP_VS_CONN_F_BYPASS,
        }
    }
}

/// A destination (real server) of a service (`ipvsadm -a`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dest {
    addr: SocketAddr,
    forward: ForwardMethod,
    weight: u32,
    upper_threshold: u32,
    lower_threshold: u32,
}

impl Dest {
    /// The largest weight the kernel accepts: it stores weights as a C `int` (`i32::MAX`).
    pub const MAX_WEIGHT: u32 = 2_147_483_647;

    /// Weight 1, no thresholds. Fails on a GUE tunnel without a port.
    pub fn new(addr: SocketAddr, forward: ForwardMethod) -> Result<Self, ConfigError> {
        if let ForwardMethod::Tunnel(TunnelType::Gue { port: 0, .. }) = forward {
            return Err(ConfigError::TunnelPort);
        }
        Ok(Self {
            addr,
            forward,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        })
    }
    /// Set the weight (`-w`), 0..=[`Dest::MAX_WEIGHT`] — the kernel's range (ipvsadm 1.31
    /// accepts the same); 0 stops new connections.
    pub fn with_weight(mut self, weight: u32) -> Result<Self, ConfigError> {
        if weight > Self::MAX_WEIGHT {
            return Err(ConfigError::WeightOutOfRange { weight });
        }
        self.weight = weight;
        Ok(self)
    }
    /// Set the thresholds (`-x upper -y lower`); lower must not exceed upper.
    pub fn with_thresholds(mut self, upper: u32, lower: u32) -> Result<Self, ConfigError> {
        if lower > upper {
            return Err(ConfigError::Thresholds { lower, upper });
        }
        self.upper_threshold = upper;
        self.lower_threshold = lower;
        Ok(self)
    }
    /// The address and port.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The forwarding method.
    #[must_use]
    pub const fn forward(&self) -> ForwardMethod {
        self.forward
    }
    /// The weight.
    #[must_use]
    pub const fn weight(&self) -> u32 {
        self.weight
    }
    /// The upper threshold (0 = none).
    #[must_use]
    pub const fn upper_threshold(&self) -> u32 {
        self.upper_threshold
    }
    /// The lower threshold.
    #[must_use]
    pub const fn lower_threshold(&self) -> u32 {
        self.lower_threshold
    }

    /// Only the identifying attributes (for DEL_DEST).
    #[must_use]
    pub fn key_attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::AddrFamily(Family::of(&self.addr.ip()).af()),
            DestAttr::Addr(inet_addr(&self.addr.ip())),
            DestAttr::Port(self.addr.port()),
        ]
    }

    /// The full attribute set for NEW_DEST / SET_DEST.
    #[must_use]
    pub fn attrs(&self) -> Vec<DestAttr> {
        let mut a = self.key_attrs();
        a.push(DestAttr::FwdMethod(self.forward.bits()));
        a.push(DestAttr::Weight(self.weight));
        a.push(DestAttr::UThresh(self.upper_threshold));
        a.push(DestAttr::LThresh(self.lower_threshold));
        if let ForwardMethod::Tunnel(t) = self.forward {
            let (ty, port, flags) = match t {
                TunnelType::Ipip => (c::IP_VS_CONN_F_TUNNEL_TYPE_IPIP, 0, 0),
                TunnelType::Gue { port, flags } => (c::IP_VS_CONN_F_TUNNEL_TYPE_GUE, port, flags),
                TunnelType::Gre { flags } => (c::IP_VS_CONN_F_TUNNEL_TYPE_GRE, 0, flags),
            };
            a.push(DestAttr::TunType(ty));
            a.push(DestAttr::TunPort(port));
            a.push(DestAttr::TunFlags(flags));
        }
        a
    }
}

/// A destination as the kernel reports it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestEntry {
    /// The configuration.
    pub dest: Dest,
    /// `ActiveConn`.
    pub active_conns: u32,
    /// `InActConn`.
    pub inactive_conns: u32,
    /// `--persistent-conn`.
    pub persistent_conns: u32,
    /// Counters (64-bit when available).
    pub stats: Stats,
}

impl DestEntry {
    /// Build from the attributes of a destination reply; `service_family` is used when the
    /// kernel predates `IPVS_DEST_ATTR_ADDR_FAMILY`.
    pub fn from_attrs(attrs: &[DestAttr], service_family: Family) -> Result<Self, ConfigError> {
        let mut af = None;
        let (mut addr, mut port, mut fwd) = (None, None, None);
        let (mut weight, mut ut, mut lt, mut ac, mut ic, mut pc) = (0, 0, 0, 0, 0, 0);
        let (mut tt, mut tp, mut tf) = (0, 0, 0);
        let (mut stats, mut stats64) = (None, None);
        for a in attrs {
            match a {
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::FwdMethod(v) => fwd = Some(*v),
                DestAttr::Weight(v) => weight = *v,
                DestAttr::UThresh(v) => ut = *v,
                DestAttr::LThresh(v) => lt = *v,
                DestAttr::ActiveConns(v) => ac = *v,
                DestAttr::InactConns(v) => ic = *v,
                DestAttr::PersistConns(v) => pc = *v,
                DestAttr::Stats(v) => stats = Some(v),
                DestAttr::AddrFamily(v) => af = Some(*v),
                DestAttr::Stats64(v) => stats64 = Some(v),
                DestAttr::TunType(v) => tt = *v,
                DestAttr::TunPort(v) => tp = *v,
                DestAttr::TunFlags(v) => tf = *v,
                _ => {}
            }
        }
        let family = match af {
            Some(af) => Family::from_af(af)?,
            None => service_family,
        };
        let fwd = fwd.ok_or(ConfigError::Missing {
            field: "IPVS_DEST_ATTR_FWD_METHOD",
        })? & c::IP_VS_CONN_F_FWD_MASK;
        let forward = match fwd {
            c::IP_VS_CONN_F_MASQ => ForwardMethod::Masq,
            c::IP_VS_CONN_F_LOCALNODE => ForwardMethod::Local,
            c::IP_VS_CONN_F_TUNNEL => ForwardMethod::Tunnel(match tt {
                c::IP_VS_CONN_F_TUNNEL_TYPE_IPIP => TunnelType::Ipip,
                c::IP_VS_CONN_F_TUNNEL_TYPE_GUE => TunnelType::Gue {
                    port: tp,
                    flags: tf,
                },
                c::IP_VS_CONN_F_TUNNEL_TYPE_GRE => TunnelType::Gre { flags: tf },
                other => {
                    return Err(ConfigError::Unexpected {
                        field: "IPVS_DEST_ATTR_TUN_TYPE",
                        value: u32::from(other),
                    });
                }
            }),
            c::IP_VS_CONN_F_DROUTE => ForwardMethod::DirectRoute,
            c::IP_VS_CONN_F_BYPASS => ForwardMethod::Bypass,
            other => {
                return Err(ConfigError::Unexpected {
                    field: "IPVS_DEST_ATTR_FWD_METHOD",
                    value: other,
                });
            }
        };
        let dest = Dest {
            addr: SocketAddr::new(
                from_inet_addr(
                    family,
                    addr.ok_or(ConfigError::Missing {
                        field: "IPVS_DEST_ATTR_ADDR",
                    })?,
                ),
                port.ok_or(ConfigError::Missing {
                    field: "IPVS_DEST_ATTR_PORT",
                })?,
            ),
            forward,
            weight,
            upper_threshold: ut,
            lower_threshold: lt,
        };
        let stats = stats64
            .or(stats)
            .map(|s| Stats::from_attrs(s))
            .unwrap_or_default();
        Ok(Self {
            dest,
            active_conns: ac,
            inactive_conns: ic,
            persistent_conns: pc,
            stats,
        })
    }
}
