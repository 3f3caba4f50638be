//! nginx `random` and `random two [least_conn]` (`ngx_http_upstream_random_module.c`).
//!
//! `random`: draw `x = rand % total_weight` (rand is a 31-bit value, like `ngx_random()`)
//! and take the peer where `x` falls; redraw while it is down, failed or full; after 20
//! draws fall back to round robin. `random two`: draw until two different usable peers are
//! found and keep the one with fewer `conns / weight` (the first drawn on ties); again at most
//! 20 draws. With fewer than two peers both fall back to round robin. Randomness comes from
//! the injected [`crate::Rng`], so results are compared by distribution, not sequence.

use alloc::boxed::Box;

use crate::{DestId, DestSet, Flow, Instant, Rng, SchedulerKind};

/// nginx `random` / `random two least_conn`.
#[derive(Debug)]
pub struct Random {
    two: bool,
    rng: Box<dyn Rng>,
}

impl Random {
    /// `random` (`two == false`) or `random two` drawing from `rng`.
    #[must_use]
    pub fn new(two: bool, rng: Box<dyn Rng>) -> Self {
        Self { two, rng }
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
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let s = dests.as_mut_slice();
        let (peers, total) = super::primary_totals(s);
        if peers < 2 || total == 0 {
            return super::round_robin(dests, now);
        }
        let mut tries = 0u32;
        let mut prev: Option<usize> = None;
        loop {
            let x = u64::from(self.rng.next_u32() >> 1) % total;
            if let Some(i) = super::primary_at_weight(s, x) {
                let usable = prev != Some(i) && s.get(i).is_some_and(|d| d.nginx_usable(now));
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
                        return Some(DestId(k));
                    }
                }
            }
            tries += 1;
            if tries > 20 {
                return super::round_robin(dests, now);
            }
        }
    }
}
