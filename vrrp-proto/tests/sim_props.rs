//! Election properties over random scenarios in the simulator: 2 to 8 routers, loss up to
//! 30 %, delay and jitter, partitions, crashes, restarts, shutdowns, faults and priority
//! changes.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::time::Duration;

use proptest::prelude::*;
use vrrp_proto::sim::{EventKind, Lan, Link};
use vrrp_proto::wire::Version;
use vrrp_proto::{Announce, Config, Instant, State};

#[derive(Debug, Clone)]
enum Chaos {
    Crash(usize),
    Restart(usize),
    Shutdown(usize),
    Start(usize),
    Priority(usize, u8),
    Fault(usize, bool),
    Partition(Vec<u32>),
    Heal,
}

#[derive(Debug, Clone)]
struct Scenario {
    v3: bool,
    interval_cs: u16,
    priorities: Vec<u8>,
    preempt: bool,
    /// Healthy link: delay and jitter as fractions (per mille) of the interval, at most 1/4.
    delay_pm: u32,
    jitter_pm: u32,
    loss_ppm: u32,
    chaos: Vec<(u32, Chaos)>,
    seed: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..=8, any::<bool>()).prop_flat_map(|(n, v3)| {
        let interval = if v3 {
            prop_oneof![Just(1u16), Just(10u16), Just(100u16), 1u16..=300].boxed()
        } else {
            (1u16..=3).prop_map(|s| s * 100).boxed()
        };
        let op = prop_oneof![
            (0..n).prop_map(Chaos::Crash),
            (0..n).prop_map(Chaos::Restart),
            (0..n).prop_map(Chaos::Shutdown),
            (0..n).prop_map(Chaos::Start),
            (0..n, 1u8..=254).prop_map(|(i, p)| Chaos::Priority(i, p)),
            (0..n, any::<bool>()).prop_map(|(i, f)| Chaos::Fault(i, f)),
            prop::collection::vec(0u32..3, n).prop_map(Chaos::Partition),
            Just(Chaos::Heal),
        ];
        (
            Just(v3),
            interval,
            prop::collection::vec(1u8..=254, n),
            any::<bool>(),
            0u32..=250,
            0u32..=250,
            0u32..=300_000,
            prop::collection::vec((0u32..20_000, op), 0..12),
            any::<u64>(),
        )
            .prop_map(
                |(
                    v3,
                    interval_cs,
                    priorities,
                    preempt,
                    delay_pm,
                    jitter_pm,
                    loss_ppm,
                    mut chaos,
                    seed,
                )| {
                    chaos.sort_by_key(|(t, _)| *t);
                    Scenario {
                        v3,
                        interval_cs,
                        priorities,
                        preempt,
                        delay_pm,
                        jitter_pm,
                        loss_ppm,
                        chaos,
                        seed,
                    }
                },
            )
    })
}

impl Scenario {
    fn interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval_cs) * 10)
    }
    fn healthy_link(&self) -> Link {
        let i = self.interval();
        Link::new(0, i * self.delay_pm / 4000, i * self.jitter_pm / 4000)
    }
    fn lan(&self) -> Lan {
        let mut lan = Lan::new(self.seed, self.healthy_link());
        for (i, &p) in self.priorities.iter().enumerate() {
            let cfg = Config::builder(7, IpAddr::from([10, 0, 0, i as u8 + 1]))
                .version(if self.v3 { Version::V3 } else { Version::V2 })
                .advert_interval(self.interval())
                .priority(p)
                .preempt(self.preempt)
                .vip(IpAddr::from([10, 0, 0, 200]))
                .announce(Announce {
                    repeat: 1,
                    ..Announce::default()
                })
                .build()
                .unwrap();
            lan.add_router(cfg);
        }
        lan
    }
}

/// Routers taking part in the election: alive, and in Backup or Master.
fn participants(lan: &Lan) -> Vec<usize> {
    (0..lan.len())
        .filter(|&i| lan.is_alive(i) && matches!(lan.state(i), Some(State::Backup | State::Master)))
        .collect()
}

/// The longest Master_Down_Interval among the participants.
fn max_mdi(lan: &Lan) -> Duration {
    participants(lan)
        .iter()
        .filter_map(|&i| lan.router(i))
        .map(|r| r.master_down_interval())
        .max()
        .unwrap_or_default()
}

/// Checks the steady-state properties at every event for `span`, and that nothing changes
/// state meanwhile.
fn assert_steady(lan: &mut Lan, s: &Scenario, span: Duration) {
    let parts = participants(lan);
    let end = lan.now() + span;
    let events_before = lan.events().len();
    loop {
        let masters = lan.masters();
        if parts.is_empty() {
            assert!(masters.is_empty());
        } else {
            assert_eq!(
                masters.len(),
                1,
                "exactly one master at {}: {masters:?}",
                lan.now()
            );
            // Only the master holds the VIP.
            assert_eq!(lan.vip_holders(), masters, "VIP holders at {}", lan.now());
            if s.preempt {
                let best = parts
                    .iter()
                    .map(|&i| lan.router(i).unwrap().priority())
                    .max()
                    .unwrap();
                let m = lan.router(masters[0]).unwrap().priority();
                assert_eq!(m, best, "with preemption the highest priority is master");
            }
        }
        match lan.next_event() {
            Some(t) if t <= end => {
                lan.step();
            }
            _ => break,
        }
    }
    lan.run_until(end);
    let changes: Vec<_> = lan.events()[events_before..]
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StateChanged { .. }))
        .collect();
    assert!(
        changes.is_empty(),
        "state changed on a healthy network: {changes:?}"
    );
}

fn apply(lan: &mut Lan, op: &Chaos) {
    match op {
        Chaos::Crash(i) => lan.crash(*i),
        Chaos::Restart(i) => lan.restart(*i),
        Chaos::Shutdown(i) => lan.shutdown(*i),
        Chaos::Start(i) => lan.start(*i),
        Chaos::Priority(i, p) => lan.set_priority(*i, *p),
        Chaos::Fault(i, f) => lan.set_fault(*i, *f),
        Chaos::Partition(g) => lan.partition(g),
        Chaos::Heal => lan.heal(),
    }
}

#[derive(Clone, Copy, Debug)]
enum Loss {
    Crash,
    Release,
}

/// Takes the master away and checks the takeover bound: Master_Down_Interval (crash) or
/// Skew_Time (release) of the router taking over, plus the link delay; then the steady state.
/// Returns false when no router is left to take over.
fn lose_master(lan: &mut Lan, s: &Scenario, how: Loss) -> bool {
    let max_delay = s.healthy_link().max_delay();
    let m = lan.masters()[0];
    let at = lan.now();
    match how {
        Loss::Crash => lan.crash(m),
        Loss::Release => lan.shutdown(m),
    }
    if participants(lan).is_empty() {
        return false;
    }
    let n = lan.events().len();
    lan.run_for(max_mdi(lan) + max_delay * 2 + s.interval());
    let takeover = lan.events()[n..]
        .iter()
        .find(|e| {
            matches!(
                e.kind,
                EventKind::StateChanged {
                    to: State::Master,
                    ..
                }
            )
        })
        .copied()
        .unwrap();
    let r = lan.router(takeover.node).unwrap();
    let bound = match how {
        Loss::Crash => r.master_down_interval(),
        Loss::Release => r.skew_time(),
    } + max_delay;
    assert!(
        takeover.at - at <= bound,
        "{how:?} failover took {:?} > {bound:?}",
        takeover.at - at
    );
    assert_steady(lan, s, s.interval() * 3);
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// After chaos, once the network has been healthy for one Master_Down_Interval (plus
    /// the link's delay), exactly one master holds the VIP — with preemption, one of the
    /// highest priority — and nothing changes state while the network stays healthy.
    #[test]
    fn one_master_after_the_network_heals(s in scenario()) {
        let mut lan = s.lan();
        lan.start_all();
        lan.set_link(Link::new(s.loss_ppm, s.healthy_link().delay, s.healthy_link().jitter));
        // Chaos times are in per-mille of 20 intervals.
        let unit = s.interval() / 1000;
        for (t, op) in &s.chaos {
            lan.run_until(Instant::ZERO + unit * *t);
            apply(&mut lan, op);
        }
        lan.run_for(s.interval() * 2);
        // Heal.
        lan.heal();
        lan.set_link(s.healthy_link());
        let max_delay = s.healthy_link().max_delay();
        // In-flight chaos-era packets land within the old link's delay, then one MDI.
        let settle = max_mdi(&lan) + max_delay * 2 + s.interval() + Duration::from_micros(1);
        lan.run_for(settle);
        assert_steady(&mut lan, &s, s.interval() * 10);
    }

    /// A crashed master is replaced within Master_Down_Interval (of the router taking over)
    /// plus the link delay; a released master (priority 0) within Skew_Time plus the delay.
    #[test]
    fn failover_within_the_protocol_bounds(s in scenario()) {
        let mut lan = s.lan();
        lan.start_all();
        let max_delay = s.healthy_link().max_delay();
        lan.run_for(max_mdi(&lan) + max_delay * 2 + s.interval());
        assert_steady(&mut lan, &s, s.interval() * 3);

        // Crash the master: replaced within the new master's MDI plus the delay.
        if !lose_master(&mut lan, &s, Loss::Crash) {
            return Ok(());
        }
        // Release the new master cleanly: replaced within Skew_Time plus the delay.
        lose_master(&mut lan, &s, Loss::Release);
        assert_steady(&mut lan, &s, s.interval() * 3);
    }
}

/// With no loss, after the first election no backup ever changes state, over a long run.
#[test]
fn no_loss_means_no_backup_ever_moves() {
    let s = Scenario {
        v3: true,
        interval_cs: 100,
        priorities: vec![100, 150, 99, 200, 1],
        preempt: true,
        delay_pm: 200,
        jitter_pm: 250,
        loss_ppm: 0,
        chaos: vec![],
        seed: 42,
    };
    let mut lan = s.lan();
    lan.start_all();
    lan.run_for(Duration::from_secs(5));
    assert_eq!(lan.masters(), vec![3]);
    assert_steady(&mut lan, &s, Duration::from_secs(3600));
}

/// Equal priorities started together: the higher primary address wins (RFC 5798 §6.4.3).
/// (Once a master exists, an equal-priority backup does not preempt it: §6.4.2 accepts
/// adverts whose priority is greater than *or equal to* its own.)
#[test]
fn equal_priorities_tie_break_on_the_higher_address() {
    let s = Scenario {
        v3: true,
        interval_cs: 100,
        priorities: vec![100, 100, 100],
        preempt: true,
        delay_pm: 10,
        jitter_pm: 0,
        loss_ppm: 0,
        chaos: vec![],
        seed: 1,
    };
    let mut lan = s.lan();
    lan.start_all();
    lan.run_for(Duration::from_secs(5));
    assert_eq!(lan.masters(), vec![2], "10.0.0.3 has the highest address");
    // Restart the loser with the lowest address: it does not preempt an equal master.
    lan.restart(0);
    lan.run_for(Duration::from_secs(10));
    assert_eq!(lan.masters(), vec![2]);
}
