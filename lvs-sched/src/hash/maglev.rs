//! The kernel's Maglev table (`ip_vs_mh.c`): permutations from `hsiphash` with fixed keys,
//! weights divided by their gcd and right-shifted so `weight/gcd` fits in
//! `IP_VS_MH_TAB_BITS` (6) bits, filled round by round with `turns` slots per destination.

use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::{addr_fold, siphash13_u32};

/// The kernel's default table size (`CONFIG_IP_VS_MH_TAB_INDEX` 12 → `primes[4]`).
pub const DEFAULT_TABLE_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` for the default index (12 / 2).
pub const TAB_BITS: u32 = 6;
const C1: u64 = 2_654_435_761;
const C2: u64 = 2_654_446_892;

/// `ip_vs_mh_hashkey` with key `hash1` (`second == false`) or `hash2`: `hsiphash` of the
/// `u32` `offset + port + ntohl(addr_fold)` (little-endian bytes, as on x86-64).
#[must_use]
#[inline]
pub fn mh_hashkey(addr: SocketAddr, port: u16, second: bool, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr.ip()));
    let k = if second { C2 } else { C1 };
    siphash13_u32(k, k, v) as u32
}

fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A built Maglev lookup table: slot → index into the input list.
#[derive(Clone, Debug, Default)]
pub struct Table {
    slots: Vec<Option<usize>>,
}

impl Table {
    /// Build a table of `size` slots (a prime) from `(address, weight, index)` in list
    /// order, where `weight` is the kernel's `last_weight`. Weight-0 entries get no slot; if
    /// every weight is 0 the table is empty (all `None`).
    #[must_use]
    pub fn build(dests: &[(SocketAddr, u32, usize)], size: usize) -> Self {
        let mut slots = vec![None; size];
        if size < 2 {
            return Self { slots };
        }
        let g = dests
            .iter()
            .filter(|d| d.1 > 0)
            .fold(0u32, |g, d| gcd(g, d.1));
        if g < 1 {
            return Self { slots };
        }
        let mw = dests.iter().map(|d| d.1).max().unwrap_or(0) / g;
        let fls = 32 - mw.leading_zeros();
        let shift = fls.saturating_sub(TAB_BITS);
        let size32 = u32::try_from(size).unwrap_or(u32::MAX);
        // (perm, skip, turns)
        let mut setup: Vec<(u32, u32, u32)> = dests
            .iter()
            .map(|&(a, w, _)| {
                let offset = mh_hashkey(a, a.port(), false, 0) % size32;
                let skip = mh_hashkey(a, a.port(), true, 0) % (size32 - 1) + 1;
                let t = (w / g) >> shift;
                let turns = if t != 0 { t } else { u32::from(w != 0) };
                (offset, skip, turns)
            })
            .collect();
        let mut taken = vec![false; size];
        let mut n = 0usize;
        let mut dt_count = 0u32;
        'outer: while n < size {
            let mut i = 0usize;
            while let (Some(ds), Some(&(_, _, idx))) = (setup.get_mut(i), dests.get(i)) {
                if ds.2 < 1 {
                    i += 1;
                    continue;
                }
                let mut c = ds.0 as usize;
                while taken.get(c).copied().unwrap_or(false) {
                    ds.0 += ds.1;
                    if ds.0 >= size32 {
                        ds.0 -= size32;
                    }
                    c = ds.0 as usize;
                }
                if let (Some(t), Some(s)) = (taken.get_mut(c), slots.get_mut(c)) {
                    *t = true;
                    *s = Some(idx);
                }
                n += 1;
                if n == size {
                    break 'outer;
                }
                dt_count += 1;
                if dt_count >= ds.2 {
                    dt_count = 0;
                    i += 1;
                }
            }
        }
        Self { slots }
    }
    /// Number of slots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    /// Whether the table has no slots.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    /// The entry in slot `i % len()`.
    #[must_use]
    pub fn slot(&self, i: usize) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let n = self.slots.len();
        let i = if i < n { i } else { i % n };
        self.slots.get(i).copied().flatten()
    }
    /// All slots.
    #[must_use]
    pub fn slots(&self) -> &[Option<usize>] {
        &self.slots
    }
}
