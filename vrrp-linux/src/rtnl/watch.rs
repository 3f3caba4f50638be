//! [`LinkWatcher`]: link notifications (`RTNLGRP_LINK`) on a non-blocking socket.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_ROUTE};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::wire::{self, Reply};
use super::{Link, RtnlError, link_of};

/// `RTNLGRP_LINK` (linux/rtnetlink.h).
const RTNLGRP_LINK: u32 = 1;
/// Receive buffer: notifications queue here between two reads.
const RCVBUF: i32 = 4 * 1024 * 1024;
/// One datagram holds at most this much (the kernel's notifications are far smaller).
const RX_BUF: usize = 64 * 1024;
/// What [`LinkWatcher::read_events`] is doing, for errors.
const OP: &str = "read link notifications";

/// One link notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkChange {
    /// `RTM_NEWLINK`: the link was created or changed (flags, carrier, MTU, MAC, name).
    Changed(Link),
    /// `RTM_DELLINK`: the link is gone; the [`Link`] is its last state.
    Removed(Link),
}

impl LinkChange {
    /// The link the notification is about.
    #[must_use]
    pub const fn link(&self) -> &Link {
        match self {
            Self::Changed(l) | Self::Removed(l) => l,
        }
    }
}

/// A non-blocking socket subscribed to link notifications (up/down, carrier, creation and
/// removal), for `tokio::io::unix::AsyncFd`.
///
/// Usage: wait for readability, call [`LinkWatcher::read_events`] (or
/// [`LinkWatcher::read_changes`]), which drains the socket, then clear the readiness.
#[derive(Debug)]
pub struct LinkWatcher {
    sock: Socket,
    rx: Vec<u8>,
}

impl LinkWatcher {
    /// Opens the socket, joins `RTNLGRP_LINK` and makes it non-blocking.
    pub fn open() -> Result<Self, RtnlError> {
        let op = "open the link notification socket";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(RtnlError::io(op))?;
        sock.bind(&NlAddr::new(0, 0)).map_err(RtnlError::io(op))?;
        sock.add_membership(RTNLGRP_LINK)
            .map_err(RtnlError::io(op))?;
        // Best effort (capped by net.core.rmem_max): fewer lost notifications in bursts.
        let _ = sock.set_rx_buf_sz(RCVBUF);
        sock.set_non_blocking(true).map_err(RtnlError::io(op))?;
        Ok(Self {
            sock,
            rx: Vec::with_capacity(RX_BUF),
        })
    }

    /// Reads every pending notification and returns the links they describe, in order; a
    /// removed link is reported as down and not running. `Ok(empty)` when nothing is
    /// pending (`EAGAIN`).
    ///
    /// [`RtnlError::EventsLost`] means the kernel dropped notifications: re-read every link
    /// with [`Rtnl::links`](super::Rtnl::links). After any error the socket can still be
    /// read; what was pending when it occurred should likewise be re-read with a dump.
    pub fn read_events(&mut self) -> Result<Vec<Link>, RtnlError> {
        self.read_changes().map(flatten)
    }

    /// Like [`LinkWatcher::read_events`], but tells changes and removals apart.
    pub fn read_changes(&mut self) -> Result<Vec<LinkChange>, RtnlError> {
        let mut out = Vec::new();
        loop {
            self.rx.clear();
            let (n, from) = match self.sock.recv_from(&mut self.rx, libc::MSG_TRUNC) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(RtnlError::EventsLost);
                }
                Err(source) => return Err(RtnlError::Io { op: OP, source }),
            };
            if from.port_number() != 0 {
                continue;
            }
            if n > self.rx.len() {
                return Err(RtnlError::Malformed {
                    op: OP,
                    what: "notification datagram larger than the receive buffer",
                });
            }
            for frame in wire::split(OP, &self.rx)? {
                match frame.classify(OP)? {
                    Reply::Data {
                        msg: RouteNetlinkMessage::NewLink(m),
                        ..
                    } if is_plain(&m) => out.push(LinkChange::Changed(link_of(&m, OP)?)),
                    Reply::Data {
                        msg: RouteNetlinkMessage::DelLink(m),
                        ..
                    } if is_plain(&m) => out.push(LinkChange::Removed(link_of(&m, OP)?)),
                    _ => {}
                }
            }
        }
    }
}

/// [`LinkWatcher`] registered with the tokio reactor: `await` the next notifications.
///
/// This wraps `tokio::io::unix::AsyncFd`, whose safe constructors tokio 1.54 deprecates in
/// favour of an `unsafe` one; the deprecated call is confined here, where it is sound: the
/// watcher owns its descriptor and never closes or replaces it while registered.
#[derive(Debug)]
pub struct AsyncLinkWatcher {
    fd: AsyncFd<LinkWatcher>,
}

impl AsyncLinkWatcher {
    /// Opens a [`LinkWatcher`] and registers it with the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Like `AsyncFd` itself: outside a tokio runtime, or in one built without I/O enabled.
    pub fn open() -> Result<Self, RtnlError> {
        Self::new(LinkWatcher::open()?)
    }

    /// Registers `watcher` with the current tokio runtime (see [`AsyncLinkWatcher::open`]).
    ///
    /// # Panics
    ///
    /// Like `AsyncFd` itself: outside a tokio runtime, or in one built without I/O enabled.
    pub fn new(watcher: LinkWatcher) -> Result<Self, RtnlError> {
        #[allow(
            deprecated,
            reason = "the watcher owns its fd for as long as it is registered (I/O safety holds)"
        )]
        let fd = AsyncFd::with_interest(watcher, Interest::READABLE)
            .map_err(RtnlError::io("register the link watcher with tokio"))?;
        Ok(Self { fd })
    }

    /// Waits for notifications and returns them (never an empty list). Cancel-safe: nothing
    /// is lost when the future is dropped before it completes.
    pub async fn changes(&mut self) -> Result<Vec<LinkChange>, RtnlError> {
        loop {
            let mut guard = self.fd.readable_mut().await.map_err(RtnlError::io(OP))?;
            // On error the socket may not be drained: readiness is kept for the next call.
            let changes = guard.get_inner_mut().read_changes()?;
            guard.clear_ready();
            if !changes.is_empty() {
                return Ok(changes);
            }
        }
    }

    /// Like [`AsyncLinkWatcher::changes`], with removed links reported as down (as
    /// [`LinkWatcher::read_events`] does).
    pub async fn events(&mut self) -> Result<Vec<Link>, RtnlError> {
        self.changes().await.map(flatten)
    }

    /// The underlying watcher.
    pub fn get_mut(&mut self) -> &mut LinkWatcher {
        self.fd.get_mut()
    }
}

fn flatten(changes: Vec<LinkChange>) -> Vec<Link> {
    changes
        .into_iter()
        .map(|c| match c {
            LinkChange::Changed(l) => l,
            LinkChange::Removed(l) => Link {
                up: false,
                running: false,
                ..l
            },
        })
        .collect()
}

/// Bridge-port notifications (`AF_BRIDGE`) repeat the generic ones; only those are kept.
fn is_plain(m: &LinkMessage) -> bool {
    m.header.interface_family == AddressFamily::Unspec
}

impl AsRawFd for LinkWatcher {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for LinkWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
