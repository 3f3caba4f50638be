//! The pure wire layer: netlink and generic-netlink framing, attributes, and every IPVS
//! command and attribute of `include/uapi/linux/ip_vs.h`.
//!
//! No sockets, no I/O, no `unsafe`: everything here is a function of bytes, so it is
//! property-tested and fuzzed. Parsers never panic; unknown attributes survive as
//! [`RawNla`] (`Other` variants) so replies from newer kernels parse and re-emit.
//!
//! Byte order follows the kernel: integers are native-endian except the ports
//! (`IPVS_SVC_ATTR_PORT`, `IPVS_DEST_ATTR_PORT`, `IPVS_DEST_ATTR_TUN_PORT`), which are
//! big-endian, and addresses, which are 16-byte `nf_inet_addr` unions.
//!
//! ```
//! use ipvs_netlink::wire::{IpvsCmd, IpvsMessage, CmdAttr, ServiceAttr};
//!
//! // IPVS_CMD_GET_SERVICE for TCP 10.0.0.1:80, as ipvsadm -L -t 10.0.0.1:80 sends it.
//! let mut addr = [0u8; 16];
//! addr[..4].copy_from_slice(&[10, 0, 0, 1]);
//! let msg = IpvsMessage::new(IpvsCmd::GetService, vec![CmdAttr::Service(vec![
//!     ServiceAttr::Af(2),
//!     ServiceAttr::Protocol(6),
//!     ServiceAttr::Addr(addr),
//!     ServiceAttr::Port(80),
//! ])]);
//! let bytes = msg.to_vec();
//! assert_eq!(&bytes[..4], &[4, 1, 0, 0]); // genl header: cmd 4, version 1, reserved
//! // the port attribute: len 6, type 4 (IPVS_SVC_ATTR_PORT), 80 big-endian, 2 bytes padding
//! assert!(bytes.windows(8).any(|w| w == [6, 0, 4, 0, 0, 80, 0, 0]));
//! assert_eq!(IpvsMessage::parse(&bytes)?, msg);
//! # Ok::<(), ipvs_netlink::wire::Error>(())
//! ```

#![forbid(unsafe_code)]
#![warn(clippy::indexing_slicing)]

pub mod consts;

mod cmd;
mod daemon;
mod dest;
mod message;
pub(crate) mod netlink;
pub(crate) mod nla;
mod service;
mod stats;

pub use cmd::IpvsCmd;
pub use daemon::DaemonAttr;
pub use dest::DestAttr;
pub use message::{CmdAttr, IpvsMessage};
pub use netlink::{
    GENL_HEADER_LEN, GenlMessage, NLMSG_HEADER_LEN, NetlinkHeader, NetlinkMessage, NetlinkPayload,
    parse_stream,
};
pub use nla::{NlaIter, RawNla};
pub use service::ServiceAttr;
pub use stats::StatsAttr;

/// Why bytes could not be parsed, or a message could not be emitted.
///
/// Every variant names the field that was wrong, so a bad kernel reply (or a fuzzer's input)
/// can be diagnosed from the message alone.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ended before a header or value was complete.
    #[error(
        "truncated {what}: needed {needed} bytes, got {got}; the reply is cut short (a receive buffer too small, or a hostile sender)"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// A length field is smaller than its own header or larger than the buffer.
    #[error(
        "bad length {len} in {what} header ({available} bytes available); the message is malformed"
    )]
    BadLength {
        /// Which header.
        what: &'static str,
        /// The length the header claims.
        len: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// A known attribute has the wrong payload size for its type.
    #[error(
        "attribute {what} has {got} bytes, expected {expected}; the sender disagrees with include/uapi/linux/ip_vs.h"
    )]
    AttrSize {
        /// The attribute's kernel name.
        what: &'static str,
        /// Payload bytes expected.
        expected: usize,
        /// Payload bytes found.
        got: usize,
    },
    /// A string attribute is not UTF-8.
    #[error("attribute {what} is not UTF-8; names of schedulers, engines and interfaces are ASCII")]
    NotUtf8 {
        /// The attribute's kernel name.
        what: &'static str,
    },
    /// The output buffer given to `emit` is too small; nothing was written.
    #[error(
        "output buffer too small: {required} bytes required, {got} given; call buffer_len() first"
    )]
    InsufficientSize {
        /// Bytes `emit` needs.
        required: usize,
        /// Bytes the caller gave.
        got: usize,
    },
    /// A message or attribute would not fit its 16- or 32-bit length field.
    #[error("{what} too large to encode ({len} bytes); split the request")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// Its size.
        len: usize,
    },
}

/// Round `len` up to the 4-byte netlink alignment (`NLA_ALIGN`, `NLMSG_ALIGN`).
#[must_use]
pub const fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// Read exactly `N` bytes of an attribute payload.
pub(crate) fn fixed<const N: usize>(what: &'static str, value: &[u8]) -> Result<[u8; N], Error> {
    <[u8; N]>::try_from(value).map_err(|_| Error::AttrSize {
        what,
        expected: N,
        got: value.len(),
    })
}

pub(crate) fn get_u8(what: &'static str, v: &[u8]) -> Result<u8, Error> {
    Ok(u8::from_ne_bytes(fixed(what, v)?))
}
pub(crate) fn get_u16(what: &'static str, v: &[u8]) -> Result<u16, Error> {
    Ok(u16::from_ne_bytes(fixed(what, v)?))
}
pub(crate) fn get_be16(what: &'static str, v: &[u8]) -> Result<u16, Error> {
    Ok(u16::from_be_bytes(fixed(what, v)?))
}
pub(crate) fn get_u32(what: &'static str, v: &[u8]) -> Result<u32, Error> {
    Ok(u32::from_ne_bytes(fixed(what, v)?))
}
pub(crate) fn get_u64(what: &'static str, v: &[u8]) -> Result<u64, Error> {
    Ok(u64::from_ne_bytes(fixed(what, v)?))
}

/// A NUL-terminated (or not) string attribute; bytes after the first NUL are ignored.
pub(crate) fn get_string(what: &'static str, v: &[u8]) -> Result<String, Error> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    let bytes = v.get(..end).unwrap_or_default();
    core::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| Error::NotUtf8 { what })
}

/// Copy `src` into `dst` after checking the size: the `emit` contract of this crate.
pub(crate) fn emit_into(src: &[u8], dst: &mut [u8]) -> Result<usize, Error> {
    let got = dst.len();
    let out = dst.get_mut(..src.len()).ok_or(Error::InsufficientSize {
        required: src.len(),
        got,
    })?;
    out.copy_from_slice(src);
    Ok(src.len())
}
