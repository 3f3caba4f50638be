//! `lc`, least connection (`ip_vs_lc.c`): the first eligible destination with the least
//! `(active << 8) + inactive`; weight only matters as 0 (skipped).
//!
//! Kept in an O(log n) segment tree; [`linear_pick`] is the kernel's O(n) scan, kept as the
//! reference the property tests and benches compare against.

use crate::{DestId, DestSet};

super::least_scheduler!(
    /// The `lc` scheduler.
    Lc, Lc, Lc
);

/// The kernel's linear scan (reference implementation).
#[must_use]
pub fn linear_pick(dests: &DestSet) -> Option<DestId> {
    let mut least: Option<(usize, u64)> = None;
    for (DestId(i), d) in dests.ipvs_iter() {
        if !d.ipvs_eligible() {
            continue;
        }
        let doh = d.conn_overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((i, doh));
        }
    }
    least.map(|l| DestId(l.0))
}
