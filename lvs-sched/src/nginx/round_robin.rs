//! nginx's default balancer, smooth weighted round robin
//! (`ngx_http_upstream_round_robin.c`): every usable peer adds its `effective_weight` to its
//! `current_weight`; the peer with the largest `current_weight` (first on ties) wins and has
//! the total subtracted. Weights 5, 1, 1 give a a b a c a a. After failures the effective
//! weight drops by `weight / max_fails` and recovers by one per pick. Backup peers are used
//! only when no primary peer is usable.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// nginx smooth weighted round robin.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin;

impl crate::Scheduler for RoundRobin {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxRoundRobin
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        super::round_robin(dests, now)
    }
}
