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

use alloc::vec::Vec;

use crate::dest::Dest;
use crate::{DestId, DestSet, Instant};

/// Indices of primary (`backup == false`) and backup peers, in list order.
pub(crate) fn split(dests: &DestSet) -> (Vec<usize>, Vec<usize>) {
    let mut p = Vec::new();
    let mut b = Vec::new();
    for (i, d) in dests.iter() {
        if d.nginx.backup {
            b.push(i.0);
        } else {
            p.push(i.0);
        }
    }
    (p, b)
}

/// nginx's `if (now - peer->checked > peer->fail_timeout) peer->checked = now;` after a pick.
pub(crate) fn mark_picked(d: &mut Dest, now: Instant) {
    let timeout = u64::try_from(d.nginx.fail_timeout.as_millis()).unwrap_or(u64::MAX);
    if now.millis_since(d.nginx.checked) > timeout {
        d.nginx.checked = now;
    }
}

/// One smooth-WRR step (`ngx_http_upstream_get_peer`) over `peers` that pass `usable`.
pub(crate) fn smooth_pick(
    s: &mut [Dest],
    peers: &[usize],
    usable: impl Fn(&Dest) -> bool,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut total: i64 = 0;
    for &i in peers {
        let Some(d) = s.get_mut(i) else { continue };
        if !usable(d) {
            continue;
        }
        let p = &mut d.nginx;
        p.current_weight += p.effective_weight;
        total += p.effective_weight;
        if p.effective_weight < i64::from(d.weight) {
            p.effective_weight += 1;
        }
        let cw = p.current_weight;
        if best.is_none_or(|b| s.get(b).is_some_and(|bd| cw > bd.nginx.current_weight)) {
            best = Some(i);
        }
    }
    let b = best?;
    if let Some(d) = s.get_mut(b) {
        d.nginx.current_weight -= total;
    }
    Some(b)
}

/// `ngx_http_upstream_get_round_robin_peer`: primary peers (the single-peer shortcut
/// ignores failures), then backup peers.
pub(crate) fn round_robin(dests: &mut DestSet, now: Instant) -> Option<DestId> {
    let (primary, backup) = split(dests);
    let s = dests.as_mut_slice();
    for (peers, single_ok) in [(&primary, true), (&backup, false)] {
        if peers.is_empty() {
            continue;
        }
        let pick = if single_ok && peers.len() == 1 {
            peers.first().copied().filter(|&i| {
                s.get(i).is_some_and(|d| {
                    let full = d.nginx.max_conns != 0 && d.active >= d.nginx.max_conns;
                    !(d.nginx.down || d.weight == 0 || !d.available || full)
                })
            })
        } else {
            smooth_pick(s, peers, |d| d.nginx_usable(now))
        };
        if let Some(i) = pick {
            if let Some(d) = s.get_mut(i) {
                mark_picked(d, now);
            }
            return Some(DestId(i));
        }
    }
    None
}

/// Walk `peers` by weight: the peer in which `w` (already `< total_weight`) falls.
pub(crate) fn peer_at_weight(s: &[Dest], peers: &[usize], mut w: u64) -> Option<usize> {
    for &i in peers {
        let pw = s.get(i).map_or(0, |d| u64::from(d.weight));
        if w < pw {
            return Some(i);
        }
        w -= pw;
    }
    None
}

/// Sum of configured weights of `peers` (nginx's `total_weight`, down peers included).
pub(crate) fn total_weight(s: &[Dest], peers: &[usize]) -> u64 {
    peers
        .iter()
        .filter_map(|&i| s.get(i))
        .map(|d| u64::from(d.weight))
        .sum()
}
