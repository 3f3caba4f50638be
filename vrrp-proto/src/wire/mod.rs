//! The VRRP wire format: advertisements (v2 and v3, IPv4 and IPv6), their checksums, and the
//! announcement frames (gratuitous ARP, unsolicited neighbour advertisement) a new master sends.
//!
//! The layer follows smoltcp's contract:
//!
//! * [`Packet`] is a zero-copy view over any `T: AsRef<[u8]>`. [`Packet::new_checked`] makes
//!   sure the fixed header is there; after that no accessor panics. Untrusted input must go
//!   through `new_checked` (or [`Repr::parse`], which checks everything).
//! * [`Repr`] is the small, valid-only form. [`Repr::parse`] never panics and either returns a
//!   fully validated advertisement or a typed [`Error`]; [`Repr::emit`] writes exactly
//!   [`Repr::buffer_len`] bytes and returns [`InsufficientSize`] (leaving the buffer untouched)
//!   when the buffer is too short.
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr};
//! use vrrp_proto::wire::{AddrList, Auth, Ctx, Packet, Repr, Version};
//!
//! let vip = Ipv4Addr::new(10, 99, 0, 100).octets();
//! let repr = Repr {
//!     version: Version::V3,
//!     vrid: 51,
//!     priority: 100,
//!     adver_int: 10, // centiseconds: advert_int 0.1
//!     addrs: AddrList::new_v4(&vip).unwrap(),
//!     auth: Auth::None,
//! };
//! let ctx = Ctx::new(
//!     IpAddr::from([10, 99, 0, 11]),
//!     IpAddr::from([224, 0, 0, 18]),
//! );
//! let mut buf = [0u8; 64];
//! let n = repr.emit(&mut buf, &ctx).unwrap();
//! // Byte for byte what keepalived 2.2.7 sent for this advertisement (VRID 51, priority 100,
//! // one VIP, 10 cs, checksum 0x74fd over the IPv4 pseudo-header).
//! assert_eq!(&buf[..n], &[0x31, 0x33, 0x64, 0x01, 0x00, 0x0a, 0x74, 0xfd, 10, 99, 0, 100]);
//! let parsed = Repr::parse(&Packet::new_checked(&buf[..n]).unwrap(), &ctx).unwrap();
//! assert_eq!(parsed, repr);
//! ```

mod advert;
mod checksum;
mod frames;

pub use advert::{
    ADVERT_TYPE, AddrFamily, AddrList, Auth, Ctx, IPPROTO_VRRP, MULTICAST_V4, MULTICAST_V6, Packet,
    Repr, V3Checksum, Version,
};
pub use checksum::{internet_checksum, pseudo_header_sum};
pub use frames::{
    EthernetAddress, GARP_FRAME_LEN, NA_FRAME_LEN, gratuitous_arp, unsolicited_na, virtual_mac,
};

/// Why a VRRP message was refused. Each variant maps to one RFC 6527 / RFC 2787 counter (see
/// [`crate::Stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than the header or the advertised address count need.
    #[error("packet truncated: needed {needed} bytes, got {got}; the sender or the path cut it")]
    Truncated {
        /// Bytes the header and address count call for.
        needed: usize,
        /// Bytes received.
        got: usize,
    },
    /// More bytes than the address count and version allow.
    #[error("packet length {got} does not match the {expected} bytes its address count implies")]
    Length {
        /// Bytes implied by the header.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The version nibble is neither 2 nor 3 (or not the one this router runs).
    #[error("VRRP version {0} is not supported here; configure the same version on every router")]
    Version(u8),
    /// The type nibble is not 1 (ADVERTISEMENT).
    #[error("VRRP packet type {0} is not ADVERTISEMENT (1)")]
    Kind(u8),
    /// The checksum does not match the message.
    #[error(
        "bad checksum: stored {stored:#06x}, computed {computed:#06x} (corruption, or a peer using another VRRPv3 IPv4 checksum convention)"
    )]
    Checksum {
        /// The checksum in the packet.
        stored: u16,
        /// The checksum the message should carry.
        computed: u16,
    },
    /// The address count is zero (the minimum is one).
    #[error("the advertisement lists no address; at least one is required")]
    NoAddress,
    /// The v2 authentication type is not 0 or 1.
    #[error("VRRPv2 authentication type {0} is unknown")]
    AuthType(u8),
    /// The v2 authentication type is 2 (IP Authentication Header), which is not supported.
    #[error("VRRPv2 IP AH authentication (type 2) is not supported; use no auth or PASS")]
    IpAhAuth,
    /// The source and destination are of different families, or VRRPv2 is carried over IPv6.
    #[error("address family mismatch (VRRPv2 is IPv4-only; source and destination must agree)")]
    AddressFamily,
}

/// The output buffer is too small; nothing was written (the caller's bug, not the peer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("output buffer too small: {required} bytes required")]
pub struct InsufficientSize {
    /// How many bytes the output needs.
    pub required: usize,
}
