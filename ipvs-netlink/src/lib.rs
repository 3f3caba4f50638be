#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// The README links to `Client`, which only exists with the default `client` feature.
#![cfg_attr(not(feature = "client"), allow(rustdoc::broken_intra_doc_links))]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod apply;
pub mod error;
pub mod exchange;
pub mod model;
pub mod wire;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use apply::{ApplyReport, Change, DesiredService, plan};
#[cfg(feature = "client")]
pub use client::{Client, DEFAULT_TIMEOUT};
pub use error::{IpvsError, KernelError, Op};
pub use model::{
    ConfigError, DaemonState, Dest, DestEntry, Family, ForwardMethod, Info, Name, Netmask,
    Protocol, Service, ServiceEntry, ServiceFlags, ServiceKey, Stats, SyncDaemon, Timeouts,
    TunnelType,
};
