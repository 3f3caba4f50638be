//! nginx `random` and `random two [least_conn]` (`ngx_http_upstream_random_module.c`).
//!
//! `random`: draw `x = rand % total_weight` (rand is a 31-bit value, like `ngx_random()`)
//! and take the peer where `x` falls; redraw while it is down, failed or full; after 20
//! draws fall back to round robin. `random two`: draw until two different usable peers are
//! found and keep the one with fewer `conns / weight` (the first drawn on ties); again at most
//! 20 draws. With fewer than two peers both fall back to round robin. Randomness comes from
//! the injected [`crate::Rng`], so results are compared by distribution, not sequence.

use alloc::boxed::Box;

use super::Tried;
use crate::{DestId, DestSet, Flow, Instant, Rng, SchedulerKind};

/// nginx `random` / `random two least_conn`. nginx finds the peer for a draw by walking the
/// list (O(n)); this uses an index of the running weight totals (O(1), see
/// [`super::ip_hash`]) with the same result; [`Random::reference`] keeps the walk.
#[derive(Debug)]
pub struct Random {
    two: bool,
    rng: Box<dyn Rng>,
    /// Walk the list as nginx does instead of using `index`.
    reference: bool,
    index: super::WeightIndex,
}

impl Random {
    /// `random` (`two == false`) or `random two` drawing from `rng`.
    #[must_use]
    pub fn new(two: bool, rng: Box<dyn Rng>) -> Self {
        Self {
            two,
            rng,
            reference: false,
            index: super::WeightIndex::default(),
        }
    }
    /// As [`Random::new`], with nginx's list walk on every draw: the reference the index is
    /// tested against.
    #[must_use]
    pub fn reference(two: bool, rng: Box<dyn Rng>) -> Self {
        Self {
            reference: true,
            ..Self::new(two, rng)
        }
    }
}

impl crate::Scheduler for Random {
    fn kind(&self) -> SchedulerKind {
        if self.two {
            SchedulerKind::NginxRandomTwo
        } else {
            SchedulerKind::NginxRandom
        }
    }
    schedule_by_pick!(index);
}

impl Random {
    /// One try of a request (`ngx_http_upstream_get_random_peer` / `get_random2_peer`): the
    /// count of failed draws carries over from the request's earlier tries (`rp->tries`),
    /// and a tried peer counts as a failed draw.
    fn pick(
        &mut self,
        dests: &mut DestSet,
        _flow: &Flow<'_>,
        now: Instant,
        t: &mut Tried,
    ) -> Option<DestId> {
        if t.start() {
            t.tries = 0;
        }
        let (peers, total) = if self.reference {
            super::primary_totals(dests.as_slice())
        } else {
            self.index.refresh(dests)
        };
        if t.tries > 20 || peers < 2 || total == 0 {
            return super::round_robin(dests, now, t);
        }
        let s = dests.as_mut_slice();
        let mut prev: Option<usize> = None;
        loop {
            let r = u64::from(self.rng.next_u32() >> 1);
            let at = if self.reference {
                super::primary_at_weight(s, super::rem(r, total))
            } else {
                self.index.at(self.index.rem(r))
            };
            if let Some(i) = at {
                let usable =
                    prev != Some(i) && !t.has(i) && s.get(i).is_some_and(|d| d.nginx_usable(now));
                if usable {
                    let pick = match (self.two, prev) {
                        (false, _) => Some(i),
                        (true, None) => {
                            prev = Some(i);
                            None
                        }
                        (true, Some(p)) => {
                            let (pd, d) = (s.get(p), s.get(i));
                            let worse = match (pd, d) {
                                // Products of two `u32`s: exact in `u64`.
                                (Some(pd), Some(d)) => {
                                    u64::from(d.active) * u64::from(pd.weight)
                                        > u64::from(pd.active) * u64::from(d.weight)
                                }
                                _ => false,
                            };
                            Some(if worse { p } else { i })
                        }
                    };
                    if let Some(k) = pick {
                        if let Some(d) = s.get_mut(k) {
                            super::mark_picked(d, now);
                        }
                        t.mark(k);
                        return Some(DestId(k));
                    }
                }
            }
            t.tries += 1;
            if t.tries > 20 {
                return super::round_robin(dests, now, t);
            }
        }
    }
}
