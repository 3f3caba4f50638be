//! Property tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use lvs_sched::ipvs::{lc, nq, sed, wlc};
use lvs_sched::{Dest, DestId, Instant, SchedConfig, SchedulerKind as K, Service};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Over k·Σw picks, wrr and smooth wrr give each destination exactly k·w, rr k each.
    #[test]
    fn round_robin_shares(weights in prop::collection::vec(1u32..8, 1..6), k in 1usize..4) {
        let total: u32 = weights.iter().sum();
        for kind in [K::Wrr, K::NginxRoundRobin, K::NginxLeastConn] {
            let mut s = service(kind, &weights);
            let p = picks(&mut s, k * total as usize);
            for (i, w) in weights.iter().enumerate() {
                prop_assert_eq!(p.iter().filter(|&&x| x == i).count(), k * *w as usize, "{} {:?}", kind, weights);
            }
        }
        let mut s = service(K::Rr, &weights);
        let p = picks(&mut s, k * weights.len());
        for i in 0..weights.len() {
            prop_assert_eq!(p.iter().filter(|&&x| x == i).count(), k);
        }
    }

    /// The O(log n) least-connection schedulers choose exactly what the kernel's linear scan
    /// chooses, across random opens, closes, weight, threshold and health changes.
    #[test]
    fn least_tree_equals_linear_scan(
        n in 1usize..40,
        ops in prop::collection::vec((0u8..7, any::<u16>(), 0u32..6), 1..200),
    ) {
        for kind in [K::Lc, K::Wlc, K::Sed, K::Nq] {
            let mut s = Service::new(kind, SchedConfig::default());
            for i in 0..n {
                s.add_dest(Dest::new(v4(10, 0, (i / 250) as u8, (i % 250) as u8, 80), (i % 4) as u32));
            }
            for &(op, x, v) in &ops {
                let id = DestId(usize::from(x) % n);
                match op {
                    0 => { s.conn_opened(id); }
                    1 => { s.conn_closed(id, v % 2 == 0); }
                    2 => { s.conn_deactivated(id); }
                    3 => { s.set_weight(id, v); }
                    4 => { s.set_available(id, v != 0); }
                    5 => { s.set_thresholds(id, v, 0); }
                    _ => {
                        let r = match kind {
                            K::Lc => lc::linear_pick(s.dests()),
                            K::Wlc => wlc::linear_pick(s.dests()),
                            K::Sed => sed::linear_pick(s.dests()),
                            _ => nq::linear_pick(s.dests()),
                        };
                        prop_assert_eq!(s.schedule(&flow(0), Instant::ZERO), r);
                    }
                }
            }
        }
    }

    /// Hashing schedulers map a key to the same destination while the set is unchanged.
    #[test]
    fn hashing_stable(weights in prop::collection::vec(1u32..5, 2..8), keys in prop::collection::vec(any::<u32>(), 1..40)) {
        for kind in [K::Dh, K::Sh, K::Mh, K::NginxIpHash, K::NginxHash, K::NginxChash] {
            let mut s = service(kind, &weights);
            for &k in &keys {
                let kb = k.to_le_bytes();
                let f = flow(k).with_key(&kb);
                let a = s.schedule(&f, Instant::ZERO);
                prop_assert!(a.is_some());
                prop_assert_eq!(s.schedule(&f, Instant::ZERO), a);
            }
        }
    }
}

#[cfg(feature = "fuzzing")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random operation streams never break the invariants (the fuzz target's oracle).
    #[test]
    fn random_ops_keep_invariants(data in prop::collection::vec(any::<u8>(), 0..400)) {
        lvs_sched::fuzzing::run_ops(&data);
    }
}

/// Fraction of 20,000 keys that move when the last of `n` destinations is removed.
fn moved_fraction(kind: K, n: usize) -> (f64, bool) {
    let mut s = Service::new(kind, SchedConfig::default());
    for i in 0..n {
        s.add_dest(Dest::new(
            v4(10, 1, (i / 200) as u8, (i % 200) as u8 + 1, 80),
            1,
        ));
    }
    let keys: Vec<[u8; 4]> = (0..20_000u32)
        .map(|k| k.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let before: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| s.schedule(&flow(i as u32).with_key(k), Instant::ZERO))
        .collect();
    let gone = DestId(n - 1);
    s.set_available(gone, false);
    let mut moved = 0;
    let mut all_gone_moved = true;
    for (i, k) in keys.iter().enumerate() {
        let after = s.schedule(&flow(i as u32).with_key(k), Instant::ZERO);
        if after != before[i] {
            moved += 1;
        }
        if before[i] == Some(gone) && after == Some(gone) {
            all_gone_moved = false;
        }
    }
    (f64::from(moved) / keys.len() as f64, all_gone_moved)
}

#[test]
fn consistent_hashing_moves_about_one_nth() {
    for kind in [K::Mh, K::NginxChash] {
        for n in [10usize, 40] {
            let (f, ok) = moved_fraction(kind, n);
            assert!(ok, "{kind}: keys stayed on the removed destination");
            let ideal = 1.0 / n as f64;
            assert!(
                f >= ideal * 0.5 && f <= ideal * 2.5,
                "{kind} n={n}: moved {f}, ideal {ideal}"
            );
        }
    }
}
