//! Run a [`VirtualRouter`] over a [smoltcp] [`Interface`] and a raw IP socket (feature
//! `smoltcp`), for appliances without a Linux kernel.
//!
//! [`SmoltcpRouter`] owns the router and the handle of a raw socket bound to IP protocol 112
//! (IPv4 or IPv6, after the configured family). It translates between the two worlds:
//!
//! * **ingress**: smoltcp raw sockets deliver the whole IP packet, header included (smoltcp
//!   re-serialises the header it parsed). Each packet is parsed with
//!   [`Ipv4Packet`]/[`Ipv6Packet`]; its source, destination and TTL / hop limit become the
//!   [`RecvMeta`] and its payload goes to [`VirtualRouter::handle_packet`]. Packets for
//!   another VRID (every raw socket sees every protocol-112 packet) are skipped without
//!   touching the router, so several `SmoltcpRouter`s can share one interface.
//! * **egress**: every [`Action::SendAdvert`] becomes an IP packet with TTL / hop limit 255,
//!   protocol 112, source the configured primary address and destination 224.0.0.18, ff02::12
//!   or the unicast peer, queued on the raw socket. [`Action::AddVip`] / [`Action::RemoveVip`]
//!   edit the interface's addresses through [`Interface::update_ip_addrs`] (an address that
//!   was already there, such as the address owner's primary, is neither added twice nor
//!   removed). [`Action::StateChanged`] becomes an [`Event`] for the caller.
//! * **announcements**: the gratuitous ARP / unsolicited NA frames are link-layer frames,
//!   which a raw IP socket cannot send. They are queued as [`Frame`]s. [`SmoltcpRouter::poll`]
//!   writes them straight to the [`Device`] when its medium is Ethernet (they bypass the
//!   `Interface`, which has no API for foreign frames) and drops them on `Medium::Ip`, where
//!   there is no link layer to announce on. With the split API, take them with
//!   [`SmoltcpRouter::poll_frame`] or send them with [`SmoltcpRouter::transmit_frames`].
//! * **multicast**: [`SmoltcpRouter::startup`] joins 224.0.0.18 or ff02::12 on the interface
//!   ([`Interface::join_multicast_group`], smoltcp feature `multicast`), so smoltcp sends the
//!   IGMP / MLD report that snooping switches need. smoltcp 0.14 hands every packet to the
//!   matching raw sockets before its destination check, so reception does not depend on the
//!   join; on real hardware the device driver must still let the group's MAC address
//!   (01:00:5e:00:00:12, 33:33:00:00:00:12) through its filter. The group is not left on
//!   shutdown, since other routers on the interface may share it. Unicast-only routers join
//!   nothing.
//! * **time**: [`from_smoltcp_instant`] and [`to_smoltcp_instant`] convert between
//!   [`smoltcp::time::Instant`] and [`crate::Instant`] (negative smoltcp instants saturate to
//!   zero). They are functions rather than `From` impls because neither type is defined in
//!   this crate.
//!
//! # The run loop
//!
//! ```no_run
//! # use smoltcp::iface::{Interface, SocketSet};
//! # use smoltcp::phy::Device;
//! # use vrrp_proto::smoltcp_driver::{Event, SmoltcpRouter};
//! # fn clock() -> vrrp_proto::Instant { vrrp_proto::Instant::ZERO }
//! # fn sleep_until(_: Option<vrrp_proto::Instant>) {}
//! # fn run(mut vr: SmoltcpRouter, iface: &mut Interface, device: &mut impl Device,
//! #        sockets: &mut SocketSet<'_>) -> Result<(), vrrp_proto::smoltcp_driver::Error> {
//! vr.startup(clock(), iface)?;
//! loop {
//!     let now = clock();
//!     // smoltcp in, adverts to the router, timers, actions out, smoltcp out.
//!     if let Err(e) = vr.poll(now, iface, device, sockets) {
//!         // e.g. the interface address table is full: the VIP is not held.
//!         let _ = e;
//!     }
//!     while let Some(event) = vr.poll_event() {
//!         if let Event::StateChanged { from, to, reason } = event {
//!             // log, run notify scripts, ...
//!             let _ = (from, to, reason);
//!         }
//!     }
//!     // Sleep until the router's next deadline or smoltcp's, or until a packet arrives.
//!     sleep_until(vr.poll_at(now, iface, sockets));
//! }
//! # }
//! ```
//!
//! The pieces of [`poll`](SmoltcpRouter::poll) are public too ([`ingress`](SmoltcpRouter::ingress),
//! [`handle_timeout`](SmoltcpRouter::handle_timeout), [`egress`](SmoltcpRouter::egress)) for callers
//! that drive smoltcp themselves.
//!
//! # Sizing smoltcp
//!
//! * smoltcp's interface holds `IFACE_MAX_ADDR_COUNT` addresses (2 by default: the primary
//!   and one VIP). Raise it with a smoltcp `iface-max-addr-count-*` feature in the
//!   application when there are more VIPs, or [`Error::AddressTableFull`] is returned.
//! * Set the configuration's MAC ([`crate::ConfigBuilder::mac`]) to the interface's, so the
//!   announcements carry it.
//! * A unicast peer on Ethernet needs its neighbour resolved; smoltcp sends an ARP / NDP
//!   request and drops the advertisement that triggered it, so the first advert to a new
//!   peer can be lost (the next one, one interval later, goes out).

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use smoltcp::iface::{Interface, MulticastError, SocketHandle, SocketSet};
use smoltcp::phy::{ChecksumCapabilities, Device, Medium, TxToken};
use smoltcp::socket::AnySocket;
use smoltcp::socket::raw;
use smoltcp::wire::{
    IpAddress, IpCidr as SmolCidr, IpProtocol, IpVersion, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr,
};

use crate::wire::{AddrFamily, IPPROTO_VRRP, MULTICAST_V4, MULTICAST_V6};
use crate::{Action, Instant, IpCidr, Reason, RecvError, RecvMeta, State, VirtualRouter};

/// A smoltcp instant as an [`Instant`]: microseconds since smoltcp's epoch; instants before
/// it saturate to [`Instant::ZERO`].
///
/// ```
/// use vrrp_proto::Instant;
/// use vrrp_proto::smoltcp_driver::from_smoltcp_instant;
///
/// let t = smoltcp::time::Instant::from_micros(1_234_567);
/// assert_eq!(from_smoltcp_instant(t), Instant::from_micros(1_234_567));
/// ```
#[must_use]
pub fn from_smoltcp_instant(t: smoltcp::time::Instant) -> Instant {
    Instant::from_micros(u64::try_from(t.total_micros()).unwrap_or(0))
}

/// An [`Instant`] as a smoltcp instant: the same microsecond count, saturating at
/// `i64::MAX`.
///
/// ```
/// use vrrp_proto::Instant;
/// use vrrp_proto::smoltcp_driver::to_smoltcp_instant;
///
/// let t = to_smoltcp_instant(Instant::from_millis(1_500));
/// assert_eq!(t, smoltcp::time::Instant::from_millis(1_500));
/// ```
#[must_use]
pub fn to_smoltcp_instant(t: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(t.micros()).unwrap_or(i64::MAX))
}

/// Largest IP packet the default socket buffers hold: an Ethernet MTU.
const DEFAULT_MTU: usize = 1500;
/// Packets the default receive buffer holds.
const DEFAULT_RX_PACKETS: usize = 8;
/// Packets the default transmit buffer holds (at least).
const DEFAULT_TX_PACKETS: usize = 4;

/// What went wrong in the glue between the router and smoltcp.
///
/// A failed step does not stop the others: the router's actions are always drained, so its
/// state stays consistent; the call returns the first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket handle does not name a raw socket in this socket set.
    #[error("the socket handle does not refer to a raw socket in this socket set")]
    NoSocket,
    /// The raw socket's transmit buffer is full: this advertisement was dropped.
    #[error("raw socket transmit buffer full; advertisement to {dst} dropped")]
    SendBufferFull {
        /// Where the advertisement was going.
        dst: IpAddr,
    },
    /// The interface's address table is full: the VIP is not on the interface.
    #[error("interface address table full, {vip} not added; raise smoltcp's iface-max-addr-count")]
    AddressTableFull {
        /// The address that did not fit.
        vip: IpCidr,
    },
    /// The VIP is not a unicast address, which smoltcp refuses on an interface.
    #[error("{vip} is not a unicast address and cannot be assigned to the interface")]
    NotUnicast {
        /// The offending address.
        vip: IpCidr,
    },
    /// Joining the VRRP multicast group failed.
    #[error("joining the VRRP multicast group failed: {0}")]
    Multicast(MulticastError),
    /// The device had no transmit buffer for an announcement frame; it stays queued.
    #[error("the device has no transmit buffer; announcement frame kept for the next poll")]
    DeviceBusy,
}

/// Something the caller should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The router changed state ([`Action::StateChanged`]).
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// A VIP is on the interface now (added, or already there, as the address owner's
    /// primary is).
    VipAdded(IpCidr),
    /// A VIP was taken off the interface.
    VipRemoved(IpCidr),
}

/// The kind of an announcement [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameKind {
    /// A gratuitous ARP for this IPv4 VIP.
    GratuitousArp(Ipv4Addr),
    /// An unsolicited neighbour advertisement for this IPv6 VIP.
    UnsolicitedNa(Ipv6Addr),
}

/// A whole Ethernet frame to send on the device (an announcement of a VIP).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Frame {
    /// What it announces.
    pub kind: FrameKind,
    /// The Ethernet frame, header included.
    pub bytes: Vec<u8>,
}

/// Counters of the glue itself; the protocol counters are in [`VirtualRouter::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverStats {
    /// Packets read from the raw socket.
    pub packets_received: u64,
    /// Packets whose IP header could not be parsed (or that carried IPv6 extension headers).
    pub malformed: u64,
    /// Packets for another VRID or family, skipped.
    pub foreign: u64,
    /// Packets the router refused (details in the router's stats).
    pub refused: u64,
    /// Advertisements queued on the raw socket.
    pub adverts_queued: u64,
    /// Advertisements dropped because the socket's transmit buffer was full.
    pub adverts_dropped: u64,
    /// Announcement frames written to the device.
    pub frames_sent: u64,
    /// Announcement frames dropped (`Medium::Ip`, or a frame larger than the device MTU).
    pub frames_dropped: u64,
}

/// A [`VirtualRouter`] bound to a smoltcp raw socket. See the [module docs](self).
#[derive(Debug)]
pub struct SmoltcpRouter {
    router: VirtualRouter,
    handle: SocketHandle,
    events: VecDeque<Event>,
    frames: VecDeque<Frame>,
    /// VIPs this driver put on the interface (and so may take off).
    added: Vec<IpCidr>,
    last_refused: Option<RecvError>,
    stats: DriverStats,
}

impl SmoltcpRouter {
    /// A raw socket for `router`: bound to IP protocol 112 and the configured family, with
    /// heap buffers sized for Ethernet-MTU packets.
    pub fn socket(router: &VirtualRouter) -> raw::Socket<'static> {
        let cfg = router.config();
        let version = match cfg.family() {
            AddrFamily::Ipv4 => IpVersion::Ipv4,
            AddrFamily::Ipv6 => IpVersion::Ipv6,
        };
        let tx_packets = DEFAULT_TX_PACKETS.max(cfg.unicast_peers().len().saturating_mul(2));
        let buffer = |packets: usize| {
            raw::PacketBuffer::new(
                vec![raw::PacketMetadata::EMPTY; packets],
                vec![0u8; packets.saturating_mul(DEFAULT_MTU)],
            )
        };
        raw::Socket::new(
            Some(version),
            Some(IpProtocol::from(IPPROTO_VRRP)),
            buffer(DEFAULT_RX_PACKETS),
            buffer(tx_packets),
        )
    }

    /// Adds a raw socket for `router` ([`SmoltcpRouter::socket`]) to `sockets` and wraps both.
    pub fn new(router: VirtualRouter, sockets: &mut SocketSet<'_>) -> Self {
        let handle = sockets.add(Self::socket(&router));
        Self::with_socket(router, handle)
    }

    /// Wraps `router` and an existing raw socket, which must be bound to IP protocol 112 and
    /// the configured family (or left unbound; other packets are then skipped).
    pub fn with_socket(router: VirtualRouter, handle: SocketHandle) -> Self {
        Self {
            router,
            handle,
            events: VecDeque::new(),
            frames: VecDeque::new(),
            added: Vec::new(),
            last_refused: None,
            stats: DriverStats::default(),
        }
    }

    /// The router.
    pub fn router(&self) -> &VirtualRouter {
        &self.router
    }

    /// The router, for [`VirtualRouter::set_priority`] and [`VirtualRouter::set_fault`];
    /// call [`egress`](Self::egress) (or [`poll`](Self::poll)) afterwards.
    pub fn router_mut(&mut self) -> &mut VirtualRouter {
        &mut self.router
    }

    /// The raw socket's handle.
    pub fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// The glue's counters.
    pub fn stats(&self) -> &DriverStats {
        &self.stats
    }

    /// Why the router refused the last packet it refused, if it ever did.
    pub fn last_refused(&self) -> Option<RecvError> {
        self.last_refused
    }

    /// Joins the VRRP multicast group (unless the router only talks to unicast peers) and
    /// starts the router. Follow with [`poll`](Self::poll) or [`egress`](Self::egress).
    ///
    /// The router starts even when the join fails ([`Error::Multicast`], e.g. smoltcp's group
    /// table is full); adverts still arrive through the raw socket then, but snooping switches
    /// may not forward them.
    pub fn startup(&mut self, now: Instant, iface: &mut Interface) -> Result<(), Error> {
        let joined = if self.router.config().unicast_peers().is_empty() {
            let group = match self.router.config().family() {
                AddrFamily::Ipv4 => IpAddress::Ipv4(MULTICAST_V4),
                AddrFamily::Ipv6 => IpAddress::Ipv6(MULTICAST_V6),
            };
            iface.join_multicast_group(group).map_err(Error::Multicast)
        } else {
            Ok(())
        };
        self.router.startup(now);
        joined
    }

    /// Shuts the router down (a master sends priority 0 and gives up its VIPs) and applies the
    /// resulting actions. Call [`poll`](Self::poll) (or `iface.poll`) once more so the release
    /// actually leaves.
    pub fn shutdown(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> Result<(), Error> {
        self.router.shutdown(now);
        self.egress(iface, sockets)
    }

    /// One turn of the run loop: `iface.poll` (ingress into the raw socket), [`ingress`],
    /// [`handle_timeout`], [`egress`], announcement frames to the device
    /// ([`transmit_frames`]), then `iface.poll` again to send the queued advertisements.
    ///
    /// Returns the first failure; every step still runs.
    ///
    /// [`ingress`]: Self::ingress
    /// [`handle_timeout`]: Self::handle_timeout
    /// [`egress`]: Self::egress
    /// [`transmit_frames`]: Self::transmit_frames
    pub fn poll<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        device: &mut D,
        sockets: &mut SocketSet<'_>,
    ) -> Result<(), Error> {
        let ts = to_smoltcp_instant(now);
        iface.poll(ts, device, sockets);
        let r1 = self.ingress(now, iface, sockets);
        self.router.handle_timeout(now);
        let r2 = self.egress(iface, sockets);
        let r3 = self.transmit_frames(now, device);
        iface.poll(ts, device, sockets);
        r1.and(r2).and(r3)
    }

    /// Reads every packet waiting on the raw socket into the router, then applies the
    /// resulting actions ([`egress`](Self::egress)). Refused packets are counted (router
    /// stats, [`DriverStats::refused`], [`last_refused`](Self::last_refused)), not returned.
    pub fn ingress(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> Result<(), Error> {
        {
            let socket = find_socket(sockets, self.handle)?;
            while let Ok(packet) = socket.recv() {
                self.stats.packets_received += 1;
                let Some((meta, payload)) = parse_ip(packet) else {
                    self.stats.malformed += 1;
                    continue;
                };
                if !self.router.accepts(&meta, payload) {
                    self.stats.foreign += 1;
                    continue;
                }
                if let Err(e) = self.router.handle_packet(now, meta, payload) {
                    self.stats.refused += 1;
                    self.last_refused = Some(e);
                }
            }
        }
        self.egress(iface, sockets)
    }

    /// Fires the router's due timers ([`VirtualRouter::handle_timeout`]). Follow with
    /// [`egress`](Self::egress).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.router.handle_timeout(now);
    }

    /// Drains the router's actions: advertisements onto the raw socket, VIPs onto / off the
    /// interface, state changes into [`poll_event`](Self::poll_event), announcements into
    /// [`poll_frame`](Self::poll_frame). The advertisements leave on the next `iface.poll`.
    ///
    /// Every action is applied even when one fails; the first failure is returned.
    pub fn egress(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
    ) -> Result<(), Error> {
        let mut socket = find_socket(sockets, self.handle);
        let mut first_err = socket.as_ref().err().copied();
        while let Some(action) = self.router.poll_action() {
            let res = match action {
                Action::StateChanged { from, to, reason } => {
                    self.events
                        .push_back(Event::StateChanged { from, to, reason });
                    Ok(())
                }
                Action::AddVip(vip) => {
                    let r = add_vip(iface, &mut self.added, vip);
                    if r.is_ok() {
                        self.events.push_back(Event::VipAdded(vip));
                    }
                    r
                }
                Action::RemoveVip(vip) => {
                    if let Some(i) = self.added.iter().position(|a| *a == vip) {
                        self.added.swap_remove(i);
                        let addr = IpAddress::from(vip.addr());
                        iface.update_ip_addrs(|addrs| addrs.retain(|c| c.address() != addr));
                        self.events.push_back(Event::VipRemoved(vip));
                    }
                    Ok(())
                }
                Action::SendAdvert(t) => match socket.as_mut() {
                    Ok(s) => {
                        let r = send_advert(s, t.src, t.dst, t.ttl, t.payload);
                        match r {
                            Ok(()) => self.stats.adverts_queued += 1,
                            Err(_) => self.stats.adverts_dropped += 1,
                        }
                        r
                    }
                    Err(_) => {
                        self.stats.adverts_dropped += 1;
                        Ok(()) // already reported
                    }
                },
                Action::SendGratuitousArp { vip, frame } => {
                    self.frames.push_back(Frame {
                        kind: FrameKind::GratuitousArp(vip),
                        bytes: frame.to_vec(),
                    });
                    Ok(())
                }
                Action::SendUnsolicitedNa { vip, frame } => {
                    self.frames.push_back(Frame {
                        kind: FrameKind::UnsolicitedNa(vip),
                        bytes: frame.to_vec(),
                    });
                    Ok(())
                }
            };
            if first_err.is_none() {
                first_err = res.err();
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The next event, oldest first. Drain after every [`poll`](Self::poll).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next announcement frame, for callers that send link-layer frames themselves
    /// ([`poll`](Self::poll) sends them on its own).
    pub fn poll_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    /// Writes the queued announcement frames to `device` when its medium is Ethernet (they
    /// bypass the [`Interface`]); drops them on other media. Returns [`Error::DeviceBusy`],
    /// keeping the rest queued, when the device has no transmit buffer.
    pub fn transmit_frames<D: Device + ?Sized>(
        &mut self,
        now: Instant,
        device: &mut D,
    ) -> Result<(), Error> {
        let caps = device.capabilities();
        if caps.medium != Medium::Ethernet {
            self.stats.frames_dropped += self.frames.len() as u64;
            self.frames.clear();
            return Ok(());
        }
        let max = caps.max_transmission_unit;
        while let Some(frame) = self.frames.front() {
            if frame.bytes.len() > max {
                self.stats.frames_dropped += 1;
                self.frames.pop_front();
                continue;
            }
            let Some(token) = device.transmit(to_smoltcp_instant(now)) else {
                return Err(Error::DeviceBusy);
            };
            token.consume(frame.bytes.len(), |buf| {
                if let Some(dst) = buf.get_mut(..frame.bytes.len()) {
                    dst.copy_from_slice(&frame.bytes);
                }
            });
            self.stats.frames_sent += 1;
            self.frames.pop_front();
        }
        Ok(())
    }

    /// When to call [`poll`](Self::poll) next: the earlier of the router's deadline
    /// ([`VirtualRouter::poll_timeout`]) and smoltcp's ([`Interface::poll_at`]); `now` when
    /// announcement frames are waiting; `None` when nothing is scheduled (wait for a packet).
    pub fn poll_at(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'_>,
    ) -> Option<Instant> {
        let smol = iface
            .poll_at(to_smoltcp_instant(now), sockets)
            .map(from_smoltcp_instant);
        let frames = (!self.frames.is_empty()).then_some(now);
        [self.router.poll_timeout(), smol, frames]
            .into_iter()
            .flatten()
            .min()
    }

    /// [`poll_at`](Self::poll_at) as a delay from `now` (zero when already due).
    pub fn poll_delay(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'_>,
    ) -> Option<Duration> {
        self.poll_at(now, iface, sockets).map(|at| at - now)
    }
}

/// The raw socket behind `handle`, without smoltcp's panicking lookup.
fn find_socket<'s, 'a>(
    sockets: &'s mut SocketSet<'a>,
    handle: SocketHandle,
) -> Result<&'s mut raw::Socket<'a>, Error> {
    sockets
        .iter_mut()
        .find(|(h, _)| *h == handle)
        .and_then(|(_, s)| raw::Socket::downcast_mut(s))
        .ok_or(Error::NoSocket)
}

/// The receive metadata and VRRP payload of a whole IP packet, or `None` if malformed.
fn parse_ip(packet: &[u8]) -> Option<(RecvMeta, &[u8])> {
    let vrrp = IpProtocol::from(IPPROTO_VRRP);
    match packet.first()? >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(packet).ok()?;
            if p.next_header() != vrrp || p.more_frags() || p.frag_offset() != 0 {
                return None;
            }
            let meta = RecvMeta::new(p.src_addr().into(), p.dst_addr().into(), p.hop_limit());
            Some((meta, p.payload()))
        }
        6 => {
            let p = Ipv6Packet::new_checked(packet).ok()?;
            if p.next_header() != vrrp {
                return None;
            }
            let meta = RecvMeta::new(p.src_addr().into(), p.dst_addr().into(), p.hop_limit());
            Some((meta, p.payload()))
        }
        _ => None,
    }
}

/// Queues `payload` behind an IP header on the raw socket.
fn send_advert(
    socket: &mut raw::Socket<'_>,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    payload: &[u8],
) -> Result<(), Error> {
    let full = Error::SendBufferFull { dst };
    let next_header = IpProtocol::from(IPPROTO_VRRP);
    match (src, dst) {
        (IpAddr::V4(src_addr), IpAddr::V4(dst_addr)) => {
            let repr = Ipv4Repr {
                src_addr,
                dst_addr,
                next_header,
                payload_len: payload.len(),
                hop_limit: ttl,
            };
            let hlen = repr.buffer_len();
            let buf = socket.send(hlen + payload.len()).map_err(|_| full)?;
            let (head, body) = buf.split_at_mut(hlen);
            body.copy_from_slice(payload);
            let mut packet = Ipv4Packet::new_unchecked(head);
            repr.emit(&mut packet, &ChecksumCapabilities::default());
            Ok(())
        }
        (IpAddr::V6(src_addr), IpAddr::V6(dst_addr)) => {
            let repr = Ipv6Repr {
                src_addr,
                dst_addr,
                next_header,
                payload_len: payload.len(),
                hop_limit: ttl,
            };
            let hlen = repr.buffer_len();
            let buf = socket.send(hlen + payload.len()).map_err(|_| full)?;
            let (head, body) = buf.split_at_mut(hlen);
            body.copy_from_slice(payload);
            let mut packet = Ipv6Packet::new_unchecked(head);
            repr.emit(&mut packet);
            Ok(())
        }
        // The configuration keeps the primary and the peers in one family.
        _ => Err(full),
    }
}

/// Puts `vip` on the interface unless it is already there.
fn add_vip(iface: &mut Interface, added: &mut Vec<IpCidr>, vip: IpCidr) -> Result<(), Error> {
    let addr = IpAddress::from(vip.addr());
    if !addr.is_unicast() {
        return Err(Error::NotUnicast { vip });
    }
    if iface.ip_addrs().iter().any(|c| c.address() == addr) {
        return Ok(());
    }
    let mut res = Ok(());
    iface.update_ip_addrs(|addrs| {
        if addrs.push(SmolCidr::new(addr, vip.prefix_len())).is_err() {
            res = Err(Error::AddressTableFull { vip });
        }
    });
    if res.is_ok() {
        added.push(vip);
    }
    res
}
