//! nginx's upstream balancers (`ngx_http_upstream_*`), one module each.
//!
//! Peers are the destinations with `backup == false`; backup peers are only tried by round
//! robin and `least_conn` when no primary peer can be used, as in nginx. A peer is usable
//! unless it is `down` (weight 0 and unavailable destinations count as down), has reached
//! `max_fails` within `fail_timeout`, or has reached `max_conns`. Each call to `schedule` is a
//! new request (nginx's per-request `tried` bitmap starts empty). After a pick,
//! `checked` is set to `now` if more than `fail_timeout` has passed, as every nginx balancer
//! does.

pub mod hash;
pub mod ip_hash;
pub mod least_conn;
pub mod random;
pub mod round_robin;

use crate::dest::Dest;
use crate::{DestId, DestSet, Instant};

// Every balancer filters the destination slice in place (primary peers are
// `!d.nginx.backup`, in list order) instead of collecting index lists: nothing here
// allocates per decision. The `backup` flag is read live on every call, so a flag changed
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
    let timeout = u64::try_from(d.nginx.fail_timeout.as_millis()).unwrap_or(u64::MAX);
    if now.millis_since(d.nginx.checked) > timeout {
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

/// Smooth WRR over the usable peers of one list (`backup == false`: primary, `true`: backup).
fn smooth_list(s: &mut [Dest], backup: bool, now: Instant) -> Option<usize> {
    let mut acc = Smooth::default();
    for (i, d) in s.iter_mut().enumerate() {
        if d.nginx.backup == backup && d.nginx_usable(now) {
            acc.step(i, d);
        }
    }
    acc.finish(s)
}

/// `ngx_http_upstream_get_round_robin_peer`: primary peers (the single-peer shortcut
/// ignores failures), then backup peers.
pub(crate) fn round_robin(dests: &mut DestSet, now: Instant) -> Option<DestId> {
    let s = dests.as_mut_slice();
    let mut primaries = s
        .iter()
        .enumerate()
        .filter(|(_, d)| !d.nginx.backup)
        .map(|(i, _)| i);
    let (first, second) = (primaries.next(), primaries.next());
    let primary = match (first, second) {
        (None, _) => None,
        (Some(i), None) => Some(i).filter(|&i| {
            s.get(i).is_some_and(|d| {
                let full = d.nginx.max_conns != 0 && d.active >= d.nginx.max_conns;
                !(d.nginx.down || d.weight == 0 || !d.available || full)
            })
        }),
        (Some(_), Some(_)) => smooth_list(s, false, now),
    };
    let i = match primary {
        Some(i) => i,
        None => smooth_list(s, true, now)?,
    };
    if let Some(d) = s.get_mut(i) {
        mark_picked(d, now);
    }
    Some(DestId(i))
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
