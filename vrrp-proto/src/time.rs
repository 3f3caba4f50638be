//! Time as the caller passes it in: the engine never reads a clock.
//!
//! Durations are [`core::time::Duration`]. [`Instant`] is a point on the caller's monotonic
//! clock, counted in microseconds from an epoch of the caller's choosing (boot, process start,
//! the start of a simulation). Only differences between instants mean anything.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time on the caller's monotonic clock, in microseconds since the caller's epoch.
///
/// Build one with [`Instant::from_micros`] or [`Instant::from_millis`], or, with the `std`
/// feature, with [`Instant::from_std`] against a fixed `std::time::Instant` epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The caller's epoch.
    pub const ZERO: Self = Self { micros: 0 };

    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// The instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// The instant `since_epoch` after the epoch (saturating at `u64::MAX` microseconds).
    pub fn from_duration(since_epoch: Duration) -> Self {
        Self {
            micros: u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// The time elapsed from `epoch` to `now` as an [`Instant`] (zero if `now` is earlier).
    #[cfg(feature = "std")]
    pub fn from_std(epoch: std::time::Instant, now: std::time::Instant) -> Self {
        Self::from_duration(now.saturating_duration_since(epoch))
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> u64 {
        self.micros
    }

    /// Time since the epoch.
    pub const fn since_epoch(self) -> Duration {
        Duration::from_micros(self.micros)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

/// Microseconds in `d`, rounded up (so a non-zero duration never adds nothing), saturating.
pub(crate) fn duration_micros(d: Duration) -> u64 {
    let round_up = u128::from(!d.subsec_nanos().is_multiple_of(1000));
    u64::try_from(d.as_micros() + round_up).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Saturates at the end of time rather than overflowing.
    fn add(self, rhs: Duration) -> Self {
        Self {
            micros: self.micros.saturating_add(duration_micros(rhs)),
        }
    }
}

impl Sub<Self> for Instant {
    type Output = Duration;
    /// Saturates at zero.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Instant {
    /// Seconds with microsecond precision, e.g. `3.610000s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.micros / 1_000_000,
            self.micros % 1_000_000
        )
    }
}
