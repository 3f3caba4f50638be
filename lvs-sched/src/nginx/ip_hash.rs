//! nginx `ip_hash` (`ngx_http_upstream_ip_hash_module.c`): the hash starts at 89 and takes
//! `hash = (hash * 113 + byte) % 6271` over the first three octets of an IPv4 client (all
//! sixteen of an IPv6 one); the peer is where `hash % total_weight` falls in the weighted
//! list. If that peer is down, failed or full, the hash is stirred again from its current
//! value; after 20 tries (or with fewer than two peers) it falls back to round robin.

use crate::{DestId, DestSet, Flow, Instant, SchedulerKind};

/// nginx `ip_hash`.
#[derive(Clone, Copy, Debug, Default)]
pub struct IpHash;

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

impl crate::Scheduler for IpHash {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::NginxIpHash
    }
    fn rebuild(&mut self, _dests: &DestSet) {}
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        let s = dests.as_mut_slice();
        let (peers, total) = super::primary_totals(s);
        if peers < 2 || total == 0 {
            return super::round_robin(dests, now);
        }
        let mut buf = [0u8; 16];
        let bytes = key_bytes(flow.src.ip(), &mut buf);
        let mut hash: u64 = 89;
        let mut tries = 0u32;
        loop {
            for &b in bytes {
                hash = (hash * 113 + u64::from(b)) % 6271;
            }
            let pick = super::primary_at_weight(s, hash % total);
            if let Some(i) = pick
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
