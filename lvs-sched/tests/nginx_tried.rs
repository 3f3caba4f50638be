//! nginx's per-request `tried` state (`proxy_next_upstream` retries): hand-worked
//! sequences for each balancer and a property test over all of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use lvs_sched::nginx::Tried;
use lvs_sched::{Dest, DestId, Flow, Instant, SchedConfig, SchedulerKind as K, Service};
use proptest::prelude::*;

const T0: Instant = Instant::ZERO;

/// Tries of one request until nginx has nothing left (`None`, `NGX_BUSY`).
fn tries(s: &mut Service, f: &Flow<'_>, now: Instant) -> (String, Tried) {
    let mut t = Tried::new();
    let mut got = Vec::new();
    for _ in 0..64 {
        match s.schedule_next(f, now, &mut t) {
            Some(id) => got.push(id.0),
            None => break,
        }
    }
    (letters(&got), t)
}

fn with_backup(kind: K, weights: &[u32], backups: &[u32]) -> Service {
    let mut s = service(kind, weights);
    for (i, &w) in backups.iter().enumerate() {
        let id = s.add_dest(Dest::new(v4(10, 0, 1, i as u8 + 1, 80), w));
        s.configure_nginx(id, |p| p.backup = true);
    }
    s
}

/// Smooth WRR over 1, 1, 1: a picks (cw 1, 1, 1 -> a at -2); the retry walks b and c only
/// (cw 2, 2 -> b, b at 0); then c alone; then nothing, so nginx answers 502.
#[test]
fn round_robin_skips_tried_then_busy() {
    let mut s = service(K::NginxRoundRobin, &[1, 1, 1]);
    let (seq, t) = tries(&mut s, &flow(0), T0);
    assert_eq!(seq, "abc");
    assert_eq!(t.len(), 3);
    assert!(!t.on_backup());
    s.sync_nginx_state();
    let cw: Vec<i64> = s
        .dests()
        .iter()
        .map(|(_, d)| d.nginx.current_weight)
        .collect();
    assert_eq!(cw, [-2, 0, 2]);
    // A new request starts from that state: c leads (2 + 1 = 3).
    assert_eq!(s.schedule(&flow(1), T0), Some(D2));
}

/// Backup peers only after every primary was tried; the request then stays on the backup
/// list (its bitmap cleared), and `None` when the backups are used up too.
#[test]
fn round_robin_moves_to_backup_for_good() {
    let mut s = with_backup(K::NginxRoundRobin, &[1, 1], &[1, 1]);
    let (seq, t) = tries(&mut s, &flow(0), T0);
    assert_eq!(seq, "abcd");
    assert!(t.on_backup());
    assert_eq!(t.len(), 2); // the backup list's bitmap: c and d
    // Primaries down: the request moves to the backups; primaries back: it stays there.
    let mut t = Tried::new();
    let first = s.schedule_next(&flow(1), T0, &mut t).unwrap();
    assert!(first.0 < 2);
    s.set_available(D0, false);
    s.set_available(D1, false);
    // Backups c (cw -1 after the first request) and d (cw 1): d leads.
    assert_eq!(s.schedule_next(&flow(1), T0, &mut t), Some(DestId(3)));
    assert!(t.on_backup());
    s.set_available(D0, true);
    s.set_available(D1, true);
    assert_eq!(s.schedule_next(&flow(1), T0, &mut t), Some(D2));
    assert_eq!(s.schedule_next(&flow(1), T0, &mut t), None);
}

/// One primary and a backup: nginx's single-peer shortcut applies only without backup
/// peers (`peers->single = 0` when backups exist), so a failed primary sends the request to
/// the backup; alone, a failed primary is still used (failures are not checked), and never
/// retried.
#[test]
fn single_peer_shortcut_only_without_backups() {
    let mut s = with_backup(K::NginxRoundRobin, &[1], &[1]);
    s.report_failure(D0, T0);
    assert_eq!(s.schedule(&flow(0), Instant::from_millis(1)), Some(D1));
    let mut alone = service(K::NginxRoundRobin, &[1]);
    alone.report_failure(D0, T0);
    assert_eq!(alone.schedule(&flow(0), Instant::from_millis(1)), Some(D0));
    let (seq, _) = tries(&mut alone, &flow(0), Instant::from_millis(1));
    assert_eq!(seq, "a");
    // least_conn delegates a single peer to round robin in the same way.
    let mut lc = with_backup(K::NginxLeastConn, &[1], &[1]);
    lc.report_failure(D0, T0);
    assert_eq!(lc.schedule(&flow(0), Instant::from_millis(1)), Some(D1));
    let mut lc_alone = service(K::NginxLeastConn, &[1]);
    lc_alone.report_failure(D0, T0);
    assert_eq!(
        lc_alone.schedule(&flow(0), Instant::from_millis(1)),
        Some(D0)
    );
}

/// ip_hash for client 10.1.2.3 over three peers of weight 1, worked by hand: the hash over
/// 10, 1, 2 from 89 is 2680 (2680 % 3 = 1: b). The retry goes on from 2680: 4363 (b,
/// tried: one failed draw), 5432 (c). The next retry goes on from 5432 and reaches a on the
/// 7th further draw (hash 5667, 8 failed draws in all). The last one draws only tried peers
/// until the 21st failed draw, then round robin finds nothing untried.
#[test]
fn ip_hash_continues_its_hash_across_tries() {
    let mut s = service(K::NginxIpHash, &[1, 1, 1]);
    let f = Flow::tcp(v4(10, 1, 2, 3, 5000), v4(192, 0, 2, 1, 80));
    assert_eq!(s.schedule(&f, T0), Some(D1));
    let (seq, _) = tries(&mut s, &f, T0);
    assert_eq!(seq, "bca");
}

/// hash $key over weights 2, 1, 1 with key "/a": draw sums 26992 (% 4 = 0: a); the retry
/// continues the sums (rehash 1, 2, ...) and lands on c at 143879 after 3 failed draws; the
/// third try draws only a and c until the 21st failed draw, and round robin then gives b,
/// the only untried peer; then nothing.
#[test]
fn hash_continues_its_sum_across_tries() {
    let mut s = service(K::NginxHash, &[2, 1, 1]);
    let f = flow(0).with_key(b"/a");
    assert_eq!(s.schedule(&f, T0), Some(D0));
    let (seq, _) = tries(&mut s, &f, T0);
    assert_eq!(seq, "acb");
    // key "k" over 1, 1, 1: 2146 -> b; then 56591 -> c; then 149136 -> a.
    let mut s = service(K::NginxHash, &[1, 1, 1]);
    let f = flow(0).with_key(b"k");
    let (seq, _) = tries(&mut s, &f, T0);
    assert_eq!(seq, "bca");
}

/// hash consistent: a retry starts at the same ring point, skips the tried peer and moves on
/// to the next points; two peers with the same address share their points and take turns.
#[test]
fn chash_retry_moves_along_the_ring() {
    let mut s = service(K::NginxChash, &[1, 1, 1]);
    let f = flow(0).with_key(b"some-key");
    let first = s.schedule(&f, T0).unwrap();
    let mut t = Tried::new();
    assert_eq!(s.schedule_next(&f, T0, &mut t), Some(first));
    let second = s.schedule_next(&f, T0, &mut t).unwrap();
    assert_ne!(second, first);
    let third = s.schedule_next(&f, T0, &mut t).unwrap();
    assert!(third != first && third != second);
    assert_eq!(s.schedule_next(&f, T0, &mut t), None);
}

/// least_conn: the least loaded untried peer; ties by smooth WRR; then the backups.
#[test]
fn least_conn_skips_tried() {
    let mut s = with_backup(K::NginxLeastConn, &[1, 1, 2], &[1]);
    s.conn_opened(D0);
    // conns/weight: a 1, b 0, c 0 (tie b, c: smooth WRR, c leads with 2).
    let (seq, t) = tries(&mut s, &flow(0), T0);
    assert_eq!(seq, "cbad");
    assert!(t.on_backup());
}

/// random: never a tried peer; with everything tried, 20 draws and then round robin, which
/// finds nothing.
#[test]
fn random_skips_tried() {
    for kind in [K::NginxRandom, K::NginxRandomTwo] {
        let mut s = service(kind, &[3, 1, 2, 1]);
        let (seq, _) = tries(&mut s, &flow(0), T0);
        let mut sorted: Vec<char> = seq.chars().collect();
        sorted.sort_unstable();
        assert_eq!(sorted, ['a', 'b', 'c', 'd'], "{kind}: {seq}");
    }
}

/// IPVS schedulers have no retries: `schedule_next` is `schedule`, recorded.
#[test]
fn ipvs_schedule_next_is_schedule() {
    let mut s = service(K::Rr, &[1, 1]);
    let mut t = Tried::new();
    assert_eq!(s.schedule_next(&flow(0), T0, &mut t), Some(D1));
    assert!(t.contains(D1));
    assert_eq!(s.schedule_next(&flow(0), T0, &mut t), Some(D0));
}

fn build(kind: K, peers: &[(u32, bool, bool, bool)], seed: u64) -> Service {
    let config = SchedConfig {
        seed,
        ..SchedConfig::default()
    };
    let mut s = Service::new(kind, config);
    for (i, &(w, backup, down, failed)) in peers.iter().enumerate() {
        let id = s.add_dest(Dest::new(v4(10, 0, 0, i as u8 + 1, 80), w));
        s.configure_nginx(id, |p| {
            p.backup = backup;
            p.down = down;
        });
        if failed {
            s.report_failure(id, T0);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// For every nginx balancer: the first try is `schedule`'s choice; tries never repeat a
    /// peer; each pick is usable (or the single peer); and by the time nginx is busy every
    /// usable peer has been tried.
    #[test]
    fn tries_cover_the_usable_peers_once(
        peers in prop::collection::vec((0u32..4, any::<bool>(), any::<bool>(), any::<bool>()), 1..9),
        seed in any::<u64>(),
        key in prop::collection::vec(any::<u8>(), 0..4),
        client in any::<u32>(),
    ) {
        for kind in [
            K::NginxRoundRobin,
            K::NginxIpHash,
            K::NginxHash,
            K::NginxChash,
            K::NginxLeastConn,
            K::NginxRandom,
            K::NginxRandomTwo,
        ] {
            let f = flow(client).with_key(&key);
            let now = Instant::from_millis(1);
            let mut a = build(kind, &peers, seed);
            let mut b = build(kind, &peers, seed);
            let mut t = Tried::new();
            let first = a.schedule_next(&f, now, &mut t);
            prop_assert_eq!(first, b.schedule(&f, now), "{}", kind);
            let mut got: Vec<usize> = first.iter().map(|d| d.0).collect();
            while let Some(id) = a.schedule_next(&f, now, &mut t) {
                prop_assert!(!got.contains(&id.0), "{} repeated {:?} in {:?}", kind, id, got);
                got.push(id.0);
                prop_assert!(got.len() <= peers.len());
            }
            let usable: Vec<usize> = a
                .dests()
                .iter()
                .filter(|(_, d)| d.nginx_usable(now))
                .map(|(id, _)| id.0)
                .collect();
            let primaries = peers.iter().filter(|p| !p.1).count();
            let single = primaries == 1 && peers.iter().all(|p| !p.1);
            if !single {
                got.sort_unstable();
                prop_assert_eq!(&got, &usable, "{}", kind);
            } else {
                prop_assert!(got.len() <= 1);
            }
        }
    }
}
