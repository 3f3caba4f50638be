//! `lblc`, locality-based least connection (`ip_vs_lblc.c`): a table from destination
//! address to the server last used for it. The cached server is used while it is
//! available, has weight > 0 and is not "overloaded" in lblc's sense (`active > weight` while
//! some server in the list has `2 * active < weight`); otherwise `wlc` picks a new one and the
//! entry is replaced. Entries expire `expiration` (the sysctl `lblc_expiration`, default 24 h)
//! after their last use; the kernel sweeps them with a timer, this crate on access (see
//! [`Lblc::expire`]). The kernel's extra eviction when the table exceeds 16 × 1024 entries is
//! not reproduced.

use alloc::collections::BTreeMap;
use core::net::IpAddr;
use core::time::Duration;

use crate::dest::Dest;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// The kernel's default `lblc_expiration` / `lblcr_expiration` (24 h).
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// lblc/lblcr's `is_overloaded`.
pub(crate) fn lblc_overloaded(d: &Dest, all: &[Dest]) -> bool {
    d.active > d.weight
        && all
            .iter()
            .any(|o| o.available && u64::from(o.active) * 2 < u64::from(o.weight))
}

/// The `lblc` scheduler.
#[derive(Clone, Debug)]
pub struct Lblc {
    expiration: Duration,
    table: BTreeMap<IpAddr, (usize, Instant)>,
}

impl Default for Lblc {
    fn default() -> Self {
        Self::new(DEFAULT_EXPIRATION)
    }
}

impl Lblc {
    /// A scheduler whose entries expire `expiration` after last use.
    #[must_use]
    pub fn new(expiration: Duration) -> Self {
        Self {
            expiration,
            table: BTreeMap::new(),
        }
    }
    /// Drop entries unused for `expiration` (the kernel's periodic full check).
    pub fn expire(&mut self, now: Instant) {
        let exp = self.expiration;
        self.table
            .retain(|_, (_, last)| now < last.saturating_add(exp));
    }
    /// Number of cached entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl crate::Scheduler for Lblc {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblc
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let n = dests.len();
        self.table.retain(|_, (i, _)| *i < n);
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let key = flow.dst.ip();
        let s = dests.as_slice();
        let exp = self.expiration;
        if let Some((idx, last)) = self.table.get_mut(&key) {
            if now < last.saturating_add(exp) {
                *last = now;
                if let Some(d) = s.get(*idx)
                    && d.available
                    && d.weight > 0
                    && !lblc_overloaded(d, s)
                {
                    return Some(DestId(*idx));
                }
            } else {
                self.table.remove(&key);
            }
        }
        let pick = super::wlc_scan(s, Dest::conn_overhead)?;
        self.table
            .entry(key)
            .and_modify(|e| e.0 = pick)
            .or_insert((pick, now));
        Some(DestId(pick))
    }
}
