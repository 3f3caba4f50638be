//! The kernel's process-event connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`): the messages it
//! sends, parsed from bytes and written back, and the subscription request.
//!
//! One datagram holds one message: a netlink header, a `cn_msg` header and a `proc_event`
//! (`linux/cn_proc.h`), all in the host's byte order.

use thiserror::Error;

/// `CN_IDX_PROC` / `CN_VAL_PROC`: the connector id of process events.
pub const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;

/// `NETLINK_CONNECTOR`, the netlink protocol of the connector.
pub const NETLINK_CONNECTOR: isize = 11;

const NLMSG_HDR: usize = 16;
const CN_MSG_HDR: usize = 20;
/// `what`, `cpu` and `timestamp_ns`.
const EVENT_HDR: usize = 16;
/// Where the `proc_event` starts in a datagram.
const EVENT_AT: usize = NLMSG_HDR + CN_MSG_HDR;
/// `event_data`'s size: the largest member (`comm`: two ids and 16 bytes of name).
const EVENT_DATA: usize = 24;
/// The size of a whole message as the kernel sends it.
pub const MESSAGE_LEN: usize = EVENT_AT + EVENT_HDR + EVENT_DATA;

const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const PROC_EVENT_NONE: u32 = 0;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_COMM: u32 = 0x200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// `PROC_CN_MCAST_LISTEN` / `PROC_CN_MCAST_IGNORE`.
const MCAST_LISTEN: u32 = 1;
const MCAST_IGNORE: u32 = 2;

/// Why a datagram is not a process-event message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ConnectorError {
    /// Shorter than the headers it announces, or than its event needs.
    #[error("process-event message truncated: {got} bytes, {need} needed")]
    Truncated {
        /// Bytes available.
        got: usize,
        /// Bytes the headers or the event ask for.
        need: usize,
    },
    /// The netlink length field is below the header size.
    #[error("process-event message: netlink length {0} is below the header size")]
    BadLength(u32),
}

/// One process event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// `PROC_EVENT_NONE`: the answer to a subscription (`err` 0: accepted).
    Ack {
        /// The kernel's error number for the request.
        err: u32,
    },
    /// `PROC_EVENT_FORK`: a new task. A new process when `child_pid == child_tgid`, a new
    /// thread otherwise.
    Fork {
        /// The parent's thread id.
        parent_pid: u32,
        /// The parent's process id.
        parent_tgid: u32,
        /// The new task's thread id.
        child_pid: u32,
        /// The new task's process id.
        child_tgid: u32,
    },
    /// `PROC_EVENT_EXEC`: a task ran `execve`.
    Exec {
        /// Thread id.
        pid: u32,
        /// Process id.
        tgid: u32,
    },
    /// `PROC_EVENT_COMM`: a task changed its name (`prctl(PR_SET_NAME)`).
    Comm {
        /// Thread id.
        pid: u32,
        /// Process id.
        tgid: u32,
        /// The new name, NUL-padded.
        comm: [u8; 16],
    },
    /// `PROC_EVENT_EXIT`: a task ended.
    Exit {
        /// Thread id.
        pid: u32,
        /// Process id.
        tgid: u32,
        /// Its exit status, as `wait` reports it.
        exit_code: u32,
        /// The signal sent to its parent.
        exit_signal: u32,
    },
    /// Any other event (uid, gid, sid, ptrace, coredump, ...): its `what`.
    Other {
        /// The event's type number.
        what: u32,
    },
}

impl ProcEvent {
    /// The name of a [`Comm`](Self::Comm) event up to its first NUL.
    pub fn comm_name(comm: &[u8; 16]) -> &[u8] {
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        &comm[..end]
    }
}

/// A process-event message: the connector's sequence number, the CPU it came from, and the
/// event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcMessage {
    /// `cn_msg.seq`: per CPU, one more than the previous message's.
    pub seq: u32,
    /// `cn_msg.ack` (set on [`ProcEvent::Ack`] only).
    pub ack: u32,
    /// The CPU that sent it.
    pub cpu: u32,
    /// Nanoseconds since boot.
    pub timestamp_ns: u64,
    /// What happened.
    pub event: ProcEvent,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_ne_bytes(w)
}

fn need(b: &[u8], n: usize) -> Result<(), ConnectorError> {
    if b.len() < n {
        return Err(ConnectorError::Truncated {
            got: b.len(),
            need: n,
        });
    }
    Ok(())
}

impl ProcMessage {
    /// Parses one datagram. `Ok(None)`: a well-formed message that is not a process event
    /// (a netlink no-op or error, another connector), which a reader skips.
    pub fn parse(buf: &[u8]) -> Result<Option<Self>, ConnectorError> {
        need(buf, NLMSG_HDR)?;
        let len = u32_at(buf, 0);
        let Ok(ulen) = usize::try_from(len) else {
            return Err(ConnectorError::BadLength(len));
        };
        if ulen < NLMSG_HDR {
            return Err(ConnectorError::BadLength(len));
        }
        need(buf, ulen)?;
        let buf = &buf[..ulen];
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if ty == NLMSG_NOOP || ty == NLMSG_ERROR {
            return Ok(None);
        }
        need(buf, EVENT_AT)?;
        let (idx, val) = (u32_at(buf, NLMSG_HDR), u32_at(buf, NLMSG_HDR + 4));
        if idx != CN_IDX_PROC || val != CN_VAL_PROC {
            return Ok(None);
        }
        let seq = u32_at(buf, NLMSG_HDR + 8);
        let ack = u32_at(buf, NLMSG_HDR + 12);
        let data_len = usize::from(u16::from_ne_bytes([
            buf[NLMSG_HDR + 16],
            buf[NLMSG_HDR + 17],
        ]));
        need(buf, EVENT_AT + data_len)?;
        let ev = &buf[EVENT_AT..EVENT_AT + data_len];
        need(ev, EVENT_HDR)?;
        let what = u32_at(ev, 0);
        let cpu = u32_at(ev, 4);
        let mut ts = [0; 8];
        ts.copy_from_slice(&ev[8..16]);
        let timestamp_ns = u64::from_ne_bytes(ts);
        let d = &ev[EVENT_HDR..];
        let event = match what {
            PROC_EVENT_NONE => {
                need(d, 4)?;
                ProcEvent::Ack { err: u32_at(d, 0) }
            }
            PROC_EVENT_FORK => {
                need(d, 16)?;
                ProcEvent::Fork {
                    parent_pid: u32_at(d, 0),
                    parent_tgid: u32_at(d, 4),
                    child_pid: u32_at(d, 8),
                    child_tgid: u32_at(d, 12),
                }
            }
            PROC_EVENT_EXEC => {
                need(d, 8)?;
                ProcEvent::Exec {
                    pid: u32_at(d, 0),
                    tgid: u32_at(d, 4),
                }
            }
            PROC_EVENT_COMM => {
                need(d, 24)?;
                let mut comm = [0; 16];
                comm.copy_from_slice(&d[8..24]);
                ProcEvent::Comm {
                    pid: u32_at(d, 0),
                    tgid: u32_at(d, 4),
                    comm,
                }
            }
            PROC_EVENT_EXIT => {
                need(d, 16)?;
                ProcEvent::Exit {
                    pid: u32_at(d, 0),
                    tgid: u32_at(d, 4),
                    exit_code: u32_at(d, 8),
                    exit_signal: u32_at(d, 12),
                }
            }
            what => ProcEvent::Other { what },
        };
        Ok(Some(Self {
            seq,
            ack,
            cpu,
            timestamp_ns,
            event,
        }))
    }

    /// Writes the message as the kernel sends it ([`MESSAGE_LEN`] bytes, netlink port 0).
    pub fn emit(&self, out: &mut Vec<u8>) {
        let mut data = [0u8; EVENT_DATA];
        let mut put = |at: usize, v: u32| data[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        let what = match self.event {
            ProcEvent::Ack { err } => {
                put(0, err);
                PROC_EVENT_NONE
            }
            ProcEvent::Fork {
                parent_pid,
                parent_tgid,
                child_pid,
                child_tgid,
            } => {
                put(0, parent_pid);
                put(4, parent_tgid);
                put(8, child_pid);
                put(12, child_tgid);
                PROC_EVENT_FORK
            }
            ProcEvent::Exec { pid, tgid } => {
                put(0, pid);
                put(4, tgid);
                PROC_EVENT_EXEC
            }
            ProcEvent::Comm { pid, tgid, comm } => {
                put(0, pid);
                put(4, tgid);
                data[8..24].copy_from_slice(&comm);
                PROC_EVENT_COMM
            }
            ProcEvent::Exit {
                pid,
                tgid,
                exit_code,
                exit_signal,
            } => {
                put(0, pid);
                put(4, tgid);
                put(8, exit_code);
                put(12, exit_signal);
                PROC_EVENT_EXIT
            }
            ProcEvent::Other { what } => what,
        };
        let start = out.len();
        // The netlink header: length, NLMSG_DONE, no flags, sequence, port 0 (the kernel).
        out.extend_from_slice(&(MESSAGE_LEN as u32).to_ne_bytes());
        out.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        // cn_msg.
        out.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        out.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&self.ack.to_ne_bytes());
        out.extend_from_slice(&((EVENT_HDR + EVENT_DATA) as u16).to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        // proc_event.
        out.extend_from_slice(&what.to_ne_bytes());
        out.extend_from_slice(&self.cpu.to_ne_bytes());
        out.extend_from_slice(&self.timestamp_ns.to_ne_bytes());
        out.extend_from_slice(&data);
        debug_assert_eq!(out.len() - start, MESSAGE_LEN);
    }
}

/// The request that turns process events on (`listen`) or off for the sending socket:
/// `PROC_CN_MCAST_LISTEN` / `PROC_CN_MCAST_IGNORE` to the process connector.
pub fn subscription(listen: bool) -> [u8; NLMSG_HDR + CN_MSG_HDR + 4] {
    let mut m = [0u8; NLMSG_HDR + CN_MSG_HDR + 4];
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m[32..34].copy_from_slice(&4u16.to_ne_bytes());
    let op = if listen { MCAST_LISTEN } else { MCAST_IGNORE };
    m[36..40].copy_from_slice(&op.to_ne_bytes());
    m
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_reads_back() {
        let m = ProcMessage {
            seq: 7,
            ack: 0,
            cpu: 1,
            timestamp_ns: 0x0102_0304_0506_0708,
            event: ProcEvent::Exit {
                pid: 42,
                tgid: 42,
                exit_code: 9,
                exit_signal: 17,
            },
        };
        let mut b = Vec::new();
        m.emit(&mut b);
        assert_eq!(b.len(), MESSAGE_LEN);
        assert_eq!(ProcMessage::parse(&b).unwrap(), Some(m));
        // Every shorter prefix is refused, never misread.
        for n in 0..b.len() {
            assert!(ProcMessage::parse(&b[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn noop_and_other_connectors_are_skipped() {
        let mut b = Vec::new();
        ProcMessage {
            seq: 0,
            ack: 0,
            cpu: 0,
            timestamp_ns: 0,
            event: ProcEvent::Other { what: 4 },
        }
        .emit(&mut b);
        let mut noop = b.clone();
        noop[4..6].copy_from_slice(&NLMSG_NOOP.to_ne_bytes());
        assert_eq!(ProcMessage::parse(&noop).unwrap(), None);
        let mut other = b.clone();
        other[16..20].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(ProcMessage::parse(&other).unwrap(), None);
        assert_eq!(
            ProcMessage::parse(&b).unwrap().map(|m| m.event),
            Some(ProcEvent::Other { what: 4 })
        );
    }

    #[test]
    fn the_subscription_is_the_kernels_layout() {
        let m = subscription(true);
        assert_eq!(u32_at(&m, 0), 40);
        assert_eq!(u32_at(&m, 36), MCAST_LISTEN);
        assert_eq!(u32_at(&subscription(false), 36), MCAST_IGNORE);
    }
}
