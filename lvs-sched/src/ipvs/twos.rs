//! `twos`, weighted random twos choice (`ip_vs_twos.c`): two weighted random draws in
//! `0..=total_weight` over the destinations (in the kernel's list order) that are not overloaded with weight > 0, then
//! the one with the lower `overhead / weight` (`weight2 * oh1 > weight1 * oh2` picks the
//! second). A draw equal to `total_weight` matches nothing, as in the kernel: the first choice
//! then stays the last eligible destination (with weight −1 in the comparison) and the second
//! stays empty. Randomness comes from the injected [`crate::Rng`].

use alloc::boxed::Box;

use crate::{DestId, DestSet, Flow, Instant, Rng, SchedulerKind};

/// The `twos` scheduler.
#[derive(Debug)]
pub struct Twos {
    rng: Box<dyn Rng>,
}

impl Twos {
    /// A scheduler drawing from `rng`.
    #[must_use]
    pub fn new(rng: Box<dyn Rng>) -> Self {
        Self { rng }
    }
}

impl crate::Scheduler for Twos {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Twos
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, _flow: &Flow<'_>, _now: Instant) -> Option<DestId> {
        let mut total: u64 = 0;
        let mut choice1 = None;
        for (DestId(i), d) in dests.ipvs_iter() {
            if d.ipvs_eligible() {
                total += u64::from(d.weight);
                choice1 = Some(i);
            }
        }
        let mut choice1 = choice1?;
        let ceil = u32::try_from(total + 1).unwrap_or(u32::MAX);
        let mut r1 = i64::from(self.rng.below(ceil));
        let mut r2 = i64::from(self.rng.below(ceil));
        let (mut w1, mut w2): (i64, i64) = (-1, -1);
        let mut choice2 = None;
        for (DestId(i), d) in dests.ipvs_iter() {
            if !d.ipvs_eligible() {
                continue;
            }
            let w = i64::from(d.weight);
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && w1 == -1 {
                choice1 = i;
                w1 = w;
            }
            if r2 <= 0 && w2 == -1 {
                choice2 = Some(i);
                w2 = w;
            }
            if w1 != -1 && w2 != -1 {
                break;
            }
        }
        if let (Some(c2), Some(d1)) = (choice2, dests.get(DestId(choice1))) {
            let oh1 = i128::from(d1.conn_overhead());
            let oh2 = dests
                .get(DestId(c2))
                .map_or(0, |d| i128::from(d.conn_overhead()));
            if i128::from(w2) * oh1 > i128::from(w1) * oh2 {
                choice1 = c2;
            }
        }
        Some(DestId(choice1))
    }
}
