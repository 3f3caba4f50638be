//! `ovf`, overflow-connection (`ip_vs_ovf.c`): the first destination with the strictly
//! highest weight among those not overloaded, with weight > 0 and `active <= weight`; when
//! the heaviest fills up, connections overflow to the next.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// The `ovf` scheduler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ovf;

impl crate::Scheduler for Ovf {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ovf
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let mut best: Option<(usize, u32)> = None;
        for (i, d) in dests.ipvs_iter() {
            if !d.ipvs_eligible() || d.active > d.weight {
                continue;
            }
            if best.is_none_or(|(_, w)| d.weight > w) {
                best = Some((i.0, d.weight));
            }
        }
        best.map(|b| DestId(b.0))
    }
}
