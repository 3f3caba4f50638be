//! The tracking policy of a node that runs several virtual routers: keepalived's
//! `track_script` / `track_interface` weights, FAULT, and `vrrp_sync_group`, as a
//! deterministic engine with no I/O.
//!
//! A [`Policy`] knows *checks* (a script's pass/fail verdict with its `rise`/`fall` counts, an
//! interface's link state, or whether a tracked process has its quorum), *instances* (one per [`VirtualRouter`](crate::VirtualRouter),
//! with a base priority and the checks it tracks, each with a weight) and *sync groups*. The
//! caller feeds it check results ([`Policy::handle_check`], [`Policy::handle_link`],
//! [`Policy::handle_process`]) and
//! carries out what it asks for ([`Policy::poll_action`]): a new effective priority, or
//! entering / leaving FAULT. The rules are keepalived's:
//!
//! * a tracked check with a **positive weight** adds it to the priority while the check
//!   passes; a **negative weight** subtracts it while the check fails; the result is kept in
//!   1..=254, and an address owner (255) is never changed;
//! * a tracked check with **weight 0** puts the instance in FAULT while it fails;
//! * a **reversed** track (keepalived's `weight N reverse`) moves the priority the other way
//!   (a positive weight is subtracted while the check passes, a negative one added while it
//!   fails) and, with weight 0, faults the instance while the check *passes*;
//! * a script's verdict starts *passing* and changes after `fall` consecutive failures or
//!   `rise` consecutive successes; an interface's verdict is its link state; a process
//!   check's verdict is its quorum (`vrrp_track_process`, counted by the caller);
//! * when any member of a **sync group** is in FAULT of its own, every member is.
//!
//! ```
//! use vrrp_proto::policy::{Policy, PolicyAction};
//!
//! let mut b = Policy::builder();
//! let chk = b.script("chk_nginx", 1, 2);
//! let eth0 = b.interface("eth0");
//! let vi = b.instance("VI_1", 100);
//! b.track(vi, chk, -20);
//! b.track(vi, eth0, 0); // the instance's own interface: down means FAULT
//! let mut p = b.build();
//!
//! p.handle_check(chk, false);
//! assert_eq!(p.poll_action(), None); // fall 2: one failure is not enough
//! p.handle_check(chk, false);
//! assert_eq!(p.poll_action(), Some(PolicyAction::SetPriority { instance: vi, from: 100, to: 80 }));
//! p.handle_link(eth0, false);
//! assert_eq!(p.poll_action(), Some(PolicyAction::SetFault { instance: vi, fault: true }));
//! ```
//!
//! Reloading a configuration builds a new policy; [`Policy::carry_over`] keeps the verdicts
//! of the checks that did not change, so a reload does not reset a failing script to passing.
//! [`plan_reload`] says which instances keep running (a master stays master), which restart
//! and which stop.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// A check known to a [`Policy`] (a script or an interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckId(usize);

/// An instance known to a [`Policy`], numbered in the order [`PolicyBuilder::instance`] was
/// called (so it can index the caller's own list of routers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(usize);

impl InstanceId {
    /// The instance's position in the order it was added.
    pub const fn index(self) -> usize {
        self.0
    }
}

/// What the policy asks the caller to do to an instance's router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyAction {
    /// Advertise this priority from now on
    /// ([`VirtualRouter::set_priority`](crate::VirtualRouter::set_priority)).
    SetPriority {
        /// The instance.
        instance: InstanceId,
        /// The effective priority before.
        from: u8,
        /// The effective priority now.
        to: u8,
    },
    /// Enter or leave FAULT ([`VirtualRouter::set_fault`](crate::VirtualRouter::set_fault));
    /// [`Policy::fault_causes`] says why.
    SetFault {
        /// The instance.
        instance: InstanceId,
        /// In FAULT from now on.
        fault: bool,
    },
}

/// Why an instance is in FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultCause<'a> {
    /// A check it tracks with weight 0 fails (its name).
    Check(&'a str),
    /// Another member of its sync group (the group's name) is in FAULT of its own.
    SyncGroup(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Script { rise: u32, fall: u32 },
    Interface,
    Process,
}

#[derive(Debug, Clone)]
struct Check {
    name: String,
    kind: Kind,
    ok: bool,
    consecutive_ok: u32,
    consecutive_fail: u32,
}

#[derive(Debug, Clone)]
struct Instance {
    name: String,
    base: u8,
    tracks: Vec<Track>,
    group: Option<usize>,
    /// What the caller was last told.
    priority: u8,
    fault: bool,
}

/// One tracked check of an instance.
#[derive(Debug, Clone, Copy)]
struct Track {
    check: CheckId,
    weight: i32,
    reverse: bool,
}

impl Track {
    /// The priority change it asks for given the check's verdict (keepalived: a positive
    /// weight counts while passing, a negative one while failing; `reverse` negates it).
    fn contribution(&self, ok: bool) -> i32 {
        let counts = (self.weight > 0 && ok) || (self.weight < 0 && !ok);
        match (counts, self.reverse) {
            (false, _) => 0,
            (true, false) => self.weight,
            (true, true) => self.weight.saturating_neg(),
        }
    }

    /// Whether it puts the instance in FAULT (weight 0: while failing, or while passing when
    /// reversed).
    fn faults(&self, ok: bool) -> bool {
        self.weight == 0 && ok == self.reverse
    }
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    members: Vec<InstanceId>,
}

/// Declares the checks, instances and sync groups of a [`Policy`].
#[derive(Debug, Default)]
#[must_use = "a PolicyBuilder does nothing until build() is called"]
pub struct PolicyBuilder {
    checks: Vec<Check>,
    instances: Vec<Instance>,
    groups: Vec<Group>,
}

impl PolicyBuilder {
    /// A check script (`vrrp_script`) that starts passing and changes its verdict after
    /// `fall` consecutive failures or `rise` consecutive successes (0 counts as 1). A name
    /// already declared as a script returns the same check.
    pub fn script(&mut self, name: &str, rise: u32, fall: u32) -> CheckId {
        let kind = Kind::Script {
            rise: rise.max(1),
            fall: fall.max(1),
        };
        self.check(name, kind)
    }

    /// An interface whose link state is a check (up until [`Policy::handle_link`] says
    /// otherwise). A name already declared as an interface returns the same check.
    pub fn interface(&mut self, name: &str) -> CheckId {
        self.check(name, Kind::Interface)
    }

    /// A tracked process (`vrrp_track_process`) whose verdict is whether it has its quorum
    /// (passing until [`Policy::handle_process`] says otherwise). A name already declared as a
    /// process returns the same check.
    pub fn process(&mut self, name: &str) -> CheckId {
        self.check(name, Kind::Process)
    }

    fn check(&mut self, name: &str, kind: Kind) -> CheckId {
        let same = |c: &Check| {
            c.name == name && core::mem::discriminant(&c.kind) == core::mem::discriminant(&kind)
        };
        if let Some(i) = self.checks.iter().position(same) {
            return CheckId(i);
        }
        self.checks.push(Check {
            name: name.into(),
            kind,
            ok: true,
            consecutive_ok: 0,
            consecutive_fail: 0,
        });
        CheckId(self.checks.len() - 1)
    }

    /// An instance with its configured (base) priority.
    pub fn instance(&mut self, name: &str, base_priority: u8) -> InstanceId {
        self.instances.push(Instance {
            name: name.into(),
            base: base_priority,
            tracks: Vec::new(),
            group: None,
            priority: base_priority,
            fault: false,
        });
        InstanceId(self.instances.len() - 1)
    }

    /// `instance` tracks `check` with `weight` (0: FAULT while the check fails). Ids from
    /// another builder are ignored.
    pub fn track(&mut self, instance: InstanceId, check: CheckId, weight: i32) {
        self.track_with(instance, check, weight, false);
    }

    /// `instance` tracks `check` with `weight`, reversed when `reverse` is set (keepalived's
    /// `weight N reverse`: the priority moves the other way, and weight 0 faults the instance
    /// while the check passes). Ids from another builder are ignored.
    pub fn track_with(&mut self, instance: InstanceId, check: CheckId, weight: i32, reverse: bool) {
        if check.0 < self.checks.len()
            && let Some(i) = self.instances.get_mut(instance.0)
        {
            i.tracks.push(Track {
                check,
                weight,
                reverse,
            });
        }
    }

    /// A sync group: its members go to FAULT together. An instance belongs to one group at
    /// most; a later group does not take members an earlier one has.
    pub fn sync_group(&mut self, name: &str, members: &[InstanceId]) {
        let g = self.groups.len();
        let mut taken = Vec::new();
        for m in members {
            if let Some(i) = self.instances.get_mut(m.0)
                && i.group.is_none()
            {
                i.group = Some(g);
                taken.push(*m);
            }
        }
        self.groups.push(Group {
            name: name.into(),
            members: taken,
        });
    }

    /// The policy, with every check passing. [`Policy::poll_action`] then reports what the
    /// initial state asks for (nothing, unless an interface was declared down already).
    pub fn build(self) -> Policy {
        let mut p = Policy {
            checks: self.checks,
            instances: self.instances,
            groups: self.groups,
            actions: VecDeque::new(),
        };
        p.refresh();
        p
    }
}

/// The tracking policy of a node. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Policy {
    checks: Vec<Check>,
    instances: Vec<Instance>,
    groups: Vec<Group>,
    actions: VecDeque<PolicyAction>,
}

impl Policy {
    /// A builder.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Records one result of a script check. Returns the check's new verdict when this result
    /// changed it (`rise`/`fall` reached); the consequences are queued for
    /// [`poll_action`](Self::poll_action). For an interface check the result is its state.
    pub fn handle_check(&mut self, check: CheckId, success: bool) -> Option<bool> {
        let c = self.checks.get_mut(check.0)?;
        let (rise, fall) = match c.kind {
            Kind::Script { rise, fall } => (rise, fall),
            Kind::Interface | Kind::Process => (1, 1),
        };
        let changed = if success {
            c.consecutive_ok = c.consecutive_ok.saturating_add(1);
            c.consecutive_fail = 0;
            !c.ok && c.consecutive_ok >= rise
        } else {
            c.consecutive_fail = c.consecutive_fail.saturating_add(1);
            c.consecutive_ok = 0;
            c.ok && c.consecutive_fail >= fall
        };
        if !changed {
            return None;
        }
        c.ok = success;
        self.refresh();
        Some(success)
    }

    /// An interface's link state (up and running, or not). Returns the new verdict when it
    /// changed.
    pub fn handle_link(&mut self, check: CheckId, up: bool) -> Option<bool> {
        self.set_verdict(check, up)
    }

    /// A tracked process's quorum (`true`: as many matching processes as it needs). Returns
    /// the new verdict when it changed.
    pub fn handle_process(&mut self, check: CheckId, have_quorum: bool) -> Option<bool> {
        self.set_verdict(check, have_quorum)
    }

    fn set_verdict(&mut self, check: CheckId, up: bool) -> Option<bool> {
        let c = self.checks.get_mut(check.0)?;
        c.consecutive_ok = 0;
        c.consecutive_fail = 0;
        if c.ok == up {
            return None;
        }
        c.ok = up;
        self.refresh();
        Some(up)
    }

    /// The next thing to do, in the order the inputs asked for them.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<PolicyAction> {
        self.actions.pop_front()
    }

    /// The check called `name` (a script or an interface), if declared.
    pub fn check_id(&self, name: &str) -> Option<CheckId> {
        self.checks.iter().position(|c| c.name == name).map(CheckId)
    }

    /// The script check called `name`, if declared.
    pub fn script_id(&self, name: &str) -> Option<CheckId> {
        self.checks
            .iter()
            .position(|c| c.name == name && matches!(c.kind, Kind::Script { .. }))
            .map(CheckId)
    }

    /// The interface check called `name`, if declared.
    pub fn interface_id(&self, name: &str) -> Option<CheckId> {
        self.checks
            .iter()
            .position(|c| c.name == name && c.kind == Kind::Interface)
            .map(CheckId)
    }

    /// The process check called `name`, if declared.
    pub fn process_id(&self, name: &str) -> Option<CheckId> {
        self.checks
            .iter()
            .position(|c| c.name == name && c.kind == Kind::Process)
            .map(CheckId)
    }

    /// The instance called `name`, if declared.
    pub fn instance_id(&self, name: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .position(|i| i.name == name)
            .map(InstanceId)
    }

    /// Every declared check.
    pub fn checks(&self) -> impl Iterator<Item = CheckId> + '_ {
        (0..self.checks.len()).map(CheckId)
    }

    /// Every declared instance.
    pub fn instances(&self) -> impl Iterator<Item = InstanceId> + '_ {
        (0..self.instances.len()).map(InstanceId)
    }

    /// A check's name.
    pub fn check_name(&self, check: CheckId) -> Option<&str> {
        self.checks.get(check.0).map(|c| c.name.as_str())
    }

    /// A check's verdict (`true`: passing).
    pub fn check_ok(&self, check: CheckId) -> Option<bool> {
        self.checks.get(check.0).map(|c| c.ok)
    }

    /// The instance's effective priority (the last one asked for).
    pub fn priority(&self, instance: InstanceId) -> Option<u8> {
        self.instances.get(instance.0).map(|i| i.priority)
    }

    /// Whether the instance is in FAULT (as last asked for).
    pub fn is_fault(&self, instance: InstanceId) -> bool {
        self.instances.get(instance.0).is_some_and(|i| i.fault)
    }

    /// Why the instance is in FAULT now (empty when it is not).
    pub fn fault_causes(&self, instance: InstanceId) -> Vec<FaultCause<'_>> {
        let mut out: Vec<FaultCause<'_>> = self
            .own_fault_checks(instance.0)
            .map(|c| FaultCause::Check(self.checks[c.0].name.as_str()))
            .collect();
        if out.is_empty()
            && let Some(g) = self.group_fault(instance.0)
        {
            out.push(FaultCause::SyncGroup(self.groups[g].name.as_str()));
        }
        out
    }

    /// Copies the verdicts (and rise/fall progress) of `old`'s checks into this policy's
    /// checks of the same name and definition, and queues what they ask for. Used after a
    /// configuration reload, so that a script that was failing stays failing.
    pub fn carry_over(&mut self, old: &Self) {
        for c in &mut self.checks {
            if let Some(o) = old
                .checks
                .iter()
                .find(|o| o.name == c.name && o.kind == c.kind)
            {
                c.ok = o.ok;
                c.consecutive_ok = o.consecutive_ok;
                c.consecutive_fail = o.consecutive_fail;
            }
        }
        self.refresh();
    }

    fn own_fault_checks(&self, i: usize) -> impl Iterator<Item = CheckId> + '_ {
        self.instances[i]
            .tracks
            .iter()
            .filter(|t| t.faults(self.checks[t.check.0].ok))
            .map(|t| t.check)
    }

    /// The group whose other member is in FAULT of its own, if any.
    fn group_fault(&self, i: usize) -> Option<usize> {
        let g = self.instances[i].group?;
        self.groups[g]
            .members
            .iter()
            .any(|m| m.0 != i && self.own_fault_checks(m.0).next().is_some())
            .then_some(g)
    }

    fn effective(&self, i: usize) -> u8 {
        let inst = &self.instances[i];
        if inst.base == 255 {
            return 255;
        }
        let mut p = i32::from(inst.base);
        for t in &inst.tracks {
            p = p.saturating_add(t.contribution(self.checks[t.check.0].ok));
        }
        u8::try_from(p.clamp(1, 254)).unwrap_or(1)
    }

    /// Recomputes every instance and queues the differences: priorities first, then faults,
    /// each in instance order.
    fn refresh(&mut self) {
        for i in 0..self.instances.len() {
            let to = self.effective(i);
            let from = self.instances[i].priority;
            if to != from {
                self.instances[i].priority = to;
                self.actions.push_back(PolicyAction::SetPriority {
                    instance: InstanceId(i),
                    from,
                    to,
                });
            }
        }
        for i in 0..self.instances.len() {
            let fault = self.own_fault_checks(i).next().is_some() || self.group_fault(i).is_some();
            if fault != self.instances[i].fault {
                self.instances[i].fault = fault;
                self.actions.push_back(PolicyAction::SetFault {
                    instance: InstanceId(i),
                    fault,
                });
            }
        }
    }
}

/// What a configuration reload does to each instance: see [`plan_reload`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReloadPlan {
    /// `(old index, new index)` of the instances whose configuration did not change: they keep
    /// running (a master stays master).
    pub keep: Vec<(usize, usize)>,
    /// Old indices of the instances that go away or change: they release (priority 0) and stop.
    pub stop: Vec<usize>,
    /// New indices of the instances that are new or changed: they start.
    pub start: Vec<usize>,
}

/// Matches the instances of a reloaded configuration against the running ones. An instance
/// keeps running only when its configuration is equal and `context_same` (whatever else it
/// depends on — global settings, scripts, sync groups — did not change); every other old
/// instance stops and every other new one starts.
pub fn plan_reload<T: PartialEq>(old: &[T], new: &[T], context_same: bool) -> ReloadPlan {
    let mut plan = ReloadPlan::default();
    let mut used = alloc::vec![false; new.len()];
    for (o, cfg) in old.iter().enumerate() {
        let found = context_same
            .then(|| (0..new.len()).find(|&n| !used[n] && new[n] == *cfg))
            .flatten();
        match found {
            Some(n) => {
                used[n] = true;
                plan.keep.push((o, n));
            }
            None => plan.stop.push(o),
        }
    }
    plan.start = (0..new.len()).filter(|&n| !used[n]).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(p: &mut Policy) -> Vec<PolicyAction> {
        core::iter::from_fn(|| p.poll_action()).collect()
    }

    #[test]
    fn rise_and_fall() {
        let mut b = Policy::builder();
        let s = b.script("s", 2, 3);
        let mut p = b.build();
        assert_eq!(p.check_ok(s), Some(true));
        assert_eq!(p.handle_check(s, false), None);
        assert_eq!(p.handle_check(s, false), None);
        assert_eq!(p.handle_check(s, false), Some(false));
        assert_eq!(p.handle_check(s, false), None);
        assert_eq!(p.handle_check(s, true), None);
        assert_eq!(p.handle_check(s, false), None);
        assert_eq!(p.handle_check(s, true), None);
        assert_eq!(p.handle_check(s, true), Some(true));
    }

    #[test]
    fn weights_move_priority_within_bounds() {
        let eff = |base: u8, tracks: &[(i32, bool)]| {
            let mut b = Policy::builder();
            let i = b.instance("i", base);
            let mut ids = Vec::new();
            for (k, (w, _)) in tracks.iter().enumerate() {
                let c = b.script(&alloc::format!("c{k}"), 1, 1);
                b.track(i, c, *w);
                ids.push(c);
            }
            let mut p = b.build();
            for (c, (_, ok)) in ids.iter().zip(tracks) {
                p.handle_check(*c, *ok);
            }
            p.priority(i).unwrap()
        };
        assert_eq!(eff(100, &[(-20, false)]), 80);
        assert_eq!(eff(100, &[(-20, true)]), 100);
        assert_eq!(eff(100, &[(20, true), (-5, false)]), 115);
        assert_eq!(eff(250, &[(20, true)]), 254);
        assert_eq!(eff(10, &[(-50, false)]), 1);
        assert_eq!(eff(255, &[(-50, false)]), 255);
    }

    #[test]
    fn reverse_moves_the_other_way() {
        // keepalived's `weight N reverse`, for a script, an interface and a process alike.
        let eff = |base: u8, w: i32, ok: bool| {
            let mut b = Policy::builder();
            let i = b.instance("i", base);
            let c = b.process("p");
            b.track_with(i, c, w, true);
            let mut p = b.build();
            p.handle_process(c, ok);
            (p.priority(i).unwrap(), p.is_fault(i))
        };
        assert_eq!(eff(100, 20, true), (80, false));
        assert_eq!(eff(100, 20, false), (100, false));
        assert_eq!(eff(100, -20, false), (120, false));
        assert_eq!(eff(100, -20, true), (100, false));
        // Weight 0 reversed: FAULT while the check passes.
        assert_eq!(eff(100, 0, true), (100, true));
        assert_eq!(eff(100, 0, false), (100, false));
        assert_eq!(eff(255, 20, true), (255, false));
    }

    #[test]
    fn process_quorum_faults_and_recovers() {
        let mut b = Policy::builder();
        let nginx = b.process("nginx");
        let s = b.script("nginx", 1, 1);
        let i = b.instance("VI_1", 100);
        b.track(i, nginx, 0);
        let mut p = b.build();
        assert_ne!(nginx, s);
        assert_eq!(p.process_id("nginx"), Some(nginx));
        assert_eq!(p.script_id("nginx"), Some(s));
        assert_eq!(p.handle_process(nginx, true), None);
        assert_eq!(p.handle_process(nginx, false), Some(false));
        assert_eq!(
            drain(&mut p),
            [PolicyAction::SetFault {
                instance: i,
                fault: true
            }]
        );
        assert_eq!(p.fault_causes(i), [FaultCause::Check("nginx")]);
        assert_eq!(p.handle_process(nginx, true), Some(true));
        assert_eq!(
            drain(&mut p),
            [PolicyAction::SetFault {
                instance: i,
                fault: false
            }]
        );
    }

    #[test]
    fn sync_group_faults_together_and_recovers() {
        let mut b = Policy::builder();
        let (e0, e1) = (b.interface("eth0"), b.interface("eth1"));
        let (a, c) = (b.instance("VI_1", 100), b.instance("VI_2", 100));
        let lone = b.instance("VI_3", 100);
        b.track(a, e0, 0);
        b.track(c, e1, 0);
        b.track(lone, e1, 0);
        b.sync_group("G", &[a, c]);
        let mut p = b.build();
        assert!(drain(&mut p).is_empty());
        p.handle_link(e0, false);
        assert_eq!(
            drain(&mut p),
            [
                PolicyAction::SetFault {
                    instance: a,
                    fault: true
                },
                PolicyAction::SetFault {
                    instance: c,
                    fault: true
                },
            ]
        );
        assert_eq!(p.fault_causes(a), [FaultCause::Check("eth0")]);
        assert_eq!(p.fault_causes(c), [FaultCause::SyncGroup("G")]);
        assert!(p.fault_causes(lone).is_empty());
        // The other member's own interface fails too, then the first recovers: the group
        // stays in FAULT until both are up.
        p.handle_link(e1, false);
        assert_eq!(
            drain(&mut p),
            [PolicyAction::SetFault {
                instance: lone,
                fault: true
            }]
        );
        p.handle_link(e0, true);
        assert!(drain(&mut p).is_empty());
        assert_eq!(p.fault_causes(a), [FaultCause::SyncGroup("G")]);
        p.handle_link(e1, true);
        assert_eq!(
            drain(&mut p),
            [
                PolicyAction::SetFault {
                    instance: a,
                    fault: false
                },
                PolicyAction::SetFault {
                    instance: c,
                    fault: false
                },
                PolicyAction::SetFault {
                    instance: lone,
                    fault: false
                },
            ]
        );
    }

    #[test]
    fn carry_over_keeps_verdicts_of_unchanged_checks() {
        let build = |fall: u32| {
            let mut b = Policy::builder();
            let s = b.script("chk", 1, fall);
            let i = b.instance("VI_1", 100);
            b.track(i, s, -30);
            (b.build(), s, i)
        };
        let (mut old, s, _) = build(1);
        old.handle_check(s, false);
        let (mut same, _, i) = build(1);
        same.carry_over(&old);
        assert_eq!(
            drain(&mut same),
            [PolicyAction::SetPriority {
                instance: i,
                from: 100,
                to: 70
            }]
        );
        // A changed definition starts afresh.
        let (mut changed, s2, i2) = build(2);
        changed.carry_over(&old);
        assert!(drain(&mut changed).is_empty());
        assert_eq!(changed.check_ok(s2), Some(true));
        assert_eq!(changed.priority(i2), Some(100));
    }

    #[test]
    fn reload_plan_keeps_unchanged_instances() {
        let plan = plan_reload(&["a", "b", "c"], &["c", "x", "a"], true);
        assert_eq!(plan.keep, [(0, 2), (2, 0)]);
        assert_eq!(plan.stop, [1]);
        assert_eq!(plan.start, [1]);
        let plan = plan_reload(&["a"], &["a"], false);
        assert_eq!(
            (plan.keep.len(), plan.stop.as_slice(), plan.start.as_slice()),
            (0, &[0][..], &[0][..])
        );
    }
}
