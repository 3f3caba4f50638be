//! `lblcr`, locality-based least connection with replication (`ip_vs_lblcr.c`): a table
//! from destination address to a *set* of servers. The set's least-loaded member (weighted,
//! as `wlc`) is used unless it is missing or lblc-overloaded; then `wlc` over all servers
//! picks one, which is added to the set (at the front). When the set has more than one
//! member and was last modified more than `expiration` ago, its most-loaded member is dropped.
//! Whole entries expire `expiration` after last use (checked on access here, by a timer in
//! the kernel).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use super::lblc::{DEFAULT_EXPIRATION, lblc_overloaded};
use crate::dest::Dest;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

#[derive(Clone, Debug)]
struct Entry {
    set: Vec<usize>,
    lastuse: Instant,
    lastmod: Instant,
}

/// The `lblcr` scheduler.
#[derive(Clone, Debug)]
pub struct Lblcr {
    expiration: Duration,
    table: BTreeMap<IpAddr, Entry>,
}

impl Default for Lblcr {
    fn default() -> Self {
        Self::new(DEFAULT_EXPIRATION)
    }
}

fn set_min(set: &[usize], s: &[Dest]) -> Option<usize> {
    let mut least: Option<(usize, u64, u32)> = None;
    for &i in set {
        let Some(d) = s.get(i) else { continue };
        if d.overloaded {
            continue;
        }
        match least {
            None => {
                if d.weight > 0 && d.available {
                    least = Some((i, d.conn_overhead(), d.weight));
                }
            }
            Some((_, loh, lw)) => {
                let doh = d.conn_overhead();
                if super::ratio_less(doh, d.weight, loh, lw) && d.available {
                    least = Some((i, doh, d.weight));
                }
            }
        }
    }
    least.map(|l| l.0)
}

fn set_max(set: &[usize], s: &[Dest]) -> Option<usize> {
    let mut most: Option<(usize, u64, u32)> = None;
    for &i in set {
        let Some(d) = s.get(i) else { continue };
        match most {
            None => {
                if d.weight > 0 {
                    most = Some((i, d.conn_overhead(), d.weight));
                }
            }
            Some((_, moh, mw)) => {
                let doh = d.conn_overhead();
                if super::ratio_less(moh, mw, doh, d.weight) && d.weight > 0 {
                    most = Some((i, doh, d.weight));
                }
            }
        }
    }
    most.map(|m| m.0)
}

impl Lblcr {
    /// A scheduler whose sets shrink, and entries expire, after `expiration`.
    #[must_use]
    pub fn new(expiration: Duration) -> Self {
        Self {
            expiration,
            table: BTreeMap::new(),
        }
    }
    /// Drop entries unused for `expiration`.
    pub fn expire(&mut self, now: Instant) {
        let exp = self.expiration;
        self.table
            .retain(|_, e| now < e.lastuse.saturating_add(exp));
    }
    /// The replica set cached for `addr`, in the kernel's list order.
    #[must_use]
    pub fn replicas(&self, addr: IpAddr) -> Option<Vec<DestId>> {
        self.table
            .get(&addr)
            .map(|e| e.set.iter().map(|&i| DestId(i)).collect())
    }
}

impl crate::Scheduler for Lblcr {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblcr
    }
    fn rebuild(&mut self, dests: &DestSet) {
        let n = dests.len();
        for e in self.table.values_mut() {
            e.set.retain(|&i| i < n);
        }
    }
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let key = flow.dst.ip();
        let s = dests.as_slice();
        let exp = self.expiration;
        if self
            .table
            .get(&key)
            .is_some_and(|e| now >= e.lastuse.saturating_add(exp))
        {
            self.table.remove(&key);
        }
        if let Some(e) = self.table.get_mut(&key) {
            e.lastuse = now;
            let min = set_min(&e.set, s);
            if e.set.len() > 1
                && now > e.lastmod.saturating_add(exp)
                && let Some(m) = set_max(&e.set, s)
            {
                e.set.retain(|&i| i != m);
                e.lastmod = now;
            }
            if let Some(d) = min
                && s.get(d).is_some_and(|dd| !lblc_overloaded(dd, s))
            {
                return Some(DestId(d));
            }
            let pick = super::wlc_scan(s, Dest::conn_overhead)?;
            if !e.set.contains(&pick) {
                e.set.insert(0, pick);
                e.lastmod = now;
            }
            return Some(DestId(pick));
        }
        let pick = super::wlc_scan(s, Dest::conn_overhead)?;
        self.table.insert(
            key,
            Entry {
                set: alloc::vec![pick],
                lastuse: now,
                lastmod: now,
            },
        );
        Some(DestId(pick))
    }
}
