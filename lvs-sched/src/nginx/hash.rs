//! nginx `hash $key` and `hash $key consistent` (`ngx_http_upstream_hash_module.c`).
//!
//! Non-consistent ([`struct@Hash`]): Cache::Memcached-compatible. Try `n` (from 0) hashes
//! `((crc32([n as decimal] key) >> 16) & 0x7fff)`, accumulated, and take the peer where the sum
//! modulo `total_weight` falls; skip down/failed/full peers; after 20 tries, or with an empty
//! key or fewer than two peers, fall back to round robin.
//!
//! Consistent ([`Chash`]): the ketama ring of [`crate::hash::ketama`] over the primary peers'
//! names (`addr` formatted as `host:port`). Starting at the first point `>= crc32(key)`,
//! among the usable peers whose name matches the point's, smooth WRR picks one; if none,
//! move to the next point; after 20 tries fall back to round robin.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use super::Tried;
use crate::hash::Crc32;
use crate::hash::ketama::Ring;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// `n` in decimal, as nginx's `ngx_sprintf(buf, "%ui", n)` writes it, without allocating.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        // `n % 10 < 10`, so the narrowing is exact.
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or(&[])
}

/// nginx `hash $key` (not consistent). nginx finds the peer for a hash by walking the list
/// (O(n)); this uses an index of the running weight totals (O(1), see [`super::ip_hash`])
/// with the same result; [`Hash::reference`] keeps the walk.
#[derive(Clone, Debug, Default)]
pub struct Hash {
    /// Walk the list as nginx does instead of using `index`.
    reference: bool,
    index: super::WeightIndex,
}

impl Hash {
    /// The scheduler with the O(log n) prefix-sum lookup.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    /// nginx's list walk on every try: the reference the index is tested against.
    #[must_use]
    pub fn reference() -> Self {
        Self {
            reference: true,
            index: super::WeightIndex::default(),
        }
    }
}

impl crate::Scheduler for Hash {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxHash
    }
    schedule_by_pick!(index);
}

impl Hash {
    /// One try of a request (`ngx_http_upstream_get_hash_peer`): the accumulated hash, the
    /// re-hash count and the count of failed draws carry over from the request's earlier
    /// tries, and a tried peer counts as a failed draw.
    fn pick(
        &mut self,
        dests: &mut DestSet,
        flow: &Flow<'_>,
        now: Instant,
        t: &mut Tried,
    ) -> Option<DestId> {
        if t.start() {
            t.hash = 0;
            t.rehash = 0;
            t.tries = 0;
        }
        let key = flow.key.unwrap_or(&[]);
        let (peers, total) = if self.reference {
            super::primary_totals(dests.as_slice())
        } else {
            self.index.refresh(dests)
        };
        if t.tries > 20 || peers < 2 || key.is_empty() || total == 0 {
            return super::round_robin(dests, now, t);
        }
        let s = dests.as_mut_slice();
        let mut num = [0u8; 10];
        loop {
            let mut c = Crc32::new();
            if t.rehash > 0 {
                c = c.update(decimal(t.rehash, &mut num));
            }
            let h = (c.update(key).finish() >> 16) & 0x7fff;
            // nginx keeps the sum in a `uint32_t`.
            t.hash = (t.hash + u64::from(h)) & u64::from(u32::MAX);
            t.rehash = t.rehash.wrapping_add(1);
            let at = if self.reference {
                super::primary_at_weight(s, super::rem(t.hash, total))
            } else {
                self.index.at(self.index.rem(t.hash))
            };
            if let Some(i) = at
                && !t.has(i)
                && let Some(d) = s.get_mut(i)
                && d.nginx_usable(now)
            {
                super::mark_picked(d, now);
                t.mark(i);
                return Some(DestId(i));
            }
            t.tries += 1;
            if t.tries > 20 {
                return super::round_robin(dests, now, t);
            }
        }
    }
}

/// End of a same-name chain in [`Chash`].
const NONE: usize = usize::MAX;

/// nginx `hash $key consistent` (ketama).
#[derive(Clone, Debug, Default)]
pub struct Chash {
    ring: Ring,
    names: Vec<String>,
    /// For each index of `names`, the first index with the same name.
    first_same: Vec<usize>,
    /// For each index of `names`, the next index with the same name ([`NONE`] at the end):
    /// with `first_same`, the peers named like a ring point, in list order, without a scan.
    next_same: Vec<usize>,
    built_from: Vec<(core::net::SocketAddr, u32, bool)>,
}

impl Chash {
    /// An empty scheduler; call `rebuild` before use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    /// The ring (for measurement).
    #[must_use]
    pub const fn ring(&self) -> &Ring {
        &self.ring
    }
}

impl crate::Scheduler for Chash {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxChash
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let sig: Vec<_> = dests
            .iter()
            .map(|(_, d)| (d.addr, d.weight(), d.nginx.backup))
            .collect();
        if sig == self.built_from && !self.ring.is_empty() {
            return;
        }
        self.built_from = sig;
        self.names = dests
            .iter()
            .map(|(_, d)| {
                let mut n = String::new();
                let _ = write!(n, "{}", d.addr);
                n
            })
            .collect();
        let mut first_same = vec![NONE; self.names.len()];
        let mut next_same = vec![NONE; self.names.len()];
        // name -> (first, last) index seen so far
        let mut chains: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (i, name) in self.names.iter().enumerate() {
            let first = match chains.get_mut(name.as_str()) {
                Some((first, last)) => {
                    if let Some(n) = next_same.get_mut(*last) {
                        *n = i;
                    }
                    *last = i;
                    *first
                }
                None => {
                    chains.insert(name, (i, i));
                    i
                }
            };
            if let Some(f) = first_same.get_mut(i) {
                *f = first;
            }
        }
        self.first_same = first_same;
        self.next_same = next_same;
        let names = &self.names;
        self.ring = Ring::build(dests.iter().filter_map(|(id, d)| {
            if d.nginx.backup {
                return None;
            }
            Some((names.get(id.0)?.as_bytes(), d.weight, id.0))
        }));
    }
    schedule_by_pick!();
}

impl Chash {
    /// One try of a request (`ngx_http_upstream_get_chash_peer`): the request starts at the
    /// first point at or after `crc32(key)` (`init_chash_peer`) and stays at the point of its
    /// last pick, so a retry looks at the same server name first, skipping the tried peers;
    /// the count of points passed over carries over too.
    fn pick(
        &mut self,
        dests: &mut DestSet,
        flow: &Flow<'_>,
        now: Instant,
        t: &mut Tried,
    ) -> Option<DestId> {
        let key = flow.key.unwrap_or(&[]);
        if t.start() {
            t.tries = 0;
            t.hash = if self.ring.is_empty() {
                0
            } else {
                self.ring.find_point(crate::hash::crc32(key)) as u64
            };
        }
        if t.tries > 20
            || key.is_empty()
            || self.ring.is_empty()
            || !super::has_two_primaries(dests.as_slice())
        {
            return super::round_robin(dests, now, t);
        }
        let s = dests.as_mut_slice();
        loop {
            // The primary peers named like the point's server, in list order.
            let point = usize::try_from(t.hash).unwrap_or(usize::MAX);
            let first = self
                .ring
                .server_at(point)
                .and_then(|i| self.first_same.get(i));
            if let Some(&first) = first {
                let mut acc = super::Smooth::default();
                let mut j = first;
                while j != NONE {
                    if let Some(d) = s.get_mut(j)
                        && !d.nginx.backup
                        && !t.has(j)
                        && d.nginx_usable(now)
                    {
                        acc.step(j, d);
                    }
                    j = self.next_same.get(j).copied().unwrap_or(NONE);
                }
                if let Some(b) = acc.finish(s) {
                    if let Some(d) = s.get_mut(b) {
                        super::mark_picked(d, now);
                    }
                    t.mark(b);
                    return Some(DestId(b));
                }
            }
            t.hash = u64::try_from(point.wrapping_add(1)).unwrap_or(0);
            t.tries += 1;
            if t.tries > 20 {
                return super::round_robin(dests, now, t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::decimal;

    #[test]
    fn decimal_matches_format() {
        let mut buf = [0u8; 10];
        for n in (0..=10_000u32).chain([99_999, 1_000_000_000, u32::MAX - 1, u32::MAX]) {
            assert_eq!(decimal(n, &mut buf), format!("{n}").as_bytes());
        }
    }
}
