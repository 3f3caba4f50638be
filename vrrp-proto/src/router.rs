//! The virtual router: the RFC 5798 §6.4 (and RFC 3768 §6.4) state machine.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use crate::config::{Config, ConfigError, IpCidr};
use crate::error::RecvError;
use crate::stats::Stats;
use crate::time::Instant;
use crate::wire::{
    self, AddrFamily, AddrList, Auth, Ctx, MULTICAST_V4, MULTICAST_V6, NA_FRAME_LEN, Packet, Repr,
    Version,
};

/// The protocol state of a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Not running: before [`VirtualRouter::startup`] or after [`VirtualRouter::shutdown`].
    Initialize,
    /// Watching the master; takes over when it goes silent or releases.
    Backup,
    /// Owns the virtual addresses and advertises them.
    #[doc(alias = "Active")]
    Master,
    /// Out of service because a tracked interface or check failed (keepalived's FAULT).
    Fault,
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// [`VirtualRouter::startup`] (to Backup, or to Master for the address owner).
    Startup,
    /// The Master_Down_Timer fired: no advertisement for Master_Down_Interval.
    MasterDown,
    /// The master released (sent priority 0) and Skew_Time passed.
    PriorityZeroReceived,
    /// A lower-priority master was pre-empted.
    Preempted,
    /// An advertisement with a higher priority (or an equal one from a higher address)
    /// arrived while Master.
    HigherPriorityReceived,
    /// [`VirtualRouter::shutdown`].
    Shutdown,
    /// [`VirtualRouter::set_fault`] with `true`.
    Fault,
    /// [`VirtualRouter::set_fault`] with `false`.
    FaultCleared,
}

/// An advertisement to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transmit<'a> {
    /// The source address to send from (the configured primary address).
    pub src: IpAddr,
    /// 224.0.0.18, ff02::12, or a unicast peer.
    pub dst: IpAddr,
    /// The IP TTL / hop limit: always 255.
    pub ttl: u8,
    /// The VRRP message (the IP payload, protocol 112).
    pub payload: &'a [u8],
}

/// Something the IO layer must do, in the order [`VirtualRouter::poll_action`] returns them.
///
/// Becoming master yields `StateChanged`, then `AddVip` for each address, then `SendAdvert`
/// (one per destination), then the announcements. Leaving master yields the priority-0
/// `SendAdvert`s (on shutdown or fault), then `RemoveVip` for each address, then
/// `StateChanged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action<'a> {
    /// The state changed.
    StateChanged {
        /// The old state.
        from: State,
        /// The new state.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// Add this address to the interface.
    AddVip(IpCidr),
    /// Remove this address from the interface.
    RemoveVip(IpCidr),
    /// Send this advertisement.
    SendAdvert(Transmit<'a>),
    /// Send this Ethernet frame (a gratuitous ARP for `vip`) on the interface.
    SendGratuitousArp {
        /// The address announced.
        vip: Ipv4Addr,
        /// The whole Ethernet frame.
        frame: &'a [u8],
    },
    /// Send this Ethernet frame (an unsolicited neighbour advertisement for `vip`).
    SendUnsolicitedNa {
        /// The address announced.
        vip: Ipv6Addr,
        /// The whole Ethernet frame.
        frame: &'a [u8],
    },
}

/// What the IP layer knew about a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvMeta {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL or hop limit as received.
    pub ttl: u8,
}

impl RecvMeta {
    /// Metadata for a packet from `src` to `dst` received with `ttl`.
    pub const fn new(src: IpAddr, dst: IpAddr, ttl: u8) -> Self {
        Self { src, dst, ttl }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    MasterDown = 0,
    PreemptDelay = 1,
    Advert = 2,
    AnnounceDelay = 3,
    AnnounceRefresh = 4,
    AnnounceSpacing = 5,
}

impl Timer {
    const VALUES: [Self; 6] = [
        Self::MasterDown,
        Self::PreemptDelay,
        Self::Advert,
        Self::AnnounceDelay,
        Self::AnnounceRefresh,
        Self::AnnounceSpacing,
    ];
}

#[derive(Debug, Clone, Default)]
struct TimerTable([Option<Instant>; 6]);

impl TimerTable {
    fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }
    fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t as usize]
    }
    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
    fn clear(&mut self) {
        self.0 = [None; 6];
    }
}

/// Where an advert goes: the multicast group, or the unicast peer at this index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Multicast,
    Peer(u16),
}

/// Queued work, rendered into the scratch buffer when polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    State {
        from: State,
        to: State,
        reason: Reason,
    },
    AddVip(u16),
    RemoveVip(u16),
    Advert {
        priority: u8,
        dest: Dest,
    },
    /// `rounds` announcements of every VIP, from VIP `next` on.
    Announce {
        rounds: u16,
        next: u16,
    },
}

/// Why the Master_Down_Timer is running, so a takeover can say why it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DownCause {
    Silence,
    Released,
}

/// One VRRP virtual router: a sans-IO state machine.
///
/// Inputs are [`startup`](Self::startup), [`handle_packet`](Self::handle_packet),
/// [`handle_timeout`](Self::handle_timeout), [`set_priority`](Self::set_priority),
/// [`set_fault`](Self::set_fault) and [`shutdown`](Self::shutdown); each takes `now`, which
/// must never go backwards. After each input, drain [`poll_action`](Self::poll_action) until
/// it returns `None`, then sleep until [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct VirtualRouter {
    cfg: Config,
    state: State,
    priority: u8,
    /// Master_Adver_Interval, microseconds (v3 learns it; v2 keeps the configured one).
    master_adver_int: u64,
    master: Option<IpAddr>,
    master_priority: u8,
    timers: TimerTable,
    down_cause: DownCause,
    /// A lower-priority advert was discarded since the Master_Down_Timer was last reset.
    lower_seen: bool,
    started_at: Instant,
    preempt_hold_until: Option<Instant>,
    spacing_rounds: u16,
    queue: VecDeque<Pending>,
    vip_bytes: Vec<u8>,
    scratch: Vec<u8>,
    stats: Stats,
}

impl VirtualRouter {
    /// A router in [`State::Initialize`]; call [`startup`](Self::startup) to run it.
    pub fn new(cfg: Config) -> Self {
        let mut vip_bytes = Vec::with_capacity(cfg.vips.len() * 16);
        for v in &cfg.vips {
            match v.addr() {
                IpAddr::V4(a) => vip_bytes.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => vip_bytes.extend_from_slice(&a.octets()),
            }
        }
        let advert_len = Repr::message_len(cfg.version, cfg.family(), cfg.vips.len());
        let dests = cfg.unicast_peers.len().max(1);
        Self {
            priority: cfg.priority,
            master_adver_int: u64::from(cfg.adver_int_cs) * 10_000,
            state: State::Initialize,
            master: None,
            master_priority: 0,
            timers: TimerTable::default(),
            down_cause: DownCause::Silence,
            lower_seen: false,
            started_at: Instant::ZERO,
            preempt_hold_until: None,
            spacing_rounds: 0,
            queue: VecDeque::with_capacity(8 + 2 * cfg.vips.len() + 2 * dests),
            vip_bytes,
            scratch: alloc::vec![0; advert_len.max(NA_FRAME_LEN)],
            stats: Stats::default(),
            cfg,
        }
    }

    // ---- inputs ----

    /// The Startup event (RFC 5798 §6.4.1): the address owner becomes Master at once, anyone
    /// else Backup with the Master_Down_Timer running. Ignored unless in Initialize.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.started_at = now;
        self.preempt_hold_until = None;
        self.enter_service(now, Reason::Startup);
    }

    /// The Shutdown event: a master sends priority 0 and removes its addresses; everyone
    /// stops its timers and returns to Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Initialize => {}
            State::Master => self.leave_master(now, State::Initialize, Reason::Shutdown, true),
            State::Backup | State::Fault => {
                self.timers.clear();
                self.transition(State::Initialize, Reason::Shutdown);
            }
        }
    }

    /// Puts the router in or out of FAULT (a tracked interface or check failed). A master
    /// entering FAULT releases with priority 0 so a backup takes over within Skew_Time.
    /// Leaving FAULT behaves like startup.
    pub fn set_fault(&mut self, now: Instant, fault: bool) {
        match (self.state, fault) {
            (State::Master, true) => self.leave_master(now, State::Fault, Reason::Fault, true),
            (State::Backup | State::Initialize, true) => {
                self.timers.clear();
                self.transition(State::Fault, Reason::Fault);
            }
            (State::Fault, false) => self.enter_service(now, Reason::FaultCleared),
            _ => {}
        }
    }

    /// Changes the running priority (keepalived's tracking weights). The next advertisement
    /// carries it; a backup recomputes Skew_Time and Master_Down_Interval. 0 is refused, and
    /// so is 255 unless the router was configured as the address owner.
    pub fn set_priority(&mut self, now: Instant, priority: u8) -> Result<(), ConfigError> {
        // 0 is the release message; 255 belongs to the address owner alone (RFC 5798 §6.1).
        if priority == 0 || (priority == 255 && self.cfg.priority != 255) {
            return Err(ConfigError::Priority(priority));
        }
        let _ = now;
        self.priority = priority;
        Ok(())
    }

    /// Whether a packet belongs to this router (same VRID and family), without changing
    /// anything: for demultiplexing several routers on one socket.
    pub fn accepts(&self, meta: &RecvMeta, bytes: &[u8]) -> bool {
        bytes.get(1) == Some(&self.cfg.vrid) && AddrFamily::of(&meta.src) == self.cfg.family()
    }

    /// A received VRRP message (the IP payload). Validates it as RFC 5798 §7.1 requires and
    /// runs the state machine. On `Err` the matching counter was bumped and nothing else
    /// changed.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        meta: RecvMeta,
        bytes: &[u8],
    ) -> Result<(), RecvError> {
        let res = self.validate(meta, bytes);
        let (repr, owner_mismatch) = match res {
            Ok(v) => v,
            Err(e) => {
                self.stats.count(&e);
                return Err(e);
            }
        };
        if owner_mismatch {
            self.stats.count(&RecvError::AddressList);
        }
        self.stats.adverts_received += 1;
        if repr.priority == 0 {
            self.stats.priority_zero_received += 1;
        }
        let adv_us = u64::from(repr.adver_int) * 10_000;
        match self.state {
            State::Backup => self.backup_receive(now, meta.src, repr.priority, adv_us),
            State::Master => self.master_receive(now, meta.src, repr.priority, adv_us),
            State::Initialize | State::Fault => {}
        }
        Ok(())
    }

    /// Timer expiry. Call it when [`poll_timeout`](Self::poll_timeout) is reached; early or
    /// repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in Timer::VALUES {
            let Some(at) = self.timers.get(t) else {
                continue;
            };
            if at > now {
                continue;
            }
            self.timers.stop(t);
            match t {
                Timer::MasterDown => {
                    if self.state == State::Backup {
                        let reason = if self.lower_seen {
                            Reason::Preempted
                        } else if self.down_cause == DownCause::Released {
                            Reason::PriorityZeroReceived
                        } else {
                            Reason::MasterDown
                        };
                        self.become_master(now, reason);
                    }
                }
                Timer::PreemptDelay => {
                    if self.state == State::Backup
                        && self.cfg.preempt
                        && self.master_priority < self.priority
                    {
                        self.become_master(now, Reason::Preempted);
                    }
                }
                Timer::Advert => {
                    if self.state == State::Master {
                        self.queue_adverts(self.priority);
                        self.timers.set(Timer::Advert, now + self.advert_interval());
                    }
                }
                Timer::AnnounceDelay => {
                    if self.state == State::Master {
                        self.start_announce(now, self.cfg.announce.repeat);
                    }
                }
                Timer::AnnounceRefresh => {
                    if self.state == State::Master {
                        self.start_announce(now, self.cfg.announce.refresh_repeat);
                        self.timers
                            .set(Timer::AnnounceRefresh, now + self.cfg.announce.refresh);
                    }
                }
                Timer::AnnounceSpacing => {
                    if self.state == State::Master && self.spacing_rounds > 0 {
                        self.spacing_rounds -= 1;
                        self.queue
                            .push_back(Pending::Announce { rounds: 1, next: 0 });
                        if self.spacing_rounds > 0 {
                            self.timers
                                .set(Timer::AnnounceSpacing, now + self.cfg.announce.interval);
                        }
                    }
                }
            }
        }
    }

    // ---- outputs ----

    /// The next action for the IO layer, or `None` when there is nothing to do. The borrowed
    /// bytes are valid until the next call.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        let head = *self.queue.front()?;
        match head {
            Pending::Announce { rounds, next } => {
                // Advance the cursor over (round, VIP); `rounds` is at least 1 while queued.
                let last_vip = usize::from(next) + 1 >= self.cfg.vips.len();
                let (rounds_left, next_vip) = if last_vip {
                    (rounds.saturating_sub(1), 0)
                } else {
                    (rounds, next + 1)
                };
                if rounds_left == 0 {
                    self.queue.pop_front();
                } else if let Some(front) = self.queue.front_mut() {
                    *front = Pending::Announce {
                        rounds: rounds_left,
                        next: next_vip,
                    };
                }
                self.render_announce(usize::from(next))
            }
            other => {
                self.queue.pop_front();
                Some(match other {
                    Pending::State { from, to, reason } => {
                        Action::StateChanged { from, to, reason }
                    }
                    Pending::AddVip(i) => Action::AddVip(*self.cfg.vips.get(usize::from(i))?),
                    Pending::RemoveVip(i) => Action::RemoveVip(*self.cfg.vips.get(usize::from(i))?),
                    Pending::Advert { priority, dest } => {
                        let dst = match dest {
                            Dest::Multicast => self.multicast(),
                            Dest::Peer(i) => *self.cfg.unicast_peers.get(usize::from(i))?,
                        };
                        let n = self.render_advert(priority, dst)?;
                        Action::SendAdvert(Transmit {
                            src: self.cfg.primary,
                            dst,
                            ttl: 255,
                            payload: self.scratch.get(..n)?,
                        })
                    }
                    Pending::Announce { .. } => return None,
                })
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` when no
    /// timer runs (Initialize, Fault).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---- getters ----

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }
    /// The running priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The primary address of the current master as far as this router knows (itself when
    /// Master), or `None`.
    pub fn master(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.cfg.primary),
            State::Backup => self.master,
            State::Initialize | State::Fault => None,
        }
    }
    /// Master_Adver_Interval: the interval this router expects from the master.
    pub fn master_adver_interval(&self) -> Duration {
        Duration::from_micros(self.master_adver_int)
    }
    /// Skew_Time for the running priority: v3 `((256 - Priority) * Master_Adver_Interval) /
    /// 256`, v2 `(256 - Priority) / 256` seconds.
    pub fn skew_time(&self) -> Duration {
        let base = match self.cfg.version {
            Version::V2 => 1_000_000,
            Version::V3 => self.master_adver_int,
        };
        Duration::from_micros((256 - u64::from(self.priority)) * base / 256)
    }
    /// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time`.
    pub fn master_down_interval(&self) -> Duration {
        Duration::from_micros(3 * self.master_adver_int) + self.skew_time()
    }

    // ---- internals ----

    fn advert_interval(&self) -> Duration {
        self.cfg.advert_interval()
    }

    fn multicast(&self) -> IpAddr {
        match self.cfg.family() {
            AddrFamily::Ipv4 => IpAddr::V4(MULTICAST_V4),
            AddrFamily::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }

    fn validate<'b>(&self, meta: RecvMeta, bytes: &'b [u8]) -> Result<(Repr<'b>, bool), RecvError> {
        if meta.ttl != 255 {
            return Err(RecvError::IpTtl(meta.ttl));
        }
        let ctx = Ctx::new(meta.src, meta.dst).with_v3_checksum(self.cfg.v3_checksum);
        let packet = Packet::new_checked(bytes)?;
        let repr = Repr::parse(&packet, &ctx)?;
        if repr.version != self.cfg.version {
            return Err(RecvError::Version {
                expected: self.cfg.version.number(),
                got: repr.version.number(),
            });
        }
        if repr.vrid != self.cfg.vrid {
            return Err(RecvError::VrId {
                expected: self.cfg.vrid,
                got: repr.vrid,
            });
        }
        if AddrFamily::of(&meta.src) != self.cfg.family() {
            return Err(RecvError::Wire(wire::Error::AddressFamily));
        }
        if meta.src == self.cfg.primary {
            return Err(RecvError::OwnAdvert);
        }
        if self.cfg.check_unicast_src
            && !self.cfg.unicast_peers.is_empty()
            && !self.cfg.unicast_peers.contains(&meta.src)
        {
            return Err(RecvError::UnknownSource(meta.src));
        }
        if self.priority == 255 {
            return Err(RecvError::Owner);
        }
        match self.cfg.version {
            Version::V2 => {
                if repr.auth.type_code() != self.cfg.auth.type_code() {
                    return Err(RecvError::AuthTypeMismatch {
                        expected: self.cfg.auth.type_code(),
                        got: repr.auth.type_code(),
                    });
                }
                if let (Auth::Simple(ours), Auth::Simple(theirs)) = (&self.cfg.auth, &repr.auth)
                    && !ct_eq(ours, theirs)
                {
                    return Err(RecvError::AuthFailure);
                }
                if repr.adver_int != self.cfg.adver_int_cs {
                    return Err(RecvError::AdvInterval {
                        expected: self.cfg.adver_int_cs,
                        got: repr.adver_int,
                    });
                }
            }
            Version::V3 => {
                if repr.adver_int == 0 {
                    return Err(RecvError::AdvInterval {
                        expected: self.cfg.adver_int_cs,
                        got: 0,
                    });
                }
            }
        }
        // The configured VIPs are distinct (the builder refuses duplicates), so equal counts
        // plus "every configured address is advertised" means the lists are permutations.
        // Fast path: the same addresses in the same order, as peers configured alike send.
        let same = repr.addrs.as_bytes() == self.vip_bytes.as_slice()
            || (repr.addrs.len() == self.cfg.vips.len()
                && self
                    .cfg
                    .vips
                    .iter()
                    .all(|v| repr.addrs.iter().any(|a| a == v.addr())));
        if !same && repr.priority != 255 {
            return Err(RecvError::AddressList);
        }
        Ok((repr, !same))
    }

    fn backup_receive(&mut self, now: Instant, src: IpAddr, priority: u8, adv_us: u64) {
        if priority == 0 {
            self.master = Some(src);
            self.master_priority = 0;
            self.down_cause = DownCause::Released;
            self.lower_seen = false;
            self.timers.set(Timer::MasterDown, now + self.skew_time());
            return;
        }
        let lower = priority < self.priority;
        if lower && self.cfg.preempt {
            // Discard (preemption), unless preempt_delay still holds it back.
            self.master = Some(src);
            self.master_priority = priority;
            if self.cfg.preempt_delay.is_zero() {
                self.lower_seen = true;
                return;
            }
            let hold = match self.preempt_hold_until {
                Some(h) => h,
                None => {
                    let h = (now + self.cfg.preempt_delay)
                        .max(self.started_at + self.cfg.preempt_delay);
                    self.preempt_hold_until = Some(h);
                    h
                }
            };
            if now >= hold {
                self.lower_seen = true;
                return;
            }
            self.timers.set(Timer::PreemptDelay, hold);
        }
        if self.cfg.version == Version::V3 {
            self.master_adver_int = adv_us;
        }
        self.master = Some(src);
        self.master_priority = priority;
        self.down_cause = DownCause::Silence;
        self.lower_seen = false;
        if !lower {
            self.timers.stop(Timer::PreemptDelay);
            self.preempt_hold_until = None;
        }
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
    }

    fn master_receive(&mut self, now: Instant, src: IpAddr, priority: u8, adv_us: u64) {
        if priority == 0 {
            self.queue_adverts(self.priority);
            self.timers.set(Timer::Advert, now + self.advert_interval());
            return;
        }
        let yields = priority > self.priority
            || (priority == self.priority && ip_greater(src, self.cfg.primary));
        if !yields {
            // Another router believes it is master (it was cut off, frozen, or just started
            // as owner of nothing). The RFC discards the advert; like keepalived we also
            // advertise at once, so it yields now rather than at our next interval, and
            // re-announce the addresses, because the hosts on the link may have learnt its
            // MAC for them while it thought it was master.
            self.stats.lower_priority_master_seen += 1;
            self.queue_adverts(self.priority);
            self.timers.set(Timer::Advert, now + self.advert_interval());
            self.start_announce(now, self.cfg.announce.repeat);
            return;
        }
        if self.cfg.version == Version::V3 {
            self.master_adver_int = adv_us;
        }
        self.leave_master(now, State::Backup, Reason::HigherPriorityReceived, false);
        self.master = Some(src);
        self.master_priority = priority;
        self.down_cause = DownCause::Silence;
        self.lower_seen = false;
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
    }

    fn enter_service(&mut self, now: Instant, reason: Reason) {
        self.master_adver_int = u64::from(self.cfg.adver_int_cs) * 10_000;
        if self.priority == 255 {
            self.become_master(now, reason);
        } else {
            self.master = None;
            self.master_priority = 0;
            self.down_cause = DownCause::Silence;
            self.lower_seen = false;
            self.timers
                .set(Timer::MasterDown, now + self.master_down_interval());
            self.transition(State::Backup, reason);
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.timers.clear();
        self.transition(State::Master, reason);
        self.stats.master_transitions += 1;
        for i in 0..self.cfg.vips.len() {
            self.queue
                .push_back(Pending::AddVip(u16::try_from(i).unwrap_or(u16::MAX)));
        }
        self.queue_adverts(self.priority);
        self.timers.set(Timer::Advert, now + self.advert_interval());
        self.start_announce(now, self.cfg.announce.repeat);
        let a = self.cfg.announce;
        if !a.delay.is_zero() {
            self.timers.set(Timer::AnnounceDelay, now + a.delay);
        }
        if !a.refresh.is_zero() {
            self.timers.set(Timer::AnnounceRefresh, now + a.refresh);
        }
        self.preempt_hold_until = None;
        self.lower_seen = false;
    }

    fn leave_master(&mut self, _now: Instant, to: State, reason: Reason, release: bool) {
        if release {
            self.queue_adverts(0);
        }
        for i in 0..self.cfg.vips.len() {
            self.queue
                .push_back(Pending::RemoveVip(u16::try_from(i).unwrap_or(u16::MAX)));
        }
        self.timers.clear();
        self.spacing_rounds = 0;
        self.queue
            .retain(|p| !matches!(p, Pending::Announce { .. }));
        self.transition(to, reason);
    }

    fn start_announce(&mut self, now: Instant, rounds: u8) {
        if rounds == 0 {
            return;
        }
        if self.cfg.announce.interval.is_zero() {
            self.queue.push_back(Pending::Announce {
                rounds: u16::from(rounds),
                next: 0,
            });
        } else {
            self.queue
                .push_back(Pending::Announce { rounds: 1, next: 0 });
            self.spacing_rounds = u16::from(rounds) - 1;
            if self.spacing_rounds > 0 {
                self.timers
                    .set(Timer::AnnounceSpacing, now + self.cfg.announce.interval);
            }
        }
    }

    fn queue_adverts(&mut self, priority: u8) {
        if self.cfg.unicast_peers.is_empty() {
            self.queue.push_back(Pending::Advert {
                priority,
                dest: Dest::Multicast,
            });
            self.count_sent(priority, 1);
        } else {
            let n = self.cfg.unicast_peers.len();
            for i in 0..n {
                self.queue.push_back(Pending::Advert {
                    priority,
                    dest: Dest::Peer(u16::try_from(i).unwrap_or(u16::MAX)),
                });
            }
            self.count_sent(priority, n as u64);
        }
    }

    fn count_sent(&mut self, priority: u8, n: u64) {
        self.stats.adverts_sent += n;
        if priority == 0 {
            self.stats.priority_zero_sent += n;
        }
    }

    fn transition(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.queue.push_back(Pending::State { from, to, reason });
    }

    fn render_advert(&mut self, priority: u8, dst: IpAddr) -> Option<usize> {
        let addrs = AddrList::new(self.cfg.family(), &self.vip_bytes)?;
        let repr = Repr {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            adver_int: self.cfg.adver_int_cs,
            addrs,
            auth: self.cfg.auth,
        };
        let ctx = Ctx::new(self.cfg.primary, dst).with_v3_checksum(self.cfg.v3_checksum);
        repr.emit(&mut self.scratch, &ctx).ok()
    }

    fn render_announce(&mut self, idx: usize) -> Option<Action<'_>> {
        let mac = self.cfg.announce_mac();
        match self.cfg.vips.get(idx)?.addr() {
            IpAddr::V4(vip) => {
                let n = wire::gratuitous_arp(mac, vip, &mut self.scratch).ok()?;
                Some(Action::SendGratuitousArp {
                    vip,
                    frame: self.scratch.get(..n)?,
                })
            }
            IpAddr::V6(vip) => {
                let n = wire::unsolicited_na(mac, vip, self.cfg.na_router_flag, &mut self.scratch)
                    .ok()?;
                Some(Action::SendUnsolicitedNa {
                    vip,
                    frame: self.scratch.get(..n)?,
                })
            }
        }
    }
}

/// RFC 5798 §6.4.3: "the primary IPvX Address of the sender is greater than the local primary
/// IPvX Address" — compared as unsigned integers in network byte order.
fn ip_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.to_bits() > b.to_bits(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.to_bits() > b.to_bits(),
        _ => false,
    }
}

/// Compares two passwords without an early exit.
fn ct_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
