//! A `timerfd` on `CLOCK_MONOTONIC` armed at absolute deadlines: the daemon's one timer.
//!
//! tokio's timer wheel rounds to milliseconds and wakes twice for a sleep longer than 64 ms
//! (once at the wheel level boundary, once at the slot); re-arming it also wakes the driver.
//! A `timerfd` armed at the exact microsecond wakes the loop once per deadline, which halves
//! the daemon's CPU time per advert and makes its timers as exact as the kernel's.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use nix::time::clock_gettime;

/// The timer. Deadlines are given as offsets from an epoch (a `std::time::Instant`, which is
/// `CLOCK_MONOTONIC` on Linux).
#[derive(Debug)]
pub struct Timer {
    fd: TimerFd,
    /// `CLOCK_MONOTONIC` at the epoch.
    mono_epoch: Duration,
    armed: Option<Duration>,
}

impl Timer {
    /// A disarmed timer whose deadlines count from `epoch`.
    pub fn new(epoch: std::time::Instant) -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let since = epoch.elapsed();
        let now = clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)?;
        let now = Duration::new(
            u64::try_from(now.tv_sec()).unwrap_or(0),
            u32::try_from(now.tv_nsec()).unwrap_or(0),
        );
        Ok(Self {
            fd,
            mono_epoch: now.saturating_sub(since),
            armed: None,
        })
    }

    /// Arms the timer to fire `at` after the epoch (or disarms it with `None`). Re-arming at
    /// the same deadline costs nothing.
    pub fn arm(&mut self, at: Option<Duration>) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        match at {
            None => self.fd.unset()?,
            Some(d) => {
                // Never zero (that would disarm it): the monotonic clock is far from 0 here.
                let abs = (self.mono_epoch + d).max(Duration::from_nanos(1));
                self.fd.set(
                    Expiration::OneShot(TimeSpec::from_duration(abs)),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )?;
            }
        }
        self.armed = at;
        Ok(())
    }

    /// Marks the armed deadline as spent (after the descriptor was reported readable), so the
    /// next [`arm`](Self::arm) sets it again, even to the same deadline. No read is needed:
    /// setting a timerfd resets its expiry count, and with edge-triggered polling (tokio's)
    /// the next expiry is reported afresh.
    pub fn clear(&mut self) {
        self.armed = None;
    }
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}
