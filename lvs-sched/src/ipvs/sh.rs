//! `sh`, source hashing (`ip_vs_sh.c`): a 256-bucket table where each destination in turn
//! takes `weight` consecutive buckets (at least one), and the bucket of a client is
//! `hash_32(port + ntohl(saddr_fold), 8)`. With `sh-port` the client's TCP/UDP/SCTP source
//! port is hashed too (otherwise port 0). Without `sh-fallback`, a bucket whose destination
//! has weight 0 or is overloaded yields no destination; with it, the kernel re-hashes with
//! offsets `ihash, ihash+1, ...` (mod 256) until an available destination is found.

use alloc::vec;
use alloc::vec::Vec;

use crate::hash::{addr_fold, hash_32};
use crate::{DestId, DestSet, Flow, Instant, SchedFlags, SchedulerKind};

/// `IP_VS_SH_TAB_BITS` (Kconfig default 8).
pub const TAB_BITS: u32 = 8;
/// `IP_VS_SH_TAB_SIZE`.
pub const TABLE_SIZE: usize = 1 << TAB_BITS;

/// The `sh` scheduler.
#[derive(Clone, Debug, Default)]
pub struct Sh {
    flags: SchedFlags,
    buckets: Vec<Option<usize>>,
}

/// The kernel's `ip_vs_sh_hashkey`.
#[must_use]
pub fn hashkey(ip: core::net::IpAddr, port: u16, offset: u32) -> usize {
    let h = hash_32(u32::from(port).wrapping_add(addr_fold(ip)), TAB_BITS);
    (offset.wrapping_add(h) as usize) & (TABLE_SIZE - 1)
}

impl Sh {
    /// A scheduler with the given `sh-fallback`/`sh-port` flags; call `rebuild` before use.
    #[must_use]
    pub fn new(flags: SchedFlags) -> Self {
        Self {
            flags,
            buckets: Vec::new(),
        }
    }
}

impl crate::Scheduler for Sh {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Sh
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let list: Vec<(usize, u32)> = dests
            .ipvs_iter()
            .filter(|(_, d)| d.available)
            .map(|(i, d)| (i.0, d.weight))
            .collect();
        self.buckets = vec![None; TABLE_SIZE];
        if list.is_empty() {
            return;
        }
        let mut p = 0usize;
        let mut count = 0u32;
        for b in &mut self.buckets {
            let Some(&(idx, w)) = list.get(p) else {
                break;
            };
            *b = Some(idx);
            count += 1;
            if count >= w {
                p = (p + 1) % list.len();
                count = 0;
            }
        }
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let port = if self.flags.port && flow.proto.has_ports() {
            flow.src.port()
        } else {
            0
        };
        let ip = flow.src.ip();
        let ok = |i: usize| dests.get(DestId(i)).is_some_and(crate::Dest::ipvs_eligible);
        let ihash = hashkey(ip, port, 0);
        let first = self.buckets.get(ihash).copied().flatten()?;
        if ok(first) {
            return Some(DestId(first));
        }
        if !self.flags.fallback {
            return None;
        }
        for offset in 0..TABLE_SIZE {
            let roffset = ((offset + ihash) % TABLE_SIZE) as u32;
            let h = hashkey(ip, port, roffset);
            if let Some(d) = self.buckets.get(h).copied().flatten()
                && ok(d)
            {
                return Some(DestId(d));
            }
        }
        None
    }
}
