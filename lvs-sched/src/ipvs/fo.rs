//! `fo`, weighted failover (`ip_vs_fo.c`): the first destination with the strictly highest
//! weight among those that are not overloaded and have weight > 0.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// The `fo` scheduler.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fo;

impl crate::Scheduler for Fo {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Fo
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let mut best: Option<(usize, u32)> = None;
        for (i, d) in dests.ipvs_iter() {
            if d.ipvs_eligible() && best.is_none_or(|(_, w)| d.weight > w) {
                best = Some((i.0, d.weight));
            }
        }
        best.map(|b| DestId(b.0))
    }
}
