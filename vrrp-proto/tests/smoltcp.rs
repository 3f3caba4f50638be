//! Two routers, each on its own smoltcp `Interface`, exchange real advertisements over an
//! in-memory Ethernet "wire" (a pair of `Device`s) on virtual time: election, the backup
//! accepting the master's adverts, the VIP on the master's interface, and failover both on a
//! clean shutdown (priority 0, Skew_Time) and on a silent master (Master_Down_Interval).
#![cfg(feature = "smoltcp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use vrrp_proto::smoltcp_driver::{Event, SmoltcpRouter, from_smoltcp_instant, to_smoltcp_instant};
use vrrp_proto::{Config, Instant, Reason, State, VirtualRouter};

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory Ethernet cable: frames sent here arrive at the other end.
struct Port {
    rx: Queue,
    tx: Queue,
    /// While false, everything sent is lost (a hung host).
    up: Rc<RefCell<bool>>,
}

struct Rx(Vec<u8>);
struct Tx {
    queue: Queue,
    up: bool,
}

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0; len];
        let r = f(&mut buf);
        if self.up {
            self.queue.borrow_mut().push_back(buf);
        }
        r
    }
}

impl Device for Port {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx)> {
        let frame = self.rx.borrow_mut().pop_front()?;
        Some((
            Rx(frame),
            Tx {
                queue: self.tx.clone(),
                up: *self.up.borrow(),
            },
        ))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx> {
        Some(Tx {
            queue: self.tx.clone(),
            up: *self.up.borrow(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

const VIP: [u8; 4] = [10, 99, 0, 100];
const VIP6: [u16; 8] = [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100];
const ADVERT: Duration = Duration::from_millis(100);

struct Node {
    iface: Interface,
    device: Port,
    sockets: SocketSet<'static>,
    vr: SmoltcpRouter,
    up: Rc<RefCell<bool>>,
    vip: IpAddr,
    /// Events with the virtual time they were seen.
    events: Vec<(Instant, Event)>,
}

impl Node {
    fn new(rx: Queue, tx: Queue, host: u8, priority: u8, v6: bool) -> Self {
        let mac = [0x02, 0, 0, 0, 0, host];
        let (primary, prefix, vip) = if v6 {
            let ll = [0xfe80, 0, 0, 0, 0, 0, 0, u16::from(host)];
            (IpAddr::from(ll), 64, IpAddr::from(VIP6))
        } else {
            (IpAddr::from([10, 99, 0, host]), 24, IpAddr::from(VIP))
        };
        let up = Rc::new(RefCell::new(true));
        let mut device = Port {
            rx,
            tx,
            up: up.clone(),
        };
        let mut iface = Interface::new(
            IfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(mac))),
            &mut device,
            smoltcp::time::Instant::ZERO,
        );
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::from(primary), prefix))
                .unwrap();
        });
        let cfg = Config::builder(51, primary)
            .priority(priority)
            .advert_interval(ADVERT)
            .vip(vip)
            .mac(mac)
            .build()
            .unwrap();
        let mut sockets = SocketSet::new(Vec::new());
        let vr = SmoltcpRouter::new(VirtualRouter::new(cfg), &mut sockets);
        Self {
            iface,
            device,
            sockets,
            vr,
            up,
            vip,
            events: Vec::new(),
        }
    }

    fn poll(&mut self, now: Instant) {
        self.vr
            .poll(now, &mut self.iface, &mut self.device, &mut self.sockets)
            .unwrap();
        while let Some(e) = self.vr.poll_event() {
            self.events.push((now, e));
        }
    }

    fn has_vip(&self) -> bool {
        self.iface.has_ip_addr(IpAddress::from(self.vip))
    }

    fn state(&self) -> State {
        self.vr.router().state()
    }

    fn became_master(&self) -> Option<(Instant, Reason)> {
        self.events.iter().rev().find_map(|(t, e)| match e {
            Event::StateChanged {
                to: State::Master,
                reason,
                ..
            } => Some((*t, *reason)),
            _ => None,
        })
    }
}

struct Lan {
    nodes: [Node; 2],
    wire: [Queue; 2],
    now: Instant,
    /// Nodes that are no longer polled (hung).
    frozen: [bool; 2],
    /// Virtual-time steps taken by `run_until`.
    steps: u64,
}

impl Lan {
    fn new(prio_a: u8, prio_b: u8) -> Self {
        Self::with_family(prio_a, prio_b, false)
    }

    fn with_family(prio_a: u8, prio_b: u8, v6: bool) -> Self {
        let a_to_b: Queue = Rc::default();
        let b_to_a: Queue = Rc::default();
        let a = Node::new(b_to_a.clone(), a_to_b.clone(), 11, prio_a, v6);
        let b = Node::new(a_to_b.clone(), b_to_a.clone(), 12, prio_b, v6);
        let mut lan = Self {
            nodes: [a, b],
            wire: [a_to_b, b_to_a],
            now: Instant::ZERO,
            frozen: [false; 2],
            steps: 0,
        };
        for n in &mut lan.nodes {
            n.vr.startup(Instant::ZERO, &mut n.iface).unwrap();
        }
        lan.settle();
        lan
    }

    /// Polls the live nodes at `now` until the wire is empty (frames cross instantly).
    fn settle(&mut self) {
        for _ in 0..16 {
            for (i, n) in self.nodes.iter_mut().enumerate() {
                if !self.frozen[i] {
                    n.poll(self.now);
                } else {
                    n.device.rx.borrow_mut().clear();
                }
            }
            if self.wire.iter().all(|q| q.borrow().is_empty()) {
                return;
            }
        }
        panic!("the wire never went quiet");
    }

    /// Runs on virtual time until `until`, jumping from deadline to deadline (`poll_at`).
    fn run_until(&mut self, until: Instant) {
        while self.now < until {
            let next = self
                .nodes
                .iter_mut()
                .zip(self.frozen)
                .filter(|(_, frozen)| !frozen)
                .filter_map(|(n, _)| n.vr.poll_at(self.now, &mut n.iface, &n.sockets))
                .min()
                .unwrap_or(until);
            // smoltcp may ask to be polled "now" again; always make progress.
            self.now = next.max(self.now + Duration::from_micros(100)).min(until);
            self.steps += 1;
            self.settle();
        }
    }
}

#[test]
fn election_adverts_and_vip() {
    let mut lan = Lan::new(100, 99);
    lan.run_until(Instant::from_millis(2_000));
    let [a, b] = &lan.nodes;

    // Election: priority 100 is master, 99 backup, and the backup knows who the master is.
    assert_eq!(a.state(), State::Master);
    assert_eq!(b.state(), State::Backup);
    assert_eq!(
        b.vr.router().master(),
        a.vr.router().config().primary().into()
    );
    let (t, reason) = a.became_master().unwrap();
    assert_eq!(reason, Reason::MasterDown);
    // The master-down timer of priority 100: 3 * 100 ms + (256 - 100) * 100 ms / 256.
    assert_eq!(t - Instant::ZERO, a.vr.router().master_down_interval());
    assert!(b.became_master().is_none());

    // The VIP is on the master's interface only, and it was announced on the device.
    assert!(a.has_vip());
    assert!(!b.has_vip());
    assert!(
        a.events
            .iter()
            .any(|(_, e)| matches!(e, Event::VipAdded(v) if v.addr() == IpAddr::from(VIP)))
    );
    assert_eq!(a.vr.stats().frames_sent, 5); // garp_master_repeat
    // Both joined 224.0.0.18.
    assert!(a.iface.has_multicast_group(IpAddress::v4(224, 0, 0, 18)));
    assert!(b.iface.has_multicast_group(IpAddress::v4(224, 0, 0, 18)));

    // The backup receives and accepts every advert, with no refusals.
    let received = b.vr.router().stats().adverts_received;
    let sent = a.vr.router().stats().adverts_sent;
    assert!(received >= 15, "only {received} adverts received");
    assert_eq!(received, sent);
    assert_eq!(b.vr.stats().refused, 0);
    assert_eq!(b.vr.last_refused(), None);
    assert_eq!(b.vr.stats().malformed, 0);

    lan.run_until(Instant::from_millis(3_000));
    let b = &lan.nodes[1];
    assert_eq!(b.state(), State::Backup);
    let more = b.vr.router().stats().adverts_received;
    // One advert every 100 ms for another second.
    assert!(
        (received + 9..=received + 11).contains(&more),
        "{received} -> {more}"
    );
}

#[test]
fn failover_on_shutdown_within_skew_time() {
    let mut lan = Lan::new(100, 99);
    lan.run_until(Instant::from_millis(1_000));
    assert_eq!(lan.nodes[0].state(), State::Master);

    let t0 = lan.now;
    {
        let a = &mut lan.nodes[0];
        a.vr.shutdown(t0, &mut a.iface, &mut a.sockets).unwrap();
    }
    lan.settle(); // the priority-0 advert crosses the wire
    let a = &lan.nodes[0];
    assert_eq!(a.state(), State::Initialize);
    assert!(!a.has_vip());
    assert!(
        a.events
            .iter()
            .any(|(_, e)| matches!(e, Event::VipRemoved(v) if v.addr() == IpAddr::from(VIP)))
    );
    assert_eq!(lan.nodes[1].vr.router().stats().priority_zero_received, 1);

    lan.run_until(t0 + Duration::from_millis(500));
    let b = &lan.nodes[1];
    assert_eq!(b.state(), State::Master);
    assert!(b.has_vip());
    let (t, reason) = b.became_master().unwrap();
    assert_eq!(reason, Reason::PriorityZeroReceived);
    // Skew_Time for priority 99: (256 - 99) * 100 ms / 256 = 61.3 ms, far below the
    // Master_Down_Interval.
    assert_eq!(t - t0, b.vr.router().skew_time());
    assert!(t - t0 < b.vr.router().master_down_interval());
}

#[test]
fn failover_on_silent_master_after_master_down_interval() {
    let mut lan = Lan::new(100, 99);
    lan.run_until(Instant::from_millis(1_000));
    assert_eq!(lan.nodes[0].state(), State::Master);
    let before = lan.nodes[1].vr.router().stats().adverts_received;

    // The master hangs: never polled again, nothing more on the wire from it.
    let t0 = lan.now;
    lan.frozen[0] = true;
    *lan.nodes[0].up.borrow_mut() = false;
    lan.run_until(t0 + Duration::from_millis(1_000));

    let b = &lan.nodes[1];
    assert_eq!(b.state(), State::Master);
    assert!(b.has_vip());
    assert_eq!(b.vr.router().stats().adverts_received, before);
    let (t, reason) = b.became_master().unwrap();
    assert_eq!(reason, Reason::MasterDown);
    // Master_Down_Interval after the last advert, which came at most one interval before t0.
    let mdi = b.vr.router().master_down_interval();
    assert!(t - t0 <= mdi, "{:?} > {mdi:?}", t - t0);
    assert!(t - t0 >= mdi - ADVERT, "{:?} too early", t - t0);
    assert_eq!(b.vr.stats().frames_sent, 5);
}

#[test]
fn ipv6_election_and_failover() {
    let mut lan = Lan::with_family(100, 99, true);
    lan.run_until(Instant::from_millis(1_000));
    let [a, b] = &lan.nodes;
    assert_eq!(a.state(), State::Master);
    assert_eq!(b.state(), State::Backup);
    assert!(a.has_vip());
    assert!(!b.has_vip());
    assert!(
        a.iface
            .has_multicast_group(IpAddress::v6(0xff02, 0, 0, 0, 0, 0, 0, 0x12))
    );
    let received = b.vr.router().stats().adverts_received;
    assert!(received >= 6, "only {received} adverts received");
    assert_eq!(received, a.vr.router().stats().adverts_sent);
    assert_eq!(b.vr.stats().refused, 0);
    assert_eq!(a.vr.stats().frames_sent, 5); // unsolicited NAs

    let t0 = lan.now;
    {
        let a = &mut lan.nodes[0];
        a.vr.shutdown(t0, &mut a.iface, &mut a.sockets).unwrap();
    }
    lan.settle();
    lan.run_until(t0 + Duration::from_millis(500));
    let [a, b] = &lan.nodes;
    assert!(!a.has_vip());
    assert_eq!(b.state(), State::Master);
    assert!(b.has_vip());
    let (t, reason) = b.became_master().unwrap();
    assert_eq!(reason, Reason::PriorityZeroReceived);
    assert_eq!(t - t0, b.vr.router().skew_time());
    // `poll_at` let the loop jump from deadline to deadline: no busy polling.
    assert!(lan.steps < 40, "{} steps for 1.5 s", lan.steps);
}

#[test]
fn time_conversions_saturate() {
    let t = smoltcp::time::Instant::from_micros(1_234_567);
    assert_eq!(from_smoltcp_instant(t), Instant::from_micros(1_234_567));
    assert_eq!(to_smoltcp_instant(from_smoltcp_instant(t)), t);
    assert_eq!(
        from_smoltcp_instant(smoltcp::time::Instant::from_micros(-5)),
        Instant::ZERO
    );
    assert_eq!(
        to_smoltcp_instant(Instant::MAX),
        smoltcp::time::Instant::from_micros(i64::MAX)
    );
}

/// The TTL the router checks is the one in the received IP header: an otherwise valid advert
/// that arrives with TTL 1 is refused (RFC 5798 §7.1), one with TTL 255 accepted.
#[test]
fn ttl_comes_from_the_received_ip_header() {
    use smoltcp::socket::raw;
    use smoltcp::wire::{IpProtocol, IpVersion, Ipv4Packet, Ipv4Repr};
    use vrrp_proto::RecvError;
    use vrrp_proto::wire::{AddrList, Auth, Ctx, Repr, Version};

    let mut lan = Lan::new(100, 99);
    lan.run_until(Instant::from_millis(100)); // both Backup, nobody advertising yet
    // A third host on A's side injects adverts through its own raw socket on A's interface.
    let a = &mut lan.nodes[0];
    let buf = || raw::PacketBuffer::new(vec![raw::PacketMetadata::EMPTY; 4], vec![0; 512]);
    let spoof = a.sockets.add(raw::Socket::new(
        Some(IpVersion::Ipv4),
        Some(IpProtocol::from(112)),
        buf(),
        buf(),
    ));
    let src = std::net::Ipv4Addr::new(10, 99, 0, 13);
    let dst = std::net::Ipv4Addr::new(224, 0, 0, 18);
    let send = |sockets: &mut SocketSet<'static>, ttl: u8| {
        let vip = VIP;
        let repr = Repr {
            version: Version::V3,
            vrid: 51,
            priority: 200,
            adver_int: 10,
            addrs: AddrList::new_v4(&vip).unwrap(),
            auth: Auth::None,
        };
        let mut payload = [0u8; 64];
        let n = repr
            .emit(&mut payload, &Ctx::new(src.into(), dst.into()))
            .unwrap();
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::from(112),
            payload_len: n,
            hop_limit: ttl,
        };
        let out = sockets
            .get_mut::<raw::Socket<'_>>(spoof)
            .send(ip.buffer_len() + n)
            .unwrap();
        out[ip.buffer_len()..].copy_from_slice(&payload[..n]);
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut out[..ip.buffer_len()]),
            &Default::default(),
        );
    };
    send(&mut a.sockets, 1);
    lan.settle();
    let b = &lan.nodes[1];
    assert_eq!(b.vr.last_refused(), Some(RecvError::IpTtl(1)));
    assert_eq!(b.vr.router().stats().ip_ttl_errors, 1);
    assert_eq!(b.vr.router().stats().adverts_received, 0);

    send(&mut lan.nodes[0].sockets, 255);
    lan.settle();
    let b = &lan.nodes[1];
    assert_eq!(b.vr.router().stats().adverts_received, 1);
    assert_eq!(b.vr.router().master(), Some(IpAddr::from(src)));
}
