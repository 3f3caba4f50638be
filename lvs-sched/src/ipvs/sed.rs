//! `sed`, shortest expected delay (`ip_vs_sed.c`): like `wlc` with overhead
//! `active + 1` (inactive connections ignored).
//!
//! Kept in an O(log n) segment tree; [`linear_pick`] is the kernel's O(n) scan.

use crate::{DestId, DestSet};

super::least_scheduler!(
    /// The `sed` scheduler.
    Sed, Sed, Sed
);

/// The kernel's linear scan (reference implementation).
#[must_use]
pub fn linear_pick(dests: &DestSet) -> Option<DestId> {
    super::wlc_scan(dests, |d| u64::from(d.active_conns()) + 1).map(DestId)
}
