#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod dest;
pub mod hash;
pub mod ipvs;
pub mod nginx;
pub mod persistence;
pub mod registry;
pub mod rng;
pub mod service;
mod tree;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use core::fmt;
use core::net::SocketAddr;

pub use dest::{Dest, DestId, DestSet, NginxPeer};
pub use registry::{SchedConfig, SchedFlags, SchedulerKind, UnknownScheduler};
pub use rng::{Rng, SplitMix64};
pub use service::Service;

/// A point in time on the caller's monotonic clock ([`hapri_time::Instant`], microseconds
/// since an epoch the caller chooses; the same type as `vrrp_proto::Instant`).
///
/// The crate never reads a clock: every time-dependent call takes `now`, and time must
/// only go forward. The kernel's and nginx's timers reproduced here count whole milliseconds
/// ([`Instant::millis`], rounded down), as the kernel does at `HZ=1000`.
pub use hapri_time::Instant;

/// Whole milliseconds in `d` (rounded down, saturating): a duration as the kernel's and
/// nginx's timers reproduced here count it, next to [`Instant::millis`].
pub(crate) fn duration_millis(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The transport protocol of a flow or of a virtual service (the kernel's `sh-port`/`mh-port`
/// only use the port for TCP, UDP and SCTP; IPVS virtual services are TCP, UDP or SCTP).
///
/// Compared, hashed and ordered by IP protocol number: `Other(6)` is `Tcp`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// Any other IP protocol number.
    Other(u8),
}

impl Protocol {
    /// Whether the kernel reads a port from this protocol's header (TCP, UDP, SCTP).
    #[must_use]
    pub const fn has_ports(self) -> bool {
        matches!(self.number(), 6 | 17 | 132)
    }

    /// The IP protocol number (`IPPROTO_TCP` = 6, `IPPROTO_UDP` = 17, `IPPROTO_SCTP` = 132).
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
            Self::Other(n) => n,
        }
    }

    /// The protocol with IP protocol number `n`; `Other(n)` unless it is TCP, UDP or SCTP, so
    /// that `from_number(p.number()) == p` for every `p` built this way.
    #[must_use]
    pub const fn from_number(n: u8) -> Self {
        match n {
            6 => Self::Tcp,
            17 => Self::Udp,
            132 => Self::Sctp,
            other => Self::Other(other),
        }
    }
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Self) -> bool {
        self.number() == other.number()
    }
}

impl Eq for Protocol {}

impl core::hash::Hash for Protocol {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.number().hash(state);
    }
}

impl PartialOrd for Protocol {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Protocol {
    /// By IP protocol number.
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.number().cmp(&other.number())
    }
}

/// The packet (IPVS) or request (nginx) being scheduled.
#[derive(Clone, Copy, Debug)]
pub struct Flow<'a> {
    /// Client address and port (`sh`, `mh` and nginx `ip_hash` hash the client).
    pub src: SocketAddr,
    /// Virtual service address and port (`dh`, `lblc`, `lblcr` hash the destination address).
    pub dst: SocketAddr,
    /// Transport protocol.
    pub proto: Protocol,
    /// The evaluated key of nginx `hash $key [consistent]`; `None` (or empty) makes nginx fall
    /// back to round robin.
    pub key: Option<&'a [u8]>,
}

impl<'a> Flow<'a> {
    /// A TCP flow from `src` to `dst` with no nginx hash key.
    #[must_use]
    pub const fn tcp(src: SocketAddr, dst: SocketAddr) -> Self {
        Self {
            src,
            dst,
            proto: Protocol::Tcp,
            key: None,
        }
    }
    /// The same flow with the nginx `hash` key set.
    #[must_use]
    pub const fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }
}

/// One scheduling algorithm: the kernel's `struct ip_vs_scheduler` (or an nginx upstream
/// balancer) as a Rust trait.
///
/// Call [`Scheduler::rebuild`] after creating it and after any change to the configured set
/// (the kernel's `init_service`/`add_dest`/`del_dest`/`upd_dest`), [`Scheduler::dest_updated`]
/// when one destination's configuration changes, and [`Scheduler::load_changed`] when only a
/// destination's connection counters or overload flag changed. [`Service`] does all of this
/// for you.
pub trait Scheduler: Send + fmt::Debug {
    /// Which algorithm this is.
    fn kind(&self) -> SchedulerKind;
    /// Rebuild all state from the destination set (kernel `init_service`, `add_dest`,
    /// `del_dest`).
    fn rebuild(&mut self, dests: &DestSet);
    /// One destination's configuration (weight, thresholds, availability) changed: the kernel's
    /// `upd_dest`. The default rebuilds everything.
    fn dest_updated(&mut self, dests: &DestSet, id: DestId) {
        let _ = id;
        self.rebuild(dests);
    }
    /// One destination's connection counters or overload flag changed (no kernel callback;
    /// the kernel schedulers read them live). The default does nothing.
    fn load_changed(&mut self, dests: &DestSet, id: DestId) {
        let _ = (dests, id);
    }
    /// Run the scheduler's timers due at or before `now` (the kernel's `lblc`/`lblcr`
    /// garbage-collection timer; see [`ipvs::lblc_table`]). `schedule` runs them itself
    /// before deciding, so calling this is only needed to collect state without scheduling.
    /// The default does nothing.
    fn tick(&mut self, now: Instant) {
        let _ = now;
    }
    /// Choose a destination for `flow`. `None` is the kernel's "no destination available"
    /// (nginx: `NGX_BUSY`). nginx balancers update their per-peer smooth-WRR state in `dests`.
    fn schedule(&mut self, dests: &mut DestSet, flow: &Flow<'_>, now: Instant) -> Option<DestId>;
    /// Choose the next peer for a request that may already have tried some (nginx's
    /// `proxy_next_upstream` retries): `tried` is the request's state (see [`nginx::Tried`]),
    /// updated with the pick. The nginx balancers skip the peers already tried, move to the
    /// backup list when the primary list has nothing left, and carry their per-request hash
    /// state over, as nginx does; `None` is `NGX_BUSY`. The first call with a new
    /// [`nginx::Tried`] decides exactly as [`Scheduler::schedule`].
    ///
    /// IPVS has no per-request retries: the default (used by the IPVS schedulers) is
    /// [`Scheduler::schedule`], with the choice recorded in `tried`.
    fn schedule_next(
        &mut self,
        dests: &mut DestSet,
        flow: &Flow<'_>,
        now: Instant,
        tried: &mut nginx::Tried,
    ) -> Option<DestId> {
        let id = self.schedule(dests, flow, now)?;
        tried.insert(id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::Protocol;

    /// Equality, order and hashing agree, by protocol number.
    #[test]
    fn protocols_are_their_numbers() {
        use core::hash::{BuildHasher, BuildHasherDefault};
        type H = BuildHasherDefault<std::hash::DefaultHasher>;
        for n in 0..=u8::MAX {
            let p = Protocol::from_number(n);
            assert_eq!(p.number(), n);
            assert_eq!(p, Protocol::Other(n));
            assert_eq!(
                H::default().hash_one(p),
                H::default().hash_one(Protocol::Other(n))
            );
            assert_eq!(p.has_ports(), matches!(n, 6 | 17 | 132));
        }
        assert_eq!(Protocol::from_number(6), Protocol::Tcp);
        assert!(matches!(Protocol::from_number(17), Protocol::Udp));
        assert!(Protocol::Tcp < Protocol::Udp && Protocol::Udp < Protocol::Sctp);
        assert!(Protocol::Other(47) > Protocol::Udp);
    }
}
