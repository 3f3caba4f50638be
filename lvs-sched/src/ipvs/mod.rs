//! The Linux IPVS schedulers, one module per `net/netfilter/ipvs/ip_vs_<name>.c`.
//!
//! Common rules (as in the kernel): weight 0 is never chosen for a new connection,
//! overloaded destinations are skipped, ties go to the first destination in the kernel's
//! list order ([`crate::DestSet::ipvs_iter`]: the last added first),
//! comparisons are integer cross-multiplications (here in `u128`, so they never overflow),
//! and unavailable destinations are treated as not in the list.

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblc_table;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

use crate::dest::Dest;
use crate::{DestId, DestSet};

/// `a_load / a_w < b_load / b_w`, by cross-multiplication.
pub(crate) fn ratio_less(a_load: u64, a_w: u32, b_load: u64, b_w: u32) -> bool {
    u128::from(a_load) * u128::from(b_w) < u128::from(b_load) * u128::from(a_w)
}

/// The weighted-least-connection scan shared by `wlc`, `lblc` and `lblcr`: the first
/// eligible destination in the kernel's list with the least `overhead / weight`.
pub(crate) fn wlc_scan(dests: &DestSet, overhead: impl Fn(&Dest) -> u64) -> Option<usize> {
    let mut least: Option<(usize, u64, u32)> = None;
    for (DestId(i), d) in dests.ipvs_iter() {
        if !d.ipvs_eligible() {
            continue;
        }
        let doh = overhead(d);
        match least {
            Some((_, loh, lw)) if !ratio_less(doh, d.weight, loh, lw) => {}
            _ => least = Some((i, doh, d.weight)),
        }
    }
    least.map(|l| l.0)
}

macro_rules! least_scheduler {
    ($(#[$m:meta])* $name:ident, $kind:ident, $rule:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name {
            tree: crate::tree::LeastTree,
        }

        impl Default for $name {
            fn default() -> Self {
                Self { tree: crate::tree::LeastTree::new(crate::tree::Rule::$rule) }
            }
        }

        impl $name {
            /// A scheduler with an empty index; call `rebuild` before use.
            #[must_use]
            pub fn new() -> Self {
                Self::default()
            }
        }

        impl crate::Scheduler for $name {
            fn kind(&self) -> crate::SchedulerKind {
                crate::SchedulerKind::$kind
            }
            fn rebuild(&mut self, dests: &crate::DestSet) {
                self.tree.rebuild(dests);
            }
            fn dest_updated(&mut self, dests: &crate::DestSet, id: crate::DestId) {
                self.tree.update(dests, id);
            }
            fn load_changed(&mut self, dests: &crate::DestSet, id: crate::DestId) {
                self.tree.update(dests, id);
            }
            fn schedule(
                &mut self,
                _dests: &mut crate::DestSet,
                _flow: &crate::Flow<'_>,
                _now: crate::Instant,
            ) -> Option<crate::DestId> {
                self.tree.best().map(crate::DestId)
            }
        }
    };
}
pub(crate) use least_scheduler;
