//! Netlink framing (`struct nlmsghdr`, 16 bytes) and the generic netlink header
//! (`struct genlmsghdr`, 4 bytes).

use super::consts as c;
use super::{Error, align4, emit_into};

/// Size of `struct nlmsghdr`.
pub const NLMSG_HEADER_LEN: usize = 16;
/// Size of `struct genlmsghdr`.
pub const GENL_HEADER_LEN: usize = 4;

const LEN: core::ops::Range<usize> = 0..4;
const TYPE: core::ops::Range<usize> = 4..6;
const FLAGS: core::ops::Range<usize> = 6..8;
const SEQ: core::ops::Range<usize> = 8..12;
const PID: core::ops::Range<usize> = 12..16;

/// `struct nlmsghdr` without its length (which is computed when emitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NetlinkHeader {
    /// `nlmsg_type`: `NLMSG_ERROR`, `NLMSG_DONE`, … or a generic netlink family id.
    pub kind: u16,
    /// `nlmsg_flags` (`NLM_F_*`).
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid` (port id).
    pub pid: u32,
}

/// A generic netlink message whose family is not interpreted here: genl header and raw
/// attribute bytes. [`crate::wire::IpvsMessage::parse_attrs`] types it for the IPVS family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenlMessage {
    /// `genlmsghdr.cmd`.
    pub cmd: u8,
    /// `genlmsghdr.version`.
    pub version: u8,
    /// `genlmsghdr.reserved`.
    pub reserved: u16,
    /// The attributes, unparsed.
    pub attrs: Vec<u8>,
}

/// The payload of a netlink message, by `nlmsg_type`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NetlinkPayload {
    /// `NLMSG_ERROR`: `code` is 0 for an ACK or a negative errno; `request` holds the echoed
    /// request header (and payload unless `NLM_F_CAPPED`) and any extended-ACK attributes.
    Error {
        /// 0 (ACK) or `-errno`.
        code: i32,
        /// The bytes after the code, unparsed.
        request: Vec<u8>,
    },
    /// `NLMSG_DONE`: end of a multipart dump (payload usually a 4-byte status).
    Done(Vec<u8>),
    /// `NLMSG_NOOP`.
    Noop(Vec<u8>),
    /// `NLMSG_OVERRUN`.
    Overrun(Vec<u8>),
    /// A family message (`nlmsg_type >= NLMSG_MIN_TYPE`).
    Genl(GenlMessage),
    /// A reserved type below `NLMSG_MIN_TYPE` this crate does not know.
    Other(Vec<u8>),
}

/// One netlink message: header and typed payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetlinkMessage {
    /// The header (its length is derived from the payload).
    pub header: NetlinkHeader,
    /// The payload.
    pub payload: NetlinkPayload,
}

fn rd_u16(buf: &[u8], r: core::ops::Range<usize>) -> u16 {
    let mut b = [0u8; 2];
    if let Some(s) = buf.get(r) {
        b.copy_from_slice(s);
    }
    u16::from_ne_bytes(b)
}
fn rd_u32(buf: &[u8], r: core::ops::Range<usize>) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = buf.get(r) {
        b.copy_from_slice(s);
    }
    u32::from_ne_bytes(b)
}

impl NetlinkMessage {
    /// Parse one message at the start of `buf`; returns it and the bytes consumed
    /// (its aligned length, bounded by `buf.len()`).
    pub fn parse(buf: &[u8]) -> Result<(Self, usize), Error> {
        if buf.len() < NLMSG_HEADER_LEN {
            return Err(Error::Truncated {
                what: "netlink header",
                needed: NLMSG_HEADER_LEN,
                got: buf.len(),
            });
        }
        let len = usize::try_from(rd_u32(buf, LEN)).unwrap_or(usize::MAX);
        if len < NLMSG_HEADER_LEN || len > buf.len() {
            return Err(Error::BadLength {
                what: "netlink message",
                len,
                available: buf.len(),
            });
        }
        let header = NetlinkHeader {
            kind: rd_u16(buf, TYPE),
            flags: rd_u16(buf, FLAGS),
            seq: rd_u32(buf, SEQ),
            pid: rd_u32(buf, PID),
        };
        let body = buf.get(NLMSG_HEADER_LEN..len).unwrap_or_default();
        let payload = match header.kind {
            c::NLMSG_ERROR => {
                let code: [u8; 4] =
                    body.get(..4)
                        .and_then(|b| b.try_into().ok())
                        .ok_or(Error::Truncated {
                            what: "NLMSG_ERROR code",
                            needed: 4,
                            got: body.len(),
                        })?;
                NetlinkPayload::Error {
                    code: i32::from_ne_bytes(code),
                    request: body.get(4..).unwrap_or_default().to_vec(),
                }
            }
            c::NLMSG_DONE => NetlinkPayload::Done(body.to_vec()),
            c::NLMSG_NOOP => NetlinkPayload::Noop(body.to_vec()),
            c::NLMSG_OVERRUN => NetlinkPayload::Overrun(body.to_vec()),
            k if k >= c::NLMSG_MIN_TYPE => {
                let (Some(&cmd), Some(&version), Some(attrs)) =
                    (body.first(), body.get(1), body.get(GENL_HEADER_LEN..))
                else {
                    return Err(Error::Truncated {
                        what: "genl header",
                        needed: GENL_HEADER_LEN,
                        got: body.len(),
                    });
                };
                NetlinkPayload::Genl(GenlMessage {
                    cmd,
                    version,
                    reserved: rd_u16(body, 2..4),
                    attrs: attrs.to_vec(),
                })
            }
            _ => NetlinkPayload::Other(body.to_vec()),
        };
        Ok((Self { header, payload }, align4(len).min(buf.len())))
    }

    /// Append the encoded message (header with computed length, payload, padding) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.header.kind.to_ne_bytes());
        out.extend_from_slice(&self.header.flags.to_ne_bytes());
        out.extend_from_slice(&self.header.seq.to_ne_bytes());
        out.extend_from_slice(&self.header.pid.to_ne_bytes());
        match &self.payload {
            NetlinkPayload::Error { code, request } => {
                out.extend_from_slice(&code.to_ne_bytes());
                out.extend_from_slice(request);
            }
            NetlinkPayload::Done(b)
            | NetlinkPayload::Noop(b)
            | NetlinkPayload::Overrun(b)
            | NetlinkPayload::Other(b) => out.extend_from_slice(b),
            NetlinkPayload::Genl(g) => {
                out.push(g.cmd);
                out.push(g.version);
                out.extend_from_slice(&g.reserved.to_ne_bytes());
                out.extend_from_slice(&g.attrs);
            }
        }
        finish_message(out, start)
    }

    /// Bytes [`NetlinkMessage::emit`] writes.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        let body = match &self.payload {
            NetlinkPayload::Error { request, .. } => 4 + request.len(),
            NetlinkPayload::Done(b)
            | NetlinkPayload::Noop(b)
            | NetlinkPayload::Overrun(b)
            | NetlinkPayload::Other(b) => b.len(),
            NetlinkPayload::Genl(g) => GENL_HEADER_LEN + g.attrs.len(),
        };
        align4(NLMSG_HEADER_LEN + body)
    }

    /// Write the message into `buf`; [`Error::InsufficientSize`] (nothing written) if short.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.encode_into(&mut v)?;
        emit_into(&v, buf)
    }
}

/// Patch the length of the message that starts at `start` and pad it to 4 bytes.
pub(crate) fn finish_message(out: &mut Vec<u8>, start: usize) -> Result<(), Error> {
    let len = out.len().saturating_sub(start);
    let Ok(len32) = u32::try_from(len) else {
        out.truncate(start);
        return Err(Error::TooLarge {
            what: "netlink message",
            len,
        });
    };
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&len32.to_ne_bytes());
    }
    let padded = align4(out.len());
    out.resize(padded, 0);
    Ok(())
}

/// Parse every message in a datagram (netlink packs several, e.g. a dump batch).
pub fn parse_stream(mut buf: &[u8]) -> Result<Vec<NetlinkMessage>, Error> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (msg, used) = NetlinkMessage::parse(buf)?;
        out.push(msg);
        buf = buf.get(used..).unwrap_or_default();
    }
    Ok(out)
}
