//! `lblc`, locality-based least connection (`ip_vs_lblc.c`): a table from destination
//! address to the server last used for it. The cached server is used while it is
//! available, has weight > 0 and is not "overloaded" in lblc's sense (`active > weight` while
//! some server in the list has `2 * active < weight`); otherwise `wlc` picks a new one and the
//! entry is pointed at it (`ip_vs_lblc_schedule`, `ip_vs_lblc_new`). A lookup sets the entry's
//! `lastuse` to `now` whether or not the cached server is kept.
//!
//! As in the kernel, a lookup never checks expiry: an entry unused for longer than
//! `expiration` (the sysctl `lblc_expiration`, default 24 h) is still used until the
//! periodic timer drops it. The timer (`ip_vs_lblc_check_expire`, `ip_vs_lblc_full_check`)
//! is reproduced firing for firing, with the kernel's bucket order; see [`Lblc::tick`] and
//! the rules listed in [`crate::ipvs::lblc_table`]. [`Lblc::schedule`](crate::Scheduler)
//! runs the firings due at or before its `now` first, so a caller that only schedules gets
//! the kernel's behaviour; [`Lblc::tick`] lets the table be collected without scheduling.

use core::net::IpAddr;
use core::time::Duration;

use super::lblc_table::{DEFAULT_TAB_BITS, LastUse, Table, TimerState};
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

#[derive(Clone, Copy, Debug)]
struct Entry {
    dest: usize,
    lastuse: Instant,
}

impl LastUse for Entry {
    fn lastuse(&self) -> Instant {
        self.lastuse
    }
}

/// The `lblc` scheduler.
#[derive(Clone, Debug)]
pub struct Lblc {
    table: Table<Entry>,
}

impl Default for Lblc {
    fn default() -> Self {
        Self::new(DEFAULT_EXPIRATION)
    }
}

impl Lblc {
    /// A scheduler whose entries expire `expiration` after last use, created at
    /// [`Instant::ZERO`] (its timer first fires at 60 s) with the kernel's default table size.
    #[must_use]
    pub fn new(expiration: Duration) -> Self {
        Self::with_table_bits(expiration, Instant::ZERO, DEFAULT_TAB_BITS)
    }
    /// A scheduler created at `created` (the timer fires at `created + 60 s`, `+ 120 s`, ...)
    /// with `2^bits` buckets (`CONFIG_IP_VS_LBLC_TAB_BITS`, default 10; clamped to
    /// `1..=20`), so at most `16 × 2^bits` entries before the over-full walk.
    #[must_use]
    pub fn with_table_bits(expiration: Duration, created: Instant, bits: u32) -> Self {
        Self {
            table: Table::new(expiration, created, bits),
        }
    }
    /// Change `lblc_expiration`; the kernel reads the sysctl at every full check.
    pub fn set_expiration(&mut self, expiration: Duration) {
        self.table.set_expiration(expiration);
    }
    /// Run every timer firing due at or before `now` (the kernel's `periodic_timer`).
    pub fn tick(&mut self, now: Instant) {
        self.table.tick(now);
    }
    /// Drop entries unused for `expiration`, as the kernel's full check would do at `now`,
    /// outside the timer's schedule (no kernel counterpart; kept for callers of the earlier
    /// API). Prefer [`Lblc::tick`].
    pub fn expire(&mut self, now: Instant) {
        self.table.full_check_now(now);
    }
    /// The timer's state: next firing, `counter`, `rover`.
    #[must_use]
    pub fn timer(&self) -> TimerState {
        self.table.timer()
    }
    /// The table's size in bits (`2^bits` buckets).
    #[must_use]
    pub fn table_bits(&self) -> u32 {
        self.table.bits()
    }
    /// The server cached for `addr` and the entry's last use.
    #[must_use]
    pub fn cached(&self, addr: IpAddr) -> Option<(DestId, Instant)> {
        self.table.get(addr).map(|e| (DestId(e.dest), e.lastuse))
    }
    /// Every cached address, in the kernel's bucket order.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.table.iter().map(|(a, _)| a)
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
}

impl crate::Scheduler for Lblc {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblc
    }
    fn rebuild(&mut self, _dests: &DestSet) {
        // Entries keep their server, as the kernel's keep a reference to a removed one
        // (which is then not available and gets replaced on the next lookup).
    }
    fn tick(&mut self, now: Instant) {
        self.table.tick(now);
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        self.table.tick(now);
        let key = flow.dst.ip();
        let s = dests.as_slice();
        if let Some(e) = self.table.get_mut(key) {
            e.lastuse = now;
            if let Some(d) = s.get(e.dest)
                && d.available
                && d.weight > 0
                && !lblc_overloaded(d, s)
            {
                return Some(DestId(e.dest));
            }
        }
        let pick = super::wlc_scan(dests, Dest::conn_overhead)?;
        match self.table.get_mut(key) {
            Some(e) => e.dest = pick,
            None => self.table.insert(
                key,
                Entry {
                    dest: pick,
                    lastuse: now,
                },
            ),
        }
        Some(DestId(pick))
    }
}
