//! Time as the caller passes it in: the engine never reads a clock.
//!
//! Durations are [`core::time::Duration`]. [`Instant`] is a point on the caller's monotonic
//! clock, counted in microseconds from an epoch of the caller's choosing (boot, process start,
//! the start of a simulation). Only differences between instants mean anything.
//!
//! The type is [`hapri_time::Instant`], re-exported here and at the crate root, so the same
//! value serves `lvs-sched` (`lvs_sched::Instant`) too.

pub use hapri_time::Instant;
