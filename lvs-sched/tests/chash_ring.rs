//! The ketama ring of `hash $key consistent` at nginx's sizes and at the bound for huge
//! weights (`ngx_http_upstream_update_chash`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lvs_sched::hash::Crc32;
use lvs_sched::hash::ketama::{MAX_EXACT_TOTAL_WEIGHT, MAX_RING_POINTS, Ring};

/// nginx's chain for one server: `n` points from `crc32(host "\0" port prev)`.
fn chain(host: &[u8], port: &[u8], n: u64) -> Vec<u32> {
    let base = Crc32::new().update(host).update(&[0]).update(port);
    let mut prev = 0u32;
    (0..n)
        .map(|_| {
            prev = base.update(&prev.to_le_bytes()).finish();
            prev
        })
        .collect()
}

fn of(ring: &Ring, idx: usize) -> Vec<u32> {
    let mut v: Vec<u32> = ring
        .points()
        .iter()
        .filter(|p| p.1 == idx)
        .map(|p| p.0)
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn small_weights_give_nginx_ring() {
    let ring = Ring::build([(&b"10.0.0.1:80"[..], 1, 0), (&b"10.0.0.2:80"[..], 3, 1)]);
    let mut a = chain(b"10.0.0.1", b"80", 160);
    let mut b = chain(b"10.0.0.2", b"80", 480);
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(ring.len(), 640); // no collisions among these
    assert_eq!(of(&ring, 0), a);
    assert_eq!(of(&ring, 1), b);
}

/// A weight above the old per-server cap (1,024) is exact now: nginx builds 160 × 2,000.
#[test]
fn weight_2000_is_exact() {
    let ring = Ring::build([(&b"a:1"[..], 2000, 0), (&b"b:1"[..], 1, 1)]);
    let mut a = chain(b"a", b"1", 320_000);
    a.sort_unstable();
    a.dedup();
    assert_eq!(of(&ring, 0).len(), a.len());
    assert!(ring.len() <= a.len() + 160);
    assert_eq!(of(&ring, 0), a);
}

/// Weights up to `i32::MAX`: the ring stays within `MAX_RING_POINTS` (+1 per server), each
/// server's points are the start of its nginx chain, and the shares follow the weights.
#[test]
fn huge_weights_are_bounded_prefixes() {
    let w = i32::MAX as u32;
    let ring = Ring::build([
        (&b"a:1"[..], w, 0),
        (&b"b:1"[..], w / 2, 1),
        (&b"c:1"[..], 1, 2),
    ]);
    let total = u64::from(w) + u64::from(w / 2) + 1;
    assert!(total > MAX_EXACT_TOTAL_WEIGHT);
    assert!(ring.len() as u64 <= MAX_RING_POINTS + 3);
    let owner = |h: u32| {
        let p = ring.points();
        let i = p.partition_point(|x| x.0 < h);
        p.get(i).filter(|x| x.0 == h).map(|x| x.1)
    };
    let expect_a = u64::from(w) * MAX_RING_POINTS / total;
    let expect_b = u64::from(w / 2) * MAX_RING_POINTS / total;
    // a (first in the list, so it keeps every hash it shares): its points are the start of
    // its chain (checked on the first 2,000; the count is checked below).
    let a = chain(b"a", b"1", 2000);
    assert!(a.iter().all(|&h| owner(h) == Some(0)));
    let count = |idx: usize| ring.points().iter().filter(|p| p.1 == idx).count() as u64;
    assert!(count(0) <= expect_a && count(0) + expect_a / 200 >= expect_a);
    // About 1.75 M × 0.87 M / 2^32 ≈ 350 of b's hashes collide with a's and go to a.
    let got_b = count(1);
    assert!(
        got_b <= expect_b && got_b + expect_b / 200 >= expect_b,
        "{got_b} vs {expect_b}"
    );
    // Weight 1 against 3 × 2^30: rounded up to one point, the first of c's chain.
    assert_eq!(count(2), 1);
    assert_eq!(owner(chain(b"c", b"1", 1)[0]), Some(2));
}
