//! `mh`, Maglev hashing (`ip_vs_mh.c`): a 4093-slot Maglev table (see
//! [`crate::hash::maglev`]) built from each destination's `last_weight`, so quiescing a
//! destination (weight 0) does not reshuffle the table. A client's slot is
//! `hsiphash1(port + ntohl(saddr_fold)) % 4093`. Without `mh-fallback`, a slot whose
//! destination has weight 0 or is overloaded yields no destination; with it, the kernel
//! re-hashes with offsets `ihash, ihash+1, ...` until an available destination is found.
//! `mh-port` adds the TCP/UDP/SCTP source port.

use alloc::vec::Vec;

use crate::hash::FastMod;
use crate::hash::maglev::{DEFAULT_TABLE_SIZE, Table, mh_hashkey};
use crate::{DestId, DestSet, Flow, Instant, SchedFlags, SchedulerKind};

/// The `mh` scheduler.
#[derive(Clone, Debug, Default)]
pub struct Mh {
    flags: SchedFlags,
    table: Table,
    /// `% table.len()` without a division.
    modulo: Option<FastMod>,
}

impl Mh {
    /// A scheduler with the given `mh-fallback`/`mh-port` flags; call `rebuild` before use.
    #[must_use]
    pub fn new(flags: SchedFlags) -> Self {
        Self {
            flags,
            table: Table::default(),
            modulo: None,
        }
    }
    /// The lookup table (slot → destination index).
    #[must_use]
    pub const fn table(&self) -> &Table {
        &self.table
    }
}

impl crate::Scheduler for Mh {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Mh
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let list: Vec<_> = dests
            .ipvs_iter()
            .filter(|(_, d)| d.available)
            .map(|(i, d)| (d.addr, d.last_weight, i.0))
            .collect();
        self.table = Table::build(&list, DEFAULT_TABLE_SIZE);
        self.modulo = u32::try_from(self.table.len()).ok().and_then(FastMod::new);
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let port = if self.flags.port && flow.proto.has_ports() {
            flow.src.port()
        } else {
            0
        };
        let size = self.table.len();
        if size == 0 {
            return None;
        }
        let ok = |i: usize| dests.get(DestId(i)).is_some_and(crate::Dest::ipvs_eligible);
        // `size` is the table size (4093 by default): the remainder by multiplication.
        let fm = self.modulo;
        let modulo = |h: u32| -> usize {
            match fm {
                Some(f) => f.rem(h) as usize,
                None => h as usize % size,
            }
        };
        let ihash = modulo(mh_hashkey(flow.src, port, false, 0));
        let first = self.table.slot(ihash)?;
        if ok(first) {
            return Some(DestId(first));
        }
        if !self.flags.fallback {
            return None;
        }
        for offset in 0..size {
            let roffset = u32::try_from((offset + ihash) % size).unwrap_or(0);
            let h = modulo(mh_hashkey(flow.src, port, false, roffset));
            let d = self.table.slot(h)?;
            if ok(d) {
                return Some(DestId(d));
            }
        }
        None
    }
}
