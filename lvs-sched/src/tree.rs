//! A segment tree over the kernel's list positions that keeps the "best" eligible
//! destination, with ties going to the first in the list (the kernel's scan order). O(log n) per change, O(1)
//! per query.

use alloc::vec;
use alloc::vec::Vec;

use crate::dest::Dest;
use crate::{DestId, DestSet};

/// Which least-connection rule the tree orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    Lc,
    Wlc,
    Sed,
    Nq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    idle: bool,
    load: u64,
    weight: u32,
}

impl Rule {
    fn key(self, d: &Dest) -> Option<Key> {
        if !d.ipvs_eligible() {
            return None;
        }
        let load = match self {
            Self::Lc | Self::Wlc => d.conn_overhead(),
            Self::Sed | Self::Nq => u64::from(d.active) + 1,
        };
        Some(Key {
            idle: self == Self::Nq && d.active == 0,
            load,
            weight: d.weight,
        })
    }

    /// Whether `b` strictly beats `a` (so `b` replaces `a` in the kernel's scan).
    fn beats(self, b: &Key, a: &Key) -> bool {
        match self {
            Self::Lc => b.load < a.load,
            Self::Nq if a.idle || b.idle => b.idle && !a.idle,
            _ => {
                u128::from(a.load) * u128::from(b.weight)
                    > u128::from(b.load) * u128::from(a.weight)
            }
        }
    }
}

type Node = Option<(Key, usize)>;

#[derive(Clone, Debug)]
pub(crate) struct LeastTree {
    rule: Rule,
    cap: usize,
    nodes: Vec<Node>,
}

impl LeastTree {
    pub(crate) const fn new(rule: Rule) -> Self {
        Self {
            rule,
            cap: 0,
            nodes: Vec::new(),
        }
    }

    fn combine(&self, l: Node, r: Node) -> Node {
        match (l, r) {
            (Some(a), Some(b)) => {
                if self.rule.beats(&b.0, &a.0) {
                    Some(b)
                } else {
                    Some(a)
                }
            }
            (None, x) | (x, None) => x,
        }
    }

    /// Leaves are list positions (0 = head); each holds the destination's id.
    pub(crate) fn rebuild(&mut self, dests: &DestSet) {
        let cap = dests.len().next_power_of_two().max(1);
        self.cap = cap;
        self.nodes = vec![None; 2 * cap];
        for (pos, (DestId(i), d)) in dests.ipvs_iter().enumerate() {
            if let Some(n) = self.nodes.get_mut(cap + pos) {
                *n = self.rule.key(d).map(|k| (k, i));
            }
        }
        for i in (1..cap).rev() {
            let l = self.nodes.get(2 * i).copied().flatten();
            let r = self.nodes.get(2 * i + 1).copied().flatten();
            let c = self.combine(l, r);
            if let Some(n) = self.nodes.get_mut(i) {
                *n = c;
            }
        }
    }

    pub(crate) fn update(&mut self, dests: &DestSet, id: DestId) {
        let Some(pos) = dests.ipvs_position(id) else {
            return;
        };
        if pos >= self.cap || dests.len() > self.cap {
            self.rebuild(dests);
            return;
        }
        let Some(d) = dests.get(id) else {
            return;
        };
        let mut i = self.cap + pos;
        if let Some(n) = self.nodes.get_mut(i) {
            *n = self.rule.key(d).map(|k| (k, id.0));
        }
        while i > 1 {
            i /= 2;
            let l = self.nodes.get(2 * i).copied().flatten();
            let r = self.nodes.get(2 * i + 1).copied().flatten();
            let c = self.combine(l, r);
            if let Some(n) = self.nodes.get_mut(i) {
                *n = c;
            }
        }
    }

    pub(crate) fn best(&self) -> Option<usize> {
        self.nodes.get(1).copied().flatten().map(|(_, i)| i)
    }
}
