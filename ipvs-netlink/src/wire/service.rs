//! `IPVS_SVC_ATTR_*`: the attributes nested in `IPVS_CMD_ATTR_SERVICE`.

use super::consts as c;
use super::nla::{Writer, parse_all};
use super::{Error, RawNla, StatsAttr, fixed, get_be16, get_string, get_u16, get_u32};

/// One service attribute, typed as in `include/uapi/linux/ip_vs.h`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServiceAttr {
    /// `IPVS_SVC_ATTR_AF` (u16): `AF_INET` (2) or `AF_INET6` (10).
    Af(u16),
    /// `IPVS_SVC_ATTR_PROTOCOL` (u16): IP protocol number (TCP 6, UDP 17, SCTP 132).
    Protocol(u16),
    /// `IPVS_SVC_ATTR_ADDR`: a 16-byte `nf_inet_addr` (IPv4 in the first 4 bytes).
    Addr([u8; 16]),
    /// `IPVS_SVC_ATTR_PORT`: host-order value, **big-endian** on the wire.
    Port(u16),
    /// `IPVS_SVC_ATTR_FWMARK` (u32).
    Fwmark(u32),
    /// `IPVS_SVC_ATTR_SCHED_NAME` (NUL-terminated, at most 15 bytes).
    SchedName(String),
    /// `IPVS_SVC_ATTR_FLAGS`: `struct ip_vs_flags { flags, mask }`.
    Flags {
        /// `IP_VS_SVC_F_*` bits.
        flags: u32,
        /// Which bits of `flags` to apply.
        mask: u32,
    },
    /// `IPVS_SVC_ATTR_TIMEOUT` (u32): persistence timeout in seconds.
    Timeout(u32),
    /// `IPVS_SVC_ATTR_NETMASK` (u32 read native): for IPv4 the bytes are a **big-endian** mask
    /// (use `to_ne_bytes()` to get the octets), for IPv6 a prefix length.
    Netmask(u32),
    /// `IPVS_SVC_ATTR_STATS`: 32-bit counters.
    Stats(Vec<StatsAttr>),
    /// `IPVS_SVC_ATTR_PE_NAME`: persistence engine (`sip`).
    PeName(String),
    /// `IPVS_SVC_ATTR_STATS64`: 64-bit counters.
    Stats64(Vec<StatsAttr>),
    /// An attribute this crate does not know.
    Other(RawNla),
}

impl ServiceAttr {
    /// Parse the payload of an `IPVS_CMD_ATTR_SERVICE` nest.
    pub fn parse_all(buf: &[u8]) -> Result<Vec<Self>, Error> {
        parse_all(buf, |kind, full, v| {
            Ok(match kind {
                c::IPVS_SVC_ATTR_AF => Self::Af(get_u16("IPVS_SVC_ATTR_AF", v)?),
                c::IPVS_SVC_ATTR_PROTOCOL => Self::Protocol(get_u16("IPVS_SVC_ATTR_PROTOCOL", v)?),
                c::IPVS_SVC_ATTR_ADDR => Self::Addr(fixed("IPVS_SVC_ATTR_ADDR", v)?),
                c::IPVS_SVC_ATTR_PORT => Self::Port(get_be16("IPVS_SVC_ATTR_PORT", v)?),
                c::IPVS_SVC_ATTR_FWMARK => Self::Fwmark(get_u32("IPVS_SVC_ATTR_FWMARK", v)?),
                c::IPVS_SVC_ATTR_SCHED_NAME => {
                    Self::SchedName(get_string("IPVS_SVC_ATTR_SCHED_NAME", v)?)
                }
                c::IPVS_SVC_ATTR_FLAGS => {
                    let b: [u8; 8] = fixed("IPVS_SVC_ATTR_FLAGS", v)?;
                    let [f0, f1, f2, f3, m0, m1, m2, m3] = b;
                    Self::Flags {
                        flags: u32::from_ne_bytes([f0, f1, f2, f3]),
                        mask: u32::from_ne_bytes([m0, m1, m2, m3]),
                    }
                }
                c::IPVS_SVC_ATTR_TIMEOUT => Self::Timeout(get_u32("IPVS_SVC_ATTR_TIMEOUT", v)?),
                c::IPVS_SVC_ATTR_NETMASK => Self::Netmask(get_u32("IPVS_SVC_ATTR_NETMASK", v)?),
                c::IPVS_SVC_ATTR_STATS => Self::Stats(StatsAttr::parse_all(v)?),
                c::IPVS_SVC_ATTR_PE_NAME => Self::PeName(get_string("IPVS_SVC_ATTR_PE_NAME", v)?),
                c::IPVS_SVC_ATTR_STATS64 => Self::Stats64(StatsAttr::parse_all(v)?),
                _ => Self::Other(RawNla {
                    kind: full,
                    value: v.to_vec(),
                }),
            })
        })
    }

    pub(crate) fn emit_all(attrs: &[Self], w: &mut Writer) {
        for a in attrs {
            match a {
                Self::Af(v) => w.u16(c::IPVS_SVC_ATTR_AF, *v),
                Self::Protocol(v) => w.u16(c::IPVS_SVC_ATTR_PROTOCOL, *v),
                Self::Addr(v) => w.put(c::IPVS_SVC_ATTR_ADDR, v),
                Self::Port(v) => w.be16(c::IPVS_SVC_ATTR_PORT, *v),
                Self::Fwmark(v) => w.u32(c::IPVS_SVC_ATTR_FWMARK, *v),
                Self::SchedName(s) => w.string(c::IPVS_SVC_ATTR_SCHED_NAME, s),
                Self::Flags { flags, mask } => {
                    let mut b = [0u8; 8];
                    let (lo, hi) = b.split_at_mut(4);
                    lo.copy_from_slice(&flags.to_ne_bytes());
                    hi.copy_from_slice(&mask.to_ne_bytes());
                    w.put(c::IPVS_SVC_ATTR_FLAGS, &b);
                }
                Self::Timeout(v) => w.u32(c::IPVS_SVC_ATTR_TIMEOUT, *v),
                Self::Netmask(v) => w.u32(c::IPVS_SVC_ATTR_NETMASK, *v),
                Self::Stats(s) => {
                    let at = w.start_nest(c::IPVS_SVC_ATTR_STATS);
                    StatsAttr::emit_all(s, false, w);
                    w.finish_nest(at);
                }
                Self::PeName(s) => w.string(c::IPVS_SVC_ATTR_PE_NAME, s),
                Self::Stats64(s) => {
                    let at = w.start_nest(c::IPVS_SVC_ATTR_STATS64);
                    StatsAttr::emit_all(s, true, w);
                    w.finish_nest(at);
                }
                Self::Other(raw) => w.raw(raw),
            }
        }
    }
}
