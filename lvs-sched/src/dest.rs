//! The destination model: IPVS's `struct ip_vs_dest` plus nginx's `ngx_http_upstream_rr_peer_t`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::Instant;
use crate::nginx::round_robin::Cycle;

/// Index of a destination in its [`DestSet`] (stable: destinations are never renumbered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestId(pub usize);

/// nginx `server` parameters and the per-peer state nginx keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxPeer {
    /// `max_fails=` (0 disables failure accounting). nginx default 1.
    pub max_fails: u32,
    /// `fail_timeout=`. nginx default 10 s.
    pub fail_timeout: Duration,
    /// `max_conns=` (0 = unlimited), compared with the active connection count.
    pub max_conns: u32,
    /// `backup`: only used when every primary server is unavailable.
    pub backup: bool,
    /// `down`: never used.
    pub down: bool,
    /// Failures counted in the current `fail_timeout` window.
    pub fails: u32,
    /// Time of the last failure.
    pub accessed: Instant,
    /// Start of the current failure window.
    pub checked: Instant,
    /// Smooth WRR: the weight lowered after failures, recovering by 1 per pick.
    pub effective_weight: i64,
    /// Smooth WRR: the running current weight. nginx `round_robin` keeps it lazily while it
    /// replays a cached period (see [`DestSet`]); [`DestSet::sync_nginx_state`] makes it exact.
    pub current_weight: i64,
}

impl Default for NginxPeer {
    fn default() -> Self {
        Self {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            max_conns: 0,
            backup: false,
            down: false,
            fails: 0,
            accessed: Instant::ZERO,
            checked: Instant::ZERO,
            effective_weight: 0,
            current_weight: 0,
        }
    }
}

/// One real server: address, weight, connection counters, thresholds and flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Address and port (IPv4 or IPv6).
    pub addr: SocketAddr,
    pub(crate) weight: u32,
    pub(crate) last_weight: u32,
    pub(crate) active: u32,
    pub(crate) inactive: u32,
    pub(crate) u_threshold: u32,
    pub(crate) l_threshold: u32,
    pub(crate) overloaded: bool,
    pub(crate) available: bool,
    /// nginx parameters and state (ignored by the IPVS schedulers).
    pub nginx: NginxPeer,
}

/// Largest weight the kernel accepts (`int`).
pub const MAX_WEIGHT: u32 = i32::MAX as u32;

impl Dest {
    /// A destination with weight `weight` (clamped to `i32::MAX`, the kernel's range), no
    /// connections, no thresholds, available.
    #[must_use]
    pub fn new(addr: SocketAddr, weight: u32) -> Self {
        let weight = weight.min(MAX_WEIGHT);
        let nginx = NginxPeer {
            effective_weight: i64::from(weight),
            ..NginxPeer::default()
        };
        Self {
            addr,
            weight,
            last_weight: weight,
            active: 0,
            inactive: 0,
            u_threshold: 0,
            l_threshold: 0,
            overloaded: false,
            available: true,
            nginx,
        }
    }
    /// Current weight; 0 means quiesced (no new connections).
    #[must_use]
    pub const fn weight(&self) -> u32 {
        self.weight
    }
    /// The latest non-zero weight (the kernel's `last_weight`, used by `mh`).
    #[must_use]
    pub const fn last_weight(&self) -> u32 {
        self.last_weight
    }
    /// Active connections.
    #[must_use]
    pub const fn active_conns(&self) -> u32 {
        self.active
    }
    /// Inactive connections.
    #[must_use]
    pub const fn inactive_conns(&self) -> u32 {
        self.inactive
    }
    /// Upper connection threshold (0 = none).
    #[must_use]
    pub const fn u_threshold(&self) -> u32 {
        self.u_threshold
    }
    /// Lower connection threshold (0 = 3/4 of the upper one).
    #[must_use]
    pub const fn l_threshold(&self) -> u32 {
        self.l_threshold
    }
    /// The kernel's `IP_VS_DEST_F_OVERLOAD`.
    #[must_use]
    pub const fn is_overloaded(&self) -> bool {
        self.overloaded
    }
    /// The kernel's `IP_VS_DEST_F_AVAILABLE`: `false` means the destination is out of the
    /// service (deleted or failed its health check); no scheduler picks it and table-based
    /// schedulers leave it out of their tables.
    #[must_use]
    pub const fn is_available(&self) -> bool {
        self.available
    }
    /// The kernel's `ip_vs_dest_conn_overhead`: `(active << 8) + inactive`, in `u64`.
    #[must_use]
    pub const fn conn_overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }
    /// `active + inactive` (`ip_vs_dest_totalconns`).
    #[must_use]
    pub const fn total_conns(&self) -> u64 {
        self.active as u64 + self.inactive as u64
    }
    /// Available, weight > 0 and not overloaded: what most IPVS schedulers accept.
    #[must_use]
    pub const fn ipvs_eligible(&self) -> bool {
        self.available && self.weight > 0 && !self.overloaded
    }
    /// nginx's check for a peer that may be tried (`down`, `max_fails`/`fail_timeout`,
    /// `max_conns`); weight 0 and unavailable count as `down`.
    #[must_use]
    pub fn nginx_usable(&self, now: Instant) -> bool {
        let p = &self.nginx;
        if p.down || self.weight == 0 || !self.available {
            return false;
        }
        // The failure window is counted in whole milliseconds.
        let timeout = crate::duration_millis(p.fail_timeout);
        let since_checked = now.millis().saturating_sub(p.checked.millis());
        if p.max_fails != 0 && p.fails >= p.max_fails && since_checked <= timeout {
            return false;
        }
        !(p.max_conns != 0 && self.active >= p.max_conns)
    }
}

/// The destinations of one virtual service.
///
/// Two orders are kept. Ids ([`DestSet::iter`], [`DestId`]) count up in the order of
/// addition: the order of nginx's `server` lines, which the nginx balancers walk. The IPVS
/// schedulers walk the kernel's list ([`DestSet::ipvs_iter`]): `ipvsadm -a` adds a destination
/// at the head of the service's list (`list_add_rcu` in `__ip_vs_update_dest`), so the last
/// one added comes first; an edit (`ipvsadm -e`) keeps its place; a deleted destination leaves
/// the list, and adding it back ([`crate::Service::set_available`] with `true`) puts it at the
/// head again. Ties of the IPVS schedulers go to the first destination in that list.
///
/// nginx `round_robin` may keep the peers' smooth-WRR `current_weight` lazily while its
/// cycle cache is in use (see [`crate::nginx::round_robin`]): every mutable access
/// ([`DestSet::get_mut`], [`DestSet::push`]) and [`DestSet::sync_nginx_state`] bring it up
/// to date first, and equality compares the up-to-date values. Reading
/// `nginx.current_weight` through a shared reference may show the value at the start of the
/// current cycle; decisions are never affected.
#[derive(Clone, Debug, Default)]
pub struct DestSet {
    dests: Vec<Dest>,
    /// The kernel's list, tail first (the head is the last element), as ids.
    rev: Vec<usize>,
    /// For each id, its index in `rev`.
    rev_pos: Vec<usize>,
    /// Bumped by every public mutable access, so that schedulers keeping derived state
    /// notice changes they were not told about.
    generation: u64,
    /// nginx `round_robin`'s cached smooth-WRR period, when one is in use.
    swrr: Option<Box<Cycle>>,
}

impl PartialEq for DestSet {
    fn eq(&self, other: &Self) -> bool {
        if self.rev != other.rev {
            return false;
        }
        if self.swrr.is_none() && other.swrr.is_none() {
            return self.dests == other.dests;
        }
        let (mut a, mut b) = (self.clone(), other.clone());
        a.sync_nginx_state();
        b.sync_nginx_state();
        a.dests == b.dests
    }
}

impl Eq for DestSet {}

impl DestSet {
    /// An empty set.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            dests: Vec::new(),
            rev: Vec::new(),
            rev_pos: Vec::new(),
            generation: 0,
            swrr: None,
        }
    }
    /// Add a destination and return its id: the next id (nginx's order of `server` lines),
    /// and the head of the kernel's list (`ipvsadm -a` puts a new destination first).
    pub fn push(&mut self, dest: Dest) -> DestId {
        self.sync_nginx_state();
        self.generation = self.generation.wrapping_add(1);
        let id = self.dests.len();
        self.dests.push(dest);
        self.rev_pos.push(self.rev.len());
        self.rev.push(id);
        DestId(id)
    }
    /// Move `id` to the head of the kernel's list, where `ipvsadm -a` puts a destination
    /// that is added again after its deletion (the kernel takes it back from its trash,
    /// counters and all). Ids and nginx's order do not change. Returns `false` if `id` is
    /// unknown.
    pub fn move_to_head(&mut self, id: DestId) -> bool {
        let Some(&r) = self.rev_pos.get(id.0) else {
            return false;
        };
        self.generation = self.generation.wrapping_add(1);
        if r < self.rev.len() {
            self.rev.remove(r);
            self.rev.push(id.0);
            for (k, &i) in self.rev.iter().enumerate().skip(r) {
                if let Some(p) = self.rev_pos.get_mut(i) {
                    *p = k;
                }
            }
        }
        true
    }
    /// All destinations in the kernel's list order, head first (the order the IPVS
    /// schedulers walk; see the type's documentation).
    pub fn ipvs_iter(&self) -> impl DoubleEndedIterator<Item = (DestId, &Dest)> + '_ {
        self.rev
            .iter()
            .rev()
            .filter_map(|&i| self.dests.get(i).map(|d| (DestId(i), d)))
    }
    /// The place of `id` in the kernel's list (0 = head), if it exists.
    #[must_use]
    pub fn ipvs_position(&self, id: DestId) -> Option<usize> {
        let r = *self.rev_pos.get(id.0)?;
        self.rev.len().checked_sub(r + 1)
    }
    /// The id at place `pos` of the kernel's list (0 = head).
    #[must_use]
    pub fn ipvs_at(&self, pos: usize) -> Option<DestId> {
        let r = self.rev.len().checked_sub(pos + 1)?;
        self.rev.get(r).map(|&i| DestId(i))
    }
    /// Number of destinations (available or not).
    #[must_use]
    pub fn len(&self) -> usize {
        self.dests.len()
    }
    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.dests.is_empty()
    }
    /// The destination `id`, if it exists.
    #[must_use]
    pub fn get(&self, id: DestId) -> Option<&Dest> {
        self.dests.get(id.0)
    }
    /// Mutable access to a destination; prefer the [`crate::Service`] methods, which keep the
    /// overload flag and the scheduler in step. Schedulers that keep derived state (index
    /// tables, nginx caches) notice the access and rebuild it before their next decision.
    pub fn get_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        self.sync_nginx_state();
        self.generation = self.generation.wrapping_add(1);
        self.dests.get_mut(id.0)
    }
    /// All destinations with their ids, in id order (the order of addition, nginx's order;
    /// the IPVS schedulers walk [`DestSet::ipvs_iter`]).
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &Dest)> + '_ {
        self.dests.iter().enumerate().map(|(i, d)| (DestId(i), d))
    }
    /// Bring the lazily kept nginx smooth-WRR `current_weight` of every peer up to date (see
    /// the type's documentation); a no-op when no cycle cache is in use.
    pub fn sync_nginx_state(&mut self) {
        if let Some(c) = self.swrr.take() {
            c.settle(&mut self.dests);
        }
    }
    /// Changes with every public mutable access ([`DestSet::get_mut`], [`DestSet::push`]).
    pub(crate) const fn generation(&self) -> u64 {
        self.generation
    }
    pub(crate) fn as_slice(&self) -> &[Dest] {
        &self.dests
    }
    /// The destinations, with the nginx state brought up to date first.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [Dest] {
        self.sync_nginx_state();
        &mut self.dests
    }
    /// For [`crate::Service`]'s configuration edits, which tell the scheduler through
    /// `dest_updated`: state brought up to date, no generation change.
    pub(crate) fn get_mut_edit(&mut self, id: DestId) -> Option<&mut Dest> {
        self.sync_nginx_state();
        self.dests.get_mut(id.0)
    }
    /// For [`crate::Service`]'s load changes (counters, failures), which never touch the
    /// smooth-WRR state and tell the scheduler through `load_changed`.
    pub(crate) fn get_mut_load(&mut self, id: DestId) -> Option<&mut Dest> {
        self.dests.get_mut(id.0)
    }
    /// The cached smooth-WRR period, if one is in use.
    pub(crate) fn swrr_cycle(&self) -> Option<&Cycle> {
        self.swrr.as_deref()
    }
    /// Start using `cycle`; the peers' `current_weight` must be the state at its start.
    pub(crate) fn install_swrr_cycle(&mut self, cycle: Cycle) {
        self.sync_nginx_state();
        self.swrr = Some(Box::new(cycle));
    }
    /// The next pick of the cached period (with nginx's `checked` update), if one is in use.
    pub(crate) fn swrr_next(&mut self, now: Instant) -> Option<usize> {
        let i = self.swrr.as_deref_mut()?.advance()?;
        if let Some(d) = self.dests.get_mut(i) {
            crate::nginx::mark_picked(d, now);
        }
        Some(i)
    }
}
