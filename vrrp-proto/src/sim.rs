//! A deterministic discrete-event simulation of VRRP routers on one LAN, on virtual time.
//!
//! [`Lan`] holds N [`VirtualRouter`]s and a lossy, delaying, partitionable link between them.
//! Everything random comes from one starting value, so a run is reproducible bit for bit: tests,
//! benches and users can replay elections, failovers and split-brain recoveries without a
//! network or a clock.
//!
//! ```
//! use core::time::Duration;
//! use vrrp_proto::sim::{Lan, Link};
//! use vrrp_proto::{Config, Instant, State};
//!
//! let mut lan = Lan::new(7, Link::default());
//! let cfg = |ip: &str, prio| {
//!     Config::builder(51, ip.parse().unwrap())
//!         .priority(prio)
//!         .advert_interval(Duration::from_millis(100))
//!         .vip("10.0.0.100".parse::<core::net::IpAddr>().unwrap())
//!         .build()
//!         .unwrap()
//! };
//! let a = lan.add_router(cfg("10.0.0.1", 200));
//! let b = lan.add_router(cfg("10.0.0.2", 100));
//! lan.start_all();
//! lan.run_for(Duration::from_secs(1));
//! assert_eq!(lan.masters(), vec![a]);
//! lan.crash(a);
//! lan.run_for(Duration::from_secs(1));
//! assert_eq!(lan.masters(), vec![b]);
//! ```

use alloc::collections::{BTreeMap, BinaryHeap};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::IpAddr;
use core::time::Duration;

use hapri_time::duration_micros;

use crate::config::{Config, IpCidr};
use crate::router::{Action, Reason, RecvMeta, State, VirtualRouter};
use crate::time::Instant;

/// The link every advertisement crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Probability of losing each delivery, in parts per million (300 000 = 30 %).
    pub loss_ppm: u32,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`, drawn per delivery. Deliveries between one pair
    /// of routers stay in order, as on a switched LAN: jitter never reorders them.
    pub jitter: Duration,
}

impl Default for Link {
    /// A perfect link: no loss, 100 µs delay, no jitter.
    fn default() -> Self {
        Self {
            loss_ppm: 0,
            delay: Duration::from_micros(100),
            jitter: Duration::ZERO,
        }
    }
}

impl Link {
    /// A link with the given loss, delay and jitter.
    pub const fn new(loss_ppm: u32, delay: Duration, jitter: Duration) -> Self {
        Self {
            loss_ppm,
            delay,
            jitter,
        }
    }

    /// The longest a delivery can take, as the simulator's microsecond clock sees it (delay
    /// and jitter each rounded up to whole microseconds).
    pub fn max_delay(&self) -> Duration {
        Duration::from_micros(duration_micros(self.delay) + duration_micros(self.jitter))
    }
}

/// Something that happened in the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A router changed state.
    StateChanged {
        /// Old state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// The router crashed (stopped without a word).
    Crashed,
    /// The router restarted from its configuration.
    Restarted,
    /// The router's priority was changed.
    PriorityChanged(u8),
    /// The router was put in or out of FAULT.
    Fault(bool),
    /// The router was shut down cleanly.
    Shutdown,
    /// The router's group was changed by a partition (group number).
    Partitioned(u32),
}

/// A timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// When.
    pub at: Instant,
    /// Which router (index from [`Lan::add_router`]).
    pub node: usize,
    /// What.
    pub kind: EventKind,
}

#[derive(Debug)]
struct Node {
    cfg: Config,
    router: VirtualRouter,
    alive: bool,
    group: u32,
    /// VIPs this node currently holds (AddVip minus RemoveVip).
    holds: Vec<IpCidr>,
    announcements: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    src: IpAddr,
    dst: IpAddr,
    payload: Vec<u8>,
}

/// SplitMix64: small, fast, and good enough for loss and jitter.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// N routers on one simulated LAN. See the [module docs](self).
#[derive(Debug)]
pub struct Lan {
    now: Instant,
    nodes: Vec<Node>,
    wire: BinaryHeap<Reverse<InFlight>>,
    /// Latest scheduled arrival per (sender, receiver), to keep each pair in order.
    last_arrival: BTreeMap<(usize, usize), Instant>,
    link: Link,
    rng: Rng,
    seq: u64,
    events: Vec<Event>,
    sent: u64,
    lost: u64,
}

impl Lan {
    /// An empty LAN at time zero; `seed` drives loss and jitter.
    pub fn new(seed: u64, link: Link) -> Self {
        Self {
            now: Instant::ZERO,
            nodes: Vec::new(),
            wire: BinaryHeap::new(),
            last_arrival: BTreeMap::new(),
            link,
            rng: Rng(seed),
            seq: 0,
            events: Vec::new(),
            sent: 0,
            lost: 0,
        }
    }

    /// Adds a router (not yet started); returns its index.
    pub fn add_router(&mut self, cfg: Config) -> usize {
        self.nodes.push(Node {
            router: VirtualRouter::new(cfg.clone()),
            cfg,
            alive: true,
            group: 0,
            holds: Vec::new(),
            announcements: 0,
        });
        self.nodes.len() - 1
    }

    /// Starts every router at the current time.
    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Starts router `i` (the Startup event).
    pub fn start(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(i) {
            n.router.startup(now);
        }
        self.drain(i);
    }

    /// Crashes router `i`: it stops at once, sends nothing, and its addresses vanish with it.
    pub fn crash(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(i) {
            n.alive = false;
            n.holds.clear();
            self.events.push(Event {
                at: now,
                node: i,
                kind: EventKind::Crashed,
            });
        }
    }

    /// Restarts router `i` from its configuration (a fresh router, then Startup).
    pub fn restart(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(i) {
            n.router = VirtualRouter::new(n.cfg.clone());
            n.alive = true;
            n.holds.clear();
            self.events.push(Event {
                at: now,
                node: i,
                kind: EventKind::Restarted,
            });
        }
        self.start(i);
    }

    /// Shuts router `i` down cleanly (a master sends priority 0).
    pub fn shutdown(&mut self, i: usize) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(i) {
            n.router.shutdown(now);
            self.events.push(Event {
                at: now,
                node: i,
                kind: EventKind::Shutdown,
            });
        }
        self.drain(i);
    }

    /// Changes router `i`'s priority (ignored if 0).
    pub fn set_priority(&mut self, i: usize, priority: u8) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(i)
            && n.router.set_priority(now, priority).is_ok()
        {
            self.events.push(Event {
                at: now,
                node: i,
                kind: EventKind::PriorityChanged(priority),
            });
        }
        self.drain(i);
    }

    /// Puts router `i` in or out of FAULT.
    pub fn set_fault(&mut self, i: usize, fault: bool) {
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(i) {
            n.router.set_fault(now, fault);
            self.events.push(Event {
                at: now,
                node: i,
                kind: EventKind::Fault(fault),
            });
        }
        self.drain(i);
    }

    /// Partitions the LAN: router `i` can reach router `j` only when `groups[i] ==
    /// groups[j]`. Routers past the end of `groups` join group 0.
    pub fn partition(&mut self, groups: &[u32]) {
        let now = self.now;
        for (i, n) in self.nodes.iter_mut().enumerate() {
            let g = groups.get(i).copied().unwrap_or(0);
            if g != n.group {
                n.group = g;
                self.events.push(Event {
                    at: now,
                    node: i,
                    kind: EventKind::Partitioned(g),
                });
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.partition(&[]);
    }

    /// Replaces the link model (loss, delay, jitter) for deliveries sent from now on.
    pub fn set_link(&mut self, link: Link) {
        self.link = link;
    }

    /// Runs the simulation until `until` (inclusive), processing every delivery and timer in
    /// time order.
    pub fn run_until(&mut self, until: Instant) {
        while let Some(next) = self.next_event().filter(|t| *t <= until) {
            self.step_to(next);
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until the next event (a delivery or a timer) and processes it; returns its time,
    /// or `None` when nothing is pending.
    pub fn step(&mut self) -> Option<Instant> {
        let next = self.next_event()?;
        self.step_to(next);
        Some(next)
    }

    /// The time of the next delivery or timer.
    pub fn next_event(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.router.poll_timeout());
        let wire = self.wire.peek().map(|Reverse(p)| p.at);
        timers.chain(wire).min()
    }

    // ---- queries ----

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }
    /// Number of routers.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether there are no routers.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Router `i`.
    pub fn router(&self, i: usize) -> Option<&VirtualRouter> {
        self.nodes.get(i).map(|n| &n.router)
    }
    /// Whether router `i` is running (not crashed).
    pub fn is_alive(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.alive)
    }
    /// The indices of the live routers in Master state.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.is_alive(i) && self.state(i) == Some(State::Master))
            .collect()
    }
    /// The state of router `i` (a crashed router reports its last state).
    pub fn state(&self, i: usize) -> Option<State> {
        self.nodes.get(i).map(|n| n.router.state())
    }
    /// The indices of the live routers holding at least one VIP.
    pub fn vip_holders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes
                    .get(i)
                    .is_some_and(|n| n.alive && !n.holds.is_empty())
            })
            .collect()
    }
    /// Announcement frames (GARP/NA) router `i` has sent.
    pub fn announcements(&self, i: usize) -> u64 {
        self.nodes.get(i).map_or(0, |n| n.announcements)
    }
    /// The timeline so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
    /// Deliveries attempted and lost so far.
    pub fn deliveries(&self) -> (u64, u64) {
        (self.sent, self.lost)
    }

    // ---- internals ----

    fn step_to(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let now = self.now;
        while self.wire.peek().is_some_and(|Reverse(p)| p.at <= now) {
            let Some(Reverse(p)) = self.wire.pop() else {
                break;
            };
            let Some(n) = self.nodes.get_mut(p.to) else {
                continue;
            };
            if !n.alive {
                continue;
            }
            // Errors are counted in the router's stats; the simulation goes on.
            let _ = n
                .router
                .handle_packet(now, RecvMeta::new(p.src, p.dst, 255), &p.payload);
            self.drain(p.to);
        }
        for i in 0..self.nodes.len() {
            let due = self
                .nodes
                .get(i)
                .filter(|n| n.alive)
                .and_then(|n| n.router.poll_timeout())
                .is_some_and(|d| d <= now);
            if due {
                if let Some(n) = self.nodes.get_mut(i) {
                    n.router.handle_timeout(now);
                }
                self.drain(i);
            }
        }
    }

    /// Executes router `i`'s actions: adverts onto the wire, VIPs into `holds`.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        let mut out: Vec<(IpAddr, IpAddr, Vec<u8>)> = Vec::new();
        let Some(node) = self.nodes.get_mut(i) else {
            return;
        };
        if !node.alive {
            while node.router.poll_action().is_some() {}
            return;
        }
        while let Some(a) = node.router.poll_action() {
            match a {
                Action::StateChanged { from, to, reason } => self.events.push(Event {
                    at: now,
                    node: i,
                    kind: EventKind::StateChanged { from, to, reason },
                }),
                Action::AddVip(v) => node.holds.push(v),
                Action::RemoveVip(v) => node.holds.retain(|h| *h != v),
                Action::SendAdvert(t) => out.push((t.src, t.dst, t.payload.to_vec())),
                Action::SendGratuitousArp { .. } | Action::SendUnsolicitedNa { .. } => {
                    node.announcements += 1;
                }
            }
        }
        let group = node.group;
        for (src, dst, payload) in out {
            for j in 0..self.nodes.len() {
                if j == i {
                    continue;
                }
                let Some(peer) = self.nodes.get(j) else {
                    continue;
                };
                let addressed = dst.is_multicast() || dst == peer.cfg.primary();
                if !addressed || peer.group != group {
                    continue;
                }
                self.sent += 1;
                if self.rng.below(1_000_000) < u64::from(self.link.loss_ppm) {
                    self.lost += 1;
                    continue;
                }
                let jitter = self.rng.below(duration_micros(self.link.jitter) + 1);
                let mut at = now + self.link.delay + Duration::from_micros(jitter);
                let last = self.last_arrival.entry((i, j)).or_insert(at);
                at = at.max(*last);
                *last = at;
                self.seq += 1;
                self.wire.push(Reverse(InFlight {
                    at,
                    seq: self.seq,
                    to: j,
                    src,
                    dst,
                    payload: payload.clone(),
                }));
            }
        }
    }
}
