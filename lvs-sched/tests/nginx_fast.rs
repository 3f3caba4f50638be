//! The fast nginx balancers (smooth-WRR cycle cache, prefix-sum lookups) against the plain
//! walks nginx does: same decisions and same per-peer state on random operation streams.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use lvs_sched::nginx::hash::Hash;
use lvs_sched::nginx::ip_hash::IpHash;
use lvs_sched::nginx::random::Random;
use lvs_sched::nginx::round_robin::RoundRobin;
use lvs_sched::{
    Dest, DestId, DestSet, Flow, Instant, Scheduler, SchedulerKind as K, Service, SplitMix64,
};
use proptest::prelude::*;

/// One operation on both services.
#[derive(Clone, Debug)]
enum Op {
    /// `n` decisions in a row, for flows starting at `flow`.
    Picks(u16, u32),
    Weight(usize, u32),
    Failure(usize),
    Success(usize),
    Available(usize, bool),
    Down(usize, bool),
    Backup(usize, bool),
    MaxFails(usize, u32),
    MaxConns(usize, u32),
    Open(usize),
    Close(usize),
    /// Milliseconds pass.
    Time(u64),
    Add(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u16..80, any::<u32>()).prop_map(|(n, f)| Op::Picks(n, f)),
        1 => (any::<usize>(), 0u32..7).prop_map(|(i, w)| Op::Weight(i, w)),
        2 => any::<usize>().prop_map(Op::Failure),
        1 => any::<usize>().prop_map(Op::Success),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Available(i, b)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, b)| Op::Down(i, b)),
        1 => (any::<usize>(), prop::bool::weighted(0.3)).prop_map(|(i, b)| Op::Backup(i, b)),
        1 => (any::<usize>(), 0u32..4).prop_map(|(i, m)| Op::MaxFails(i, m)),
        1 => (any::<usize>(), 0u32..3).prop_map(|(i, m)| Op::MaxConns(i, m)),
        2 => any::<usize>().prop_map(Op::Open),
        2 => any::<usize>().prop_map(Op::Close),
        2 => (0u64..4000).prop_map(Op::Time),
        1 => (0u32..7).prop_map(Op::Add),
    ]
}

fn dests(weights: &[u32]) -> DestSet {
    let mut set = DestSet::new();
    for (i, &w) in weights.iter().enumerate() {
        let mut d = Dest::new(v4(10, 0, (i / 200) as u8, (i % 200) as u8 + 1, 80), w);
        // A short failure window, so that time passing matters.
        d.nginx.fail_timeout = Duration::from_secs(2);
        set.push(d);
    }
    set
}

fn key_flow(i: u32, key: &[u8]) -> Flow<'_> {
    if i.is_multiple_of(3) {
        Flow::tcp(v6(i as u16, 4000), v6(1, 80)).with_key(key)
    } else {
        flow(i).with_key(key)
    }
}

/// Apply `ops` to `fast` and `slow`, checking every decision and, after every operation, the
/// whole destination set (smooth-WRR state, `checked`, counters).
fn run_both(fast: &mut Service, slow: &mut Service, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut now = Instant::ZERO;
    let mut open: Vec<DestId> = Vec::new();
    for op in ops {
        let n = fast.dests().len();
        let id = |i: usize| DestId(i % n.max(1));
        match *op {
            Op::Picks(k, f) => {
                for j in 0..u32::from(k) {
                    let key = f.wrapping_add(j).to_le_bytes();
                    let fl = key_flow(f.wrapping_add(j), &key);
                    let a = fast.schedule(&fl, now);
                    let b = slow.schedule(&fl, now);
                    prop_assert_eq!(a, b, "decision {} of {:?}", j, op);
                }
            }
            Op::Weight(i, w) => {
                fast.set_weight(id(i), w);
                slow.set_weight(id(i), w);
            }
            Op::Failure(i) => {
                fast.report_failure(id(i), now);
                slow.report_failure(id(i), now);
            }
            Op::Success(i) => {
                fast.report_success(id(i));
                slow.report_success(id(i));
            }
            Op::Available(i, a) => {
                fast.set_available(id(i), a);
                slow.set_available(id(i), a);
            }
            Op::Down(i, v) => {
                fast.configure_nginx(id(i), |p| p.down = v);
                slow.configure_nginx(id(i), |p| p.down = v);
            }
            Op::Backup(i, v) => {
                fast.configure_nginx(id(i), |p| p.backup = v);
                slow.configure_nginx(id(i), |p| p.backup = v);
            }
            Op::MaxFails(i, m) => {
                fast.configure_nginx(id(i), |p| p.max_fails = m);
                slow.configure_nginx(id(i), |p| p.max_fails = m);
            }
            Op::MaxConns(i, m) => {
                fast.configure_nginx(id(i), |p| p.max_conns = m);
                slow.configure_nginx(id(i), |p| p.max_conns = m);
            }
            Op::Open(i) => {
                fast.conn_opened(id(i));
                slow.conn_opened(id(i));
                open.push(id(i));
            }
            Op::Close(i) => {
                if !open.is_empty() {
                    let d = open.swap_remove(i % open.len());
                    fast.conn_closed(d, true);
                    slow.conn_closed(d, true);
                }
            }
            Op::Time(ms) => now += Duration::from_millis(ms),
            Op::Add(w) => {
                if n < 40 {
                    let mut d = Dest::new(v4(10, 1, 0, n as u8, 80), w);
                    d.nginx.fail_timeout = Duration::from_secs(2);
                    fast.add_dest(d.clone());
                    slow.add_dest(d);
                }
            }
        }
        // `DestSet`'s equality compares the up-to-date smooth-WRR state without disturbing
        // the cache.
        prop_assert_eq!(fast.dests(), slow.dests(), "state after {:?}", op);
    }
    Ok(())
}

fn pair(weights: &[u32], kind: K, seed: u64) -> (Service, Service) {
    let set = dests(weights);
    let (fast, slow): (Box<dyn Scheduler>, Box<dyn Scheduler>) = match kind {
        K::NginxRoundRobin => (
            Box::new(RoundRobin::new()),
            Box::new(RoundRobin::reference()),
        ),
        K::NginxIpHash => (Box::new(IpHash::new()), Box::new(IpHash::reference())),
        K::NginxHash => (Box::new(Hash::new()), Box::new(Hash::reference())),
        K::NginxRandom | K::NginxRandomTwo => {
            let two = kind == K::NginxRandomTwo;
            (
                Box::new(Random::new(two, Box::new(SplitMix64::new(seed)))),
                Box::new(Random::reference(two, Box::new(SplitMix64::new(seed)))),
            )
        }
        _ => unreachable!(),
    };
    (
        Service::with_scheduler(fast, set.clone()),
        Service::with_scheduler(slow, set),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Smooth WRR with the cycle cache makes nginx's decisions and leaves nginx's state.
    #[test]
    fn round_robin_cache_equals_walk(
        weights in prop::collection::vec(0u32..7, 1..9),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let (mut fast, mut slow) = pair(&weights, K::NginxRoundRobin, 0);
        run_both(&mut fast, &mut slow, &ops)?;
    }

    /// `ip_hash`, `hash` and `random` (`two`) with the prefix-sum lookup make the same
    /// decisions as the list walk, re-hashes and round-robin fallback included.
    #[test]
    fn weighted_lookup_equals_walk(
        weights in prop::collection::vec(0u32..7, 1..12),
        ops in prop::collection::vec(op(), 1..40),
        seed in any::<u64>(),
    ) {
        for kind in [K::NginxIpHash, K::NginxHash, K::NginxRandom, K::NginxRandomTwo] {
            let (mut fast, mut slow) = pair(&weights, kind, seed);
            run_both(&mut fast, &mut slow, &ops)?;
        }
    }
}

/// The cached period is used from nginx's start state and after a change, with the same
/// decisions, across many periods and many destinations.
#[test]
fn round_robin_long_runs_match() {
    let weights: Vec<u32> = (0..120).map(|i| i % 5 + 1).collect();
    let (mut fast, mut slow) = pair(&weights, K::NginxRoundRobin, 0);
    let total: u32 = weights.iter().sum();
    let ops = [
        Op::Picks(4000, 0),
        Op::Weight(7, 3),
        Op::Picks(4000, 0),
        Op::Open(3),
        Op::Failure(11),
        Op::Picks(4000, 0),
        Op::Time(3000),
        Op::Picks(4000, 0),
        Op::Down(12, true),
        Op::Picks(4000, 0),
    ];
    assert!(4000 > 3 * total);
    run_both(&mut fast, &mut slow, &ops).unwrap();
}

/// Direct `DestSet::get_mut` edits, without telling the scheduler, take effect at once
/// (the set's generation moves), for the cached balancers as for the walks.
#[test]
fn direct_edits_are_noticed() {
    for kind in [
        K::NginxRoundRobin,
        K::NginxIpHash,
        K::NginxHash,
        K::NginxRandom,
    ] {
        let mut fast_set = dests(&[1, 2, 3, 4]);
        let mut slow_set = fast_set.clone();
        let (mut fast, mut slow): (Box<dyn Scheduler>, Box<dyn Scheduler>) = match kind {
            K::NginxRoundRobin => (
                Box::new(RoundRobin::new()),
                Box::new(RoundRobin::reference()),
            ),
            K::NginxIpHash => (Box::new(IpHash::new()), Box::new(IpHash::reference())),
            K::NginxHash => (Box::new(Hash::new()), Box::new(Hash::reference())),
            _ => (
                Box::new(Random::new(false, Box::new(SplitMix64::new(7)))),
                Box::new(Random::reference(false, Box::new(SplitMix64::new(7)))),
            ),
        };
        fast.rebuild(&fast_set);
        slow.rebuild(&slow_set);
        for round in 0..40u32 {
            for j in 0..25u32 {
                let key = j.to_le_bytes();
                let f = key_flow(j * 31 + round, &key);
                let a = fast.schedule(&mut fast_set, &f, Instant::ZERO);
                let b = slow.schedule(&mut slow_set, &f, Instant::ZERO);
                assert_eq!(a, b, "{kind} round {round}");
            }
            let i = DestId((round % 4) as usize);
            for set in [&mut fast_set, &mut slow_set] {
                let d = set.get_mut(i).unwrap();
                match round % 3 {
                    0 => d.nginx.backup = !d.nginx.backup,
                    1 => d.nginx.down = !d.nginx.down,
                    _ => d.nginx.current_weight += 1,
                }
            }
            assert_eq!(fast_set, slow_set, "{kind} round {round}");
        }
    }
}
