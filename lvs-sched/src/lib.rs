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

/// The transport protocol of a flow (the kernel's `sh-port`/`mh-port` only use the port for
/// TCP, UDP and SCTP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
        matches!(self, Self::Tcp | Self::Udp | Self::Sctp)
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
