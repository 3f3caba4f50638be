//! The tracking policy ([`vrrp_proto::policy`]) driving real routers in the simulator: two
//! nodes, each running two virtual routers (VRID 1 and 2) in one sync group, with interface
//! and script checks. The policy's actions are carried out on the simulated routers as a
//! daemon carries them out on real ones.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use vrrp_proto::policy::{CheckId, InstanceId, Policy, PolicyAction};
use vrrp_proto::sim::{Lan, Link};
use vrrp_proto::{Config, State};

const ADVERT: Duration = Duration::from_millis(100);

/// One node: its policy and the simulator's index of each of its routers.
struct Node {
    policy: Policy,
    routers: [usize; 2],
    eth0: CheckId,
    eth1: CheckId,
    chk: CheckId,
    instances: [InstanceId; 2],
}

impl Node {
    /// VI_1 (VRID 1) tracks eth0 with weight 0, VI_2 (VRID 2) eth1 with weight 0, both track
    /// `chk` (rise 1, fall 2) with `weight`; the two are a sync group.
    fn new(lan: &mut Lan, ip: &str, base: u8, weight: i32) -> Self {
        let cfg = |vrid: u8| {
            Config::builder(vrid, ip.parse().unwrap())
                .priority(base)
                .advert_interval(ADVERT)
                .vip(format!("10.0.0.{}", 100 + vrid).parse::<IpAddr>().unwrap())
                .build()
                .unwrap()
        };
        let routers = [lan.add_router(cfg(1)), lan.add_router(cfg(2))];
        let mut b = Policy::builder();
        let (eth0, eth1) = (b.interface("eth0"), b.interface("eth1"));
        let chk = b.script("chk", 1, 2);
        let vi1 = b.instance("VI_1", base);
        let vi2 = b.instance("VI_2", base);
        b.track(vi1, eth0, 0);
        b.track(vi2, eth1, 0);
        b.track(vi1, chk, weight);
        b.track(vi2, chk, weight);
        b.sync_group("G", &[vi1, vi2]);
        Self {
            policy: b.build(),
            routers,
            eth0,
            eth1,
            chk,
            instances: [vi1, vi2],
        }
    }

    /// Carries out the policy's actions on the simulated routers.
    fn apply(&mut self, lan: &mut Lan) {
        while let Some(a) = self.policy.poll_action() {
            match a {
                PolicyAction::SetPriority { instance, to, .. } => {
                    lan.set_priority(self.routers[instance.index()], to);
                }
                PolicyAction::SetFault { instance, fault } => {
                    lan.set_fault(self.routers[instance.index()], fault);
                }
                other => panic!("unexpected action {other:?}"),
            }
        }
    }
}

fn pair() -> (Lan, Node, Node) {
    let mut lan = Lan::new(11, Link::default());
    let a = Node::new(&mut lan, "10.0.0.1", 150, -60);
    let b = Node::new(&mut lan, "10.0.0.2", 100, -60);
    lan.start_all();
    lan.run_for(Duration::from_secs(1));
    (lan, a, b)
}

#[test]
fn sync_group_fails_over_together_and_comes_back() {
    let (mut lan, mut a, b) = pair();
    assert_eq!(lan.masters(), a.routers);

    // eth0 goes down on A: VI_1 faults, and VI_2 with it (sync group), so B takes both at
    // Skew_Time after A's priority-0 adverts.
    a.policy.handle_link(a.eth0, false);
    a.apply(&mut lan);
    assert_eq!(lan.state(a.routers[0]), Some(State::Fault));
    assert_eq!(lan.state(a.routers[1]), Some(State::Fault));
    lan.run_for(ADVERT);
    assert_eq!(lan.masters(), b.routers);

    // eth0 back: both leave FAULT and, with the higher priority, preempt.
    a.policy.handle_link(a.eth0, true);
    a.apply(&mut lan);
    lan.run_for(Duration::from_secs(1));
    assert_eq!(lan.masters(), a.routers);
}

#[test]
fn script_weight_hands_both_instances_over_and_back() {
    let (mut lan, mut a, b) = pair();
    // One failure is not `fall 2`.
    a.policy.handle_check(a.chk, false);
    a.apply(&mut lan);
    lan.run_for(Duration::from_secs(1));
    assert_eq!(lan.masters(), a.routers);
    // The second: 150 - 60 = 90 < 100, B preempts both.
    a.policy.handle_check(a.chk, false);
    a.apply(&mut lan);
    assert_eq!(a.policy.priority(a.instances[0]), Some(90));
    lan.run_for(Duration::from_secs(1));
    assert_eq!(lan.masters(), b.routers);
    // One success is `rise 1`: back to 150, A preempts.
    a.policy.handle_check(a.chk, true);
    a.apply(&mut lan);
    lan.run_for(Duration::from_secs(1));
    assert_eq!(lan.masters(), a.routers);
}

#[derive(Debug, Clone)]
enum Input {
    Link { node: usize, iface: usize, up: bool },
    Check { node: usize, ok: bool },
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (0..2usize, 0..2usize, any::<bool>()).prop_map(|(node, iface, up)| Input::Link {
            node,
            iface,
            up
        }),
        (0..2usize, any::<bool>()).prop_map(|(node, ok)| Input::Check { node, ok }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After any sequence of link and check changes on either node, once things settle:
    /// the routers are in FAULT exactly where the policy says; the two members of a node's
    /// sync group are in FAULT together; and each VRID is mastered by the node with the
    /// higher effective priority among those not in FAULT (none when both are).
    #[test]
    fn settled_state_follows_the_policy(inputs in proptest::collection::vec(input(), 1..12)) {
        let (mut lan, a, b) = pair();
        let mut nodes = [a, b];
        for i in inputs {
            match i {
                Input::Link { node, iface, up } => {
                    let n = &mut nodes[node];
                    let c = if iface == 0 { n.eth0 } else { n.eth1 };
                    n.policy.handle_link(c, up);
                }
                Input::Check { node, ok } => {
                    let n = &mut nodes[node];
                    n.policy.handle_check(n.chk, ok);
                }
            }
            for n in &mut nodes {
                n.apply(&mut lan);
            }
            lan.run_for(ADVERT / 2);
        }
        lan.run_for(Duration::from_secs(1));
        for n in &nodes {
            let f0 = n.policy.is_fault(n.instances[0]);
            let f1 = n.policy.is_fault(n.instances[1]);
            prop_assert_eq!(f0, f1, "sync group split");
            for (k, r) in n.routers.iter().enumerate() {
                let fault = n.policy.is_fault(n.instances[k]);
                prop_assert_eq!(lan.state(*r) == Some(State::Fault), fault);
                prop_assert_eq!(lan.router(*r).unwrap().priority(), n.policy.priority(n.instances[k]).unwrap());
            }
        }
        for k in 0..2 {
            let live: Vec<(u8, usize)> = nodes
                .iter()
                .filter(|n| !n.policy.is_fault(n.instances[k]))
                .map(|n| (n.policy.priority(n.instances[k]).unwrap(), n.routers[k]))
                .collect();
            let masters: Vec<usize> = lan.masters().into_iter().filter(|m| nodes.iter().any(|n| n.routers[k] == *m)).collect();
            let expected: Vec<usize> = match live.as_slice() {
                [] => vec![],
                [(_, r)] => vec![*r],
                [(p0, r0), (p1, r1)] => {
                    // Equal priorities: the higher primary address wins (B, 10.0.0.2).
                    if p0 > p1 { vec![*r0] } else { vec![*r1] }
                }
                _ => unreachable!(),
            };
            prop_assert_eq!(masters, expected, "VRID {}", k + 1);
        }
    }
}
