//! `lblcr`, locality-based least connection with replication (`ip_vs_lblcr.c`): a table
//! from destination address to a *set* of servers. On a lookup (`ip_vs_lblcr_schedule`) the
//! entry's `lastuse` becomes `now`; the set's least-loaded member (weighted, as `wlc`,
//! `ip_vs_dest_set_min`) is chosen; then, when the set has more than one member and was last
//! modified more than `expiration` ago, its most-loaded member (`ip_vs_dest_set_max`) is
//! dropped (which counts as a modification); then the chosen member is used unless it is
//! missing or lblc-overloaded, in which case `wlc` over all servers picks one, which is added
//! at the front of the set if it is not already in it. That set shrinking happens on lookup
//! in the kernel too, and is kept here.
//!
//! Whole entries are never expired on lookup: the periodic timer (`ip_vs_lblcr_check_expire`,
//! `ip_vs_lblcr_full_check`) drops them, reproduced firing for firing with the kernel's bucket
//! order (see [`Lblcr::tick`] and [`crate::ipvs::lblc_table`]); `schedule` runs the firings
//! due at or before its `now` first.

use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use super::lblc::{DEFAULT_EXPIRATION, lblc_overloaded};
use super::lblc_table::{DEFAULT_TAB_BITS, LastUse, Table, TimerState};
use crate::dest::Dest;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind, duration_millis};

#[derive(Clone, Debug)]
struct Entry {
    set: Vec<usize>,
    lastuse: Instant,
    lastmod: Instant,
}

impl LastUse for Entry {
    fn lastuse(&self) -> Instant {
        self.lastuse
    }
}

/// The `lblcr` scheduler.
#[derive(Clone, Debug)]
pub struct Lblcr {
    expiration: Duration,
    table: Table<Entry>,
}

impl Default for Lblcr {
    fn default() -> Self {
        Self::new(DEFAULT_EXPIRATION)
    }
}

fn set_min(set: &[usize], s: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u64, u32)> = None;
    for &i in set {
        let Some(d) = s.get(i) else { continue };
        if d.overloaded {
            continue;
        }
        match least {
            None => {
                if d.weight > 0 && d.available {
                    least = Some((i, d.conn_overhead(), d.weight));
                }
            }
            Some((_, loh, lw)) => {
                let doh = d.conn_overhead();
                if super::ratio_less(doh, d.weight, loh, lw) && d.available {
                    least = Some((i, doh, d.weight));
                }
            }
        }
    }
    least.map(|l| l.0)
}

fn set_max(set: &[usize], s: &[Dest]) -> Option<usize> {
    let mut most: Option<(usize, u64, u32)> = None;
    for &i in set {
        let Some(d) = s.get(i) else { continue };
        match most {
            None => {
                if d.weight > 0 {
                    most = Some((i, d.conn_overhead(), d.weight));
                }
            }
            Some((_, moh, mw)) => {
                let doh = d.conn_overhead();
                if super::ratio_less(moh, mw, doh, d.weight) && d.weight > 0 {
                    most = Some((i, doh, d.weight));
                }
            }
        }
    }
    most.map(|m| m.0)
}

impl Lblcr {
    /// A scheduler whose sets shrink, and entries expire, after `expiration`, created at
    /// [`Instant::ZERO`] (its timer first fires at 60 s) with the kernel's default table size.
    #[must_use]
    pub fn new(expiration: Duration) -> Self {
        Self::with_table_bits(expiration, Instant::ZERO, DEFAULT_TAB_BITS)
    }
    /// A scheduler created at `created` (the timer fires at `created + 60 s`, `+ 120 s`, ...)
    /// with `2^bits` buckets (`CONFIG_IP_VS_LBLCR_TAB_BITS`, default 10; clamped to
    /// `1..=20`), so at most `16 × 2^bits` entries before the over-full walk.
    #[must_use]
    pub fn with_table_bits(expiration: Duration, created: Instant, bits: u32) -> Self {
        Self {
            expiration,
            table: Table::new(expiration, created, bits),
        }
    }
    /// Change `lblcr_expiration` (used by the next full check and set shrink).
    pub fn set_expiration(&mut self, expiration: Duration) {
        self.expiration = expiration;
        self.table.set_expiration(expiration);
    }
    /// Run every timer firing due at or before `now` (the kernel's `periodic_timer`).
    pub fn tick(&mut self, now: Instant) {
        self.table.tick(now);
    }
    /// Drop entries unused for `expiration`, as the kernel's full check would do at `now`,
    /// outside the timer's schedule (no kernel counterpart; kept for callers of the earlier
    /// API). Prefer [`Lblcr::tick`].
    pub fn expire(&mut self, now: Instant) {
        self.table.full_check_now(now);
    }
    /// The timer's state: next firing, `counter`, `rover`.
    #[must_use]
    pub fn timer(&self) -> TimerState {
        self.table.timer()
    }
    /// Number of cached entries (reflecting the timer firings run so far).
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }
    /// The replica set cached for `addr`, in the kernel's list order.
    #[must_use]
    pub fn replicas(&self, addr: IpAddr) -> Option<Vec<DestId>> {
        self.table
            .get(addr)
            .map(|e| e.set.iter().map(|&i| DestId(i)).collect())
    }
}

impl crate::Scheduler for Lblcr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblcr
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let n = dests.len();
        for e in self.table.values_mut() {
            e.set.retain(|&i| i < n);
        }
    }
    fn tick(&mut self, now: Instant) {
        self.table.tick(now);
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        self.table.tick(now);
        let key = flow.dst.ip();
        let s = dests.as_slice();
        // Set ages are compared in whole milliseconds, as the kernel's jiffies at `HZ=1000`.
        let exp = duration_millis(self.expiration);
        if let Some(e) = self.table.get_mut(key) {
            e.lastuse = now;
            let min = set_min(&e.set, s);
            if e.set.len() > 1
                && now.millis() > e.lastmod.millis().saturating_add(exp)
                && let Some(m) = set_max(&e.set, s)
            {
                e.set.retain(|&i| i != m);
                e.lastmod = now;
            }
            if let Some(d) = min
                && s.get(d).is_some_and(|dd| !lblc_overloaded(dd, s))
            {
                return Some(DestId(d));
            }
            let pick = super::wlc_scan(dests, Dest::conn_overhead)?;
            if !e.set.contains(&pick) {
                e.set.insert(0, pick);
                e.lastmod = now;
            }
            return Some(DestId(pick));
        }
        let pick = super::wlc_scan(dests, Dest::conn_overhead)?;
        self.table.insert(
            key,
            Entry {
                set: alloc::vec![pick],
                lastuse: now,
                lastmod: now,
            },
        );
        Some(DestId(pick))
    }
}
