#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(any(feature = "std", test))]
extern crate std;

use core::fmt;
use core::ops::{Add, AddAssign, Sub, SubAssign};
use core::time::Duration;

/// A point in time on the caller's monotonic clock, in microseconds since the caller's epoch.
///
/// Build one with [`Instant::from_micros`], [`Instant::from_millis`], [`Instant::from_secs`]
/// or [`Instant::from_duration`], or, with the `std` feature, with [`Instant::from_std`]
/// against a fixed `std::time::Instant` epoch. Instants run from [`Instant::ZERO`] (the
/// epoch) to [`Instant::MAX`] (`u64::MAX` microseconds, about 584,942 years later).
///
/// `Debug` and `Display` print seconds with microsecond precision, e.g. `3.610000s`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The caller's epoch.
    pub const ZERO: Self = Self { micros: 0 };

    /// The last representable instant, `u64::MAX` microseconds after the epoch: the end of
    /// time, where saturating arithmetic stops.
    pub const MAX: Self = Self { micros: u64::MAX };

    /// The instant `micros` microseconds after the epoch.
    ///
    /// ```
    /// # use hapri_time::Instant;
    /// assert_eq!(Instant::from_micros(1_500).micros(), 1_500);
    /// ```
    #[must_use]
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// The instant `millis` milliseconds after the epoch (saturating at [`Instant::MAX`]).
    ///
    /// ```
    /// # use hapri_time::Instant;
    /// assert_eq!(Instant::from_millis(1_500), Instant::from_micros(1_500_000));
    /// assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
    /// ```
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// The instant `secs` seconds after the epoch (saturating at [`Instant::MAX`]).
    ///
    /// ```
    /// # use hapri_time::Instant;
    /// assert_eq!(Instant::from_secs(60), Instant::from_millis(60_000));
    /// assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
    /// ```
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// The instant `since_epoch` after the epoch, in whole microseconds (rounded down,
    /// saturating at [`Instant::MAX`]).
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// assert_eq!(Instant::from_duration(Duration::from_nanos(2_999)), Instant::from_micros(2));
    /// assert_eq!(Instant::from_duration(Duration::MAX), Instant::MAX);
    /// ```
    #[must_use]
    pub const fn from_duration(since_epoch: Duration) -> Self {
        Self {
            micros: saturate(since_epoch.as_micros()),
        }
    }

    /// The time elapsed from `epoch` to `now` as an [`Instant`] (zero if `now` is earlier),
    /// in whole microseconds (rounded down).
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let epoch = std::time::Instant::now();
    /// let later = epoch + Duration::from_millis(250);
    /// assert_eq!(Instant::from_std(epoch, later), Instant::from_millis(250));
    /// assert_eq!(Instant::from_std(later, epoch), Instant::ZERO);
    /// ```
    #[cfg(feature = "std")]
    #[must_use]
    pub fn from_std(epoch: std::time::Instant, now: std::time::Instant) -> Self {
        Self::from_duration(now.saturating_duration_since(epoch))
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn micros(self) -> u64 {
        self.micros
    }

    /// Whole milliseconds since the epoch (rounded down): the clock of a kernel at
    /// `HZ=1000`, for code that counts milliseconds.
    ///
    /// ```
    /// # use hapri_time::Instant;
    /// assert_eq!(Instant::from_micros(1_999).millis(), 1);
    /// assert_eq!(Instant::from_millis(42).millis(), 42);
    /// ```
    #[must_use]
    pub const fn millis(self) -> u64 {
        self.micros / 1_000
    }

    /// Time since the epoch.
    #[must_use]
    pub const fn since_epoch(self) -> Duration {
        Duration::from_micros(self.micros)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let (a, b) = (Instant::from_millis(1), Instant::from_millis(3));
    /// assert_eq!(b.saturating_duration_since(a), Duration::from_millis(2));
    /// assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    /// ```
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }

    /// `self - earlier`, or `None` when `earlier` is later.
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let (a, b) = (Instant::from_millis(1), Instant::from_millis(3));
    /// assert_eq!(b.checked_duration_since(a), Some(Duration::from_millis(2)));
    /// assert_eq!(a.checked_duration_since(b), None);
    /// ```
    #[must_use]
    pub const fn checked_duration_since(self, earlier: Self) -> Option<Duration> {
        match self.micros.checked_sub(earlier.micros) {
            Some(d) => Some(Duration::from_micros(d)),
            None => None,
        }
    }

    /// `self + d` (with `d` rounded up to whole microseconds), or `None` past
    /// [`Instant::MAX`].
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let t = Instant::from_millis(1);
    /// assert_eq!(t.checked_add(Duration::from_nanos(1)), Some(Instant::from_micros(1_001)));
    /// assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
    /// assert_eq!(Instant::ZERO.checked_add(Duration::MAX), None);
    /// ```
    #[must_use]
    pub const fn checked_add(self, d: Duration) -> Option<Self> {
        let Some(dm) = checked_duration_micros(d) else {
            return None;
        };
        match self.micros.checked_add(dm) {
            Some(micros) => Some(Self { micros }),
            None => None,
        }
    }

    /// `self + d` (with `d` rounded up to whole microseconds), saturating at
    /// [`Instant::MAX`]; the same as `self + d`.
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let t = Instant::from_secs(1).saturating_add(Duration::from_millis(500));
    /// assert_eq!(t, Instant::from_millis(1_500));
    /// assert_eq!(t.saturating_add(Duration::MAX), Instant::MAX);
    /// ```
    #[must_use]
    pub const fn saturating_add(self, d: Duration) -> Self {
        Self {
            micros: self.micros.saturating_add(duration_micros(d)),
        }
    }

    /// `self - d` (with `d` rounded up to whole microseconds), or `None` before
    /// [`Instant::ZERO`].
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let t = Instant::from_millis(1);
    /// assert_eq!(t.checked_sub(Duration::from_nanos(1)), Some(Instant::from_micros(999)));
    /// assert_eq!(t.checked_sub(Duration::from_millis(2)), None);
    /// ```
    #[must_use]
    pub const fn checked_sub(self, d: Duration) -> Option<Self> {
        let Some(dm) = checked_duration_micros(d) else {
            return None;
        };
        match self.micros.checked_sub(dm) {
            Some(micros) => Some(Self { micros }),
            None => None,
        }
    }

    /// `self - d` (with `d` rounded up to whole microseconds), saturating at
    /// [`Instant::ZERO`]; the same as `self - d`.
    ///
    /// ```
    /// # use core::time::Duration;
    /// # use hapri_time::Instant;
    /// let t = Instant::MAX.saturating_sub(Duration::from_micros(10));
    /// assert_eq!(t.micros(), u64::MAX - 10);
    /// assert_eq!(t.saturating_sub(Duration::MAX), Instant::ZERO);
    /// ```
    #[must_use]
    pub const fn saturating_sub(self, d: Duration) -> Self {
        Self {
            micros: self.micros.saturating_sub(duration_micros(d)),
        }
    }
}

/// Microseconds in `d`, rounded up (so a non-zero duration never adds nothing), saturating
/// at `u64::MAX`. This is how [`Instant`]'s arithmetic counts a [`Duration`].
///
/// ```
/// # use core::time::Duration;
/// # use hapri_time::duration_micros;
/// assert_eq!(duration_micros(Duration::from_millis(3)), 3_000);
/// assert_eq!(duration_micros(Duration::from_nanos(1)), 1);
/// assert_eq!(duration_micros(Duration::from_nanos(1_001)), 2);
/// assert_eq!(duration_micros(Duration::MAX), u64::MAX);
/// ```
#[must_use]
pub const fn duration_micros(d: Duration) -> u64 {
    match checked_duration_micros(d) {
        Some(m) => m,
        None => u64::MAX,
    }
}

/// Microseconds in `d`, rounded up, or `None` when they do not fit in a `u64`.
const fn checked_duration_micros(d: Duration) -> Option<u64> {
    let round_up = if d.subsec_nanos().is_multiple_of(1_000) {
        0
    } else {
        1
    };
    let m = d.as_micros() + round_up;
    if m > u64::MAX as u128 {
        None
    } else {
        Some(m as u64)
    }
}

/// `m` as a `u64`, `u64::MAX` when larger.
const fn saturate(m: u128) -> u64 {
    if m > u64::MAX as u128 {
        u64::MAX
    } else {
        m as u64
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    /// Saturates at [`Instant::MAX`] rather than overflowing ([`Instant::saturating_add`]).
    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

impl AddAssign<Duration> for Instant {
    /// Saturates at [`Instant::MAX`] rather than overflowing ([`Instant::saturating_add`]).
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    /// Saturates at [`Instant::ZERO`] ([`Instant::saturating_sub`]).
    fn sub(self, rhs: Duration) -> Self {
        self.saturating_sub(rhs)
    }
}

impl SubAssign<Duration> for Instant {
    /// Saturates at [`Instant::ZERO`] ([`Instant::saturating_sub`]).
    fn sub_assign(&mut self, rhs: Duration) {
        *self = self.saturating_sub(rhs);
    }
}

impl Sub<Self> for Instant {
    type Output = Duration;
    /// Saturates at zero ([`Instant::saturating_duration_since`]).
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

#[cfg(test)]
mod tests {
    use std::format;

    use super::*;

    #[test]
    fn constructors_agree() {
        assert_eq!(Instant::from_secs(3), Instant::from_millis(3_000));
        assert_eq!(Instant::from_millis(3), Instant::from_micros(3_000));
        assert_eq!(
            Instant::from_duration(Duration::from_millis(3)),
            Instant::from_millis(3)
        );
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!(Instant::from_micros(u64::MAX), Instant::MAX);
    }

    #[test]
    fn constructors_saturate() {
        assert_eq!(Instant::from_millis(u64::MAX / 1_000 + 1), Instant::MAX);
        assert_eq!(Instant::from_secs(u64::MAX / 1_000_000 + 1), Instant::MAX);
        assert_eq!(Instant::from_duration(Duration::MAX), Instant::MAX);
        assert_eq!(
            Instant::from_millis(u64::MAX / 1_000).micros(),
            u64::MAX / 1_000 * 1_000
        );
    }

    #[test]
    fn from_duration_rounds_down_and_add_rounds_up() {
        let d = Duration::from_nanos(1_500);
        assert_eq!(Instant::from_duration(d), Instant::from_micros(1));
        assert_eq!(Instant::ZERO + d, Instant::from_micros(2));
        assert_eq!(Instant::from_micros(5) - d, Instant::from_micros(3));
    }

    #[test]
    fn millis_rounds_down() {
        assert_eq!(Instant::from_micros(999).millis(), 0);
        assert_eq!(Instant::from_micros(1_000).millis(), 1);
        assert_eq!(Instant::MAX.millis(), u64::MAX / 1_000);
        for ms in [0, 1, 59_999, 60_000, u64::MAX / 1_000] {
            assert_eq!(Instant::from_millis(ms).millis(), ms);
        }
    }

    #[test]
    fn duration_micros_rounds_up_and_saturates() {
        assert_eq!(duration_micros(Duration::ZERO), 0);
        assert_eq!(duration_micros(Duration::from_nanos(999)), 1);
        assert_eq!(duration_micros(Duration::from_nanos(1_000)), 1);
        assert_eq!(duration_micros(Duration::from_nanos(1_001)), 2);
        assert_eq!(duration_micros(Duration::from_micros(u64::MAX)), u64::MAX);
        assert_eq!(
            duration_micros(Duration::from_micros(u64::MAX) + Duration::from_nanos(1)),
            u64::MAX
        );
        assert_eq!(duration_micros(Duration::MAX), u64::MAX);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(10);
        assert_eq!(Instant::MAX + Duration::from_micros(1), Instant::MAX);
        assert_eq!(t + Duration::MAX, Instant::MAX);
        assert_eq!(t - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(t - Instant::MAX, Duration::ZERO);
        assert_eq!(
            Instant::MAX - Instant::ZERO,
            Duration::from_micros(u64::MAX)
        );
        let mut u = t;
        u += Duration::from_millis(5);
        assert_eq!(u, Instant::from_millis(15));
        u -= Duration::from_millis(20);
        assert_eq!(u, Instant::ZERO);
    }

    #[test]
    fn checked_arithmetic() {
        let t = Instant::from_millis(10);
        assert_eq!(
            t.checked_add(Duration::from_millis(5)),
            Some(Instant::from_millis(15))
        );
        assert_eq!(
            Instant::MAX.checked_sub(Duration::from_micros(u64::MAX)),
            Some(Instant::ZERO)
        );
        assert_eq!(
            Instant::ZERO.checked_add(Duration::from_micros(u64::MAX)),
            Some(Instant::MAX)
        );
        // One nanosecond past `u64::MAX` microseconds rounds up past the end.
        let past = Duration::from_micros(u64::MAX) + Duration::from_nanos(1);
        assert_eq!(Instant::ZERO.checked_add(past), None);
        assert_eq!(Instant::MAX.checked_sub(past), None);
        assert_eq!(t.checked_sub(Duration::from_millis(11)), None);
        assert_eq!(
            t.checked_duration_since(Instant::ZERO),
            Some(Duration::from_millis(10))
        );
        assert_eq!(Instant::ZERO.checked_duration_since(t), None);
    }

    #[test]
    fn ordering_and_since_epoch() {
        assert!(Instant::ZERO < Instant::from_micros(1));
        assert!(Instant::from_micros(u64::MAX - 1) < Instant::MAX);
        assert_eq!(
            Instant::from_millis(1_500).since_epoch(),
            Duration::from_millis(1_500)
        );
    }

    #[test]
    fn display_and_debug() {
        let t = Instant::from_millis(3_610);
        assert_eq!(format!("{t}"), "3.610000s");
        assert_eq!(format!("{t:?}"), "3.610000s");
        assert_eq!(format!("{}", Instant::from_micros(1)), "0.000001s");
        assert_eq!(format!("{}", Instant::MAX), "18446744073709.551615s");
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_std_measures_from_the_epoch() {
        let epoch = std::time::Instant::now();
        let later = epoch + Duration::from_nanos(2_500_999);
        assert_eq!(Instant::from_std(epoch, later), Instant::from_micros(2_500));
        assert_eq!(Instant::from_std(later, epoch), Instant::ZERO);
    }
}
