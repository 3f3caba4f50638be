//! The name registry: `SchedulerKind` parses the names users type (`"wlc"`, `"mh"`,
//! `"ip_hash"`) and builds the scheduler, like the kernel's `ip_vs_sched_getbyname`.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::ipvs::lblc::DEFAULT_EXPIRATION;
use crate::ipvs::lblc_table::DEFAULT_TAB_BITS;
use crate::{Instant, Scheduler, SplitMix64, ipvs, nginx};

/// Every scheduler this crate knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchedulerKind {
    /// IPVS `rr`.
    Rr,
    /// IPVS `wrr`.
    Wrr,
    /// IPVS `lc`.
    Lc,
    /// IPVS `wlc` (the ipvsadm default).
    Wlc,
    /// IPVS `sed`.
    Sed,
    /// IPVS `nq`.
    Nq,
    /// IPVS `dh`.
    Dh,
    /// IPVS `sh`.
    Sh,
    /// IPVS `lblc`.
    Lblc,
    /// IPVS `lblcr`.
    Lblcr,
    /// IPVS `mh`.
    Mh,
    /// IPVS `fo`.
    Fo,
    /// IPVS `ovf`.
    Ovf,
    /// IPVS `twos`.
    Twos,
    /// nginx smooth weighted round robin (the default), name `round_robin`.
    NginxRoundRobin,
    /// nginx `ip_hash`.
    NginxIpHash,
    /// nginx `hash $key`, name `hash`.
    NginxHash,
    /// nginx `hash $key consistent`, name `hash_consistent`.
    NginxChash,
    /// nginx `least_conn`.
    NginxLeastConn,
    /// nginx `random`.
    NginxRandom,
    /// nginx `random two least_conn`, name `random_two`.
    NginxRandomTwo,
}

/// The scheduler flags of `ipvsadm -b`: `sh-fallback`/`mh-fallback` (`IP_VS_SVC_F_SCHED1`)
/// and `sh-port`/`mh-port` (`IP_VS_SVC_F_SCHED2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedFlags {
    /// Look for another destination when the hashed one is unavailable.
    pub fallback: bool,
    /// Hash the client's source port too.
    pub port: bool,
}

/// How to build a scheduler: flags and the starting value of the injected RNG.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedConfig {
    /// `sh`/`mh` flags.
    pub flags: SchedFlags,
    /// Seed of the [`SplitMix64`] used by `twos`, `random`, `random_two`.
    pub seed: u64,
    /// When the service is created (`ipvsadm -A`): `lblc`/`lblcr` run their collection
    /// timer at `created + 60 s`, `+ 120 s`, ... Default [`Instant::ZERO`].
    pub created: Instant,
    /// The `lblc_expiration` / `lblcr_expiration` sysctl for an `lblc`/`lblcr` scheduler;
    /// `None` is the kernel's default, 24 h.
    pub expiration: Option<Duration>,
}

/// An unknown scheduler name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("unknown scheduler `{name}`: use one of {valid}")]
pub struct UnknownScheduler {
    /// The name that was given.
    pub name: String,
    /// The valid names, comma-separated.
    pub valid: &'static str,
}

const VALID: &str = "rr, wrr, lc, wlc, sed, nq, dh, sh, lblc, lblcr, mh, fo, ovf, twos, \
                     round_robin, ip_hash, hash, hash_consistent, least_conn, random, random_two";

impl SchedulerKind {
    /// Every kind, IPVS first, in the kernel's and nginx's documentation order.
    pub const ALL: &'static [Self] = &[
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Sed,
        Self::Nq,
        Self::Dh,
        Self::Sh,
        Self::Lblc,
        Self::Lblcr,
        Self::Mh,
        Self::Fo,
        Self::Ovf,
        Self::Twos,
        Self::NginxRoundRobin,
        Self::NginxIpHash,
        Self::NginxHash,
        Self::NginxChash,
        Self::NginxLeastConn,
        Self::NginxRandom,
        Self::NginxRandomTwo,
    ];

    /// The name (`"wlc"`, `"ip_hash"`, ...).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Mh => "mh",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Twos => "twos",
            Self::NginxRoundRobin => "round_robin",
            Self::NginxIpHash => "ip_hash",
            Self::NginxHash => "hash",
            Self::NginxChash => "hash_consistent",
            Self::NginxLeastConn => "least_conn",
            Self::NginxRandom => "random",
            Self::NginxRandomTwo => "random_two",
        }
    }

    /// Whether the choice depends only on the flow and the set (hashing schedulers).
    #[must_use]
    pub const fn is_hashing(self) -> bool {
        matches!(
            self,
            Self::Dh | Self::Sh | Self::Mh | Self::NginxIpHash | Self::NginxHash | Self::NginxChash
        )
    }

    /// Whether this is an nginx balancer (uses `max_fails`, `backup`, `down`).
    #[must_use]
    pub const fn is_nginx(self) -> bool {
        matches!(
            self,
            Self::NginxRoundRobin
                | Self::NginxIpHash
                | Self::NginxHash
                | Self::NginxChash
                | Self::NginxLeastConn
                | Self::NginxRandom
                | Self::NginxRandomTwo
        )
    }

    /// Build the scheduler. Call [`Scheduler::rebuild`] before the first `schedule` (a
    /// [`crate::Service`] does).
    #[must_use]
    pub fn build(self, config: SchedConfig) -> Box<dyn Scheduler> {
        let rng = || Box::new(SplitMix64::new(config.seed));
        let exp = config.expiration.unwrap_or(DEFAULT_EXPIRATION);
        match self {
            Self::Rr => Box::new(ipvs::rr::Rr::new()),
            Self::Wrr => Box::new(ipvs::wrr::Wrr::new()),
            Self::Lc => Box::new(ipvs::lc::Lc::new()),
            Self::Wlc => Box::new(ipvs::wlc::Wlc::new()),
            Self::Sed => Box::new(ipvs::sed::Sed::new()),
            Self::Nq => Box::new(ipvs::nq::Nq::new()),
            Self::Dh => Box::new(ipvs::dh::Dh::new()),
            Self::Sh => Box::new(ipvs::sh::Sh::new(config.flags)),
            Self::Lblc => Box::new(ipvs::lblc::Lblc::with_table_bits(
                exp,
                config.created,
                DEFAULT_TAB_BITS,
            )),
            Self::Lblcr => Box::new(ipvs::lblcr::Lblcr::with_table_bits(
                exp,
                config.created,
                DEFAULT_TAB_BITS,
            )),
            Self::Mh => Box::new(ipvs::mh::Mh::new(config.flags)),
            Self::Fo => Box::new(ipvs::fo::Fo),
            Self::Ovf => Box::new(ipvs::ovf::Ovf),
            Self::Twos => Box::new(ipvs::twos::Twos::new(rng())),
            Self::NginxRoundRobin => Box::new(nginx::round_robin::RoundRobin::new()),
            Self::NginxIpHash => Box::new(nginx::ip_hash::IpHash::new()),
            Self::NginxHash => Box::new(nginx::hash::Hash::new()),
            Self::NginxChash => Box::new(nginx::hash::Chash::new()),
            Self::NginxLeastConn => Box::new(nginx::least_conn::LeastConn),
            Self::NginxRandom => Box::new(nginx::random::Random::new(false, rng())),
            Self::NginxRandomTwo => Box::new(nginx::random::Random::new(true, rng())),
        }
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = UnknownScheduler;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let alias = match s {
            "swrr" => Some(Self::NginxRoundRobin),
            "chash" => Some(Self::NginxChash),
            "random_two_least_conn" => Some(Self::NginxRandomTwo),
            _ => None,
        };
        alias
            .or_else(|| Self::ALL.iter().copied().find(|k| k.name() == s))
            .ok_or_else(|| UnknownScheduler {
                name: String::from(s),
                valid: VALID,
            })
    }
}

/// Build a scheduler by name with default flags and seed 0 (`by_name("wlc")`).
///
/// # Errors
/// [`UnknownScheduler`] (listing the valid names) if `name` is not a known scheduler.
pub fn by_name(name: &str) -> Result<Box<dyn Scheduler>, UnknownScheduler> {
    Ok(name.parse::<SchedulerKind>()?.build(SchedConfig::default()))
}
