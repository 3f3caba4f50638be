//! nginx `ip_hash` (`ngx_http_upstream_ip_hash_module.c`): the hash starts at 89 and takes
//! `hash = (hash * 113 + byte) % 6271` over the first three octets of an IPv4 client (all
//! sixteen of an IPv6 one); the peer is where `hash % total_weight` falls in the weighted
//! list. If that peer is down, failed or full, the hash is stirred again from its current
//! value; after 20 tries (or with fewer than two peers) it falls back to round robin.
//!
//! nginx finds the peer by walking the list, subtracting weights (O(n)); here an index of
//! the running weight totals, with a bucket table over them, finds the same peer in O(1)
//! (a binary search within one bucket when weights are very uneven), rebuilt when a weight
//! or `backup` flag changes or a peer is added. [`IpHash::reference`] keeps the walk.

use super::Tried;
use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// nginx `ip_hash`.
#[derive(Clone, Debug, Default)]
pub struct IpHash {
    /// Walk the list as nginx does instead of using `index`.
    reference: bool,
    index: super::WeightIndex,
}

impl IpHash {
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

/// The bytes nginx hashes for a client address.
fn key_bytes(ip: core::net::IpAddr, buf: &mut [u8; 16]) -> &[u8] {
    match ip {
        core::net::IpAddr::V4(a) => {
            let o = a.octets();
            buf[..3].copy_from_slice(&o[..3]);
            &buf[..3]
        }
        core::net::IpAddr::V6(a) => {
            *buf = a.octets();
            &buf[..]
        }
    }
}

/// nginx's loop: `hash = (hash * 113 + byte) % 6271` for each byte.
fn stir_bytewise(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash * 113 + u64::from(b)) % 6271;
    }
    hash
}

/// [`stir_bytewise`] with one remainder per seven bytes instead of one per byte: reducing
/// modulo 6271 after every step or only at the end gives the same residue, and from
/// `hash < 6271` seven steps stay below `6271 * 114^7 < 2^61`, so nothing overflows.
fn stir(mut hash: u64, bytes: &[u8]) -> u64 {
    for chunk in bytes.chunks(7) {
        for &b in chunk {
            hash = hash * 113 + u64::from(b);
        }
        hash %= 6271;
    }
    hash
}

impl IpHash {
    /// One try of a request (`ngx_http_upstream_get_ip_hash_peer`), with its state in `t`:
    /// the hash and the count of failed draws carry over from the request's earlier tries,
    /// and tried peers count as failed draws.
    fn pick(
        &mut self,
        dests: &mut DestSet,
        flow: &Flow<'_>,
        now: Instant,
        t: &mut Tried,
    ) -> Option<DestId> {
        if t.start() {
            t.hash = 89;
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
        let mut buf = [0u8; 16];
        let bytes = key_bytes(flow.src.ip(), &mut buf);
        let mut hash = t.hash;
        loop {
            hash = if self.reference {
                stir_bytewise(hash, bytes)
            } else {
                stir(hash, bytes)
            };
            let pick = if self.reference {
                super::primary_at_weight(s, super::rem(hash, total))
            } else {
                self.index.at(self.index.rem(hash))
            };
            if let Some(i) = pick
                && !t.has(i)
                && let Some(d) = s.get_mut(i)
                && d.nginx_usable(now)
            {
                super::mark_picked(d, now);
                t.mark(i);
                t.hash = hash;
                return Some(DestId(i));
            }
            t.tries += 1;
            if t.tries > 20 {
                return super::round_robin(dests, now, t);
            }
        }
    }
}

impl crate::Scheduler for IpHash {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxIpHash
    }
    schedule_by_pick!(index);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{stir, stir_bytewise};

    proptest! {
        #[test]
        fn stir_equals_bytewise(start in 0u64..6271, bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(stir(start, &bytes), stir_bytewise(start, &bytes));
        }
    }

    #[test]
    fn stir_extremes() {
        for start in [0, 1, 89, 6270] {
            for len in 0..=16 {
                for b in [0u8, 1, 0x7f, 0xff] {
                    let bytes = [b; 16];
                    assert_eq!(
                        stir(start, &bytes[..len]),
                        stir_bytewise(start, &bytes[..len])
                    );
                }
            }
        }
    }
}
