//! nginx's upstream balancers (`ngx_http_upstream_*`), one module each.
//!
//! Peers are the destinations with `backup == false`; backup peers are only tried by round
//! robin and `least_conn` when no primary peer can be used, as in nginx. A peer is usable
//! unless it is `down` (weight 0 and unavailable destinations count as down), has reached
//! `max_fails` within `fail_timeout`, or has reached `max_conns`. Each call to `schedule` is a
//! new request (nginx's per-request `tried` bitmap starts empty); for nginx's retries
//! within one request (`proxy_next_upstream`), pass a [`Tried`] to
//! [`crate::Scheduler::schedule_next`]. After a pick,
//! `checked` is set to `now` if more than `fail_timeout` has passed, as every nginx balancer
//! does.

/// The `Scheduler` methods a balancer with a one-try `pick(&mut self, dests, flow, now,
/// tried)` shares: `schedule` is the first try of a fresh request, `schedule_next` a try of
/// the request `tried` describes. With `index`, also the upkeep of its `index:
/// WeightIndex` field (rebuilt lazily after any change, updated in place for one
/// destination).
macro_rules! schedule_by_pick {
    (index) => {
        fn rebuild(&mut self, _dests: &$crate::DestSet) {
            self.index.invalidate();
        }
        fn dest_updated(&mut self, dests: &$crate::DestSet, id: $crate::DestId) {
            self.index.dest_updated(dests, id);
        }
        schedule_by_pick!();
    };
    () => {
        fn schedule(
            &mut self,
            dests: &mut $crate::DestSet,
            flow: &$crate::Flow<'_>,
            now: $crate::Instant,
        ) -> Option<$crate::DestId> {
            self.pick(dests, flow, now, &mut $crate::nginx::Tried::scratch())
        }
        fn schedule_next(
            &mut self,
            dests: &mut $crate::DestSet,
            flow: &$crate::Flow<'_>,
            now: $crate::Instant,
            tried: &mut $crate::nginx::Tried,
        ) -> Option<$crate::DestId> {
            self.pick(dests, flow, now, tried)
        }
    };
}

pub mod hash;
pub mod ip_hash;
pub mod least_conn;
pub mod random;
pub mod round_robin;

use alloc::vec::Vec;

use crate::dest::Dest;
use crate::hash::FastMod;
use crate::{DestId, DestSet, Instant};

// Every balancer filters the destination slice in place (primary peers are
// `!d.nginx.backup`, in list order) instead of collecting index lists: nothing here
// allocates per decision. The derived state some balancers keep (the prefix sums of
// `WeightIndex`, `round_robin`'s cycle cache) is rebuilt when the scheduler is told of a
// change, and also when the set's generation moved (`DestSet::get_mut`), so a flag changed
// through `DestSet::get_mut` without a `rebuild` still takes effect at once.

/// Number of primary peers and the sum of their configured weights (nginx's
/// `total_weight`, down peers included), in one pass.
pub(crate) fn primary_totals(s: &[Dest]) -> (usize, u64) {
    s.iter()
        .filter(|d| !d.nginx.backup)
        .fold((0, 0), |(n, w), d| (n + 1, w + u64::from(d.weight)))
}

/// Whether there are at least two primary peers (stops at the second).
pub(crate) fn has_two_primaries(s: &[Dest]) -> bool {
    s.iter().filter(|d| !d.nginx.backup).nth(1).is_some()
}

/// nginx's `if (now - peer->checked > peer->fail_timeout) peer->checked = now;` after a pick.
pub(crate) fn mark_picked(d: &mut Dest, now: Instant) {
    // In whole milliseconds, as in `Dest::nginx_usable`.
    let timeout = crate::duration_millis(d.nginx.fail_timeout);
    if now.millis().saturating_sub(d.nginx.checked.millis()) > timeout {
        d.nginx.checked = now;
    }
}

/// One smooth-WRR step (`ngx_http_upstream_get_peer`), fed the usable peers in list order
/// through [`Smooth::step`] and closed with [`Smooth::finish`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Smooth {
    /// The leader so far and its `current_weight` (first wins on ties).
    best: Option<(usize, i64)>,
    /// Sum of the visited peers' `effective_weight`.
    total: i64,
}

impl Smooth {
    /// Visit the usable peer `i`: raise its `current_weight` by its `effective_weight`, let
    /// the effective weight recover by one, and keep it if it now leads strictly.
    pub(crate) fn step(&mut self, i: usize, d: &mut Dest) {
        let p = &mut d.nginx;
        p.current_weight += p.effective_weight;
        self.total += p.effective_weight;
        if p.effective_weight < i64::from(d.weight) {
            p.effective_weight += 1;
        }
        let cw = p.current_weight;
        if self.best.is_none_or(|(_, bcw)| cw > bcw) {
            self.best = Some((i, cw));
        }
    }

    /// Subtract the total from the winner's `current_weight` and return it (`None` if no
    /// peer was visited).
    pub(crate) fn finish(self, s: &mut [Dest]) -> Option<usize> {
        let (b, _) = self.best?;
        if let Some(d) = s.get_mut(b) {
            d.nginx.current_weight -= self.total;
        }
        Some(b)
    }
}

/// Smooth WRR over the usable, untried peers of one list (`backup == false`: primary,
/// `true`: backup): `ngx_http_upstream_get_peer`.
pub(crate) fn smooth_list(
    s: &mut [Dest],
    backup: bool,
    now: Instant,
    tried: &Tried,
) -> Option<usize> {
    let mut acc = Smooth::default();
    for (i, d) in s.iter_mut().enumerate() {
        if d.nginx.backup == backup && !tried.has(i) && d.nginx_usable(now) {
            acc.step(i, d);
        }
    }
    acc.finish(s)
}

/// nginx's per-request peer state, for retries (`proxy_next_upstream`): the `tried` bitmap
/// of `ngx_http_upstream_rr_peer_data_t`, which list the request is on (`rrp->peers`, switched
/// to the backup list for the rest of the request once the primary list has nothing left),
/// and the balancer's own per-request fields (`ip_hash`'s `hash` and `tries`, `hash`'s
/// `hash`, `rehash` and `tries`, `hash consistent`'s current point and `tries`, `random`'s
/// `tries`), which carry over from one try of the request to the next as in nginx.
///
/// Make one per request with [`Tried::new`] and pass it to every
/// [`crate::Scheduler::schedule_next`] (or [`crate::Service::schedule_next`]) call for that
/// request; each pick is recorded in it. `None` is nginx's `NGX_BUSY`: no untried usable
/// peer is left (including the backup list), so nginx would answer 502.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tried {
    bits: Vec<u64>,
    /// The request has moved to the backup list (`rrp->peers = peers->next`).
    backup: bool,
    /// The balancer's per-request fields are set (nginx's `init_peer` ran).
    started: bool,
    /// `iphp->tries` / `hp->tries` / `rp->tries`: failed hash draws so far (over 20: round
    /// robin for the rest of the request).
    pub(crate) tries: u32,
    /// `iphp->hash` / `hp->hash` / the consistent-hash point index.
    pub(crate) hash: u64,
    /// `hp->rehash`.
    pub(crate) rehash: u32,
    /// Picks are recorded (false for the throwaway state of a plain `schedule`).
    record: bool,
}

impl Tried {
    /// The state of a new request: nothing tried, on the primary list.
    #[must_use]
    pub fn new() -> Self {
        Self {
            record: true,
            ..Self::default()
        }
    }
    /// A fresh state that records nothing (for `schedule`, one try per request): never
    /// allocates.
    pub(crate) fn scratch() -> Self {
        Self::default()
    }
    pub(crate) fn has(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub(crate) fn mark(&mut self, i: usize) {
        if !self.record {
            return;
        }
        let w = i / 64;
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        if let Some(x) = self.bits.get_mut(w) {
            *x |= 1 << (i % 64);
        }
    }
    /// Start the balancer's per-request fields once (`init_peer`); returns whether this call
    /// did.
    pub(crate) fn start(&mut self) -> bool {
        !core::mem::replace(&mut self.started, true)
    }
    /// Move the request to the backup list (nginx clears the bitmap, which now indexes it).
    pub(crate) fn move_to_backup(&mut self) {
        self.backup = true;
        self.bits.clear();
    }
    /// Whether `id` was tried by this request (on the list it is on now).
    #[must_use]
    pub fn contains(&self, id: DestId) -> bool {
        self.has(id.0)
    }
    /// Mark `id` as tried (as nginx's balancers do for each pick).
    pub fn insert(&mut self, id: DestId) {
        let record = core::mem::replace(&mut self.record, true);
        self.mark(id.0);
        self.record = record;
    }
    /// Number of peers marked as tried on the current list.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// Whether no peer is marked as tried on the current list.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
    /// Whether the request has moved to the backup list (from then on only backup peers are
    /// tried, and the bitmap was cleared when it moved, as nginx does).
    #[must_use]
    pub const fn on_backup(&self) -> bool {
        self.backup
    }
    /// Whether this is still the state of a new request (no try made yet).
    pub(crate) fn is_fresh(&self) -> bool {
        !self.started && !self.backup && self.is_empty()
    }
}

/// `ngx_http_upstream_get_round_robin_peer` with the request's state: the single-peer
/// shortcut (exactly one primary peer and no backup peer: only `down` and `max_conns` are
/// checked, failures are not), else smooth WRR over the untried usable primary peers; when
/// that finds nothing and backup peers exist, the request moves to the backup list for good
/// (its bitmap cleared) and smooth WRR runs over the untried usable backup peers.
///
/// nginx never retries a single peer (freeing it sets the request's `tries` to 0), so the
/// single peer is not offered again to a request that has tried it.
pub(crate) fn round_robin(dests: &mut DestSet, now: Instant, tried: &mut Tried) -> Option<DestId> {
    let s = dests.as_mut_slice();
    if !tried.backup {
        let mut primaries = s
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.nginx.backup)
            .map(|(i, _)| i);
        let (first, second) = (primaries.next(), primaries.next());
        let has_backup = s.iter().any(|d| d.nginx.backup);
        let primary = match (first, second) {
            (None, _) => None,
            (Some(i), None) if !has_backup => Some(i).filter(|&i| {
                !tried.has(i)
                    && s.get(i).is_some_and(|d| {
                        let full = d.nginx.max_conns != 0 && d.active >= d.nginx.max_conns;
                        !(d.nginx.down || d.weight == 0 || !d.available || full)
                    })
            }),
            _ => smooth_list(s, false, now, tried),
        };
        if let Some(i) = primary {
            if let Some(d) = s.get_mut(i) {
                mark_picked(d, now);
            }
            tried.mark(i);
            return Some(DestId(i));
        }
        if !has_backup {
            return None;
        }
        tried.move_to_backup();
    }
    let i = smooth_list(s, true, now, tried)?;
    if let Some(d) = s.get_mut(i) {
        mark_picked(d, now);
    }
    tried.mark(i);
    Some(DestId(i))
}

/// `x % total` (`total > 0`), as a 32-bit division when both fit (the common case, and
/// several times cheaper than a 64-bit one).
#[inline]
pub(crate) fn rem(x: u64, total: u64) -> u64 {
    match (u32::try_from(x), u32::try_from(total)) {
        (Ok(x), Ok(t)) => u64::from(x % t),
        _ => x % total,
    }
}

/// Walk the primary peers by weight: the peer in which `w` (already `< total_weight`)
/// falls.
pub(crate) fn primary_at_weight(s: &[Dest], mut w: u64) -> Option<usize> {
    for (i, d) in s.iter().enumerate() {
        if d.nginx.backup {
            continue;
        }
        let pw = u64::from(d.weight);
        if w < pw {
            return Some(i);
        }
        w -= pw;
    }
    None
}

/// The primary peers' weights as prefix sums, so that [`primary_at_weight`]'s walk becomes a
/// search: the peer where `w` falls is the first whose running total exceeds `w` (peers of
/// weight 0 take no room, as in the walk). A bucket table (about two buckets per peer, each
/// `2^shift` weight units wide) gives the first candidate, so a lookup is O(1) unless one
/// bucket holds many running totals (very uneven weights), where it is a binary search
/// within the bucket; when the total weight is at most `DIRECT_LIMIT`, a table with the
/// peer of every weight unit answers in one load. Rebuilt lazily when a peer's weight or
/// `backup` flag changed, a peer was added, or the set was accessed through
/// [`DestSet::get_mut`].
#[derive(Clone, Debug, Default)]
pub(crate) struct WeightIndex {
    /// The generation of the set it was built from; `None` when it must be rebuilt.
    generation: Option<u64>,
    /// Running totals of the primary peers of weight > 0, in list order.
    ends: Vec<u64>,
    /// Their indices.
    ids: Vec<usize>,
    /// Number of primary peers (weight 0 included) and the sum of their weights.
    primaries: usize,
    total: u64,
    /// `(weight, backup)` of every destination when built.
    sig: Vec<(u32, bool)>,
    /// Bucket `j` covers weights `[j << shift, (j + 1) << shift)`; `first[j]` is the index in
    /// `ends` of the peer where `j << shift` falls.
    first: Vec<u32>,
    shift: u32,
    /// `x % total` by multiplication (Lemire's `fastmod_u32`), when `total` fits `u32`.
    fastmod: Option<FastMod>,
    /// When `total <= DIRECT_LIMIT`: the peer index for every weight unit, one load per
    /// lookup (empty otherwise).
    direct: Vec<u32>,
}

/// Largest total weight given a direct table in [`WeightIndex`] (4 bytes per unit, so at
/// most 256 KiB); above it the bucket table is used.
const DIRECT_LIMIT: u64 = 1 << 16;

impl WeightIndex {
    /// Rebuild before the next use.
    pub(crate) fn invalidate(&mut self) {
        self.generation = None;
    }

    /// Rebuild before the next use if `id`'s weight or `backup` flag changed.
    pub(crate) fn dest_updated(&mut self, dests: &DestSet, id: DestId) {
        let now = dests.get(id).map(|d| (d.weight, d.nginx.backup));
        if now != self.sig.get(id.0).copied() {
            self.invalidate();
        }
    }

    /// Bring the index in step with `dests`; returns the number of primary peers and their
    /// total weight (nginx's `total_weight`), as [`primary_totals`] counts them.
    #[inline]
    pub(crate) fn refresh(&mut self, dests: &DestSet) -> (usize, u64) {
        if self.generation != Some(dests.generation()) || self.sig.len() != dests.len() {
            self.build(dests);
        }
        (self.primaries, self.total)
    }

    #[cold]
    fn build(&mut self, dests: &DestSet) {
        let s = dests.as_slice();
        self.ends.clear();
        self.ids.clear();
        self.sig.clear();
        self.primaries = 0;
        self.total = 0;
        for (i, d) in s.iter().enumerate() {
            self.sig.push((d.weight, d.nginx.backup));
            if d.nginx.backup {
                continue;
            }
            self.primaries += 1;
            if d.weight > 0 {
                self.total += u64::from(d.weight);
                self.ends.push(self.total);
                self.ids.push(i);
            }
        }
        self.build_buckets();
        self.build_direct();
        self.fastmod = u32::try_from(self.total).ok().and_then(FastMod::new);
        self.generation = Some(dests.generation());
    }

    /// `x % total` (`total > 0`), without a division when both fit 32 bits.
    #[inline]
    pub(crate) fn rem(&self, x: u64) -> u64 {
        match (self.fastmod, u32::try_from(x)) {
            (Some(f), Ok(x)) => u64::from(f.rem(x)),
            _ => rem(x, self.total),
        }
    }

    fn build_direct(&mut self) {
        self.direct.clear();
        if self.total > DIRECT_LIMIT || u32::try_from(self.sig.len()).is_err() {
            return;
        }
        let mut prev = 0u64;
        for (&end, &id) in self.ends.iter().zip(&self.ids) {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            for _ in prev..end {
                self.direct.push(id);
            }
            prev = end;
        }
    }

    fn build_buckets(&mut self) {
        self.first.clear();
        self.shift = 0;
        // More than 2^32 peers cannot be indexed by `u32`: search the whole list then.
        if self.total == 0 || u32::try_from(self.ends.len()).is_err() {
            return;
        }
        let want = (self.ends.len() as u64).saturating_mul(2).max(16);
        while ((self.total - 1) >> self.shift) >= want {
            self.shift += 1;
        }
        let buckets = ((self.total - 1) >> self.shift) + 1;
        let mut k = 0usize;
        for j in 0..buckets {
            let lo = j << self.shift;
            while self.ends.get(k).is_some_and(|&e| e <= lo) {
                k += 1;
            }
            self.first.push(u32::try_from(k).unwrap_or(u32::MAX));
        }
    }

    /// The primary peer in which `w` (`< total`) falls: [`primary_at_weight`] without the
    /// walk.
    #[inline]
    pub(crate) fn at(&self, w: u64) -> Option<usize> {
        if !self.direct.is_empty() {
            let w = usize::try_from(w).ok()?;
            return self.direct.get(w).map(|&i| i as usize);
        }
        self.at_bucket(w)
    }

    fn at_bucket(&self, w: u64) -> Option<usize> {
        let j = usize::try_from(w >> self.shift).unwrap_or(usize::MAX);
        let k = match (self.first.get(j), self.first.get(j + 1)) {
            (Some(&lo), hi) => {
                let lo = lo as usize;
                // The answer's running total exceeds `w`, so it is at most the peer where
                // the next bucket starts.
                let hi = hi.map_or(self.ends.len(), |&h| h as usize + 1);
                let span = self.ends.get(lo..hi).unwrap_or(&[]);
                match span {
                    [a, ..] if *a > w => lo,
                    [_, b, ..] if *b > w => lo + 1,
                    _ => lo + span.partition_point(|&e| e <= w),
                }
            }
            _ => self.ends.partition_point(|&e| e <= w),
        };
        self.ids.get(k).copied()
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;
    use core::net::{IpAddr, Ipv4Addr, SocketAddr};

    use proptest::prelude::*;

    use super::{WeightIndex, primary_at_weight, primary_totals};
    use crate::{Dest, DestSet};

    proptest! {
        /// The bucketed prefix sums find the peer the walk finds, for every kind of weight
        /// spread (tiny, huge, zero, mixed) and backup peers.
        #[test]
        fn weight_index_equals_walk(
            peers in prop::collection::vec(
                (prop_oneof![0u32..4, 0u32..100, 1u32..=crate::dest::MAX_WEIGHT], any::<bool>()),
                1..80,
            ),
            probes in prop::collection::vec(any::<u64>(), 1..200),
        ) {
            let mut set = DestSet::new();
            for (i, &(w, backup)) in peers.iter().enumerate() {
                let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8)), 80);
                let mut d = Dest::new(a, w);
                d.nginx.backup = backup;
                set.push(d);
            }
            let mut index = WeightIndex::default();
            let (n, total) = index.refresh(&set);
            prop_assert_eq!((n, total), primary_totals(set.as_slice()));
            if total == 0 {
                return Ok(());
            }
            // Every bucket boundary and running total, their neighbours, and random points.
            let mut ws: Vec<u64> = probes.iter().map(|p| p % total).collect();
            for (j, _) in index.first.iter().enumerate() {
                ws.push((j as u64) << index.shift);
            }
            for &e in &index.ends {
                ws.extend([e.saturating_sub(1), e]);
            }
            for w in ws.into_iter().filter(|&w| w < total) {
                let walk = primary_at_weight(set.as_slice(), w);
                prop_assert_eq!(index.at(w), walk, "w = {}", w);
                prop_assert_eq!(index.at_bucket(w), walk, "bucket, w = {}", w);
            }
        }
    }
}
