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
        let s = dests.as_mut_slice();
        // Primary peers first, then backup peers; each list filtered in place, in list order.
        for backup in [false, true] {
            // (index, conns, weight) of the first peer with the least conns / weight. The
            // cross-multiplied products are of two `u32`s, exact in `u64`.
            let mut best: Option<(usize, u64, u64)> = None;
            let mut many = false;
            for (i, d) in s.iter().enumerate() {
                if d.nginx.backup != backup || !d.nginx_usable(now) {
                    continue;
                }
                let (c, w) = (u64::from(d.active), u64::from(d.weight));
                match best {
                    Some((_, bc, bw)) if c * bw >= bc * w => {
                        if c * bw == bc * w {
                            many = true;
                        }
                    }
                    _ => {
                        best = Some((i, c, w));
                        many = false;
                    }
                }
            }
            let Some((bi, bc, bw)) = best else { continue };
            let pick = if many {
                // Smooth WRR among the tied peers, from the first one on.
                let mut acc = super::Smooth::default();
                for (i, d) in s.iter_mut().enumerate().skip(bi) {
                    if d.nginx.backup == backup
                        && d.nginx_usable(now)
                        && u64::from(d.active) * bw == bc * u64::from(d.weight)
                    {
                        acc.step(i, d);
                    }
                }
                acc.finish(s)
            } else {
                Some(bi)
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
