//! An `AF_PACKET` socket that sends whole Ethernet frames (gratuitous ARP, unsolicited NA)
//! out of one interface.

#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{LinkAddr, MsgFlags, SockaddrLike, sendto};
use socket2::{Domain, Socket, Type};

use super::IoError;

/// A link-layer socket bound to no protocol (it never receives), sending on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    sock: Socket,
    ifindex: u32,
    iface: String,
}

impl PacketSocket {
    /// Opens the socket for interface `iface` (index `ifindex`).
    pub fn open(iface: &str, ifindex: u32) -> Result<Self, IoError> {
        // Protocol 0: the socket receives nothing, it only sends.
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(|e| IoError::socket("opening an AF_PACKET socket", iface, e))?;
        sock.set_nonblocking(true)
            .map_err(|e| IoError::socket("setting O_NONBLOCK", iface, e))?;
        Ok(Self {
            sock,
            ifindex,
            iface: iface.to_owned(),
        })
    }

    /// The interface index frames go out of.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one complete Ethernet frame (destination MAC in its first six bytes).
    pub fn send(&self, frame: &[u8]) -> Result<(), IoError> {
        let mut dst = [0u8; 8];
        if let Some(d) = frame.get(..6) {
            dst[..6].copy_from_slice(d);
        }
        let ethertype = frame
            .get(12..14)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let ll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: ethertype.to_be(),
            sll_ifindex: i32::try_from(self.ifindex).unwrap_or(0),
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: dst,
        };
        let len = u32::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or(u32::MAX);
        // SAFETY: `ll` is a fully initialised `sockaddr_ll` that lives across the call, and
        // `len` is exactly its size, which is what `LinkAddr::from_raw` checks and reads.
        let addr =
            unsafe { LinkAddr::from_raw((&raw const ll).cast::<libc::sockaddr>(), Some(len)) }
                .ok_or_else(|| {
                    IoError::socket(
                        "building sockaddr_ll",
                        &self.iface,
                        std::io::Error::from(std::io::ErrorKind::InvalidInput),
                    )
                })?;
        sendto(self.sock.as_raw_fd(), frame, &addr, MsgFlags::empty())
            .map(|_| ())
            .map_err(|e| IoError::socket("sending a frame", &self.iface, e.into()))
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
