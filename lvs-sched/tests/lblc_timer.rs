//! `lblc` / `lblcr` table collection by the kernel's periodic timer
//! (`ip_vs_lblc_check_expire`, `ip_vs_lblc_full_check` and their `lblcr` twins), with
//! hand-worked timelines and a property test that a long gap (firings skipped in bulk)
//! ends in the same state as running every firing one by one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

use lvs_sched::ipvs::lblc::Lblc;
use lvs_sched::ipvs::lblc_table::{TimerState, bucket};
use lvs_sched::ipvs::lblcr::Lblcr;
use lvs_sched::{
    Dest, DestId, DestSet, Flow, Instant, SchedConfig, Scheduler, SchedulerKind as K, Service,
};
use proptest::prelude::*;

const D0: DestId = DestId(0);
const D1: DestId = DestId(1);

fn s(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

fn flow_to(dst: IpAddr) -> Flow<'static> {
    Flow::tcp(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1000),
        SocketAddr::new(dst, 80),
    )
}

fn dests(n: u8) -> DestSet {
    let mut set = DestSet::new();
    for i in 0..n {
        set.push(Dest::new(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, i + 1)), 80),
            1,
        ));
    }
    set
}

/// `count` addresses (10.x.y.z from `start` upwards) that fall in `bucket_no` of a table
/// of `2^bits` buckets.
fn in_bucket(bits: u32, bucket_no: u32, start: u32, count: usize) -> Vec<IpAddr> {
    (start..)
        .map(v4)
        .filter(|a| bucket(*a, bits) == bucket_no)
        .take(count)
        .collect()
}

fn timer(next_secs: u64, counter: u32, rover: u32) -> TimerState {
    TimerState {
        next_check: s(next_secs),
        counter,
        rover,
    }
}

#[test]
fn bucket_is_hash_32_of_the_folded_address() {
    // hash_32(x, 10) = (x * 0x61C88647 mod 2^32) >> 22, worked by hand.
    assert_eq!(bucket(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 10), 159);
    assert_eq!(bucket(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 10), 550);
    assert_eq!(bucket(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1)), 10), 547);
    assert_eq!(bucket(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 10), 0);
    // IPv6: the XOR of the four words of 2001:db8::1 is 0x20010db9.
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    assert_eq!(bucket(v6, 10), 252);
}

/// The kernel never checks expiry on lookup: an entry idle for longer than the expiration
/// is still used (and refreshed) until a full check drops it.
#[test]
fn lookup_uses_an_expired_entry_until_the_full_check() {
    let config = SchedConfig {
        expiration: Some(Duration::from_secs(100)),
        ..SchedConfig::default()
    };
    let mut svc = Service::new(K::Lblc, config);
    svc.add_dest(Dest::new(SocketAddr::new(v4(0x0a09_0001), 80), 1));
    svc.add_dest(Dest::new(SocketAddr::new(v4(0x0a09_0002), 80), 1));
    let a = flow_to(v4(0x0a00_0001));
    assert_eq!(svc.schedule(&a, s(1)), Some(D1));
    svc.conn_opened(D1); // wlc would now pick D0; lblc keeps D1 (1 > 1 is false)
    // 999 s idle, expiration 100 s, but the first full check is only at 1800 s.
    assert_eq!(svc.schedule(&a, s(1000)), Some(D1));
    // The full check at 1800 s: lastuse 1000 s + 100 s <= 1800 s, dropped.
    assert_eq!(svc.schedule(&a, s(1801)), Some(D0));
}

/// Firings at 60 s, 120 s, ...; counter 1 at creation, +1 per quiet firing; the 30th
/// firing (1800 s) is the full check, then every 30 firings while the table is not
/// over-full.
#[test]
fn full_check_every_thirtieth_firing() {
    let mut set = dests(2);
    let mut l = Lblc::new(Duration::from_secs(24 * 3600));
    l.rebuild(&set);
    assert_eq!(l.timer(), timer(60, 1, 0));
    let a = v4(0x0a00_0001);
    l.schedule(&mut set, &flow_to(a), s(1));
    l.tick(s(59));
    assert_eq!(l.timer(), timer(60, 1, 0));
    l.tick(s(60));
    assert_eq!(l.timer(), timer(120, 2, 0));
    l.tick(s(1799)); // firing 29 at 1740 s made counter 30
    assert_eq!(l.timer(), timer(1800, 30, 0));
    l.tick(s(1800));
    assert_eq!(l.timer(), timer(1860, 1, 0));
    assert_eq!(l.len(), 1);
    // lastuse 1 s + 24 h = 86401 s: the full check at 86400 s (48 × 1800) keeps it, the one
    // at 88200 s drops it.
    l.tick(s(88_199));
    assert_eq!(l.len(), 1);
    assert_eq!(l.timer(), timer(88_200, 30, 0));
    l.tick(s(88_200));
    assert!(l.is_empty());
    assert_eq!(l.timer(), timer(88_260, 1, 0));
}

/// A tiny table (4 buckets, `max_size` 64) worked by hand: the over-full walk starts after
/// the rover, drops whole buckets of entries idle for 6 min, stops after the bucket that
/// reaches the goal, and leaves the rover there.
#[test]
fn over_full_walk_follows_the_rover() {
    let bits = 2;
    let mut set = dests(1);
    let mut l = Lblc::with_table_bits(Duration::from_secs(24 * 3600), Instant::ZERO, bits);
    l.rebuild(&set);
    let old: Vec<Vec<IpAddr>> = (0..4)
        .map(|b| in_bucket(bits, b, 0x0a00_0000, 10))
        .collect();
    for a in old.iter().flatten() {
        l.schedule(&mut set, &flow_to(*a), s(10));
    }
    let fresh = in_bucket(bits, 3, 0x0b00_0000, 30);
    for a in &fresh {
        l.schedule(&mut set, &flow_to(*a), s(400));
    }
    // Firings at 60..360 s saw 40 entries: counter 1 -> 7.
    assert_eq!(l.timer(), timer(420, 7, 0));
    assert_eq!(l.len(), 70);
    // 420 s: 70 > 64, goal = 6 * 4 / 3 = 8; bucket 1 holds 10 entries idle 410 s: all go,
    // goal -2, stop; rover 1; counter unchanged.
    l.tick(s(420));
    assert_eq!(l.len(), 60);
    assert_eq!(l.timer(), timer(480, 7, 1));
    assert!(old[1].iter().all(|a| l.cached(*a).is_none()));
    assert!(old[0].iter().chain(&old[2]).all(|a| l.cached(*a).is_some()));
    // 480 s: 60 <= 64, counter 8.
    l.tick(s(480));
    assert_eq!(l.timer(), timer(540, 8, 1));
    // Over-full again: the next walk starts at bucket 2; bucket 3's fresh entries are
    // younger than 6 min and stay.
    for a in in_bucket(bits, 0, 0x0c00_0000, 10) {
        l.schedule(&mut set, &flow_to(a), s(500));
    }
    l.tick(s(540));
    assert_eq!(l.len(), 60);
    assert!(old[2].iter().all(|a| l.cached(*a).is_none()));
    assert!(old[3].iter().all(|a| l.cached(*a).is_some()));
    assert_eq!(l.timer(), timer(600, 8, 2));
}

/// While the table stays over-full and nothing is old enough, every firing walks in vain
/// and the counter does not move, so the full check comes later than 1800 s.
#[test]
fn over_full_postpones_the_full_check() {
    let bits = 2;
    let mut set = dests(1);
    let mut l = Lblc::with_table_bits(Duration::from_secs(100), Instant::ZERO, bits);
    l.rebuild(&set);
    let addrs: Vec<IpAddr> = (0x0a00_0000..0x0a00_0000 + 70).map(v4).collect();
    for a in &addrs {
        l.schedule(&mut set, &flow_to(*a), s(30));
    }
    let in_b1 = addrs.iter().filter(|a| bucket(**a, bits) == 1).count();
    assert!(in_b1 >= 8, "bucket 1 must reach the goal alone ({in_b1})");
    l.tick(s(360)); // walks at 60..360 s: nothing idle 6 min yet
    assert_eq!((l.len(), l.timer()), (70, timer(420, 1, 0)));
    l.tick(s(420)); // idle 390 s: bucket 1 goes, goal reached
    assert_eq!((l.len(), l.timer()), (70 - in_b1, timer(480, 1, 1)));
    // From 480 s the counter climbs 1 -> 30 (firings at 480 .. 2160 s), so the full check
    // is the firing at 2220 s: 1800 s plus the 7 over-full firings at 60 .. 420 s.
    l.tick(s(2219));
    assert_eq!((l.len(), l.timer()), (70 - in_b1, timer(2220, 30, 1)));
    l.tick(s(2220));
    assert!(l.is_empty());
    assert_eq!(l.timer(), timer(2280, 1, 1));
}

/// The default table: 16 × 1024 entries are allowed; one more makes the walk run.
#[test]
fn kernel_size_table_over_full_by_one() {
    let mut set = dests(1);
    let mut l = Lblc::default();
    l.rebuild(&set);
    for n in 0..16_385u32 {
        l.schedule(&mut set, &flow_to(v4(0x0a00_0000 + n)), s(1));
    }
    let first = (1..1024)
        .find(|b| l.addrs().any(|a| bucket(a, 10) == *b))
        .unwrap();
    let in_first = l.addrs().filter(|a| bucket(*a, 10) == first).count();
    l.tick(s(360));
    assert_eq!(l.len(), 16_385);
    assert_eq!(l.timer().counter, 1);
    // goal = 1 * 4 / 3 = 1: the first non-empty bucket after rover 0 is enough.
    l.tick(s(420));
    assert_eq!(l.len(), 16_385 - in_first);
    assert_eq!(l.timer(), timer(480, 1, first));
}

/// lblcr: the same timer for whole entries; the replica set still shrinks on lookup.
#[test]
fn lblcr_entries_expire_by_the_timer_only() {
    let config = SchedConfig {
        expiration: Some(Duration::from_secs(100)),
        ..SchedConfig::default()
    };
    let mut set = dests(2);
    let mut l = Lblcr::with_table_bits(Duration::from_secs(100), Instant::ZERO, 10);
    l.rebuild(&set);
    let a = v4(0x0a00_0001);
    assert_eq!(l.schedule(&mut set, &flow_to(a), s(1)), Some(D1));
    assert_eq!(l.schedule(&mut set, &flow_to(a), s(1000)), Some(D1));
    assert_eq!(l.replicas(a), Some(vec![D1]));
    l.tick(s(1799));
    assert_eq!(l.len(), 1);
    l.tick(s(1800)); // lastuse 1000 s + 100 s <= 1800 s
    assert!(l.replicas(a).is_none());
    // Through Service: the same, with the timer run by schedule itself.
    let mut svc = Service::new(K::Lblcr, config);
    svc.add_dest(Dest::new(SocketAddr::new(v4(0x0a09_0001), 80), 1));
    svc.add_dest(Dest::new(SocketAddr::new(v4(0x0a09_0002), 80), 1));
    assert_eq!(svc.schedule(&flow_to(a), s(1)), Some(D1));
    svc.conn_opened(D1);
    assert_eq!(svc.schedule(&flow_to(a), s(1000)), Some(D1));
    assert_eq!(svc.schedule(&flow_to(a), s(1801)), Some(D0));
}

/// `created` sets the timer's phase.
#[test]
fn created_sets_the_phase() {
    let l = Lblc::with_table_bits(Duration::from_secs(60), s(1_000), 10);
    assert_eq!(l.timer(), timer(1_060, 1, 0));
    // Near the end of time: one firing is left before `Instant::MAX`, the one after it
    // saturates; ticking at the end terminates.
    let mut far = Lblc::with_table_bits(Duration::MAX, Instant::MAX - Duration::from_secs(61), 10);
    far.tick(Instant::MAX);
    let last = TimerState {
        next_check: Instant::MAX,
        counter: 2,
        rover: 0,
    };
    assert_eq!(far.timer(), last);
    let mut set = dests(1);
    far.schedule(&mut set, &flow_to(v4(1)), Instant::MAX);
    far.tick(Instant::MAX);
    assert_eq!(far.len(), 1); // lastuse + `Duration::MAX` saturates: never expires
    assert_eq!(far.timer(), last);
    // Created within the last minute: no firing is left.
    let mut end =
        Lblc::with_table_bits(Duration::MAX, Instant::MAX - Duration::from_millis(10), 10);
    end.tick(Instant::MAX);
    assert_eq!(end.timer(), TimerState { counter: 1, ..last });
}

#[derive(Clone, Debug)]
enum Op {
    /// Advance by this many seconds, then schedule for address index.
    Schedule(u32, u8),
    /// Advance by this many seconds, then tick.
    Tick(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let gap = prop_oneof![0u32..120, 0u32..1000, 0u32..12_000];
    prop_oneof![
        4 => (gap.clone(), any::<u8>()).prop_map(|(g, a)| Op::Schedule(g, a)),
        1 => gap.prop_map(Op::Tick),
    ]
}

/// Run every firing due by `now` one at a time (each `tick` at a firing's own time).
fn step_to(l: &mut Lblc, now: Instant) {
    loop {
        let next = l.timer().next_check;
        if next > now {
            break;
        }
        l.tick(next);
    }
}

type Cached = Option<(DestId, Instant)>;

fn state(l: &Lblc) -> (Vec<(IpAddr, Cached)>, TimerState) {
    (l.addrs().map(|a| (a, l.cached(a))).collect(), l.timer())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Skipping quiet firings in bulk gives exactly the state of running each firing.
    #[test]
    fn bulk_tick_equals_firing_by_firing(
        bits in 1u32..4,
        exp in prop_oneof![60u64..600, 600u64..20_000],
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let exp = Duration::from_secs(exp);
        let mut set_a = dests(3);
        let mut set_b = dests(3);
        let mut a = Lblc::with_table_bits(exp, s(7), bits);
        let mut b = a.clone();
        let mut now = s(7);
        for op in ops {
            match op {
                Op::Schedule(g, x) => {
                    now = now.saturating_add(Duration::from_secs(u64::from(g)));
                    let f = flow_to(v4(0x0a00_0000 + u32::from(x)));
                    let got = a.schedule(&mut set_a, &f, now);
                    step_to(&mut b, now);
                    prop_assert_eq!(got, b.schedule(&mut set_b, &f, now));
                }
                Op::Tick(g) => {
                    now = now.saturating_add(Duration::from_secs(u64::from(g)));
                    a.tick(now);
                    step_to(&mut b, now);
                }
            }
            prop_assert_eq!(state(&a), state(&b));
        }
    }
}
