//! `IPVS_DAEMON_ATTR_*`: the attributes nested in `IPVS_CMD_ATTR_DAEMON`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::consts as c;
use super::nla::{Writer, parse_all};
use super::{Error, RawNla, fixed, get_string, get_u8, get_u16, get_u32};

/// One sync-daemon attribute, typed as in `include/uapi/linux/ip_vs.h`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DaemonAttr {
    /// `IPVS_DAEMON_ATTR_STATE` (u32): `IP_VS_STATE_MASTER` or `IP_VS_STATE_BACKUP`.
    State(u32),
    /// `IPVS_DAEMON_ATTR_MCAST_IFN`: interface name (at most 15 bytes).
    McastIfn(String),
    /// `IPVS_DAEMON_ATTR_SYNC_ID` (u32).
    SyncId(u32),
    /// `IPVS_DAEMON_ATTR_SYNC_MAXLEN` (u16): UDP payload size.
    SyncMaxlen(u16),
    /// `IPVS_DAEMON_ATTR_MCAST_GROUP`: IPv4 group (network order on the wire).
    McastGroup(Ipv4Addr),
    /// `IPVS_DAEMON_ATTR_MCAST_GROUP6`: IPv6 group.
    McastGroup6(Ipv6Addr),
    /// `IPVS_DAEMON_ATTR_MCAST_PORT` (u16, native order as the kernel's `nla_get_u16`).
    McastPort(u16),
    /// `IPVS_DAEMON_ATTR_MCAST_TTL` (u8).
    McastTtl(u8),
    /// An attribute this crate does not know.
    Other(RawNla),
}

impl DaemonAttr {
    /// Parse the payload of an `IPVS_CMD_ATTR_DAEMON` nest.
    pub fn parse_all(buf: &[u8]) -> Result<Vec<Self>, Error> {
        parse_all(buf, |kind, full, v| {
            Ok(match kind {
                c::IPVS_DAEMON_ATTR_STATE => Self::State(get_u32("IPVS_DAEMON_ATTR_STATE", v)?),
                c::IPVS_DAEMON_ATTR_MCAST_IFN => {
                    Self::McastIfn(get_string("IPVS_DAEMON_ATTR_MCAST_IFN", v)?)
                }
                c::IPVS_DAEMON_ATTR_SYNC_ID => {
                    Self::SyncId(get_u32("IPVS_DAEMON_ATTR_SYNC_ID", v)?)
                }
                c::IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                    Self::SyncMaxlen(get_u16("IPVS_DAEMON_ATTR_SYNC_MAXLEN", v)?)
                }
                c::IPVS_DAEMON_ATTR_MCAST_GROUP => Self::McastGroup(Ipv4Addr::from(fixed::<4>(
                    "IPVS_DAEMON_ATTR_MCAST_GROUP",
                    v,
                )?)),
                c::IPVS_DAEMON_ATTR_MCAST_GROUP6 => Self::McastGroup6(Ipv6Addr::from(fixed::<16>(
                    "IPVS_DAEMON_ATTR_MCAST_GROUP6",
                    v,
                )?)),
                c::IPVS_DAEMON_ATTR_MCAST_PORT => {
                    Self::McastPort(get_u16("IPVS_DAEMON_ATTR_MCAST_PORT", v)?)
                }
                c::IPVS_DAEMON_ATTR_MCAST_TTL => {
                    Self::McastTtl(get_u8("IPVS_DAEMON_ATTR_MCAST_TTL", v)?)
                }
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
                Self::State(v) => w.u32(c::IPVS_DAEMON_ATTR_STATE, *v),
                Self::McastIfn(s) => w.string(c::IPVS_DAEMON_ATTR_MCAST_IFN, s),
                Self::SyncId(v) => w.u32(c::IPVS_DAEMON_ATTR_SYNC_ID, *v),
                Self::SyncMaxlen(v) => w.u16(c::IPVS_DAEMON_ATTR_SYNC_MAXLEN, *v),
                Self::McastGroup(a) => w.put(c::IPVS_DAEMON_ATTR_MCAST_GROUP, &a.octets()),
                Self::McastGroup6(a) => w.put(c::IPVS_DAEMON_ATTR_MCAST_GROUP6, &a.octets()),
                Self::McastPort(v) => w.u16(c::IPVS_DAEMON_ATTR_MCAST_PORT, *v),
                Self::McastTtl(v) => w.u8(c::IPVS_DAEMON_ATTR_MCAST_TTL, *v),
                Self::Other(raw) => w.raw(raw),
            }
        }
    }
}
