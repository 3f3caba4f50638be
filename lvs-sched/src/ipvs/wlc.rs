//! `wlc`, weighted least connection (`ip_vs_wlc.c`): the first eligible destination with
//! the least `((active << 8) + inactive) / weight`, compared as `loh * w > doh * lw`.
//!
//! Kept in an O(log n) segment tree; [`linear_pick`] is the kernel's O(n) scan.

use crate::{DestId, DestSet};

super::least_scheduler!(
    /// The `wlc` scheduler.
    Wlc, Wlc, Wlc
);

/// The kernel's linear scan (reference implementation).
#[must_use]
pub fn linear_pick(dests: &DestSet) -> Option<DestId> {
    super::wlc_scan(dests, crate::Dest::conn_overhead).map(DestId)
}
