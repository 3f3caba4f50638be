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

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::hash::Crc32;
use crate::hash::ketama::Ring;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// nginx `hash $key` (not consistent).
#[derive(Clone, Copy, Debug, Default)]
pub struct Hash;

impl crate::Scheduler for Hash {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxHash
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let (primary, _) = super::split(dests);
        let key = flow.key.unwrap_or(&[]);
        let s = dests.as_mut_slice();
        let total = super::total_weight(s, &primary);
        if primary.len() < 2 || key.is_empty() || total == 0 {
            return super::round_robin(dests, now);
        }
        let mut acc: u64 = 0;
        let mut rehash: u32 = 0;
        let mut tries = 0u32;
        let mut num = String::new();
        loop {
            let mut c = Crc32::new();
            if rehash > 0 {
                num.clear();
                let _ = write!(num, "{rehash}");
                c = c.update(num.as_bytes());
            }
            let h = (c.update(key).finish() >> 16) & 0x7fff;
            acc += u64::from(h);
            rehash += 1;
            if let Some(i) = super::peer_at_weight(s, &primary, acc % total)
                && let Some(d) = s.get_mut(i)
                && d.nginx_usable(now)
            {
                super::mark_picked(d, now);
                return Some(DestId(i));
            }
            tries += 1;
            if tries > 20 {
                return super::round_robin(dests, now);
            }
        }
    }
}

/// nginx `hash $key consistent` (ketama).
#[derive(Clone, Debug, Default)]
pub struct Chash {
    ring: Ring,
    names: Vec<String>,
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
        let (primary, _) = super::split(dests);
        let names = &self.names;
        self.ring = Ring::build(primary.iter().filter_map(|&i| {
            let d = dests.get(DestId(i))?;
            Some((names.get(i)?.as_bytes(), d.weight, i))
        }));
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let (primary, _) = super::split(dests);
        let key = flow.key.unwrap_or(&[]);
        if primary.len() < 2 || key.is_empty() || self.ring.is_empty() {
            return super::round_robin(dests, now);
        }
        let mut point = self.ring.find_point(crate::hash::crc32(key));
        let mut tries = 0u32;
        let s = dests.as_mut_slice();
        loop {
            let server = self.ring.server_at(point).and_then(|i| self.names.get(i));
            if let Some(server) = server {
                let same: Vec<usize> = primary
                    .iter()
                    .copied()
                    .filter(|&i| self.names.get(i).is_some_and(|n| n == server))
                    .collect();
                if let Some(b) = super::smooth_pick(s, &same, |d| d.nginx_usable(now)) {
                    if let Some(d) = s.get_mut(b) {
                        super::mark_picked(d, now);
                    }
                    return Some(DestId(b));
                }
            }
            point = point.wrapping_add(1);
            tries += 1;
            if tries > 20 {
                return super::round_robin(dests, now);
            }
        }
    }
}
