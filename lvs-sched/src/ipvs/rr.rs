//! `rr`, round robin (`ip_vs_rr.c`): continue the kernel's list after the last choice,
//! wrapping once, and take the first destination that is not overloaded and has weight > 0.
//!
//! The position is a destination (or the list head), as the kernel's `sched_data` is a list
//! pointer: a destination added at the head does not move it, and when the destination it
//! names is deleted it steps back to the one before (`ip_vs_rr_del_dest`), so the walk goes
//! on with the one that followed.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// The `rr` scheduler.
#[derive(Clone, Debug, Default)]
pub struct Rr {
    /// The last choice; `None` is the list head.
    last: Option<DestId>,
}

impl Rr {
    /// A scheduler positioned at the list head.
    #[must_use]
    pub const fn new() -> Self {
        Self { last: None }
    }
}

impl crate::Scheduler for Rr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Rr
    }
    fn rebuild(&mut self, dests: &DestSet) {
        if self.last.is_some_and(|l| dests.get(l).is_none()) {
            self.last = None;
        }
    }
    fn dest_updated(&mut self, dests: &DestSet, id: DestId) {
        // `ip_vs_rr_del_dest`: the position steps back to the previous destination still in
        // the list (or the head).
        if self.last == Some(id) && dests.get(id).is_some_and(|d| !d.is_available()) {
            self.last = dests.ipvs_position(id).and_then(|p| {
                (0..p)
                    .rev()
                    .filter_map(|q| dests.ipvs_at(q))
                    .find(|&q| dests.get(q).is_some_and(crate::Dest::is_available))
            });
        }
        self.rebuild(dests);
    }
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let n = dests.len();
        let start = self
            .last
            .and_then(|l| dests.ipvs_position(l))
            .map_or(0, |p| p + 1);
        for k in 0..n {
            // `start <= n` and `k < n`: one subtraction wraps (no division per pick).
            let i = start + k;
            let i = if i >= n { i - n } else { i };
            if let Some(id) = dests.ipvs_at(i)
                && dests.get(id).is_some_and(crate::Dest::ipvs_eligible)
            {
                self.last = Some(id);
                return Some(id);
            }
        }
        None
    }
}
