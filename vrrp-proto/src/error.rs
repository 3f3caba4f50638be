//! Errors of the state machine.

use core::net::IpAddr;

use crate::wire;

/// Why [`crate::VirtualRouter::handle_packet`] dropped a packet. The router's state is
/// unchanged and the matching [`crate::Stats`] counter was bumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The message itself is malformed.
    #[error(transparent)]
    Wire(#[from] wire::Error),
    /// TTL (IPv4) or hop limit (IPv6) other than 255: the packet crossed a router.
    #[error("IP TTL/hop limit {0} is not 255; VRRP must not be routed")]
    IpTtl(u8),
    /// A valid message of the other VRRP version.
    #[error("received VRRPv{got} but this router runs VRRPv{expected}")]
    Version {
        /// Our version.
        expected: u8,
        /// The packet's version.
        got: u8,
    },
    /// The VRID is not ours.
    #[error("VRID {got} is not this router's ({expected})")]
    VrId {
        /// Our VRID.
        expected: u8,
        /// The packet's VRID.
        got: u8,
    },
    /// The v2 auth type differs from ours.
    #[error(
        "auth type {got} differs from the configured {expected}; configure the same authentication on every router"
    )]
    AuthTypeMismatch {
        /// Our auth type.
        expected: u8,
        /// The packet's auth type.
        got: u8,
    },
    /// The v2 password is wrong.
    #[error("authentication failed: wrong password")]
    AuthFailure,
    /// The advertisement interval differs from ours (v2) or is zero (v3).
    #[error("advertisement interval {got} cs differs from the configured {expected} cs")]
    AdvInterval {
        /// Our interval, centiseconds.
        expected: u16,
        /// The packet's interval, centiseconds.
        got: u16,
    },
    /// The address list differs from ours and the sender is not the address owner.
    #[error("the advertised virtual addresses differ from ours; fix virtual_ipaddress on one side")]
    AddressList,
    /// Our own advertisement, looped back.
    #[error("our own advertisement was looped back")]
    OwnAdvert,
    /// The source is not a configured unicast peer.
    #[error("advertisement from {0}, which is not a configured unicast peer")]
    UnknownSource(IpAddr),
    /// We are the address owner (priority 255), which discards adverts (RFC 5798 §7.1).
    #[error("the address owner discards advertisements")]
    Owner,
}
