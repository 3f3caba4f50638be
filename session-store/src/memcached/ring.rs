//! The consistent-hash ring: libmemcached's continuum (`update_continuum` in
//! `libmemcached/hosts.cc`), built the same way for each [`Distribution`], so a key lands on the
//! server that libmemcached picks.
//!
//! **Weighted layout** ([`Distribution::KetamaWeighted`], [`Distribution::ConsistentWeighted`],
//! and [`Distribution::Ketama`] once a server weighs more than 1). Server `i` of `n`, with weight `w_i` (0 counts as 1) and `W` the
//! sum of the weights, gets `4 × ⌊pct × 160 / 4 × n + 10⁻¹⁰⌋` points, `pct = w_i / W`, every
//! operation in `f32` as libmemcached does it (so 25 equal servers get 156 points each, not 160;
//! see [`weighted_points`]). For `k` in `0..points / 4`, the MD5 digest of `"host:port-k"`
//! (just `"host-k"` when the port is memcached's default, 11211) gives four points, bytes
//! `4j..4j + 4` of the digest read little-endian.
//!
//! **Unweighted layout** ([`Distribution::Ketama`] while no weight exceeds 1): 100 points per
//! server, the one-at-a-time hash of `"host:port-k"` (or `"host-k"`) for `k` in `0..100`.
//!
//! A key's hash is the first four bytes of its MD5 digest, little-endian
//! ([`Distribution::KetamaWeighted`]), or its one-at-a-time hash (the others).
//! Its server owns the first point at or after the hash, wrapping around; equal points are
//! ordered by server index (libmemcached's `qsort` comparator). The next *distinct* servers
//! clockwise are its replicas.

use md5::{Digest as _, Md5};

/// memcached's default port, which libmemcached leaves out of the point names.
pub(crate) const DEFAULT_PORT: u16 = 11211;
/// `MEMCACHED_POINTS_PER_SERVER_KETAMA`: the weighted layout's points per server of average
/// weight (before the `f32` rounding).
const POINTS_PER_SERVER_KETAMA: f32 = 160.0;
/// `MEMCACHED_POINTS_PER_SERVER`: the unweighted layout's points per server.
const POINTS_PER_SERVER: u32 = 100;

/// How keys are spread over the servers: which libmemcached distribution the other clients of
/// the same servers use. All are libmemcached's consistent ("ketama") continuum and differ in
/// the key hash and the points; the [module docs](super) name the client settings each one
/// matches.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// `MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` (distribution `CONSISTENT_WEIGHTED`, MD5 key hash):
    /// pylibmc's `behaviors={"ketama_weighted": True}`. Each server's share of the 160 points
    /// per server follows its weight.
    #[default]
    KetamaWeighted,
    /// `MEMCACHED_BEHAVIOR_KETAMA` (distribution `CONSISTENT_KETAMA`, libmemcached's default
    /// one-at-a-time key hash): pylibmc's `behaviors={"ketama": True}` (the same as
    /// `{"distribution": "consistent"}`). 100 points per server while every weight is 0 or 1;
    /// a weight above 1 switches libmemcached to the weighted points (as it does when a heavier
    /// server is added to a client with this distribution), still with the one-at-a-time key
    /// hash.
    Ketama,
    /// Distribution `MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED` set directly, keeping
    /// libmemcached's default one-at-a-time key hash: pylibmc's
    /// `behaviors={"distribution": "consistent weighted"}`. The points of
    /// [`KetamaWeighted`](Self::KetamaWeighted), the key hash of [`Ketama`](Self::Ketama).
    ConsistentWeighted,
}

/// The ring: points sorted by value (then server index), each naming a server by index.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    points: Vec<(u32, usize)>,
    servers: usize,
    distribution: Distribution,
}

/// The MD5 digest of `data`.
fn md5(data: &[u8]) -> [u8; 16] {
    let mut out = [0_u8; 16];
    out.copy_from_slice(&Md5::digest(data));
    out
}

/// libhashkit's MD5 hash: the first four bytes of the digest, little-endian.
fn md5_hash(data: &[u8]) -> u32 {
    let [a, b, c, e, ..] = md5(data);
    u32::from_le_bytes([a, b, c, e])
}

/// libhashkit's one-at-a-time hash (`hashkit_one_at_a_time`, libmemcached's default). It reads
/// the key as C `char`, which is signed on x86-64: bytes above 127 are sign-extended, as there.
fn one_at_a_time(data: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &b in data {
        h = h.wrapping_add(u32::from_ne_bytes(i32::from(b.cast_signed()).to_ne_bytes()));
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h.wrapping_add(h << 15)
}

/// Each server's number of points in libmemcached's weighted layout, for servers of `weights`
/// (0 counts as 1, as `memcached_server_add_with_weight` stores it):
/// `4 × ⌊pct × 160 / 4 × n + 10⁻¹⁰⌋` with `pct = weight / total weight`, in `f32` arithmetic
/// step by step as libmemcached computes it (checked against the library's own continuum in
/// the tests: `tests/data/libmemcached_points.txt`). A server whose share rounds down to no
/// point gets no keys.
pub(crate) fn weighted_points(weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w.max(1))).sum();
    // libmemcached's `(float) total_weight`, `(float) live_servers`: round to nearest.
    #[expect(
        clippy::cast_precision_loss,
        reason = "libmemcached converts to float the same way"
    )]
    let (total, live) = (total as f32, weights.len() as f32);
    weights
        .iter()
        .map(|&w| {
            #[expect(
                clippy::cast_precision_loss,
                reason = "libmemcached converts to float the same way"
            )]
            let pct = w.max(1) as f32 / total;
            let x = pct * POINTS_PER_SERVER_KETAMA / 4.0 * live + 0.000_000_000_1_f32;
            // At most 40 × n: exact in f32 for any realistic n, and the cast saturates.
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a non-negative whole number far below u32::MAX"
            )]
            let quarter = x.floor() as u32;
            quarter.saturating_mul(4)
        })
        .collect()
}

/// The name libmemcached hashes for point group `k` of `host:port`.
fn point_name(host: &str, port: u16, k: u32) -> String {
    if port == DEFAULT_PORT {
        format!("{host}-{k}")
    } else {
        format!("{host}:{port}-{k}")
    }
}

impl Ring {
    /// The ring of `servers`, given as `(host, port, weight)` in configuration order (the
    /// order numbers the servers, which breaks ties between equal points), laid out for
    /// `distribution`.
    pub(crate) fn new(servers: &[(String, u16, u32)], distribution: Distribution) -> Self {
        let weighted = match distribution {
            Distribution::KetamaWeighted | Distribution::ConsistentWeighted => true,
            Distribution::Ketama => servers.iter().any(|&(_, _, w)| w > 1),
        };
        let mut points = Vec::new();
        if weighted {
            let weights: Vec<u32> = servers.iter().map(|&(_, _, w)| w).collect();
            for (index, ((host, port, _), n)) in
                servers.iter().zip(weighted_points(&weights)).enumerate()
            {
                for k in 0..n / 4 {
                    let digest = md5(point_name(host, *port, k).as_bytes());
                    for chunk in digest.chunks_exact(4) {
                        if let [a, b, c, e] = *chunk {
                            points.push((u32::from_le_bytes([a, b, c, e]), index));
                        }
                    }
                }
            }
        } else {
            for (index, (host, port, _)) in servers.iter().enumerate() {
                for k in 0..POINTS_PER_SERVER {
                    points.push((one_at_a_time(point_name(host, *port, k).as_bytes()), index));
                }
            }
        }
        points.sort_unstable();
        Self {
            points,
            servers: servers.len(),
            distribution,
        }
    }

    /// The hash of a key under this ring's distribution.
    pub(crate) fn key_hash(&self, key: &[u8]) -> u32 {
        match self.distribution {
            Distribution::KetamaWeighted => md5_hash(key),
            Distribution::Ketama | Distribution::ConsistentWeighted => one_at_a_time(key),
        }
    }

    /// How many servers have at least one point (the others never get a key).
    pub(crate) fn servers_on_ring(&self) -> usize {
        let mut seen = vec![false; self.servers];
        for &(_, s) in &self.points {
            if let Some(flag) = seen.get_mut(s) {
                *flag = true;
            }
        }
        seen.into_iter().filter(|&s| s).count()
    }

    /// Servers for `key` in ring order, distinct, skipping those `usable` rejects, at most
    /// `want` of them. The first is the key's primary.
    pub(crate) fn walk(
        &self,
        key: &[u8],
        want: usize,
        usable: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let hash = self.key_hash(key);
        let start = self.points.partition_point(|&(v, _)| v < hash);
        let mut out: Vec<usize> = Vec::with_capacity(want);
        let mut seen = vec![false; self.servers];
        let (after, before) = (
            self.points.get(start..).unwrap_or_default(),
            self.points.get(..start).unwrap_or_default(),
        );
        for &(_, s) in after.iter().chain(before) {
            if out.len() >= want {
                break;
            }
            if let Some(flag) = seen.get_mut(s)
                && !*flag
            {
                *flag = true;
                if usable(s) {
                    out.push(s);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;

    fn servers(ports: &[u16]) -> Vec<(String, u16, u32)> {
        ports
            .iter()
            .map(|&p| ("127.0.0.1".to_owned(), p, 1))
            .collect()
    }

    fn count(r: &Ring, server: usize) -> usize {
        r.points.iter().filter(|&&(_, s)| s == server).count()
    }

    #[test]
    fn md5_point_layout() {
        // MD5("127.0.0.1:21211-0"), the first digest of that server, read as four
        // little-endian words, must be among its points.
        let d = md5(b"127.0.0.1:21211-0");
        let r = Ring::new(&servers(&[21211]), Distribution::KetamaWeighted);
        assert_eq!(r.points.len(), 160);
        for chunk in d.chunks_exact(4) {
            let v = u32::from_le_bytes(chunk.try_into().unwrap());
            assert!(r.points.iter().any(|&(p, _)| p == v));
        }
        // The default port is left out of the name.
        let d = md5(b"127.0.0.1-0");
        let r = Ring::new(&servers(&[DEFAULT_PORT]), Distribution::KetamaWeighted);
        let v = u32::from_le_bytes(d[..4].try_into().unwrap());
        assert!(r.points.iter().any(|&(p, _)| p == v));
    }

    #[test]
    fn one_at_a_time_layout() {
        // Values of libhashkit's one-at-a-time (`memcached_generate_hash_value(.., DEFAULT)`
        // in libmemcached 1.1.4), including a byte above 127 (sign-extended as a C char).
        assert_eq!(one_at_a_time(b""), 0);
        assert_eq!(one_at_a_time(b"a"), 0xca2e_9442);
        assert_eq!(one_at_a_time(b"127.0.0.1:21211-0"), 0x942c_5a8e);
        assert_eq!(one_at_a_time("é".as_bytes()), 0x0191_48ae);
        let r = Ring::new(&servers(&[21211, DEFAULT_PORT]), Distribution::Ketama);
        assert_eq!((count(&r, 0), count(&r, 1)), (100, 100));
        assert!(
            r.points
                .contains(&(one_at_a_time(b"127.0.0.1:21211-99"), 0))
        );
        assert!(r.points.contains(&(one_at_a_time(b"127.0.0.1-0"), 1)));
        // A weight above 1 switches to the weighted layout; 0 counts as 1.
        let mut heavy = servers(&[21211, 21212, 21213]);
        heavy[1].2 = 3;
        heavy[2].2 = 0;
        let r = Ring::new(&heavy, Distribution::Ketama);
        assert_eq!((count(&r, 0), count(&r, 1), count(&r, 2)), (96, 288, 96));
        assert_eq!(r.key_hash(b"a"), 0xca2e_9442);
        // Distribution CONSISTENT_WEIGHTED: weighted points even at weight 1, the same hash.
        let r = Ring::new(&servers(&[21211, 21212]), Distribution::ConsistentWeighted);
        assert_eq!((count(&r, 0), count(&r, 1)), (160, 160));
        assert_eq!(r.key_hash(b"a"), 0xca2e_9442);
    }

    /// Parses one side of a line of `libmemcached_points.txt`: numbers, `v*k` for k copies.
    fn runs(text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        for tok in text.split_whitespace() {
            match tok.split_once('*') {
                Some((v, k)) => {
                    out.extend(std::iter::repeat_n(
                        v.parse::<u64>().unwrap(),
                        k.parse().unwrap(),
                    ));
                }
                None => out.push(tok.parse().unwrap()),
            }
        }
        out
    }

    #[test]
    fn weighted_points_match_libmemcached() {
        // Each server's point count as libmemcached 1.1.4 builds its continuum (read from the
        // library's memory by tests/data/libmemcached_points.c): 800 lists of equal weights
        // (1-100 servers) and 600 lists of 1-64 random weights from 0-1 up to 0-(2^32 - 1).
        let table = include_str!("../../tests/data/libmemcached_points.txt");
        let mut lines = 0;
        for line in table.lines() {
            let (weights, counts) = line.split_once('=').unwrap();
            let weights: Vec<u32> = runs(weights)
                .into_iter()
                .map(|w| u32::try_from(w).unwrap())
                .collect();
            let counts: Vec<u32> = runs(counts)
                .into_iter()
                .map(|c| u32::try_from(c).unwrap())
                .collect();
            assert_eq!(weighted_points(&weights), counts, "weights {weights:?}");
            lines += 1;
        }
        assert_eq!(lines, 1400);
        // The figures that started it: 25 equal servers get 156 points, 26 get 160.
        assert_eq!(weighted_points(&[1; 25]), vec![156; 25]);
        assert_eq!(weighted_points(&[1; 26]), vec![160; 26]);
    }

    #[test]
    fn ring_holds_each_servers_points() {
        let weights = [5, 0, 1, 17, 2];
        let list: Vec<(String, u16, u32)> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (format!("10.0.0.{i}"), DEFAULT_PORT, w))
            .collect();
        for d in [
            Distribution::KetamaWeighted,
            Distribution::Ketama,
            Distribution::ConsistentWeighted,
        ] {
            let r = Ring::new(&list, d);
            for (i, &n) in weighted_points(&weights).iter().enumerate() {
                assert_eq!(count(&r, i), n as usize, "{d:?} server {i}");
            }
            assert!(r.points.is_sorted());
        }
    }

    #[test]
    fn walk_gives_distinct_servers_and_skips_unusable_ones() {
        for d in [
            Distribution::KetamaWeighted,
            Distribution::Ketama,
            Distribution::ConsistentWeighted,
        ] {
            let r = Ring::new(&servers(&[21211, 21212, 21213]), d);
            assert_eq!(r.servers_on_ring(), 3);
            for k in 0..200_u32 {
                let key = format!("k{k}");
                let all = r.walk(key.as_bytes(), 3, |_| true);
                let mut sorted = all.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, vec![0, 1, 2]);
                // Without the primary, the rest keep their order: ejecting a server moves only
                // its own keys, to the next server on the ring.
                let without = r.walk(key.as_bytes(), 2, |s| s != all[0]);
                assert_eq!(without, all[1..].to_vec());
            }
        }
    }

    #[test]
    fn a_server_whose_share_rounds_to_nothing_is_off_the_ring() {
        let list = vec![
            ("a".to_owned(), 1, 1),
            ("b".to_owned(), 1, 1000),
            ("c".to_owned(), 1, 1000),
        ];
        assert_eq!(weighted_points(&[1, 1000, 1000]), vec![0, 236, 236]);
        let r = Ring::new(&list, Distribution::KetamaWeighted);
        assert_eq!(r.servers_on_ring(), 2);
        assert_eq!(r.walk(b"k", 3, |_| true).len(), 2);
    }
}
