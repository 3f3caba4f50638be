//! `IPVS_STATS_ATTR_*`: counters and rates nested in `*_ATTR_STATS` and `*_ATTR_STATS64`.

use super::consts as c;
use super::nla::{Writer, parse_all};
use super::{Error, RawNla, get_u32, get_u64};

/// One statistics attribute. Values are widened to `u64`.
///
/// In `IPVS_*_ATTR_STATS` the kernel sends the byte counters as `u64` and the others as `u32`;
/// in `IPVS_*_ATTR_STATS64` all are `u64`. Parsing accepts either width for any counter;
/// emitting uses the kernel's widths (a 32-bit-table value above `u32::MAX` is sent as `u64`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StatsAttr {
    /// `IPVS_STATS_ATTR_CONNS`: connections scheduled.
    Conns(u64),
    /// `IPVS_STATS_ATTR_INPKTS`: incoming packets.
    InPkts(u64),
    /// `IPVS_STATS_ATTR_OUTPKTS`: outgoing packets.
    OutPkts(u64),
    /// `IPVS_STATS_ATTR_INBYTES`: incoming bytes.
    InBytes(u64),
    /// `IPVS_STATS_ATTR_OUTBYTES`: outgoing bytes.
    OutBytes(u64),
    /// `IPVS_STATS_ATTR_CPS`: connection rate.
    Cps(u64),
    /// `IPVS_STATS_ATTR_INPPS`: incoming packet rate.
    InPps(u64),
    /// `IPVS_STATS_ATTR_OUTPPS`: outgoing packet rate.
    OutPps(u64),
    /// `IPVS_STATS_ATTR_INBPS`: incoming byte rate.
    InBps(u64),
    /// `IPVS_STATS_ATTR_OUTBPS`: outgoing byte rate.
    OutBps(u64),
    /// `IPVS_STATS_ATTR_PAD` or an attribute this crate does not know.
    Other(RawNla),
}

fn counter(what: &'static str, v: &[u8]) -> Result<u64, Error> {
    if v.len() == 4 {
        Ok(u64::from(get_u32(what, v)?))
    } else {
        get_u64(what, v)
    }
}

impl StatsAttr {
    /// Parse the payload of a `STATS` or `STATS64` nest.
    pub fn parse_all(buf: &[u8]) -> Result<Vec<Self>, Error> {
        parse_all(buf, |kind, full, v| {
            Ok(match kind {
                c::IPVS_STATS_ATTR_CONNS => Self::Conns(counter("IPVS_STATS_ATTR_CONNS", v)?),
                c::IPVS_STATS_ATTR_INPKTS => Self::InPkts(counter("IPVS_STATS_ATTR_INPKTS", v)?),
                c::IPVS_STATS_ATTR_OUTPKTS => Self::OutPkts(counter("IPVS_STATS_ATTR_OUTPKTS", v)?),
                c::IPVS_STATS_ATTR_INBYTES => Self::InBytes(counter("IPVS_STATS_ATTR_INBYTES", v)?),
                c::IPVS_STATS_ATTR_OUTBYTES => {
                    Self::OutBytes(counter("IPVS_STATS_ATTR_OUTBYTES", v)?)
                }
                c::IPVS_STATS_ATTR_CPS => Self::Cps(counter("IPVS_STATS_ATTR_CPS", v)?),
                c::IPVS_STATS_ATTR_INPPS => Self::InPps(counter("IPVS_STATS_ATTR_INPPS", v)?),
                c::IPVS_STATS_ATTR_OUTPPS => Self::OutPps(counter("IPVS_STATS_ATTR_OUTPPS", v)?),
                c::IPVS_STATS_ATTR_INBPS => Self::InBps(counter("IPVS_STATS_ATTR_INBPS", v)?),
                c::IPVS_STATS_ATTR_OUTBPS => Self::OutBps(counter("IPVS_STATS_ATTR_OUTBPS", v)?),
                _ => Self::Other(RawNla {
                    kind: full,
                    value: v.to_vec(),
                }),
            })
        })
    }

    pub(crate) fn emit_all(attrs: &[Self], wide: bool, w: &mut Writer) {
        for a in attrs {
            let (kind, v, always_wide) = match a {
                Self::Conns(v) => (c::IPVS_STATS_ATTR_CONNS, *v, false),
                Self::InPkts(v) => (c::IPVS_STATS_ATTR_INPKTS, *v, false),
                Self::OutPkts(v) => (c::IPVS_STATS_ATTR_OUTPKTS, *v, false),
                Self::InBytes(v) => (c::IPVS_STATS_ATTR_INBYTES, *v, true),
                Self::OutBytes(v) => (c::IPVS_STATS_ATTR_OUTBYTES, *v, true),
                Self::Cps(v) => (c::IPVS_STATS_ATTR_CPS, *v, false),
                Self::InPps(v) => (c::IPVS_STATS_ATTR_INPPS, *v, false),
                Self::OutPps(v) => (c::IPVS_STATS_ATTR_OUTPPS, *v, false),
                Self::InBps(v) => (c::IPVS_STATS_ATTR_INBPS, *v, false),
                Self::OutBps(v) => (c::IPVS_STATS_ATTR_OUTBPS, *v, false),
                Self::Other(raw) => {
                    w.raw(raw);
                    continue;
                }
            };
            match u32::try_from(v) {
                Ok(narrow) if !wide && !always_wide => w.u32(kind, narrow),
                _ => w.u64(kind, v),
            }
        }
    }
}
