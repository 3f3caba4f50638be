//! `rr`, round robin (`ip_vs_rr.c`): continue the list after the last choice, wrapping
//! once, and take the first destination that is not overloaded and has weight > 0.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// The `rr` scheduler.
#[derive(Clone, Debug, Default)]
pub struct Rr {
    last: Option<usize>,
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
        if self.last.is_some_and(|l| l >= dests.len()) {
            self.last = None;
        }
    }
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let n = dests.len();
        let start = self.last.map_or(0, |l| l + 1);
        let start = if start > n { start % n.max(1) } else { start };
        let slice = dests.as_slice();
        for k in 0..n {
            // `start <= n` and `k < n`: one subtraction wraps (no division per pick).
            let i = start + k;
            let i = if i >= n { i - n } else { i };
            if slice.get(i).is_some_and(crate::Dest::ipvs_eligible) {
                self.last = Some(i);
                return Some(DestId(i));
            }
        }
        None
    }
}
