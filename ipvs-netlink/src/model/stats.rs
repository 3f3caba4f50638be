//! Traffic counters and rates ([`Stats`]) of a service or a destination.

use crate::wire::StatsAttr;

/// Counters and rates (`--stats`, `--rate`), from `STATS64` when the kernel sends it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connections per second.
    pub cps: u64,
    /// Incoming packets per second.
    pub inpps: u64,
    /// Outgoing packets per second.
    pub outpps: u64,
    /// Incoming bytes per second.
    pub inbps: u64,
    /// Outgoing bytes per second.
    pub outbps: u64,
}

impl Stats {
    pub(super) fn from_attrs(attrs: &[StatsAttr]) -> Self {
        let mut s = Self::default();
        for a in attrs {
            match a {
                StatsAttr::Conns(v) => s.conns = *v,
                StatsAttr::InPkts(v) => s.inpkts = *v,
                StatsAttr::OutPkts(v) => s.outpkts = *v,
                StatsAttr::InBytes(v) => s.inbytes = *v,
                StatsAttr::OutBytes(v) => s.outbytes = *v,
                StatsAttr::Cps(v) => s.cps = *v,
                StatsAttr::InPps(v) => s.inpps = *v,
                StatsAttr::OutPps(v) => s.outpps = *v,
                StatsAttr::InBps(v) => s.inbps = *v,
                StatsAttr::OutBps(v) => s.outbps = *v,
                _ => {}
            }
        }
        s
    }
}
