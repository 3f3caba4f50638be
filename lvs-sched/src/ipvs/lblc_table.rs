//! The cache table shared by `lblc` and `lblcr`, with the kernel's periodic garbage
//! collection (the `periodic_timer` of `ip_vs_lblc.c` / `ip_vs_lblcr.c`).
//!
//! Reproduced behaviour (all times in whole milliseconds, i.e. the kernel at `HZ=1000`: an
//! [`Instant`] counts as its [`Instant::millis`], rounded down; jiffies wrap-around is not
//! modelled):
//!
//! - The table has `2^bits` buckets (`CONFIG_IP_VS_LBLC_TAB_BITS`, default 10); an address
//!   goes to bucket `hash_32(ntohl(addr_fold), bits)` (IPv6: the XOR of its four 32-bit
//!   words). Only the bucket matters for the collection walk: a walk always processes a
//!   whole bucket before it checks its goal, so the order inside a bucket never changes
//!   which entries are dropped. The table is a `BTreeMap` keyed by (bucket, address), so
//!   walking it in key order is walking the kernel's buckets in index order.
//! - The timer first fires `CHECK_EXPIRE_INTERVAL` (60 s) after the table is created and
//!   then every 60 s. `counter` starts at 1. At each firing: if `counter % 30 == 0`, the
//!   *full check* drops every entry with `now >= lastuse + expiration` and sets `counter` to
//!   1; else, if the table holds at most `max_size = 16 × 2^bits` entries, `counter` is
//!   incremented and nothing else happens; else the *over-full walk* runs: with
//!   `goal = min((entries - max_size) * 4 / 3, max_size / 2)`, it visits the buckets
//!   `rover + 1, rover + 2, ...` (mod `2^bits`, at most `2^bits` of them), drops in each the
//!   entries with `now >= lastuse + ENTRY_TIMEOUT` (6 min), subtracting one from `goal` per
//!   entry, stops after the bucket where `goal <= 0`, and leaves `rover` at the last bucket
//!   visited. `counter` does not move on an over-full firing, so the full check waits while
//!   the table stays over-full.
//! - Firings are run in time order by `tick` ([`crate::Scheduler::tick`]), each at its own firing time, before
//!   the caller's lookup at `now`; runs of firings that cannot change the table (counter
//!   increments, full checks with nothing expired, walks with nothing old enough) are
//!   skipped arithmetically, so a long gap costs no more than the firings that drop entries.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use crate::hash::{addr_fold, hash_32};
use crate::{Instant, duration_millis};

/// The kernel's `CHECK_EXPIRE_INTERVAL`: the collection timer's period (60 s).
pub const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// The kernel's `ENTRY_TIMEOUT`: idle time after which the over-full walk may drop an entry.
pub const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// The kernel's `COUNT_FOR_FULL_EXPIRATION`: every 30th firing (while not over-full) is a
/// full expiration check.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// The kernel's default `CONFIG_IP_VS_LBLC_TAB_BITS` / `CONFIG_IP_VS_LBLCR_TAB_BITS`.
pub const DEFAULT_TAB_BITS: u32 = 10;
/// Largest table size accepted by [`crate::ipvs::lblc::Lblc::with_table_bits`] (2^20 buckets).
pub const MAX_TAB_BITS: u32 = 20;

const INTERVAL_MS: u64 = 60_000;
const ENTRY_TIMEOUT_MS: u64 = 360_000;
const LOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const HIGH: IpAddr = IpAddr::V6(Ipv6Addr::new(
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
));

/// The bucket of `addr` in a table of `2^bits` buckets (`ip_vs_lblc_hashkey`).
#[must_use]
pub fn bucket(addr: IpAddr, bits: u32) -> u32 {
    hash_32(addr_fold(addr), bits.clamp(1, MAX_TAB_BITS))
}

/// An entry that records its last use.
pub(crate) trait LastUse {
    fn lastuse(&self) -> Instant;
}

/// The timer's state, for inspection and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerState {
    /// When the timer fires next (saturating at [`Instant::MAX`]).
    pub next_check: Instant,
    /// The kernel's `tbl->counter` (1..=30; a firing with 30 runs the full check).
    pub counter: u32,
    /// The kernel's `tbl->rover`: the last bucket the over-full walk visited.
    pub rover: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Table<E> {
    map: BTreeMap<(u32, IpAddr), E>,
    bits: u32,
    expiration_ms: u64,
    next: u64,
    counter: u32,
    rover: u32,
}

impl<E: LastUse> Table<E> {
    pub(crate) fn new(expiration: Duration, created: Instant, bits: u32) -> Self {
        Self {
            map: BTreeMap::new(),
            bits: bits.clamp(1, MAX_TAB_BITS),
            expiration_ms: duration_millis(expiration),
            next: created.millis().saturating_add(INTERVAL_MS),
            counter: 1,
            rover: 0,
        }
    }

    pub(crate) fn set_expiration(&mut self, expiration: Duration) {
        self.expiration_ms = duration_millis(expiration);
    }

    pub(crate) fn timer(&self) -> TimerState {
        TimerState {
            next_check: Instant::from_millis(self.next),
            counter: self.counter,
            rover: self.rover,
        }
    }

    pub(crate) fn bits(&self) -> u32 {
        self.bits
    }

    fn key(&self, addr: IpAddr) -> (u32, IpAddr) {
        (hash_32(addr_fold(addr), self.bits), addr)
    }

    pub(crate) fn get(&self, addr: IpAddr) -> Option<&E> {
        self.map.get(&self.key(addr))
    }

    pub(crate) fn get_mut(&mut self, addr: IpAddr) -> Option<&mut E> {
        let k = self.key(addr);
        self.map.get_mut(&k)
    }

    pub(crate) fn insert(&mut self, addr: IpAddr, e: E) {
        let k = self.key(addr);
        self.map.insert(k, e);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut E> {
        self.map.values_mut()
    }

    /// Every entry in the kernel's bucket order (bucket index, then address).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpAddr, &E)> {
        self.map.iter().map(|(k, e)| (k.1, e))
    }

    fn max_size(&self) -> usize {
        16usize << self.bits
    }

    fn oldest(&self) -> Option<u64> {
        self.map.values().map(|e| e.lastuse().millis()).min()
    }

    /// The number of firing times `from + k * 60 s` (k >= 0) before `target`.
    fn firings_before(from: u64, target: u64) -> u64 {
        if target <= from {
            0
        } else {
            (target - from).div_ceil(INTERVAL_MS)
        }
    }

    /// A full check at `now` outside the timer (the timer's state does not change).
    pub(crate) fn full_check_now(&mut self, now: Instant) {
        let (now, exp) = (now.millis(), self.expiration_ms);
        self.map
            .retain(|_, e| now < e.lastuse().millis().saturating_add(exp));
    }

    /// Run every timer firing due at or before `now`, in order.
    pub(crate) fn tick(&mut self, now: Instant) {
        let now = now.millis();
        while self.next <= now {
            let t = self.next;
            self.step(now);
            if t == u64::MAX {
                // The clock cannot go further: one firing at the end of time is enough.
                break;
            }
        }
    }

    /// One firing at `self.next <= now`, or a run of firings that cannot change the table.
    fn step(&mut self, now: u64) {
        let t = self.next;
        let period = u64::from(COUNT_FOR_FULL_EXPIRATION) * INTERVAL_MS;
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            // Whole cycles (a full check and 29 counter increments, all at or before `now`)
            // that drop nothing can be skipped: the table does not change.
            let wake = self
                .oldest()
                .map_or(u64::MAX, |o| o.saturating_add(self.expiration_ms));
            if self.map.len() <= self.max_size() && wake > t {
                let complete = match t.checked_add(29 * INTERVAL_MS) {
                    Some(end) if now >= end => (now - end) / period + 1,
                    _ => 0,
                };
                let quiet = (wake - t).div_ceil(period);
                let skip = complete.min(quiet);
                if skip > 0 {
                    self.next = t.saturating_add(skip.saturating_mul(period));
                    return;
                }
            }
            let exp = self.expiration_ms;
            self.map
                .retain(|_, e| t < e.lastuse().millis().saturating_add(exp));
            self.counter = 1;
            self.next = t.saturating_add(INTERVAL_MS);
            return;
        }
        if self.map.len() <= self.max_size() {
            // Counter increments up to the next full check, as far as `now` allows.
            let due = (now - t) / INTERVAL_MS + 1;
            let m = u64::from(COUNT_FOR_FULL_EXPIRATION - self.counter).min(due);
            self.counter += u32::try_from(m).unwrap_or(0);
            self.next = t.saturating_add(m * INTERVAL_MS);
            return;
        }
        let removed = self.walk(t);
        self.next = t.saturating_add(INTERVAL_MS);
        if removed == 0 {
            // Nothing is old enough: later walks do nothing until the oldest entry is.
            let wake = self
                .oldest()
                .map_or(u64::MAX, |o| o.saturating_add(ENTRY_TIMEOUT_MS));
            let target = wake.min(now.saturating_add(1));
            let skip = Self::firings_before(self.next, target);
            self.next = self.next.saturating_add(skip.saturating_mul(INTERVAL_MS));
        }
    }

    /// The over-full walk at time `t`; returns how many entries it dropped.
    fn walk(&mut self, t: u64) -> usize {
        let size = 1u32 << self.bits;
        let mask = size - 1;
        let excess = self.map.len() - self.max_size();
        let cap = self.max_size() / 2;
        let mut goal = i64::try_from(excess.saturating_mul(4) / 3)
            .unwrap_or(i64::MAX)
            .min(i64::try_from(cap).unwrap_or(i64::MAX));
        let mut j = self.rover;
        let mut removed = 0;
        let mut stale: Vec<(u32, IpAddr)> = Vec::new();
        for _ in 0..size {
            j = (j + 1) & mask;
            stale.clear();
            stale.extend(
                self.map
                    .range((j, LOW)..=(j, HIGH))
                    .filter(|(_, e)| t >= e.lastuse().millis().saturating_add(ENTRY_TIMEOUT_MS))
                    .map(|(k, _)| *k),
            );
            for k in &stale {
                self.map.remove(k);
                goal -= 1;
            }
            removed += stale.len();
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
        removed
    }
}
