//! Framing of route-netlink datagrams: splitting a datagram into messages without trusting
//! its lengths, classifying each one, and encoding requests.

use std::panic::{self, AssertUnwindSafe};

use netlink_packet_core::{
    NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkBuffer, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::RtnlError;

/// Size of `struct nlmsghdr`.
const HEADER_LEN: usize = 16;
/// `NLMSG_NOOP`.
const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR` (also the ACK).
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
const NLMSG_OVERRUN: u16 = 4;

/// One classified netlink message.
#[derive(Debug)]
pub(super) enum Reply {
    /// A data message (`RTM_NEWLINK`, `RTM_NEWADDR`, ...), with "dump interrupted" flagged.
    Data {
        msg: RouteNetlinkMessage,
        interrupted: bool,
    },
    /// `NLMSG_ERROR` with code 0.
    Ack,
    /// `NLMSG_ERROR` with a negative code: the positive errno.
    Error(i32),
    /// `NLMSG_DONE`; a non-zero errno if the dump failed.
    Done(i32),
    /// `NLMSG_NOOP`.
    Noop,
}

/// The header fields of one message and the message itself (header included).
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame<'a> {
    /// `nlmsg_seq`.
    pub(super) seq: u32,
    bytes: &'a [u8],
}

/// Splits a datagram into its messages, checking every length field.
pub(super) fn split<'a>(op: &'static str, datagram: &'a [u8]) -> Result<Vec<Frame<'a>>, RtnlError> {
    let mut frames = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let Some(len_bytes) = rest.get(..4) else {
            return Err(malformed(op, "truncated netlink message header"));
        };
        let mut len4 = [0u8; 4];
        len4.copy_from_slice(len_bytes);
        let len = usize::try_from(u32::from_ne_bytes(len4))
            .map_err(|_| malformed(op, "netlink message length does not fit in memory"))?;
        if len < HEADER_LEN {
            return Err(malformed(op, "netlink message shorter than its header"));
        }
        let Some(bytes) = rest.get(..len) else {
            return Err(malformed(
                op,
                "netlink message runs past the end of the datagram",
            ));
        };
        let buf =
            NetlinkBuffer::new_checked(bytes).map_err(|source| RtnlError::Decode { op, source })?;
        frames.push(Frame {
            seq: buf.sequence_number(),
            bytes,
        });
        let aligned = len.saturating_add(3) & !3;
        rest = rest.get(aligned..).unwrap_or_default();
    }
    Ok(frames)
}

impl Frame<'_> {
    /// Decodes and classifies the message.
    pub(super) fn classify(&self, op: &'static str) -> Result<Reply, RtnlError> {
        let buf = NetlinkBuffer::new(self.bytes);
        let payload = self.bytes.get(HEADER_LEN..).unwrap_or_default();
        match buf.message_type() {
            NLMSG_NOOP => return Ok(Reply::Noop),
            NLMSG_OVERRUN => return Err(malformed(op, "the kernel reported a data overrun")),
            NLMSG_ERROR => {
                let code = read_i32(payload)
                    .ok_or_else(|| malformed(op, "NLMSG_ERROR without an error code"))?;
                return Ok(if code == 0 {
                    Reply::Ack
                } else {
                    Reply::Error(code.saturating_neg())
                });
            }
            NLMSG_DONE => {
                // Old kernels send an empty NLMSG_DONE; newer ones a code (0 or -errno).
                let code = read_i32(payload).unwrap_or(0);
                return Ok(Reply::Done(code.saturating_neg()));
            }
            _ => {}
        }
        let interrupted = buf.flags() & NLM_F_DUMP_INTR != 0;
        let bytes = self.bytes;
        // The decoder is third-party code fed with bytes from the kernel: a panic in it must
        // not take the daemon down, so it is turned into a typed error.
        let decoded = panic::catch_unwind(AssertUnwindSafe(|| {
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
        }))
        .map_err(|_| malformed(op, "the netlink decoder panicked on this reply"))?
        .map_err(|source| RtnlError::Decode { op, source })?;
        match decoded.payload {
            NetlinkPayload::InnerMessage(msg) => Ok(Reply::Data { msg, interrupted }),
            _ => Err(malformed(op, "unexpected control message type")),
        }
    }
}

/// Encodes `msg` as a request with `flags` (`NLM_F_REQUEST` is added) and `seq`.
pub(super) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut nl = NetlinkMessage::from(msg);
    nl.header.flags = NLM_F_REQUEST | flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let mut out = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut out);
    out
}

fn read_i32(bytes: &[u8]) -> Option<i32> {
    let b = bytes.get(..4)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Some(i32::from_ne_bytes(a))
}

const fn malformed(op: &'static str, what: &'static str) -> RtnlError {
    RtnlError::Malformed { op, what }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "unit tests")]
mod tests {
    use super::*;

    fn header(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    #[test]
    fn ack_error_and_done_are_classified() {
        let mut d = header(36, NLMSG_ERROR, 0, 7);
        d.extend_from_slice(&0i32.to_ne_bytes());
        d.extend_from_slice(&header(16, 0, 0, 7));
        let mut e = header(36, NLMSG_ERROR, 0, 8);
        e.extend_from_slice(&(-libc::ENODEV).to_ne_bytes());
        e.extend_from_slice(&header(16, 0, 0, 8));
        d.extend_from_slice(&e);
        d.extend_from_slice(&header(16, NLMSG_DONE, 2, 9));
        let frames = split("t", &d).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].seq, 7);
        assert!(matches!(frames[0].classify("t").unwrap(), Reply::Ack));
        assert!(matches!(
            frames[1].classify("t").unwrap(),
            Reply::Error(libc::ENODEV)
        ));
        assert!(matches!(frames[2].classify("t").unwrap(), Reply::Done(0)));
    }

    #[test]
    fn bad_lengths_are_typed_errors() {
        for bad in [
            vec![1u8, 2, 3],
            header(8, 16, 0, 1),
            header(64, 16, 0, 1),
            header(u32::MAX, 16, 0, 1),
        ] {
            assert!(
                matches!(split("t", &bad), Err(RtnlError::Malformed { .. })),
                "{bad:?}"
            );
        }
        // A truncated NLMSG_ERROR.
        let short = header(16, NLMSG_ERROR, 0, 1);
        let frames = split("t", &short).unwrap();
        assert!(matches!(
            frames[0].classify("t"),
            Err(RtnlError::Malformed { .. })
        ));
    }

    #[test]
    fn garbage_link_message_is_an_error_not_a_panic() {
        // RTM_NEWLINK (16) with a 4-byte body: too short for struct ifinfomsg.
        let mut d = header(20, 16, 0, 1);
        d.extend_from_slice(&[0xff; 4]);
        let frames = split("t", &d).unwrap();
        assert!(frames[0].classify("t").is_err());
        // Every prefix and a few byte flips of a real-looking message never panic.
        let msg = encode(
            RouteNetlinkMessage::NewLink(netlink_packet_route::link::LinkMessage::default()),
            0,
            1,
        );
        let mut all = msg.clone();
        all.extend_from_slice(&[0x41; 40]);
        for cut in 0..all.len() {
            if let Ok(frames) = split("t", &all[..cut]) {
                for f in frames {
                    let _ = f.classify("t");
                }
            }
        }
        for i in 0..msg.len() {
            let mut flipped = msg.clone();
            flipped[i] ^= 0xff;
            if let Ok(frames) = split("t", &flipped) {
                for f in frames {
                    let _ = f.classify("t");
                }
            }
        }
    }
}
