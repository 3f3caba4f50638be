//! Persistence like `ipvsadm -p TIMEOUT -M NETMASK`: a client address, masked, maps to the
//! destination it was first sent to until `timeout` passes without use.
//!
//! As in the kernel (`ip_vs_check_template`, with the default `expire_quiescent_template = 0`),
//! a template stays valid while its destination is available, even at weight 0 or
//! overloaded; it is dropped when the destination becomes unavailable.
//!
//! Expiry is counted in whole milliseconds (the kernel at `HZ=1000`): a template made or
//! refreshed at `now` expires at `now.millis()` plus the timeout's whole milliseconds.

use alloc::collections::BTreeMap;
use core::net::IpAddr;
use core::time::Duration;

use crate::{DestId, DestSet, Instant, duration_millis};

/// Client → destination templates with expiry.
#[derive(Clone, Debug)]
pub struct Persistence {
    /// The timeout in whole milliseconds.
    timeout: u64,
    v4_prefix: u8,
    v6_prefix: u8,
    /// Masked client → (destination, expiry in milliseconds since the epoch).
    templates: BTreeMap<IpAddr, (DestId, u64)>,
}

impl Persistence {
    /// `-p timeout`, `-M` as a prefix length for IPv4 (`255.255.255.255` = 32) and IPv6
    /// (ipvsadm's default is 128); prefixes are clamped to 32 and 128.
    #[must_use]
    pub fn new(timeout: Duration, v4_prefix: u8, v6_prefix: u8) -> Self {
        Self {
            timeout: duration_millis(timeout),
            v4_prefix: v4_prefix.min(32),
            v6_prefix: v6_prefix.min(128),
            templates: BTreeMap::new(),
        }
    }

    /// The client address masked with the persistence netmask.
    #[must_use]
    pub fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.v4_prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & m).into())
            }
            IpAddr::V6(a) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.v6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & m).into())
            }
        }
    }

    /// The destination remembered for `client`, if the template is live and its destination
    /// available; refreshes the template's expiry.
    pub fn lookup(&mut self, dests: &DestSet, client: IpAddr, now: Instant) -> Option<DestId> {
        let key = self.mask(client);
        let (now, timeout) = (now.millis(), self.timeout);
        let (id, expires) = self.templates.get_mut(&key)?;
        if now >= *expires || !dests.get(*id).is_some_and(crate::Dest::is_available) {
            self.templates.remove(&key);
            return None;
        }
        *expires = now.saturating_add(timeout);
        Some(*id)
    }

    /// Remember that `client` went to `dest`.
    pub fn insert(&mut self, client: IpAddr, dest: DestId, now: Instant) {
        let key = self.mask(client);
        let expires = now.millis().saturating_add(self.timeout);
        self.templates.insert(key, (dest, expires));
    }

    /// Drop expired templates.
    pub fn expire(&mut self, now: Instant) {
        let now = now.millis();
        self.templates.retain(|_, (_, e)| now < *e);
    }

    /// Number of templates held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    /// Whether no template is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}
