//! A virtual service: the destination set, its scheduler and optional persistence, kept in
//! step. The caller reports connections opened and closed and nginx failures, with `now`.

use alloc::boxed::Box;
use core::time::Duration;

use crate::dest::{MAX_WEIGHT, NginxPeer};
use crate::nginx::Tried;
use crate::persistence::Persistence;
use crate::{Dest, DestId, DestSet, Flow, Instant, SchedConfig, Scheduler, SchedulerKind};

/// A virtual service (`ipvsadm -A`, or an nginx `upstream` block).
#[derive(Debug)]
pub struct Service {
    dests: DestSet,
    sched: Box<dyn Scheduler>,
    persistence: Option<Persistence>,
}

impl Service {
    /// An empty service scheduled by `kind`.
    #[must_use]
    pub fn new(kind: SchedulerKind, config: SchedConfig) -> Self {
        let mut sched = kind.build(config);
        let dests = DestSet::new();
        sched.rebuild(&dests);
        Self {
            dests,
            sched,
            persistence: None,
        }
    }

    /// A service over an existing set, built in one step (the kernel's `init_service` with
    /// all destinations present).
    #[must_use]
    pub fn from_dests(kind: SchedulerKind, config: SchedConfig, dests: DestSet) -> Self {
        let mut sched = kind.build(config);
        sched.rebuild(&dests);
        Self {
            dests,
            sched,
            persistence: None,
        }
    }

    /// A service over `dests` decided by a scheduler you provide: your own [`Scheduler`], or
    /// a built-in one constructed directly (for example a reference scan such as
    /// [`crate::nginx::round_robin::RoundRobin::reference`]). It is rebuilt over `dests` first.
    #[must_use]
    pub fn with_scheduler(mut sched: Box<dyn Scheduler>, dests: DestSet) -> Self {
        sched.rebuild(&dests);
        Self {
            dests,
            sched,
            persistence: None,
        }
    }

    /// Turn on persistence (`-p timeout -M netmask`, netmasks as prefix lengths).
    #[must_use]
    pub fn with_persistence(mut self, timeout: Duration, v4_prefix: u8, v6_prefix: u8) -> Self {
        self.persistence = Some(Persistence::new(timeout, v4_prefix, v6_prefix));
        self
    }

    /// The destinations.
    #[must_use]
    pub const fn dests(&self) -> &DestSet {
        &self.dests
    }

    /// Bring the lazily kept nginx smooth-WRR state (`current_weight`) up to date, so that
    /// [`Service::dests`] shows it exactly (see [`DestSet`]); decisions never depend on it.
    /// This leaves `round_robin`'s cached period, which is learned again over the next
    /// `W` decisions (nginx's walk meanwhile).
    pub fn sync_nginx_state(&mut self) {
        self.dests.sync_nginx_state();
    }

    /// The scheduler's kind.
    #[must_use]
    pub fn kind(&self) -> SchedulerKind {
        self.sched.kind()
    }

    /// Add a destination (`ipvsadm -a`): the next id, at the head of the kernel's list (see
    /// [`DestSet`]).
    pub fn add_dest(&mut self, dest: Dest) -> DestId {
        let id = self.dests.push(dest);
        self.sched.rebuild(&self.dests);
        id
    }

    fn edit(&mut self, id: DestId, f: impl FnOnce(&mut Dest)) -> bool {
        let Some(d) = self.dests.get_mut_edit(id) else {
            return false;
        };
        f(d);
        self.sched.dest_updated(&self.dests, id);
        true
    }

    fn load(&mut self, id: DestId, f: impl FnOnce(&mut Dest)) -> bool {
        let Some(d) = self.dests.get_mut_load(id) else {
            return false;
        };
        f(d);
        self.sched.load_changed(&self.dests, id);
        true
    }

    /// Set a weight (`ipvsadm -e -w`); 0 quiesces. Clamped to `i32::MAX`. Returns `false` if
    /// `id` is unknown.
    pub fn set_weight(&mut self, id: DestId, weight: u32) -> bool {
        self.edit(id, |d| {
            d.weight = weight.min(MAX_WEIGHT);
            if d.weight != 0 {
                d.last_weight = d.weight;
            }
            d.nginx.effective_weight = i64::from(d.weight);
            d.nginx.current_weight = 0;
        })
    }

    /// Mark a destination in or out of service (health check result, or deletion):
    /// `false` is `ipvsadm -d` (the kernel's `del_dest`); `true` for a destination that was
    /// out is `ipvsadm -a` of the same address, which the kernel takes back from its trash
    /// with its connection counters and puts at the head of the list (`add_dest`), its
    /// `last_weight` (used by `mh`) becoming its weight, even 0, as on any add. Setting
    /// the state it already has changes nothing. Returns `false` if `id` is unknown.
    pub fn set_available(&mut self, id: DestId, available: bool) -> bool {
        let Some(was) = self.dests.get(id).map(Dest::is_available) else {
            return false;
        };
        if was == available {
            return true;
        }
        if available {
            if let Some(d) = self.dests.get_mut_edit(id) {
                d.available = true;
                // An add sets `last_weight` to the weight given, 0 included
                // (`__ip_vs_update_dest`: `if (add || udest->weight != 0)`).
                d.last_weight = d.weight;
            }
            self.dests.move_to_head(id);
            self.sched.rebuild(&self.dests);
            true
        } else {
            self.edit(id, |d| d.available = false)
        }
    }

    /// Set the upper and lower connection thresholds (`-x`, `-y`); as the kernel does, the
    /// overload flag is cleared when the upper threshold is removed or raised.
    pub fn set_thresholds(&mut self, id: DestId, upper: u32, lower: u32) -> bool {
        self.edit(id, |d| {
            if upper == 0 || upper > d.u_threshold {
                d.overloaded = false;
            }
            d.u_threshold = upper;
            d.l_threshold = lower;
        })
    }

    /// Change the nginx parameters of a destination (`max_fails`, `backup`, `down`, ...).
    pub fn configure_nginx(&mut self, id: DestId, f: impl FnOnce(&mut NginxPeer)) -> bool {
        self.edit(id, |d| f(&mut d.nginx))
    }

    /// A connection to `id` was opened (active + 1); sets the overload flag when
    /// `active + inactive >= u_threshold` (`ip_vs_bind_dest`).
    pub fn conn_opened(&mut self, id: DestId) -> bool {
        self.load(id, |d| {
            d.active = d.active.saturating_add(1);
            if d.u_threshold != 0 && d.total_conns() >= u64::from(d.u_threshold) {
                d.overloaded = true;
            }
        })
    }

    /// An active connection became inactive (e.g. TCP FIN_WAIT).
    pub fn conn_deactivated(&mut self, id: DestId) -> bool {
        self.load(id, |d| {
            if d.active > 0 {
                d.active -= 1;
                d.inactive = d.inactive.saturating_add(1);
            }
        })
    }

    /// A connection ended (`active` says which counter it was in); clears the overload flag as
    /// `ip_vs_unbind_dest` does: below `l_threshold`, or below 3/4 of `u_threshold` when
    /// `l_threshold` is 0, or always when there is no upper threshold.
    pub fn conn_closed(&mut self, id: DestId, active: bool) -> bool {
        self.load(id, |d| {
            if active {
                d.active = d.active.saturating_sub(1);
            } else {
                d.inactive = d.inactive.saturating_sub(1);
            }
            let total = d.total_conns();
            if d.l_threshold != 0 {
                if total < u64::from(d.l_threshold) {
                    d.overloaded = false;
                }
            } else if d.u_threshold != 0 {
                if total * 4 < u64::from(d.u_threshold) * 3 {
                    d.overloaded = false;
                }
            } else {
                d.overloaded = false;
            }
        })
    }

    /// nginx: a request to `id` failed (`NGX_PEER_FAILED`): `fails += 1`, the failure window
    /// starts now, and `effective_weight` drops by `weight / max_fails` (not below 0).
    pub fn report_failure(&mut self, id: DestId, now: Instant) -> bool {
        self.load(id, |d| {
            let p = &mut d.nginx;
            p.fails = p.fails.saturating_add(1);
            p.accessed = now;
            p.checked = now;
            if let Some(step) = d.weight.checked_div(p.max_fails) {
                p.effective_weight -= i64::from(step);
            }
            if p.effective_weight < 0 {
                p.effective_weight = 0;
            }
        })
    }

    /// nginx: a request to `id` succeeded; clears `fails` once the failure window has moved
    /// on (`accessed < checked`, in whole milliseconds like the window itself).
    pub fn report_success(&mut self, id: DestId) -> bool {
        self.load(id, |d| {
            if d.nginx.accessed.millis() < d.nginx.checked.millis() {
                d.nginx.fails = 0;
            }
        })
    }

    /// Choose a destination for a new connection or request. With persistence, a live
    /// template for the client wins; otherwise the scheduler decides and a template is made.
    /// `None` means no destination is available.
    pub fn schedule(&mut self, flow: &Flow<'_>, now: Instant) -> Option<DestId> {
        if let Some(p) = &mut self.persistence
            && let Some(id) = p.lookup(&self.dests, flow.src.ip(), now)
        {
            return Some(id);
        }
        let id = self.sched.schedule(&mut self.dests, flow, now)?;
        if let Some(p) = &mut self.persistence {
            p.insert(flow.src.ip(), id, now);
        }
        Some(id)
    }

    /// Run the scheduler's timers due at or before `now` (`lblc`/`lblcr` table collection,
    /// see [`Scheduler::tick`]); [`Service::schedule`] does it too whenever the scheduler
    /// decides, so this is for collecting the table while no connection arrives.
    pub fn tick(&mut self, now: Instant) {
        self.sched.tick(now);
    }

    /// Choose the next peer for a request being retried (nginx `proxy_next_upstream`):
    /// `tried` is the request's state, made with [`Tried::new`] for its first try and passed
    /// to every later one; the pick is recorded in it. See [`Scheduler::schedule_next`].
    /// Persistence is not consulted (a retry goes to the balancer, as in nginx).
    pub fn schedule_next(
        &mut self,
        flow: &Flow<'_>,
        now: Instant,
        tried: &mut Tried,
    ) -> Option<DestId> {
        self.sched.schedule_next(&mut self.dests, flow, now, tried)
    }

    /// Drop expired persistence templates.
    pub fn expire(&mut self, now: Instant) {
        if let Some(p) = &mut self.persistence {
            p.expire(now);
        }
    }
}
