//! Sans-IO request/reply handling: framing requests, classifying replies, mapping
//! `NLMSG_ERROR` to [`IpvsError`]. No socket here, so it is unit-tested and fuzzed.

use crate::error::{IpvsError, Op};
use crate::wire::consts as c;
use crate::wire::{
    self, GenlMessage, IpvsCmd, IpvsMessage, NLMSG_HEADER_LEN, NetlinkMessage, NetlinkPayload,
    NlaIter,
};

/// Append one IPVS request (nlmsghdr + genl header + attributes) to `out`.
pub fn encode_request(
    out: &mut Vec<u8>,
    family: u16,
    flags: u16,
    seq: u32,
    msg: &IpvsMessage,
) -> Result<(), wire::Error> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&family.to_ne_bytes());
    out.extend_from_slice(&(flags | c::NLM_F_REQUEST).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    if let Err(e) = msg.encode_into(out) {
        out.truncate(start);
        return Err(e);
    }
    wire::netlink::finish_message(out, start)
}

/// Append a `CTRL_CMD_GETFAMILY` request for `name` to `out`.
pub fn encode_get_family(out: &mut Vec<u8>, seq: u32, name: &str) -> Result<(), wire::Error> {
    let start = out.len();
    let mut name_z = name.as_bytes().to_vec();
    name_z.push(0);
    let attrs = {
        let mut w = wire::nla::Writer::default();
        w.put(c::CTRL_ATTR_FAMILY_NAME, &name_z);
        w.buf
    };
    NetlinkMessage {
        header: wire::NetlinkHeader {
            kind: c::GENL_ID_CTRL,
            flags: c::NLM_F_REQUEST | c::NLM_F_ACK,
            seq,
            pid: 0,
        },
        payload: NetlinkPayload::Genl(GenlMessage {
            cmd: c::CTRL_CMD_GETFAMILY,
            version: 1,
            reserved: 0,
            attrs,
        }),
    }
    .encode_into(out)
    .inspect_err(|_| out.truncate(start))
}

/// The family id in a `CTRL_CMD_NEWFAMILY` reply, if present.
pub fn family_id_of(reply: &GenlMessage) -> Result<Option<u16>, wire::Error> {
    for item in NlaIter::new(&reply.attrs) {
        let (kind, value) = item?;
        if kind & 0x3fff == c::CTRL_ATTR_FAMILY_ID {
            return Ok(Some(u16::from_ne_bytes(wire::fixed(
                "CTRL_ATTR_FAMILY_ID",
                value,
            )?)));
        }
    }
    Ok(None)
}

/// One reply message, classified.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A data message of the IPVS family (a dump entry or a get reply).
    Data {
        /// The sequence number it answers.
        seq: u32,
        /// The message.
        msg: IpvsMessage,
    },
    /// A data message of another family (the controller's reply to GETFAMILY).
    OtherFamily {
        /// The sequence number it answers.
        seq: u32,
        /// The genl message.
        msg: GenlMessage,
    },
    /// `NLMSG_ERROR` with code 0.
    Ack {
        /// The acknowledged sequence number.
        seq: u32,
    },
    /// `NLMSG_ERROR` with a negative code.
    Error {
        /// The failed sequence number.
        seq: u32,
        /// The positive errno.
        errno: i32,
    },
    /// `NLMSG_DONE`: a dump is complete (its payload may carry a negative status).
    Done {
        /// The dump's sequence number.
        seq: u32,
        /// 0, or the positive errno the dump ended with.
        errno: i32,
    },
    /// `NLMSG_NOOP` or an unknown control type: ignore.
    Ignore,
}

/// Classify every message of a received datagram. `family` is the IPVS family id.
pub fn classify(datagram: &[u8], family: u16) -> Result<Vec<Event>, wire::Error> {
    let msgs = wire::parse_stream(datagram)?;
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        let seq = m.header.seq;
        out.push(match m.payload {
            NetlinkPayload::Error { code: 0, .. } => Event::Ack { seq },
            NetlinkPayload::Error { code, .. } => Event::Error {
                seq,
                errno: code.saturating_neg(),
            },
            NetlinkPayload::Done(p) => {
                let code = p
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map_or(0, i32::from_ne_bytes);
                Event::Done {
                    seq,
                    errno: code.saturating_neg().max(0),
                }
            }
            NetlinkPayload::Genl(g) if m.header.kind == family => Event::Data {
                seq,
                msg: IpvsMessage::parse_attrs(IpvsCmd::from(g.cmd), g.version, &g.attrs)?,
            },
            NetlinkPayload::Genl(g) => Event::OtherFamily { seq, msg: g },
            _ => Event::Ignore,
        });
    }
    Ok(out)
}

/// Turn an `Event::Error`'s errno into the typed error for `op`.
#[must_use]
pub const fn kernel_error(op: Op, errno: i32) -> IpvsError {
    IpvsError::kernel(op, errno)
}

/// Smallest datagram that can hold a reply header; shorter receives are protocol errors.
pub const MIN_REPLY: usize = NLMSG_HEADER_LEN;
