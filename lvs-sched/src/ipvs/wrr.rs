//! `wrr`, weighted round robin (`ip_vs_wrr.c`): the kernel's current-weight stepping.
//!
//! State: current position `cl`, current weight `cw`, step `di` = gcd of the positive
//! weights, and `mw` = max weight − (di − 1). Each pick walks on from `cl`; at the end of the
//! list `cw -= di`, and when `cw <= 0` it restarts at `mw`. The first destination that is not
//! overloaded with weight `>= cw` is chosen. A configuration change resets `cl` to the head
//! and clamps `cw` as `ip_vs_wrr_dest_changed` does. The walk follows the kernel's list, where
//! the last destination added comes first: `a`, `b`, `c` added with weights 4, 3, 2 are
//! listed `c b a` and give a b a c b a c b a.

use alloc::vec::Vec;

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// The `wrr` scheduler.
#[derive(Clone, Debug, Default)]
pub struct Wrr {
    list: Vec<usize>,
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Wrr {
    /// An empty scheduler; call `rebuild` before use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl crate::Scheduler for Wrr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Wrr
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let s = dests.as_slice();
        self.list = dests
            .ipvs_iter()
            .filter(|(_, d)| d.available)
            .map(|(i, _)| i.0)
            .collect();
        let weights = self
            .list
            .iter()
            .filter_map(|&i| s.get(i))
            .map(|d| i64::from(d.weight));
        let g = weights.clone().filter(|&w| w > 0).fold(0, gcd);
        self.di = if g == 0 { 1 } else { g };
        self.mw = weights.max().unwrap_or(0) - (self.di - 1);
        self.cl = None;
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        if self.mw <= 0 || self.list.is_empty() {
            return None;
        }
        let s = dests.as_slice();
        let n = self.list.len();
        let ok = |pos: usize, cw: i64| {
            self.list
                .get(pos)
                .and_then(|&i| s.get(i))
                .is_some_and(|d| !d.overloaded && i64::from(d.weight) >= cw)
        };
        // Positions: None = list head; Some(p) = index into self.list.
        let last = self.cl;
        let mut stop = None::<usize>;
        let mut pos = last;
        let mut restarted = false;
        let mut last_pass = false;
        loop {
            if pos.is_none() && stop.is_none() {
                // A full pass from the head finds nothing while cw exceeds every usable
                // weight; skip those passes in one step (no decision changes: they neither
                // pick, wrap, nor reach a last pass).
                let m = self
                    .list
                    .iter()
                    .filter_map(|&i| s.get(i))
                    .filter(|d| !d.overloaded)
                    .map(|d| i64::from(d.weight))
                    .max()
                    .unwrap_or(0);
                if self.cw > m {
                    let k = (self.cw - m + self.di - 1) / self.di;
                    let next = self.cw - k * self.di;
                    if next > 0 {
                        self.cw = next;
                    }
                }
            }
            let mut p = pos.map_or(0, |p| p + 1);
            while p < n {
                if ok(p, self.cw) {
                    self.cl = Some(p);
                    return self.list.get(p).map(|&i| DestId(i));
                }
                if stop == Some(p) {
                    return None;
                }
                p += 1;
            }
            pos = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }
}
