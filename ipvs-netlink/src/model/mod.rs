//! Typed IPVS objects, valid by construction, and their conversion to and from attributes.
//!
//! Constructors check what the kernel (or ipvsadm) would refuse — scheduler names, port 0,
//! netmasks, weights, thresholds — and return a [`ConfigError`] naming the field, so a bad
//! request is refused before anything is sent.
//!
//! One concept per file; everything is re-exported here, so `model::X` (and the crate root's
//! `ipvs_netlink::X`) name every type.

mod addr;
mod daemon;
mod dest;
mod error;
mod global;
mod options;
mod service;
mod stats;

pub use addr::{Family, Protocol};
pub use daemon::{DaemonState, SyncDaemon};
pub use dest::{Dest, DestEntry, ForwardMethod, TunnelType};
pub use error::ConfigError;
pub use global::{Info, Timeouts};
pub use options::{Name, Netmask, ServiceFlags};
pub use service::{Service, ServiceEntry, ServiceKey};
pub use stats::Stats;
