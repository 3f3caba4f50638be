//! Hand-worked decision sequences for every algorithm.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use lvs_sched::hash::maglev::DEFAULT_TABLE_SIZE;
use lvs_sched::ipvs::{dh, sh};
use lvs_sched::{
    Dest, DestId, Flow, Instant, SchedConfig, SchedFlags, SchedulerKind as K, Service,
};

#[test]
fn wrr_4_3_2_kernel_order() {
    // Service built with all three at once (init_service): cw starts at mw = 4.
    let mut set = lvs_sched::DestSet::new();
    for (i, w) in [4u32, 3, 2].into_iter().enumerate() {
        set.push(Dest::new(v4(10, 0, 0, i as u8 + 1, 80), w));
    }
    let mut w = K::Wrr.build(SchedConfig::default());
    w.rebuild(&set);
    let seq: Vec<usize> = (0..18)
        .map(|i| {
            w.schedule(&mut set, &flow(i), Instant::ZERO)
                .map_or(usize::MAX, |d| d.0)
        })
        .collect();
    // The kernel's list is c, b, a (each add goes to the head): cw 4 → a; cw 3 → b, a;
    // cw 2 → c, b, a; cw 1 → c, b, a.
    assert_eq!(letters(&seq), "abacbacbaabacbacba");
    // Added one by one (ipvsadm -a each time: ip_vs_wrr_dest_changed after every add): the
    // first add leaves di = 4, mw = cw = 1, and later adds keep cw = 1, so the kernel starts
    // with a full weight-1 pass over c, b, a.
    let mut s = service(K::Wrr, &[4, 3, 2]);
    assert_eq!(letters(&picks(&mut s, 18)), "cbaabacbacbaabacba");
}

#[test]
fn wrr_gcd_stepping() {
    // Added one by one: after the second add di = 2, mw = 3 and cw = (1 / 2) * 2 + 1 = 1:
    // The list is b, a: cw 1 → b, a; then cw 3 → a; cw 1 → b, a.
    let mut s = service(K::Wrr, &[4, 2]);
    assert_eq!(letters(&picks(&mut s, 6)), "baabaa");
}

#[test]
fn rr_skips_quiesced_and_overloaded() {
    let mut s = service(K::Rr, &[1, 0, 5, 1]);
    s.set_thresholds(DestId(3), 1, 0);
    s.conn_opened(DestId(3));
    // The list is d, c, b, a: d overloaded, b quiesced.
    assert_eq!(letters(&picks(&mut s, 4)), "caca");
}

#[test]
fn swrr_5_1_1_nginx_order() {
    let mut s = service(K::NginxRoundRobin, &[5, 1, 1]);
    assert_eq!(letters(&picks(&mut s, 7)), "aabacaa");
}

#[test]
fn swrr_failure_lowers_effective_weight_and_backup() {
    let mut s = service(K::NginxRoundRobin, &[1, 1, 1]);
    s.configure_nginx(D2, |p| p.backup = true);
    s.report_failure(D0, Instant::from_secs(100));
    s.report_failure(D1, Instant::from_secs(100));
    // Both primaries failed max_fails=1 times within fail_timeout: backup serves.
    assert_eq!(s.schedule(&flow(1), Instant::from_secs(105)), Some(D2));
    // After fail_timeout they are tried again.
    assert_ne!(s.schedule(&flow(1), Instant::from_secs(111)), Some(D2));
}

#[test]
fn lc_least_overhead_first_wins() {
    let mut s = service(K::Lc, &[1, 1, 1]);
    s.conn_opened(D0); // 256
    for _ in 0..10 {
        s.conn_opened(D1);
        s.conn_deactivated(D1); // 10 inactive = 10
    }
    s.conn_opened(D2);
    s.conn_deactivated(D2);
    s.conn_opened(D2); // 256 + 1
    assert_eq!(s.schedule(&flow(0), Instant::ZERO), Some(D1));
    s.conn_opened(D1); // 266
    assert_eq!(s.schedule(&flow(0), Instant::ZERO), Some(D0));
}

#[test]
fn wlc_cross_multiplication() {
    let mut s = service(K::Wlc, &[1, 3]);
    s.conn_opened(D0); // 256/1
    s.conn_opened(D1);
    s.conn_opened(D1); // 512/3
    assert_eq!(s.schedule(&flow(0), Instant::ZERO), Some(D1));
    s.conn_opened(D1); // 768/3 == 256/1 → tie, the first in the list (b, added last) wins
    assert_eq!(s.schedule(&flow(0), Instant::ZERO), Some(D1));
}

#[test]
fn sed_and_nq() {
    let mut sed = service(K::Sed, &[1, 3]);
    let mut nq = service(K::Nq, &[1, 3]);
    for s in [&mut sed, &mut nq] {
        s.conn_opened(D1); // a: (0+1)/1, b: (1+1)/3
    }
    assert_eq!(sed.schedule(&flow(0), Instant::ZERO), Some(D1));
    assert_eq!(nq.schedule(&flow(0), Instant::ZERO), Some(D0)); // idle server first
}

#[test]
fn fo_and_ovf() {
    let mut fo = service(K::Fo, &[2, 5, 5]);
    // Ties of the highest weight go to the first in the list: c, added last.
    assert_eq!(fo.schedule(&flow(0), Instant::ZERO), Some(D2));
    let mut ovf = service(K::Ovf, &[3, 2]);
    for _ in 0..3 {
        assert_eq!(ovf.schedule(&flow(0), Instant::ZERO), Some(D0));
        ovf.conn_opened(D0);
    }
    assert_eq!(ovf.schedule(&flow(0), Instant::ZERO), Some(D0)); // active 3 <= weight 3
    ovf.conn_opened(D0);
    assert_eq!(ovf.schedule(&flow(0), Instant::ZERO), Some(D1)); // 4 > 3: overflow
}

#[test]
fn dh_buckets_by_destination_address() {
    // Current kernels: hash_32(0x0a000001, 8) = (0x0a000001 * 0x61C88647 mod 2^32) >> 24 =
    // 0x27 (odd) → the second in the kernel's list, dest 0 (added first); 10.0.0.5 → 0xae
    // (even) → the list head, dest 1 (added last). (The multiplicative hash of
    // older kernels, `(x * 2654435761) & 255`, gave 0xb1 for 10.0.0.1.)
    assert_eq!(dh::hashkey(v4(10, 0, 0, 1, 0).ip()), 0x27);
    assert_eq!(dh::hashkey(v4(10, 0, 0, 5, 0).ip()), 0xae);
    let mut s = service(K::Dh, &[1, 1]);
    let f = |d| Flow::tcp(v4(1, 2, 3, 4, 5), v4(10, 0, 0, d, 80));
    assert_eq!(s.schedule(&f(1), Instant::ZERO), Some(D0));
    assert_eq!(s.schedule(&f(5), Instant::ZERO), Some(D1));
}

#[test]
fn sh_weighted_buckets_and_fallback() {
    // hash_32(0x0a000001, 8) = 0x27 = 39; weights 3,1 → the list is b, a (last added first), buckets baaa baaa ...:
    // 39 % 4 = 3 → a.
    assert_eq!(sh::hashkey(v4(10, 0, 0, 1, 0).ip(), 0, 0), 39);
    let client = Flow::tcp(v4(10, 0, 0, 1, 1234), v4(192, 0, 2, 1, 80));
    let mut s = service(K::Sh, &[3, 1]);
    assert_eq!(s.schedule(&client, Instant::ZERO), Some(D0));
    s.set_weight(D1, 0); // table rebuilt: weight-0 dest keeps one bucket per round
    let got = s.schedule(&client, Instant::ZERO);
    assert!(got.is_none() || got == Some(D0));
    let mut fb = Service::new(
        K::Sh,
        SchedConfig {
            flags: SchedFlags {
                fallback: true,
                port: false,
            },
            seed: 0,
            ..SchedConfig::default()
        },
    );
    fb.add_dest(Dest::new(v4(10, 0, 0, 1, 80), 1));
    fb.add_dest(Dest::new(v4(10, 0, 0, 2, 80), 1));
    assert_eq!(fb.schedule(&client, Instant::ZERO), Some(D0));
    fb.set_thresholds(D0, 1, 0);
    fb.conn_opened(D0);
    assert_eq!(fb.schedule(&client, Instant::ZERO), Some(D1));
}

#[test]
fn mh_table_fills_by_weight_and_quiesce_keeps_table() {
    let mut s = service(K::Mh, &[1, 2, 1]);
    let before: Vec<_> = (0..500)
        .map(|i| s.schedule(&flow(i), Instant::ZERO))
        .collect();
    assert!(before.iter().all(Option::is_some));
    s.set_weight(D1, 0); // last_weight keeps D1's slots
    for (i, b) in before.iter().enumerate() {
        let now = s.schedule(&flow(i as u32), Instant::ZERO);
        if *b == Some(D1) {
            assert_eq!(
                now, None,
                "no mh-fallback: quiesced slot gives no destination"
            );
        } else {
            assert_eq!(now, *b);
        }
    }
    let mut t = lvs_sched::ipvs::mh::Mh::new(SchedFlags::default());
    let mut set = lvs_sched::DestSet::new();
    for (i, w) in [1u32, 2, 1].into_iter().enumerate() {
        set.push(Dest::new(v4(10, 0, 0, i as u8 + 1, 80), w));
    }
    lvs_sched::Scheduler::rebuild(&mut t, &set);
    let counts = (0..3)
        .map(|d| t.table().slots().iter().filter(|s| **s == Some(d)).count())
        .collect::<Vec<_>>();
    assert_eq!(counts.iter().sum::<usize>(), DEFAULT_TABLE_SIZE);
    // Round-by-round filling: 1:2:1 exactly up to the last partial round.
    assert!(
        counts[1].abs_diff(2 * counts[0]) <= 2 && counts[0].abs_diff(counts[2]) <= 1,
        "{counts:?}"
    );
}

#[test]
fn lblc_caches_per_destination_address() {
    let mut s = service(K::Lblc, &[1, 1]);
    let f = Flow::tcp(v4(1, 1, 1, 1, 1), v4(192, 0, 2, 7, 80));
    assert_eq!(s.schedule(&f, Instant::ZERO), Some(D1));
    s.conn_opened(D1);
    assert_eq!(s.schedule(&f, Instant::from_millis(1)), Some(D1)); // cached, though wlc would pick D0
    s.set_weight(D1, 0);
    assert_eq!(s.schedule(&f, Instant::from_millis(2)), Some(D0));
    s.set_weight(D1, 1);
    // Expired after 24 h of no use: wlc again (D1 has 1 active, D0 none).
    assert_eq!(s.schedule(&f, Instant::from_secs(2 * 86_400)), Some(D0));
}

#[test]
fn lblcr_replicates_when_overloaded() {
    let mut s = service(K::Lblcr, &[4, 1]);
    let f = Flow::tcp(v4(1, 1, 1, 1, 1), v4(192, 0, 2, 7, 80));
    // wlc tie: the first in the list, D1 (added last).
    assert_eq!(s.schedule(&f, Instant::ZERO), Some(D1));
    s.conn_opened(D1);
    s.conn_opened(D1); // 2 > 1 while D0 has 2*0 < 4: lblc-overloaded
    assert_eq!(s.schedule(&f, Instant::from_millis(1)), Some(D0));
    let lblcr = s.dests().len();
    assert_eq!(lblcr, 2);
    // D0 is now in the set and less loaded: stays.
    assert_eq!(s.schedule(&f, Instant::from_millis(2)), Some(D0));
}

#[test]
fn twos_single_destination() {
    let mut s = service(K::Twos, &[0, 7]);
    assert!(picks(&mut s, 20).iter().all(|&p| p == 1));
}

#[test]
fn ip_hash_first_three_octets() {
    // 89 → 3978 → 4441 → 154 over 192, 168, 1; 154 % 3 = 1 → b.
    let mut s = service(K::NginxIpHash, &[1, 1, 1]);
    for last in [1u8, 77, 254] {
        let f = Flow::tcp(v4(192, 168, 1, last, 999), v4(10, 9, 9, 9, 80));
        assert_eq!(s.schedule(&f, Instant::ZERO), Some(D1));
    }
    s.configure_nginx(D1, |p| p.down = true);
    let f = Flow::tcp(v4(192, 168, 1, 1, 999), v4(10, 9, 9, 9, 80));
    assert_ne!(s.schedule(&f, Instant::ZERO), Some(D1));
}

#[test]
fn nginx_hash_and_chash_are_stable() {
    for kind in [K::NginxHash, K::NginxChash] {
        let mut s = service(kind, &[1, 2, 3]);
        for key in [&b"/index.html"[..], b"/a", b"user-42"] {
            let f = flow(0).with_key(key);
            let a = s.schedule(&f, Instant::ZERO);
            assert!(a.is_some());
            assert_eq!(s.schedule(&f, Instant::ZERO), a);
        }
    }
}

#[test]
fn nginx_hash_memcached_formula() {
    // Key "a": crc32("a") = 0xe8b7be43 → (>> 16) & 0x7fff = 0x68b7 = 26807; 26807 % 2 = 1.
    assert_eq!(lvs_sched::hash::crc32(b"a"), 0xe8b7_be43);
    let mut s = service(K::NginxHash, &[1, 1]);
    assert_eq!(s.schedule(&flow(0).with_key(b"a"), Instant::ZERO), Some(D1));
}

#[test]
fn least_conn_ties_by_smooth_wrr() {
    let mut s = service(K::NginxLeastConn, &[5, 1, 1]);
    assert_eq!(letters(&picks(&mut s, 7)), "aabacaa");
    s.conn_opened(D0);
    assert_eq!(s.schedule(&flow(0), Instant::ZERO), Some(D1)); // 0/1 < 1/5
}

#[test]
fn random_two_prefers_less_loaded() {
    let mut s = service(K::NginxRandomTwo, &[1, 1]);
    for _ in 0..3 {
        s.conn_opened(D0);
    }
    assert!(picks(&mut s, 30).iter().all(|&p| p == 1));
}

#[test]
fn overload_thresholds_kernel_semantics() {
    let mut s = service(K::Rr, &[1]);
    s.set_thresholds(D0, 4, 0);
    for _ in 0..4 {
        s.conn_opened(D0);
    }
    assert!(s.dests().get(D0).unwrap().is_overloaded());
    assert_eq!(s.schedule(&flow(0), Instant::ZERO), None);
    s.conn_closed(D0, true); // 3*4 = 12, not < 4*3
    assert!(s.dests().get(D0).unwrap().is_overloaded());
    s.conn_closed(D0, true); // 8 < 12
    assert!(!s.dests().get(D0).unwrap().is_overloaded());
    s.set_thresholds(D0, 3, 2);
    s.conn_opened(D0); // 3 >= 3
    assert!(s.dests().get(D0).unwrap().is_overloaded());
    s.conn_closed(D0, true); // 2, not < 2
    assert!(s.dests().get(D0).unwrap().is_overloaded());
    s.conn_closed(D0, true); // 1 < 2
    assert!(!s.dests().get(D0).unwrap().is_overloaded());
}

#[test]
fn persistence_templates_with_netmask_and_expiry() {
    let mut s = service(K::Rr, &[1, 1]).with_persistence(Duration::from_secs(300), 24, 128);
    let c1 = Flow::tcp(v4(203, 0, 113, 5, 1), v4(192, 0, 2, 1, 80));
    let c2 = Flow::tcp(v4(203, 0, 113, 9, 1), v4(192, 0, 2, 1, 80));
    let first = s.schedule(&c1, Instant::ZERO);
    assert_eq!(s.schedule(&c2, Instant::from_secs(100)), first); // same /24
    assert_eq!(s.schedule(&c2, Instant::from_secs(399)), first); // refreshed at 100
    assert_ne!(s.schedule(&c2, Instant::from_secs(800)), first); // expired: rr moves on
}

#[test]
fn unknown_name_lists_valid_ones() {
    let e = lvs_sched::registry::by_name("wlcx").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("wlcx") && msg.contains("mh") && msg.contains("ip_hash"),
        "{msg}"
    );
    for k in K::ALL {
        assert_eq!(k.to_string().parse::<K>(), Ok(*k));
    }
}

#[test]
fn huge_weights_and_counters_do_not_overflow() {
    for &kind in K::ALL {
        let mut s = Service::new(kind, SchedConfig::default());
        s.add_dest(Dest::new(v6(1, 80), u32::MAX));
        s.add_dest(Dest::new(v6(2, 80), i32::MAX as u32 - 1));
        for d in [D0, D1] {
            for _ in 0..3 {
                s.conn_opened(d);
            }
        }
        let f = Flow::tcp(v6(9, 1000), v6(10, 80)).with_key(b"k");
        assert!(s.schedule(&f, Instant::ZERO).is_some(), "{kind}");
    }
}

#[test]
fn kernel_list_order_add_delete_readd() {
    // a, b, c added: the kernel lists c, b, a.
    let mut s = service(K::Rr, &[1, 1, 1]);
    let order: Vec<usize> = s.dests().ipvs_iter().map(|(i, _)| i.0).collect();
    assert_eq!(order, [2, 1, 0]);
    assert_eq!(letters(&picks(&mut s, 2)), "cb");
    // Deleting the last choice (b) steps the position back to c: the walk goes on with a.
    s.set_available(D1, false);
    assert_eq!(letters(&picks(&mut s, 3)), "aca");
    // b added again: back at the head of the list (b, c, a), the position stays on a.
    s.set_available(D1, true);
    assert_eq!(s.dests().ipvs_position(D1), Some(0));
    assert_eq!(letters(&picks(&mut s, 4)), "bcab");
    // An edit keeps the place.
    s.set_weight(D0, 3);
    assert_eq!(s.dests().ipvs_position(D0), Some(2));
    // Quiesced, deleted and added back with weight 0: an add sets last_weight (mh) to 0.
    s.set_weight(D0, 0);
    assert_eq!(s.dests().get(D0).unwrap().last_weight(), 3);
    s.set_available(D0, false);
    s.set_available(D0, true);
    assert_eq!(s.dests().get(D0).unwrap().last_weight(), 0);
}
