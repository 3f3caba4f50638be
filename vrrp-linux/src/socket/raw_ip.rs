//! Raw IPv4 / IPv6 sockets for VRRP (IP protocol 112).
//!
//! Receiving and sending use separate sockets, as keepalived does: a raw socket bound to an
//! address only receives packets addressed to it, so the receive socket stays unbound (but
//! tied to its interface with `SO_BINDTODEVICE` and joined to the VRRP group) and the send
//! socket is bound to the advert source address.

use std::io;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use vrrp_proto::wire::{MULTICAST_V4, MULTICAST_V6};

use super::{IPPROTO_VRRP, IoError};

/// The largest VRRP packet we accept: 255 IPv6 addresses plus headers fit in 4.2 KB.
const RECV_BUF: usize = 9000;

/// One VRRP packet as the IP layer delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL or hop limit as received.
    pub ttl: u8,
    /// The VRRP message (the IP payload).
    pub payload: Vec<u8>,
}

impl Default for Received {
    /// An empty packet from and to `0.0.0.0` (a buffer to read into).
    fn default() -> Self {
        Self {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            ttl: 0,
            payload: Vec::new(),
        }
    }
}

/// A receive socket for VRRP on one interface and family, joined to 224.0.0.18 or ff02::12.
#[derive(Debug)]
pub struct VrrpRecvSocket {
    sock: Socket,
    ifindex: u32,
    ipv6: bool,
    buf: Vec<u8>,
    /// The second datagram of a two-datagram read, and its length, handed out next.
    second: Vec<u8>,
    second_len: Option<usize>,
}

impl VrrpRecvSocket {
    /// Opens the socket on interface `iface` (index `ifindex`) for IPv4 or IPv6, joined to the
    /// VRRP multicast group (unicast adverts arrive on it too).
    pub fn open(iface: &str, ifindex: u32, ipv6: bool) -> Result<Self, IoError> {
        let err = |op| move |e| IoError::socket(op, iface, e);
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(err("opening a raw VRRP socket"))?;
        sock.bind_device(Some(iface.as_bytes()))
            .map_err(err("SO_BINDTODEVICE"))?;
        if ipv6 {
            sock.join_multicast_v6(&MULTICAST_V6, ifindex)
                .map_err(err("joining ff02::12"))?;
            setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
                .map_err(|e| IoError::socket("IPV6_RECVPKTINFO", iface, e.into()))?;
            setsockopt(&sock, sockopt::Ipv6RecvHopLimit, &true)
                .map_err(|e| IoError::socket("IPV6_RECVHOPLIMIT", iface, e.into()))?;
        } else {
            sock.join_multicast_v4_n(
                &MULTICAST_V4,
                &socket2::InterfaceIndexOrAddress::Index(ifindex),
            )
            .map_err(err("joining 224.0.0.18"))?;
        }
        sock.set_nonblocking(true)
            .map_err(err("setting O_NONBLOCK"))?;
        Ok(Self {
            sock,
            ifindex,
            ipv6,
            buf: vec![0; RECV_BUF],
            second: vec![0; RECV_BUF],
            second_len: None,
        })
    }

    /// The index of the interface it receives on.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether this is the IPv6 socket.
    pub fn is_ipv6(&self) -> bool {
        self.ipv6
    }

    /// Reads one packet. `Err` of kind `WouldBlock` when nothing is pending; `Ok(None)` when
    /// the datagram was not a well-formed IP packet carrying protocol 112 (or its IPv6
    /// ancillary data was missing): it is dropped.
    pub fn recv(&mut self) -> io::Result<Option<Received>> {
        if self.ipv6 {
            self.recv_v6()
        } else {
            self.recv_v4()
        }
    }

    /// Reads the next datagram like [`recv`](Self::recv), and tells whether the socket's
    /// queue is empty after it. IPv4 reads up to two datagrams in one system call
    /// (`recvmmsg`): when only one came, nothing else was queued, so an edge-triggered poller
    /// can wait for the next one without a read that would block. (IPv6, which needs the
    /// destination and hop limit from ancillary data, reads one and says `false`.)
    pub fn recv_drained(&mut self) -> io::Result<(Option<Received>, bool)> {
        if let Some(n) = self.second_len.take() {
            return Ok((self.second.get(..n).and_then(parse_ipv4), false));
        }
        if self.ipv6 {
            return Ok((self.recv_v6()?, false));
        }
        let lens = recv_two(self.sock.as_raw_fd(), &mut self.buf, &mut self.second)?;
        let first = self.buf.get(..lens[0].unwrap_or(0)).and_then(parse_ipv4);
        match lens[1] {
            Some(n) => {
                self.second_len = Some(n);
                Ok((first, false))
            }
            None => Ok((first, true)),
        }
    }

    /// [`recv_drained`](Self::recv_drained) into `out`, reusing its payload buffer (no
    /// allocation per packet): whether `out` now holds a VRRP packet, and whether the queue
    /// is empty.
    pub fn recv_drained_into(&mut self, out: &mut Received) -> io::Result<(bool, bool)> {
        if self.ipv6 {
            let (r, drained) = self.recv_drained()?;
            let got = r.map(|r| *out = r).is_some();
            return Ok((got, drained));
        }
        if let Some(n) = self.second_len.take() {
            let got = self
                .second
                .get(..n)
                .is_some_and(|p| parse_ipv4_into(p, out));
            return Ok((got, false));
        }
        let lens = recv_two(self.sock.as_raw_fd(), &mut self.buf, &mut self.second)?;
        let got = self
            .buf
            .get(..lens[0].unwrap_or(0))
            .is_some_and(|p| parse_ipv4_into(p, out));
        self.second_len = lens[1];
        Ok((got, lens[1].is_none()))
    }

    fn recv_v4(&mut self) -> io::Result<Option<Received>> {
        if let Some(n) = self.second_len.take() {
            return Ok(self.second.get(..n).and_then(parse_ipv4));
        }
        let n = (&self.sock).read(&mut self.buf)?;
        let Some(pkt) = self.buf.get(..n) else {
            return Ok(None);
        };
        Ok(parse_ipv4(pkt))
    }

    fn recv_v6(&mut self) -> io::Result<Option<Received>> {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [io::IoSliceMut::new(&mut self.buf)];
        let msg = recvmsg::<SockaddrStorage>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )?;
        let n = msg.bytes;
        let src = msg
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in6())
            .map(|a| a.ip());
        let mut dst = None;
        let mut hops = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => hops = u8::try_from(h).ok(),
                    _ => {}
                }
            }
        }
        let (Some(src), Some(dst), Some(ttl)) = (src, dst, hops) else {
            return Ok(None);
        };
        let Some(payload) = self.buf.get(..n) else {
            return Ok(None);
        };
        Ok(Some(Received {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl,
            payload: payload.to_vec(),
        }))
    }
}

/// One `recvmmsg` of up to two datagrams into `a` and `b`, without blocking: their lengths
/// (the second `None` when only one was queued).
#[allow(unsafe_code)]
fn recv_two(fd: RawFd, a: &mut [u8], b: &mut [u8]) -> io::Result<[Option<usize>; 2]> {
    let mut iov = [
        libc::iovec {
            iov_base: a.as_mut_ptr().cast(),
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        },
    ];
    // SAFETY: `mmsghdr` is plain data; all zeroes is a header with no name, no control
    // data and no buffers.
    let mut msgs: [libc::mmsghdr; 2] = unsafe { std::mem::zeroed() };
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: `msgs` holds two valid headers whose single iovecs point at `a` and `b`, which
    // outlive the call and are not otherwise borrowed; no timeout pointer is passed.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            2,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = |k: usize| (usize::try_from(n).unwrap_or(0) > k).then(|| msgs[k].msg_len as usize);
    Ok([len(0).or(Some(0)), len(1)])
}

impl AsRawFd for VrrpRecvSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for VrrpRecvSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Splits a raw IPv4 datagram into the fields VRRP validation needs. `None` for anything
/// that is not a complete IPv4 header carrying protocol 112.
pub fn parse_ipv4(pkt: &[u8]) -> Option<Received> {
    let mut r = Received::default();
    parse_ipv4_into(pkt, &mut r).then_some(r)
}

/// [`parse_ipv4`] into `out`, reusing its payload buffer: `false` (and `out` unspecified) for
/// anything that is not a complete IPv4 header carrying protocol 112.
pub fn parse_ipv4_into(pkt: &[u8], out: &mut Received) -> bool {
    let Some(h) = ipv4_fields(pkt) else {
        return false;
    };
    out.src = IpAddr::V4(h.0);
    out.dst = IpAddr::V4(h.1);
    out.ttl = h.2;
    out.payload.clear();
    out.payload.extend_from_slice(h.3);
    true
}

/// Source, destination, TTL and payload of a VRRP-carrying IPv4 datagram.
fn ipv4_fields(pkt: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, &[u8])> {
    let first = *pkt.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([*pkt.get(2)?, *pkt.get(3)?]));
    let ttl = *pkt.get(8)?;
    if i32::from(*pkt.get(9)?) != IPPROTO_VRRP {
        return None;
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(pkt.get(12..16)?).ok()?);
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(pkt.get(16..20)?).ok()?);
    // The kernel hands raw sockets the whole datagram; trust the shorter of the two lengths.
    let end = total.min(pkt.len());
    Some((src, dst, ttl, pkt.get(ihl..end)?))
}

/// A send socket for VRRP adverts from one source address out of one interface, with TTL /
/// hop limit 255 and multicast loopback off (so we do not hear ourselves).
#[derive(Debug)]
pub struct VrrpSendSocket {
    sock: Socket,
    ifindex: u32,
    iface: String,
}

impl VrrpSendSocket {
    /// Opens the socket on `iface` (index `ifindex`) bound to `src` (the advert source: the
    /// interface's primary IPv4 address or its IPv6 link-local address).
    pub fn open(iface: &str, ifindex: u32, src: IpAddr) -> Result<Self, IoError> {
        let err = |op| move |e| IoError::socket(op, iface, e);
        let domain = if src.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let sock = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))
            .map_err(err("opening a raw VRRP socket"))?;
        sock.bind_device(Some(iface.as_bytes()))
            .map_err(err("SO_BINDTODEVICE"))?;
        match src {
            IpAddr::V4(a) => {
                sock.set_ttl_v4(255).map_err(err("IP_TTL 255"))?;
                sock.set_multicast_ttl_v4(255)
                    .map_err(err("IP_MULTICAST_TTL 255"))?;
                sock.set_multicast_loop_v4(false)
                    .map_err(err("IP_MULTICAST_LOOP off"))?;
                // Refused when `a` lives on another interface (a VMAC interface sends with
                // the base interface's address); SO_BINDTODEVICE already picks the way out.
                let _ = sock.set_multicast_if_v4(&a);
                sock.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(a), 0)))
                    .map_err(err("binding the advert source address"))?;
            }
            IpAddr::V6(a) => {
                sock.set_unicast_hops_v6(255)
                    .map_err(err("IPV6_UNICAST_HOPS 255"))?;
                sock.set_multicast_hops_v6(255)
                    .map_err(err("IPV6_MULTICAST_HOPS 255"))?;
                sock.set_multicast_loop_v6(false)
                    .map_err(err("IPV6_MULTICAST_LOOP off"))?;
                sock.set_multicast_if_v6(ifindex)
                    .map_err(err("IPV6_MULTICAST_IF"))?;
                let scope = if is_link_local(&a) { ifindex } else { 0 };
                sock.bind(&SockAddr::from(SocketAddrV6::new(a, 0, 0, scope)))
                    .map_err(err("binding the advert source address"))?;
            }
        }
        sock.set_nonblocking(true)
            .map_err(err("setting O_NONBLOCK"))?;
        if let Some(i) = NonZeroU32::new(ifindex) {
            // Best effort: SO_BINDTODEVICE above already pins the interface.
            let _ = if src.is_ipv6() {
                sock.bind_device_by_index_v6(Some(i))
            } else {
                sock.bind_device_by_index_v4(Some(i))
            };
        }
        Ok(Self {
            sock,
            ifindex,
            iface: iface.to_owned(),
        })
    }

    /// Sends one VRRP message (the IP payload) to `dst`.
    pub fn send(&self, dst: IpAddr, payload: &[u8]) -> Result<(), IoError> {
        let addr = match dst {
            IpAddr::V4(a) => SockAddr::from(SocketAddr::new(IpAddr::V4(a), 0)),
            IpAddr::V6(a) => {
                let scope = if is_link_local(&a) || a.is_multicast() {
                    self.ifindex
                } else {
                    0
                };
                SockAddr::from(SocketAddrV6::new(a, 0, 0, scope))
            }
        };
        self.sock
            .send_to(payload, &addr)
            .map(|_| ())
            .map_err(|e| IoError::socket("sending an advert", &self.iface, e))
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}
