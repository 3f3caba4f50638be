//! `IPVS_DEST_ATTR_*`: the attributes nested in `IPVS_CMD_ATTR_DEST`.

use super::consts as c;
use super::nla::{Writer, parse_all};
use super::{Error, RawNla, StatsAttr, fixed, get_be16, get_u8, get_u16, get_u32};

/// One destination (real server) attribute, typed as in `include/uapi/linux/ip_vs.h`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DestAttr {
    /// `IPVS_DEST_ATTR_ADDR`: a 16-byte `nf_inet_addr`.
    Addr([u8; 16]),
    /// `IPVS_DEST_ATTR_PORT`: host-order value, **big-endian** on the wire.
    Port(u16),
    /// `IPVS_DEST_ATTR_FWD_METHOD` (u32): `IP_VS_CONN_F_MASQ` … `IP_VS_CONN_F_BYPASS`.
    FwdMethod(u32),
    /// `IPVS_DEST_ATTR_WEIGHT` (u32, an `int` in the kernel).
    Weight(u32),
    /// `IPVS_DEST_ATTR_U_THRESH` (u32): upper connection threshold, 0 = none.
    UThresh(u32),
    /// `IPVS_DEST_ATTR_L_THRESH` (u32): lower connection threshold.
    LThresh(u32),
    /// `IPVS_DEST_ATTR_ACTIVE_CONNS` (u32, replies only).
    ActiveConns(u32),
    /// `IPVS_DEST_ATTR_INACT_CONNS` (u32, replies only).
    InactConns(u32),
    /// `IPVS_DEST_ATTR_PERSIST_CONNS` (u32, replies only).
    PersistConns(u32),
    /// `IPVS_DEST_ATTR_STATS`: 32-bit counters.
    Stats(Vec<StatsAttr>),
    /// `IPVS_DEST_ATTR_ADDR_FAMILY` (u16): for mixed-family services (kernel ≥ 3.18).
    AddrFamily(u16),
    /// `IPVS_DEST_ATTR_STATS64`: 64-bit counters.
    Stats64(Vec<StatsAttr>),
    /// `IPVS_DEST_ATTR_TUN_TYPE` (u8): `IP_VS_CONN_F_TUNNEL_TYPE_*`.
    TunType(u8),
    /// `IPVS_DEST_ATTR_TUN_PORT`: host-order value, **big-endian** on the wire.
    TunPort(u16),
    /// `IPVS_DEST_ATTR_TUN_FLAGS` (u16): `IP_VS_TUNNEL_ENCAP_FLAG_*`.
    TunFlags(u16),
    /// An attribute this crate does not know.
    Other(RawNla),
}

impl DestAttr {
    /// Parse the payload of an `IPVS_CMD_ATTR_DEST` nest.
    pub fn parse_all(buf: &[u8]) -> Result<Vec<Self>, Error> {
        parse_all(buf, |kind, full, v| {
            Ok(match kind {
                c::IPVS_DEST_ATTR_ADDR => Self::Addr(fixed("IPVS_DEST_ATTR_ADDR", v)?),
                c::IPVS_DEST_ATTR_PORT => Self::Port(get_be16("IPVS_DEST_ATTR_PORT", v)?),
                c::IPVS_DEST_ATTR_FWD_METHOD => {
                    Self::FwdMethod(get_u32("IPVS_DEST_ATTR_FWD_METHOD", v)?)
                }
                c::IPVS_DEST_ATTR_WEIGHT => Self::Weight(get_u32("IPVS_DEST_ATTR_WEIGHT", v)?),
                c::IPVS_DEST_ATTR_U_THRESH => Self::UThresh(get_u32("IPVS_DEST_ATTR_U_THRESH", v)?),
                c::IPVS_DEST_ATTR_L_THRESH => Self::LThresh(get_u32("IPVS_DEST_ATTR_L_THRESH", v)?),
                c::IPVS_DEST_ATTR_ACTIVE_CONNS => {
                    Self::ActiveConns(get_u32("IPVS_DEST_ATTR_ACTIVE_CONNS", v)?)
                }
                c::IPVS_DEST_ATTR_INACT_CONNS => {
                    Self::InactConns(get_u32("IPVS_DEST_ATTR_INACT_CONNS", v)?)
                }
                c::IPVS_DEST_ATTR_PERSIST_CONNS => {
                    Self::PersistConns(get_u32("IPVS_DEST_ATTR_PERSIST_CONNS", v)?)
                }
                c::IPVS_DEST_ATTR_STATS => Self::Stats(StatsAttr::parse_all(v)?),
                c::IPVS_DEST_ATTR_ADDR_FAMILY => {
                    Self::AddrFamily(get_u16("IPVS_DEST_ATTR_ADDR_FAMILY", v)?)
                }
                c::IPVS_DEST_ATTR_STATS64 => Self::Stats64(StatsAttr::parse_all(v)?),
                c::IPVS_DEST_ATTR_TUN_TYPE => Self::TunType(get_u8("IPVS_DEST_ATTR_TUN_TYPE", v)?),
                c::IPVS_DEST_ATTR_TUN_PORT => {
                    Self::TunPort(get_be16("IPVS_DEST_ATTR_TUN_PORT", v)?)
                }
                c::IPVS_DEST_ATTR_TUN_FLAGS => {
                    Self::TunFlags(get_u16("IPVS_DEST_ATTR_TUN_FLAGS", v)?)
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
                Self::Addr(v) => w.put(c::IPVS_DEST_ATTR_ADDR, v),
                Self::Port(v) => w.be16(c::IPVS_DEST_ATTR_PORT, *v),
                Self::FwdMethod(v) => w.u32(c::IPVS_DEST_ATTR_FWD_METHOD, *v),
                Self::Weight(v) => w.u32(c::IPVS_DEST_ATTR_WEIGHT, *v),
                Self::UThresh(v) => w.u32(c::IPVS_DEST_ATTR_U_THRESH, *v),
                Self::LThresh(v) => w.u32(c::IPVS_DEST_ATTR_L_THRESH, *v),
                Self::ActiveConns(v) => w.u32(c::IPVS_DEST_ATTR_ACTIVE_CONNS, *v),
                Self::InactConns(v) => w.u32(c::IPVS_DEST_ATTR_INACT_CONNS, *v),
                Self::PersistConns(v) => w.u32(c::IPVS_DEST_ATTR_PERSIST_CONNS, *v),
                Self::Stats(s) => {
                    let at = w.start_nest(c::IPVS_DEST_ATTR_STATS);
                    StatsAttr::emit_all(s, false, w);
                    w.finish_nest(at);
                }
                Self::AddrFamily(v) => w.u16(c::IPVS_DEST_ATTR_ADDR_FAMILY, *v),
                Self::Stats64(s) => {
                    let at = w.start_nest(c::IPVS_DEST_ATTR_STATS64);
                    StatsAttr::emit_all(s, true, w);
                    w.finish_nest(at);
                }
                Self::TunType(v) => w.u8(c::IPVS_DEST_ATTR_TUN_TYPE, *v),
                Self::TunPort(v) => w.be16(c::IPVS_DEST_ATTR_TUN_PORT, *v),
                Self::TunFlags(v) => w.u16(c::IPVS_DEST_ATTR_TUN_FLAGS, *v),
                Self::Other(raw) => w.raw(raw),
            }
        }
    }
}
