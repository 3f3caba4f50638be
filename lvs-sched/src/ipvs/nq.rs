//! `nq`, never queue (`ip_vs_nq.c`): the first eligible destination with no active
//! connection; if none is idle, `sed`'s choice (`(active + 1) / weight`).
//!
//! Kept in an O(log n) segment tree; [`linear_pick`] is the kernel's O(n) scan.

use crate::{DestId, DestSet};

super::least_scheduler!(
    /// The `nq` scheduler.
    Nq, Nq, Nq
);

/// The kernel's linear scan (reference implementation).
#[must_use]
pub fn linear_pick(dests: &DestSet) -> Option<DestId> {
    let mut least: Option<(usize, u64, u32)> = None;
    for (DestId(i), d) in dests.ipvs_iter() {
        if !d.ipvs_eligible() {
            continue;
        }
        if d.active_conns() == 0 {
            return Some(DestId(i));
        }
        let doh = u64::from(d.active_conns()) + 1;
        match least {
            Some((_, loh, lw)) if !super::ratio_less(doh, d.weight(), loh, lw) => {}
            _ => least = Some((i, doh, d.weight())),
        }
    }
    least.map(|l| DestId(l.0))
}
