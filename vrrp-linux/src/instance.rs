//! [`Instance`]: one VRRP virtual router running on a Linux interface, as a tokio task.
//!
//! The task owns a [`vrrp_proto::VirtualRouter`] and does its I/O: adverts over raw
//! protocol-112 sockets, VIPs added and removed over route netlink, gratuitous ARP /
//! unsolicited NA over an `AF_PACKET` socket, the interface's carrier watched (a link that
//! goes down puts the instance in FAULT), and one `timerfd` armed at the router's next
//! deadline. The [`Instance`] handle changes the priority, enters and leaves FAULT, reports
//! every state change through a [`tokio::sync::watch`] channel, and on
//! [`shutdown`](Instance::shutdown) (or when the handle is dropped) releases mastership
//! with a priority-0 advert and removes the VIPs.
//!
//! ```no_run
//! use std::time::Duration;
//! use vrrp_linux::instance::Instance;
//! use vrrp_proto::IpCidr;
//! use vrrp_proto::wire::Version;
//!
//! # async fn run() -> Result<(), vrrp_linux::instance::InstanceError> {
//! let vip = IpCidr::new("192.0.2.100".parse().unwrap(), 24).unwrap();
//! let vr = Instance::builder("eth0", 51)
//!     .router(move |b| {
//!         b.version(Version::V3)
//!             .priority(150)
//!             .advert_interval(Duration::from_millis(100))
//!             .vip(vip)
//!     })
//!     .start()?;
//! let mut status = vr.subscribe();
//! while status.changed().await.is_ok() {
//!     println!("now {:?}", status.borrow().state);
//! #   break;
//! }
//! vr.set_fault(true).await?; // e.g. the service behind the VIP stopped answering
//! vr.shutdown().await?;      // priority 0: the backup takes over after Skew_Time
//! # Ok(())
//! # }
//! ```
//!
//! A runtime with I/O enabled must be current when [`InstanceBuilder::start`] is called;
//! the instance's task runs on it. Everything here needs `CAP_NET_RAW` and `CAP_NET_ADMIN`.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vrrp_proto::wire::{AddrFamily, virtual_mac};
use vrrp_proto::{
    Action, Config, ConfigBuilder, ConfigError, IpCidr, RecvMeta, State, Stats, VirtualRouter,
};

use crate::rtnl::{AsyncLinkWatcher, Link, LinkChange, Rtnl, RtnlError, sysctl_set_iface};
use crate::socket::{IoError, PacketSocket, VrrpRecvSocket, VrrpSendSocket, register};
use crate::timer::Timer;

/// Why an instance could not start or a command could not be carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// A route-netlink request failed (looking up the interface, its addresses, creating the
    /// VMAC interface).
    #[error("{what}: {source}")]
    Rtnl {
        /// What was being done.
        what: String,
        /// The route-netlink error.
        #[source]
        source: RtnlError,
    },
    /// A socket could not be opened or registered.
    #[error(transparent)]
    Socket(#[from] IoError),
    /// The interface has no address to send adverts from.
    #[error(
        "interface {iface} has no {what} to send adverts from: add one, or set the source with InstanceBuilder::source"
    )]
    NoSource {
        /// The interface.
        iface: String,
        /// "IPv4 address" or "IPv6 link-local address".
        what: &'static str,
    },
    /// The router configuration was refused by vrrp-proto.
    #[error("VRRP configuration refused: {0}")]
    Config(#[from] ConfigError),
    /// The timer or the tokio reactor failed (is a tokio runtime with I/O enabled current?).
    #[error("{what}: {source} (start instances from within a tokio runtime with I/O enabled)")]
    Runtime {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The instance's task is gone (it was shut down, or its runtime stopped).
    #[error("the VRRP instance has stopped")]
    Stopped,
}

impl InstanceError {
    fn rtnl(what: impl Into<String>) -> impl FnOnce(RtnlError) -> Self {
        let what = what.into();
        move |source| Self::Rtnl { what, source }
    }
}

/// What an instance is doing now: sent through [`Instance::subscribe`] on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The router's state.
    pub state: State,
    /// The priority it advertises (0 after a release).
    pub priority: u8,
    /// The current master's address, when known (our own when we are master).
    pub master: Option<IpAddr>,
    /// In FAULT because [`Instance::set_fault`] said so.
    pub fault_requested: bool,
    /// In FAULT because the interface has no carrier or is down.
    pub link_down: bool,
}

/// Builds and starts an [`Instance`]: the interface, the virtual router id and how the
/// [`vrrp_proto::Config`] is set up.
#[must_use = "an InstanceBuilder does nothing until start() is called"]
pub struct InstanceBuilder {
    interface: String,
    vrid: u8,
    family: AddrFamily,
    source: Option<IpAddr>,
    vmac: Option<String>,
    track_link: bool,
    router: Box<dyn FnOnce(ConfigBuilder) -> ConfigBuilder + Send>,
}

impl std::fmt::Debug for InstanceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceBuilder")
            .field("interface", &self.interface)
            .field("vrid", &self.vrid)
            .field("family", &self.family)
            .field("source", &self.source)
            .field("vmac", &self.vmac)
            .field("track_link", &self.track_link)
            .finish_non_exhaustive()
    }
}

impl InstanceBuilder {
    /// IPv6 instead of IPv4 (VRRPv3 only; adverts go from the interface's link-local
    /// address to ff02::12).
    pub fn ipv6(mut self, on: bool) -> Self {
        self.family = if on {
            AddrFamily::Ipv6
        } else {
            AddrFamily::Ipv4
        };
        self
    }

    /// The advert source address. Default: the interface's first primary IPv4 address that
    /// is not one of the VIPs, or its IPv6 link-local address.
    pub fn source(mut self, addr: IpAddr) -> Self {
        self.source = Some(addr);
        self
    }

    /// Creates a macvlan interface `name` on the interface with the virtual MAC
    /// (00:00:5e:00:01:VRID, keepalived's `use_vmac`), puts the VIPs on it and sends from it,
    /// so that clients never need to re-learn the VIP's MAC. It is removed at shutdown.
    pub fn use_vmac(mut self, name: impl Into<String>) -> Self {
        self.vmac = Some(name.into());
        self
    }

    /// Whether the interface's link state puts the instance in FAULT (default: yes, as
    /// keepalived does unless `dont_track_primary`).
    pub fn track_link(mut self, on: bool) -> Self {
        self.track_link = on;
        self
    }

    /// Sets up the router: `f` gets a [`ConfigBuilder`] with the virtual router id, the
    /// advert source and the interface's MAC filled in, and adds the rest (version,
    /// priority, advert interval, VIPs, preemption, authentication, unicast peers).
    pub fn router(
        mut self,
        f: impl FnOnce(ConfigBuilder) -> ConfigBuilder + Send + 'static,
    ) -> Self {
        self.router = Box::new(f);
        self
    }

    /// Looks up the interface, opens the sockets, removes VIPs a crashed predecessor left
    /// behind, and starts the instance's task on the current tokio runtime. The instance
    /// starts as BACKUP (or MASTER at once with priority 255, RFC 5798 §6.4.1).
    pub fn start(self) -> Result<Instance, InstanceError> {
        let mut rtnl = Rtnl::open().map_err(InstanceError::rtnl("opening route netlink"))?;
        let link = rtnl
            .link_by_name(&self.interface)
            .map_err(InstanceError::rtnl(format!(
                "looking up {}",
                self.interface
            )))?;
        let v6 = self.family == AddrFamily::Ipv6;
        let source = match self.source {
            Some(a) => a,
            None => primary_address(&mut rtnl, &self.interface, link.index, v6)?,
        };
        let builder = Config::builder(self.vrid, source).mac(link.mac);
        let builder = (self.router)(builder).use_vmac(self.vmac.is_some());
        let config = builder.build()?;

        let (xmit_index, xmit_name, vmac) = match &self.vmac {
            Some(name) => {
                let idx = rtnl
                    .add_macvlan(name, link.index, virtual_mac(v6, self.vrid))
                    .map_err(InstanceError::rtnl(format!(
                        "creating VMAC interface {name}"
                    )))?;
                // The base interface must not answer ARP for the VIP with its own MAC, and
                // replies to clients arrive on the VMAC interface but route out the base.
                for (dev, key, value) in [
                    (self.interface.as_str(), "arp_ignore", "1"),
                    (name.as_str(), "arp_ignore", "1"),
                    (name.as_str(), "rp_filter", "0"),
                    (name.as_str(), "accept_local", "1"),
                ] {
                    let _ = sysctl_set_iface("ipv4", dev, key, value);
                }
                (idx, name.clone(), Some(idx))
            }
            None => (link.index, self.interface.clone(), None),
        };
        let opened = open_sockets(
            &self.interface,
            link.index,
            &xmit_name,
            xmit_index,
            v6,
            source,
        );
        let sockets = match opened {
            Ok(s) => s,
            Err(e) => {
                if let Some(idx) = vmac {
                    let _ = rtnl.del_link(idx);
                }
                return Err(e);
            }
        };
        let watcher = if self.track_link {
            Some(
                AsyncLinkWatcher::open()
                    .map_err(InstanceError::rtnl("subscribing to link events"))?,
            )
        } else {
            None
        };
        let epoch = std::time::Instant::now();
        let timer =
            Timer::new(epoch)
                .and_then(register)
                .map_err(|source| InstanceError::Runtime {
                    what: "creating the timer",
                    source,
                })?;

        let mut router = VirtualRouter::new(config);
        // A restart after a crash finds the old VIPs still configured: a backup must not
        // keep them.
        for v in router.config().vips() {
            let _ = rtnl.del_addr(xmit_index, v.addr(), v.prefix_len());
        }
        let link_down = self.track_link && !(link.up && link.running);
        let status = Status {
            state: router.state(),
            priority: router.priority(),
            master: router.master(),
            fault_requested: false,
            link_down,
        };
        let (status_tx, status_rx) = watch::channel(status);
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let now = vrrp_proto::Instant::from_std(epoch, std::time::Instant::now());
        router.startup(now);
        if link_down {
            router.set_fault(now, true);
        }
        let mut task = Task {
            router,
            rtnl,
            epoch,
            ifindex: link.index,
            xmit_index,
            vmac,
            sockets,
            timer,
            watcher,
            status: status_tx,
            fault_requested: false,
            link_down,
        };
        task.drain();
        let join = tokio::spawn(task.run(cmd_rx));
        Ok(Instance {
            commands: cmd_tx,
            status: status_rx,
            join: Some(join),
        })
    }
}

/// A running VRRP instance. Dropping it releases mastership and removes the VIPs, as
/// [`shutdown`](Self::shutdown) does, without waiting for it.
#[derive(Debug)]
pub struct Instance {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    join: Option<JoinHandle<Stats>>,
}

impl Instance {
    /// A builder for virtual router `vrid` on `interface`.
    pub fn builder(interface: impl Into<String>, vrid: u8) -> InstanceBuilder {
        InstanceBuilder {
            interface: interface.into(),
            vrid,
            family: AddrFamily::Ipv4,
            source: None,
            vmac: None,
            track_link: true,
            router: Box::new(|b| b),
        }
    }

    /// The status now.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// A receiver that sees every status change (state, priority, master, fault).
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Changes the advertised priority (1..=254; an owner's 255 cannot be set or left this
    /// way). A master that drops below a backup's priority is preempted by it.
    pub async fn set_priority(&self, priority: u8) -> Result<(), InstanceError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Priority(priority, tx)).await?;
        rx.await.map_err(|_| InstanceError::Stopped)??;
        Ok(())
    }

    /// Enters (`true`) or leaves (`false`) FAULT: a master releases with priority 0 and
    /// removes its VIPs; the instance neither advertises nor takes over while in FAULT.
    pub async fn set_fault(&self, fault: bool) -> Result<(), InstanceError> {
        self.command(Command::Fault(fault)).await
    }

    /// Stops the instance: a master sends a priority-0 advert (the backup takes over after
    /// Skew_Time) and removes its VIPs; a VMAC interface is deleted. Returns the RFC 6527
    /// counters of its life.
    pub async fn shutdown(mut self) -> Result<Stats, InstanceError> {
        let join = self.join.take().ok_or(InstanceError::Stopped)?;
        // The task stops when the command channel closes or on this command.
        let _ = self.commands.send(Command::Shutdown).await;
        join.await.map_err(|_| InstanceError::Stopped)
    }

    async fn command(&self, c: Command) -> Result<(), InstanceError> {
        self.commands
            .send(c)
            .await
            .map_err(|_| InstanceError::Stopped)
    }
}

enum Command {
    Priority(u8, oneshot::Sender<Result<(), InstanceError>>),
    Fault(bool),
    Shutdown,
}

/// The sockets of one instance.
struct Sockets {
    /// Adverts arrive here (and on the VMAC interface, when there is one).
    recv: Vec<AsyncFd<VrrpRecvSocket>>,
    send: VrrpSendSocket,
    frames: PacketSocket,
}

fn open_sockets(
    iface: &str,
    ifindex: u32,
    xmit_name: &str,
    xmit_index: u32,
    v6: bool,
    source: IpAddr,
) -> Result<Sockets, InstanceError> {
    // A macvlan delivers frames whose source is its own MAC (the master's adverts) to
    // itself rather than to the base interface, so with a VMAC both are read.
    let mut on = vec![(iface, ifindex)];
    if xmit_index != ifindex {
        on.push((xmit_name, xmit_index));
    }
    let mut recv = Vec::new();
    for (name, idx) in on {
        let sock = VrrpRecvSocket::open(name, idx, v6)?;
        recv.push(register(sock).map_err(|e| IoError::socket("registering with tokio", name, e))?);
    }
    Ok(Sockets {
        recv,
        send: VrrpSendSocket::open(xmit_name, xmit_index, source)?,
        frames: PacketSocket::open(xmit_name, xmit_index)?,
    })
}

/// The interface's first primary IPv4 address, or its IPv6 link-local address.
fn primary_address(
    rtnl: &mut Rtnl,
    iface: &str,
    ifindex: u32,
    v6: bool,
) -> Result<IpAddr, InstanceError> {
    let addrs = rtnl.addrs(ifindex).map_err(InstanceError::rtnl(format!(
        "reading the addresses of {iface}"
    )))?;
    addrs
        .iter()
        .find(|a| {
            if v6 {
                a.addr.is_ipv6() && a.link_local
            } else {
                a.addr.is_ipv4() && !a.secondary
            }
        })
        .map(|a| a.addr)
        .ok_or(InstanceError::NoSource {
            iface: iface.to_owned(),
            what: if v6 {
                "IPv6 link-local address"
            } else {
                "IPv4 address"
            },
        })
}

/// The instance's task.
struct Task {
    router: VirtualRouter,
    rtnl: Rtnl,
    epoch: std::time::Instant,
    ifindex: u32,
    xmit_index: u32,
    vmac: Option<u32>,
    sockets: Sockets,
    timer: AsyncFd<Timer>,
    watcher: Option<AsyncLinkWatcher>,
    status: watch::Sender<Status>,
    fault_requested: bool,
    link_down: bool,
}

impl Task {
    fn now(&self) -> vrrp_proto::Instant {
        vrrp_proto::Instant::from_std(self.epoch, std::time::Instant::now())
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) -> Stats {
        let mut buf_error_backoff = false;
        loop {
            let deadline = self.router.poll_timeout();
            // Arming a timerfd fails only on a bad descriptor; the loop then still wakes on
            // packets and commands, and the next pass re-arms.
            let _ = self
                .timer
                .get_mut()
                .arm(deadline.map(vrrp_proto::Instant::since_epoch));
            if buf_error_backoff {
                tokio::time::sleep(Duration::from_millis(10)).await;
                buf_error_backoff = false;
            }
            tokio::select! {
                biased;
                c = commands.recv() => match c {
                    Some(Command::Priority(p, reply)) => {
                        let now = self.now();
                        let r = self.router.set_priority(now, p).map_err(InstanceError::from);
                        let _ = reply.send(r);
                    }
                    Some(Command::Fault(on)) => {
                        self.fault_requested = on;
                        self.apply_fault();
                    }
                    Some(Command::Shutdown) | None => break,
                },
                r = recv_any(&mut self.sockets.recv) => match r {
                    Ok(Some((ifindex, rcv))) => {
                        if ifindex == self.ifindex || ifindex == self.xmit_index {
                            let now = self.now();
                            let meta = RecvMeta::new(rcv.src, rcv.dst, rcv.ttl);
                            // A refused advert is counted by the router (RFC 6527).
                            let _ = self.router.handle_packet(now, meta, &rcv.payload);
                        }
                    }
                    Ok(None) => {}
                    // A transient error (the link went away): back off briefly.
                    Err(_) => buf_error_backoff = true,
                },
                ready = self.timer.readable_mut() => {
                    if let Ok(mut guard) = ready {
                        guard.get_inner_mut().clear();
                        guard.clear_ready();
                    }
                }
                changes = next_link_changes(self.watcher.as_mut()) => match changes {
                    Ok(changes) => self.on_links(&changes),
                    Err(_) => self.resync_link(),
                },
            }
            let now = self.now();
            if self.router.poll_timeout().is_some_and(|t| t <= now) {
                self.router.handle_timeout(now);
            }
            self.drain();
        }
        let now = self.now();
        self.router.shutdown(now);
        self.drain();
        if let Some(idx) = self.vmac {
            let _ = self.rtnl.del_link(idx);
        }
        *self.router.stats()
    }

    fn apply_fault(&mut self) {
        let now = self.now();
        let fault = self.fault_requested || self.link_down;
        if fault != (self.router.state() == State::Fault) {
            self.router.set_fault(now, fault);
        }
    }

    fn on_links(&mut self, changes: &[LinkChange]) {
        for c in changes {
            let l: &Link = c.link();
            if l.index != self.ifindex && Some(l.index) != self.vmac {
                continue;
            }
            let gone = matches!(c, LinkChange::Removed(_));
            self.link_down = gone || !(l.up && l.running);
        }
        self.apply_fault();
    }

    /// After a watcher error (e.g. an overrun), reads the link state afresh.
    fn resync_link(&mut self) {
        if let Ok(l) = self.rtnl.link_by_index(self.ifindex) {
            self.link_down = !(l.up && l.running);
            self.apply_fault();
        }
    }

    /// Carries out the router's actions and publishes the status.
    fn drain(&mut self) {
        while let Some(action) = self.router.poll_action() {
            match action {
                Action::AddVip(cidr) => {
                    let _ = add_vip(&mut self.rtnl, self.xmit_index, cidr);
                }
                Action::RemoveVip(cidr) => {
                    let _ = self
                        .rtnl
                        .del_addr(self.xmit_index, cidr.addr(), cidr.prefix_len());
                }
                Action::SendAdvert(t) => {
                    // A cut link makes every send fail; the link watcher reports it.
                    let _ = self.sockets.send.send(t.dst, t.payload);
                }
                Action::SendGratuitousArp { frame, .. }
                | Action::SendUnsolicitedNa { frame, .. } => {
                    let _ = self.sockets.frames.send(frame);
                }
                // State changes are published below, with the rest of the status.
                _ => {}
            }
        }
        let now = Status {
            state: self.router.state(),
            priority: self.router.priority(),
            master: self.router.master(),
            fault_requested: self.fault_requested,
            link_down: self.link_down,
        };
        self.status.send_if_modified(|s| {
            let changed = *s != now;
            *s = now;
            changed
        });
    }
}

fn add_vip(rtnl: &mut Rtnl, dev: u32, cidr: IpCidr) -> Result<bool, RtnlError> {
    rtnl.add_addr(dev, cidr.addr(), cidr.prefix_len())
}

/// The next datagram from any of the receive sockets, with the index of the interface it
/// came in on.
async fn recv_any(
    socks: &mut [AsyncFd<VrrpRecvSocket>],
) -> io::Result<Option<(u32, crate::socket::Received)>> {
    std::future::poll_fn(|cx| {
        for fd in socks.iter_mut() {
            loop {
                let mut guard = match fd.poll_read_ready_mut(cx) {
                    std::task::Poll::Ready(Ok(g)) => g,
                    std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => break,
                };
                let ifindex = guard.get_inner().ifindex();
                match guard.try_io(|s| s.get_mut().recv()) {
                    Ok(Ok(Some(rcv))) => return std::task::Poll::Ready(Ok(Some((ifindex, rcv)))),
                    // Not a VRRP datagram we can read (truncated, wrong protocol): skip it.
                    Ok(Ok(None)) => continue,
                    Ok(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    Err(_would_block) => continue,
                }
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The next link notifications, or never when links are not tracked.
async fn next_link_changes(
    watcher: Option<&mut AsyncLinkWatcher>,
) -> Result<Vec<LinkChange>, RtnlError> {
    match watcher {
        Some(w) => w.changes().await,
        None => std::future::pending().await,
    }
}
