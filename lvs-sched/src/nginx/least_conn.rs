//! nginx `least_conn` (`ngx_http_upstream_least_conn_module.c`): the usable peer with the
//! least `conns / weight` (cross-multiplied); if several tie, smooth WRR among the tied
//! peers, starting from the first. Backup peers are tried the same way when no primary peer
//! is usable.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// nginx `least_conn`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastConn;

impl crate::Scheduler for LeastConn {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxLeastConn
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let (primary, backup) = super::split(dests);
        let s = dests.as_mut_slice();
        for peers in [&primary, &backup] {
            let mut best: Option<(usize, u64, u64)> = None; // (pos in peers, conns, weight)
            let mut many = false;
            for (pos, &i) in peers.iter().enumerate() {
                let Some(d) = s.get(i) else { continue };
                if !d.nginx_usable(now) {
                    continue;
                }
                let (c, w) = (u64::from(d.active), u64::from(d.weight));
                match best {
                    Some((_, bc, bw))
                        if u128::from(c) * u128::from(bw) >= u128::from(bc) * u128::from(w) =>
                    {
                        if u128::from(c) * u128::from(bw) == u128::from(bc) * u128::from(w) {
                            many = true;
                        }
                    }
                    _ => {
                        best = Some((pos, c, w));
                        many = false;
                    }
                }
            }
            let Some((bpos, bc, bw)) = best else { continue };
            let pick = if many {
                let tied: alloc::vec::Vec<usize> = peers
                    .get(bpos..)
                    .unwrap_or(&[])
                    .iter()
                    .copied()
                    .filter(|&i| {
                        s.get(i).is_some_and(|d| {
                            d.nginx_usable(now)
                                && u128::from(d.active) * u128::from(bw)
                                    == u128::from(bc) * u128::from(d.weight)
                        })
                    })
                    .collect();
                super::smooth_pick(s, &tied, |_| true)
            } else {
                peers.get(bpos).copied()
            };
            if let Some(i) = pick {
                if let Some(d) = s.get_mut(i) {
                    super::mark_picked(d, now);
                }
                return Some(DestId(i));
            }
        }
        None
    }
}
