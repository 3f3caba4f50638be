//! `dh`, destination hashing (`ip_vs_dh.c`): a 256-bucket table filled by cycling through
//! the list (weights ignored); the bucket is `hash_32(ntohl(daddr_fold), 8)` (current
//! kernels; before `hash_32` was used here it was `(ntohl(daddr_fold) * 2654435761) & 255`). The
//! bucket's destination is used only if it has weight > 0 and is not overloaded; otherwise
//! there is no destination.

use alloc::vec;
use alloc::vec::Vec;

use crate::hash::{addr_fold, hash_32};
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// `IP_VS_DH_TAB_SIZE` (`1 << 8`).
pub const TABLE_SIZE: usize = 256;

/// The `dh` scheduler.
#[derive(Clone, Debug, Default)]
pub struct Dh {
    buckets: Vec<Option<usize>>,
}

impl Dh {
    /// An empty scheduler; call `rebuild` before use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// `IP_VS_DH_TAB_BITS` (Kconfig default 8).
pub const TAB_BITS: u32 = 8;

/// The kernel's `ip_vs_dh_hashkey`: `hash_32` of the folded address, as `sh` does.
#[must_use]
pub fn hashkey(ip: core::net::IpAddr) -> usize {
    hash_32(addr_fold(ip), TAB_BITS) as usize & (TABLE_SIZE - 1)
}

impl crate::Scheduler for Dh {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Dh
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let list: Vec<usize> = dests
            .ipvs_iter()
            .filter(|(_, d)| d.available)
            .map(|(i, _)| i.0)
            .collect();
        self.buckets = vec![None; TABLE_SIZE];
        if list.is_empty() {
            return;
        }
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = list.get(i % list.len()).copied();
        }
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let i = self
            .buckets
            .get(hashkey(flow.dst.ip()))
            .copied()
            .flatten()?;
        dests
            .get(DestId(i))
            .filter(|d| d.ipvs_eligible())
            .map(|_| DestId(i))
    }
}
