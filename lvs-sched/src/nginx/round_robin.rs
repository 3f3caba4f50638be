//! nginx's default balancer, smooth weighted round robin
//! (`ngx_http_upstream_round_robin.c`): every usable peer adds its `effective_weight` to its
//! `current_weight`; the peer with the largest `current_weight` (first on ties) wins and has
//! the total subtracted. Weights 5, 1, 1 give a a b a c a a. After failures the effective
//! weight drops by `weight / max_fails` and recovers by one per pick. Backup peers are used
//! only when no primary peer is usable.
//!
//! # The cycle cache
//!
//! nginx walks every peer on every request (O(n)). Here the same walk runs, but while the
//! state is *steady* the decisions are periodic, and the period is replayed in O(1):
//!
//! - Steady means: at least two primary peers; every primary peer is either usable with
//!   `effective_weight == weight` and no failure count that can take it out
//!   (`max_fails == 0 || fails < max_fails`), or unusable for a reason time cannot change
//!   (`down`, weight 0, unavailable, at `max_conns`); and at least one is usable. Then the
//!   usable set and every `effective_weight` stay fixed, backup peers are never visited, and
//!   each pick adds the fixed weights and subtracts their sum `W` from the winner.
//! - While steady, the scheduler records the walk's own decisions for `W` picks ("learning")
//!   and compares every usable peer's `current_weight` with its value at the start. If they
//!   are equal, the walk is back in the state it started from, so the next decisions are the
//!   recorded ones again, for ever, until something changes: the recorded period is installed
//!   and replayed. (From nginx's start state, all zeros, this happens after the first `W`
//!   picks; from other states the walk falls into such a period after a few more, and
//!   learning simply starts again until it does.)
//! - Memory is bounded: the period is only recorded when `W <= `[`CYCLE_LIMIT`] (4 bytes per
//!   pick, so at most 1 MiB); above it, every pick is the walk.
//! - Anything that can change a decision leaves the cached mode, and the walk runs again
//!   (learning restarts as soon as the state is steady): every configuration change
//!   (`Service::set_weight`, `set_available`, `set_thresholds`, `configure_nginx`,
//!   `add_dest`, or [`crate::DestSet::get_mut`]), and every connection, failure or success
//!   report that moves a peer out of its class (a usable peer reaching `max_conns`, a failure
//!   lowering `effective_weight` or reaching `max_fails`, a full peer dropping below
//!   `max_conns`). Reports that change nothing a decision reads (a connection on a peer
//!   without `max_conns`, a success) keep the cache.
//! - While the period is replayed, the peers' `current_weight` is kept lazily: it is exact at
//!   the start of each period and brought up to date (O(n + position)) whenever the cache is
//!   left or [`crate::DestSet::sync_nginx_state`] is called. nginx's `checked` update after a
//!   pick is applied at once.
//!
//! [`RoundRobin::reference`] is the plain walk without the cache; the property tests check
//! that both make the same decisions and leave the same state on random operation streams.

use alloc::vec;
use alloc::vec::Vec;

use super::Tried;
use crate::dest::Dest;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// Largest period (sum of the usable primary peers' weights) that is cached.
pub const CYCLE_LIMIT: i64 = 1 << 18;

/// A recorded smooth-WRR period, installed in the [`DestSet`] while it is replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cycle {
    /// The decisions of one period, as destination indices.
    picks: Vec<u32>,
    /// The next decision's position in `picks`.
    pos: usize,
    /// `W`, the sum of the members' weights.
    total: i64,
    /// Bitset of the usable primary peers (the members of the period).
    members: Vec<u64>,
}

fn bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 != 0)
}

impl Cycle {
    /// Whether peer `i` is one of the usable peers of the period.
    pub(crate) fn is_member(&self, i: usize) -> bool {
        bit(&self.members, i)
    }

    /// The next decision, moving on by one.
    pub(crate) fn advance(&mut self) -> Option<usize> {
        let &i = self.picks.get(self.pos)?;
        self.pos += 1;
        if self.pos == self.picks.len() {
            self.pos = 0;
        }
        usize::try_from(i).ok()
    }

    /// Write the true `current_weight` (after `pos` picks of the period) into the peers:
    /// every member gained `pos * weight`, and each pick cost its peer `W`.
    pub(crate) fn settle(self, s: &mut [Dest]) {
        let done = self.picks.get(..self.pos).unwrap_or(&[]);
        for &i in done {
            if let Some(d) = usize::try_from(i).ok().and_then(|i| s.get_mut(i)) {
                d.nginx.current_weight -= self.total;
            }
        }
        // `pos < W <= CYCLE_LIMIT`, so the product stays far inside `i64`.
        let steps = i64::try_from(self.pos).unwrap_or(0);
        for (i, d) in s.iter_mut().enumerate() {
            if self.is_member(i) {
                d.nginx.current_weight += steps * i64::from(d.weight);
            }
        }
    }
}

/// A usable primary peer that stays usable, with a fixed `effective_weight`, whatever the
/// time: the cached mode's members.
fn steady_member(d: &Dest) -> bool {
    let p = &d.nginx;
    !p.backup
        && !p.down
        && d.weight != 0
        && d.available
        && (p.max_fails == 0 || p.fails < p.max_fails)
        && !(p.max_conns != 0 && d.active >= p.max_conns)
        && p.effective_weight == i64::from(d.weight)
}

/// A primary peer that is unusable for a reason time cannot change.
fn steady_out(d: &Dest) -> bool {
    let p = &d.nginx;
    p.down || d.weight == 0 || !d.available || (p.max_conns != 0 && d.active >= p.max_conns)
}

/// What a steady state looks like from one walk: the number of members, `W`, and a
/// fingerprint of the member indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Steady {
    members: usize,
    total: i64,
    print: u64,
}

/// The smooth-WRR walk over the primary peers, as [`super::round_robin`] does it when there
/// are at least two, classifying each peer before its step. Returns the winner (`None` if no
/// primary peer is usable; nothing was changed then) and, if the state was steady, its
/// summary.
fn walk_primaries(s: &mut [Dest], now: Instant) -> (Option<usize>, Option<Steady>) {
    let mut acc = super::Smooth::default();
    let mut steady = true;
    let mut sum = Steady {
        members: 0,
        total: 0,
        print: 0,
    };
    for (i, d) in s.iter_mut().enumerate() {
        if d.nginx.backup {
            continue;
        }
        if d.nginx_usable(now) {
            if steady_member(d) {
                sum.members += 1;
                sum.total += i64::from(d.weight);
                sum.print = sum
                    .print
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(i as u64 + 1);
            } else {
                steady = false;
            }
            acc.step(i, d);
        } else if !steady_out(d) {
            steady = false;
        }
    }
    let pick = acc.finish(s);
    (pick, (steady && sum.members > 0).then_some(sum))
}

/// A period being recorded.
#[derive(Clone, Debug)]
struct Learn {
    steady: Steady,
    /// Bitset of the members.
    members: Vec<u64>,
    /// The members' `current_weight` at the start, by index.
    start: Vec<(usize, i64)>,
    /// The decisions so far.
    picks: Vec<u32>,
}

impl Learn {
    fn begin(s: &[Dest], steady: Steady) -> Self {
        let mut members = vec![0u64; s.len().div_ceil(64)];
        let mut start = Vec::with_capacity(steady.members);
        for (i, d) in s.iter().enumerate() {
            if steady_member(d) {
                if let Some(w) = members.get_mut(i / 64) {
                    *w |= 1 << (i % 64);
                }
                start.push((i, d.nginx.current_weight));
            }
        }
        let cap = usize::try_from(steady.total).unwrap_or(0);
        Self {
            steady,
            members,
            start,
            picks: Vec::with_capacity(cap),
        }
    }
}

/// nginx smooth weighted round robin, with the cycle cache described in the module
/// documentation.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    /// Walk on every pick, never cache.
    reference: bool,
    /// The installed period (if any) must be left before the next pick.
    stale: bool,
    /// The [`DestSet`] generation the state below belongs to.
    generation: u64,
    learn: Option<Learn>,
}

impl RoundRobin {
    /// The scheduler with the cycle cache.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// nginx's walk on every pick, without the cache: the reference the cache is tested
    /// against.
    #[must_use]
    pub fn reference() -> Self {
        Self {
            reference: true,
            ..Self::default()
        }
    }

    fn forget(&mut self) {
        self.stale = true;
        self.learn = None;
    }

    /// Account one walk's decision `i` made from a state summarised by `steady`.
    fn observe(&mut self, dests: &mut DestSet, i: usize, steady: Option<Steady>) {
        let Some(q) = steady.filter(|q| q.total <= CYCLE_LIMIT) else {
            self.learn = None;
            return;
        };
        let s = dests.as_slice();
        match &mut self.learn {
            Some(l) if l.steady == q => {
                let Ok(i) = u32::try_from(i) else {
                    self.learn = None;
                    return;
                };
                l.picks.push(i);
                if i64::try_from(l.picks.len()).unwrap_or(i64::MAX) < q.total {
                    return;
                }
                let back = l
                    .start
                    .iter()
                    .all(|&(j, cw)| s.get(j).is_some_and(|d| d.nginx.current_weight == cw));
                if back {
                    let cycle = Cycle {
                        picks: core::mem::take(&mut l.picks),
                        pos: 0,
                        total: q.total,
                        members: core::mem::take(&mut l.members),
                    };
                    self.learn = None;
                    dests.install_swrr_cycle(cycle);
                } else {
                    // Not back yet: record the next period from here.
                    for (j, cw) in &mut l.start {
                        if let Some(d) = s.get(*j) {
                            *cw = d.nginx.current_weight;
                        }
                    }
                    l.picks.clear();
                }
            }
            // The state after a steady step is steady with the same members.
            _ => self.learn = Some(Learn::begin(s, q)),
        }
    }
}

impl crate::Scheduler for RoundRobin {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxRoundRobin
    }
    fn rebuild(&mut self, _dests: &DestSet) {
        self.forget();
    }
    fn dest_updated(&mut self, _dests: &DestSet, _id: DestId) {
        self.forget();
    }
    fn load_changed(&mut self, dests: &DestSet, id: DestId) {
        let Some(d) = dests.get(id) else { return };
        // Backup peers are not visited while a usable primary peer exists.
        if d.nginx.backup {
            return;
        }
        let member = if let Some(c) = dests.swrr_cycle() {
            c.is_member(id.0)
        } else if let Some(l) = &self.learn {
            bit(&l.members, id.0)
        } else {
            return;
        };
        let same_class = if member {
            steady_member(d)
        } else {
            steady_out(d)
        };
        if !same_class {
            self.forget();
        }
    }
    fn schedule_next(
        &mut self,
        dests: &mut DestSet,
        flow: &Flow<'_>,
        now: Instant,
        tried: &mut Tried,
    ) -> Option<DestId> {
        if !tried.is_fresh() {
            // A retry: nginx's walk without the tried peers (the cached period, if any, is
            // left; it is learned again over the next plain picks).
            self.learn = None;
            return super::round_robin(dests, now, tried);
        }
        let pick = self.schedule(dests, flow, now);
        let backup = match pick {
            Some(id) => dests.get(id).is_some_and(|d| d.nginx.backup),
            None => dests.iter().any(|(_, d)| d.nginx.backup),
        };
        if backup {
            tried.move_to_backup();
        }
        if let Some(id) = pick {
            tried.mark(id.0);
        }
        pick
    }
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        if self.reference {
            return super::round_robin(dests, now, &mut Tried::scratch());
        }
        if self.stale || dests.generation() != self.generation {
            dests.sync_nginx_state();
            self.stale = false;
            self.learn = None;
            self.generation = dests.generation();
        }
        if let Some(i) = dests.swrr_next(now) {
            return Some(DestId(i));
        }
        if !super::has_two_primaries(dests.as_slice()) {
            self.learn = None;
            return super::round_robin(dests, now, &mut Tried::scratch());
        }
        let s = dests.as_mut_slice();
        let (primary, steady) = walk_primaries(s, now);
        let i = match primary {
            Some(i) => i,
            None => super::smooth_list(s, true, now, &Tried::scratch())?,
        };
        if let Some(d) = s.get_mut(i) {
            super::mark_picked(d, now);
        }
        self.observe(dests, i, steady);
        Some(DestId(i))
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    use super::RoundRobin;
    use crate::{Dest, DestId, DestSet, Flow, Instant, Scheduler};

    fn set(weights: &[u32]) -> DestSet {
        let mut s = DestSet::new();
        for (i, &w) in weights.iter().enumerate() {
            let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)), 80);
            s.push(Dest::new(a, w));
        }
        s
    }

    fn flow() -> Flow<'static> {
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80);
        Flow::tcp(a, a)
    }

    #[test]
    fn period_is_learned_then_replayed_and_left_on_change() {
        let mut fast_set = set(&[5, 1, 1]);
        let mut slow_set = fast_set.clone();
        let mut fast = RoundRobin::new();
        let mut slow = RoundRobin::reference();
        let mut pick = |fast: &mut RoundRobin, fs: &mut DestSet, ss: &mut DestSet| {
            let a = fast.schedule(fs, &flow(), Instant::ZERO);
            assert_eq!(a, slow.schedule(ss, &flow(), Instant::ZERO));
            assert_eq!(fs, ss);
        };
        // One step to see the steady state, W = 7 steps to learn the period.
        for _ in 0..8 {
            assert!(fast_set.swrr_cycle().is_none());
            pick(&mut fast, &mut fast_set, &mut slow_set);
        }
        for _ in 0..30 {
            assert!(fast_set.swrr_cycle().is_some());
            pick(&mut fast, &mut fast_set, &mut slow_set);
        }
        // A connection without max_conns keeps the cache; a failure that lowers the
        // effective weight leaves it.
        fast_set.get_mut_load(DestId(0)).unwrap().active += 1;
        fast.load_changed(&fast_set, DestId(0));
        slow_set.get_mut_load(DestId(0)).unwrap().active += 1;
        pick(&mut fast, &mut fast_set, &mut slow_set);
        assert!(fast_set.swrr_cycle().is_some());
        for s in [&mut fast_set, &mut slow_set] {
            let d = s.get_mut_load(DestId(0)).unwrap();
            d.nginx.fails = 1;
            d.nginx.max_fails = 5;
            d.nginx.effective_weight = 4;
        }
        fast.load_changed(&fast_set, DestId(0));
        for _ in 0..30 {
            pick(&mut fast, &mut fast_set, &mut slow_set);
        }
        // Recovered (effective weight back at 5) and learned again.
        assert!(fast_set.swrr_cycle().is_some());
    }

    #[test]
    fn periods_above_the_limit_are_not_cached() {
        let big = u32::try_from(super::CYCLE_LIMIT).unwrap();
        let mut fast_set = set(&[big, 1, 2]);
        let mut slow_set = fast_set.clone();
        let mut fast = RoundRobin::new();
        let mut slow = RoundRobin::reference();
        for _ in 0..2000 {
            let a = fast.schedule(&mut fast_set, &flow(), Instant::ZERO);
            assert_eq!(a, slow.schedule(&mut slow_set, &flow(), Instant::ZERO));
            assert!(fast_set.swrr_cycle().is_none());
            assert!(fast.learn.is_none());
        }
        assert_eq!(fast_set, slow_set);
    }
}
