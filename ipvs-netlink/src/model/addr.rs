//! How addresses are spelt: the address [`Family`], the transport [`Protocol`], and the
//! 16-byte `nf_inet_addr` encoding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ConfigError;
use crate::wire::consts as c;

/// Address family.
#[expect(
    clippy::exhaustive_enums,
    reason = "IPVS supports exactly these two families"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `AF_INET`.
    V4,
    /// `AF_INET6`.
    V6,
}

impl Family {
    /// The `AF_*` number.
    #[must_use]
    pub const fn af(self) -> u16 {
        match self {
            Self::V4 => c::AF_INET,
            Self::V6 => c::AF_INET6,
        }
    }
    pub(super) fn from_af(af: u16) -> Result<Self, ConfigError> {
        match af {
            c::AF_INET => Ok(Self::V4),
            c::AF_INET6 => Ok(Self::V6),
            other => Err(ConfigError::Unexpected {
                field: "address family",
                value: u32::from(other),
            }),
        }
    }
    /// The family of an address.
    #[must_use]
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }
}

/// The transport protocol of a virtual service: lvs-sched's [`Protocol`], shared by the
/// schedulers and the kernel API. The kernel accepts TCP, UDP and SCTP services.
pub use lvs_sched::Protocol;

/// `protocol`'s number as the kernel spells it (`IPVS_SVC_ATTR_PROTOCOL` is 16 bits wide).
pub(super) fn protocol_number(protocol: Protocol) -> u16 {
    u16::from(protocol.number())
}

/// The protocol the kernel reports, or an error when the number is not an IP protocol.
pub(super) fn protocol_from_number(n: u16) -> Result<Protocol, ConfigError> {
    u8::try_from(n)
        .map(Protocol::from_number)
        .map_err(|_| ConfigError::Unexpected {
            field: "IPVS_SVC_ATTR_PROTOCOL",
            value: u32::from(n),
        })
}

/// A 16-byte `nf_inet_addr`.
pub(crate) fn inet_addr(ip: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.octets();
            out[0] = a0;
            out[1] = a1;
            out[2] = a2;
            out[3] = a3;
        }
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

pub(super) fn from_inet_addr(family: Family, b: [u8; 16]) -> IpAddr {
    match family {
        Family::V4 => {
            let [a0, a1, a2, a3, ..] = b;
            IpAddr::V4(Ipv4Addr::new(a0, a1, a2, a3))
        }
        Family::V6 => IpAddr::V6(Ipv6Addr::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_number_round_trips_and_wider_ones_are_errors() {
        for n in 0..=u16::MAX {
            match protocol_from_number(n) {
                Ok(p) => {
                    assert!(n <= 255, "{n} accepted");
                    assert_eq!(protocol_number(p), n);
                }
                Err(ConfigError::Unexpected { field, value }) => {
                    assert!(n > 255, "{n} refused");
                    assert_eq!((field, value), ("IPVS_SVC_ATTR_PROTOCOL", u32::from(n)));
                }
                Err(e) => panic!("{n}: {e}"),
            }
        }
        assert_eq!(protocol_from_number(6).ok(), Some(Protocol::Tcp));
        assert_eq!(protocol_from_number(17).ok(), Some(Protocol::Udp));
        assert_eq!(protocol_from_number(132).ok(), Some(Protocol::Sctp));
        assert_eq!(protocol_from_number(47).ok(), Some(Protocol::Other(47)));
    }
}
