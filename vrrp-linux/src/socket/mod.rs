//! The sockets VRRP needs on Linux: raw IP sockets for protocol 112 and an `AF_PACKET` socket
//! for gratuitous ARP and unsolicited neighbour advertisements.
//!
//! Everything here is non-blocking and registered with tokio through
//! [`tokio::io::unix::AsyncFd`] ([`register`]). The one `unsafe` block of the crate lives in
//! [`packet`]: building the `sockaddr_ll` a link-layer send needs.

pub mod packet;
pub mod raw_ip;

use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub use packet::PacketSocket;
pub use raw_ip::{Received, VrrpRecvSocket, VrrpSendSocket};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;

/// Why a socket operation failed. Every variant names the operation and keeps the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A socket call failed.
    #[error("{op} on {iface}: {source} (raw sockets need root or CAP_NET_RAW)")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// The interface concerned.
        iface: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl IoError {
    /// A [`IoError::Socket`] for `op` on `iface`.
    pub fn socket(op: &'static str, iface: &str, source: std::io::Error) -> Self {
        Self::Socket {
            op,
            iface: iface.to_owned(),
            source,
        }
    }
}

/// Sockets of this module that own their descriptor for their whole life (so registering
/// them with the tokio reactor is sound).
pub trait OwnsFd: AsRawFd + sealed::Sealed {}

impl OwnsFd for VrrpRecvSocket {}
impl sealed::Sealed for VrrpRecvSocket {}
impl OwnsFd for crate::timer::Timer {}
impl sealed::Sealed for crate::timer::Timer {}
// netlink-sys's socket closes its descriptor on drop and never replaces it.
impl OwnsFd for netlink_sys::Socket {}
impl sealed::Sealed for netlink_sys::Socket {}

mod sealed {
    pub trait Sealed {}
}

/// Registers `sock` with the current tokio runtime for readability.
///
/// tokio 1.54 deprecates the safe `AsyncFd` constructors in favour of an `unsafe` one
/// whose contract is I/O safety; the [`OwnsFd`] types satisfy it (their descriptor is owned,
/// never closed or replaced while registered), so the deprecated call is confined here.
pub fn register<T: OwnsFd>(sock: T) -> std::io::Result<AsyncFd<T>> {
    #[allow(
        deprecated,
        reason = "OwnsFd types own their fd for as long as they are registered"
    )]
    AsyncFd::with_interest(sock, Interest::READABLE)
}
