#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod time;
pub mod wire;

#[cfg(feature = "alloc")]
mod config;
#[cfg(feature = "alloc")]
mod error;
#[cfg(feature = "alloc")]
pub mod policy;
#[cfg(feature = "alloc")]
mod router;
#[cfg(feature = "alloc")]
mod stats;

#[cfg(feature = "sim")]
pub mod sim;

#[cfg(feature = "smoltcp")]
pub mod smoltcp_driver;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use time::Instant;

#[cfg(feature = "alloc")]
pub use config::{
    Announce, Config, ConfigBuilder, ConfigError, IpCidr, MAX_PREEMPT_DELAY, MAX_VIPS,
};
#[cfg(feature = "alloc")]
pub use error::RecvError;
#[cfg(feature = "alloc")]
pub use router::{Action, Reason, RecvMeta, State, Transmit, VirtualRouter};
#[cfg(feature = "alloc")]
pub use stats::Stats;
