//! nginx `least_conn` (`ngx_http_upstream_least_conn_module.c`): the usable peer with the
//! least `conns / weight` (cross-multiplied); if several tie, smooth WRR among the tied
//! peers, starting from the first. Backup peers are tried the same way when no primary peer
//! is usable. With exactly one primary peer and no backup peer, nginx uses round robin's
//! single-peer shortcut (failures not checked).

use super::Tried;
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
        pick(dests, now, &mut Tried::scratch())
    }
    fn schedule_next(
        &mut self,
        dests: &mut DestSet,
        _flow: &Flow<'_>,
        now: Instant,
        tried: &mut Tried,
    ) -> Option<DestId> {
        pick(dests, now, tried)
    }
}

/// One try of a request (`ngx_http_upstream_get_least_conn_peer`): round robin's single-peer
/// shortcut when there is exactly one primary peer and no backup peer; else the list the
/// request is on (primary, or backup once it moved there), without its tried peers; when
/// the primary list has nothing left and backup peers exist, the request moves to the backup
/// list for good.
fn pick(dests: &mut DestSet, now: Instant, t: &mut Tried) -> Option<DestId> {
    if !t.on_backup() {
        let s = dests.as_slice();
        let has_backup = s.iter().any(|d| d.nginx.backup);
        if !has_backup && !super::has_two_primaries(s) {
            return super::round_robin(dests, now, t);
        }
        if let Some(i) = least_in_list(dests.as_mut_slice(), false, now, t) {
            t.mark(i);
            return Some(DestId(i));
        }
        if !has_backup {
            return None;
        }
        t.move_to_backup();
    }
    let i = least_in_list(dests.as_mut_slice(), true, now, t)?;
    t.mark(i);
    Some(DestId(i))
}

/// The least `conns / weight` among the usable, untried peers of one list, smooth WRR among
/// ties from the first one on.
fn least_in_list(s: &mut [crate::Dest], backup: bool, now: Instant, t: &Tried) -> Option<usize> {
    // (index, conns, weight) of the first peer with the least conns / weight. The
    // cross-multiplied products are of two `u32`s, exact in `u64`.
    let mut best: Option<(usize, u64, u64)> = None;
    let mut many = false;
    for (i, d) in s.iter().enumerate() {
        if d.nginx.backup != backup || t.has(i) || !d.nginx_usable(now) {
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
    let (bi, bc, bw) = best?;
    let pick = if many {
        // Smooth WRR among the tied peers, from the first one on.
        let mut acc = super::Smooth::default();
        for (i, d) in s.iter_mut().enumerate().skip(bi) {
            if d.nginx.backup == backup
                && !t.has(i)
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
    let i = pick?;
    if let Some(d) = s.get_mut(i) {
        super::mark_picked(d, now);
    }
    Some(i)
}
