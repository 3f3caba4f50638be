//! The consistent-hash ring: libmemcached's ketama layout
//! (`MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED` with equal weights), so a key lands on the same
//! server as with libmemcached, pylibmc (`behaviors={"ketama_weighted": True}`) and other
//! clients that implement it.
//!
//! Each server gets 160 points: for `n` in `0..40`, the MD5 digest of `"host:port-n"` (just
//! `"host-n"` when the port is memcached's default, 11211, as libmemcached writes it) gives four
//! points, bytes `4i..4i+4` of the digest read little-endian. A key's hash is the first four
//! bytes of its MD5 digest, little-endian; its server is the owner of the first point at or
//! after the hash, wrapping around. The next *distinct* servers clockwise are its replicas.

use md5::{Digest as _, Md5};

/// Points per server (40 digests × 4).
pub(crate) const POINTS_PER_SERVER: usize = 160;
/// memcached's default port, which libmemcached leaves out of the point names.
pub(crate) const DEFAULT_PORT: u16 = 11211;

/// The ring: points sorted by value, each naming a server by index.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    points: Vec<(u32, usize)>,
    servers: usize,
}

/// The hash of a key: the first four bytes of its MD5 digest, little-endian.
pub(crate) fn key_hash(key: &[u8]) -> u32 {
    let [a, b, c, e, ..] = md5(key);
    u32::from_le_bytes([a, b, c, e])
}

/// The MD5 digest of `data`.
fn md5(data: &[u8]) -> [u8; 16] {
    let mut out = [0_u8; 16];
    out.copy_from_slice(&Md5::digest(data));
    out
}

impl Ring {
    /// The ring of `servers`, given as `(host, port)` in configuration order (the order breaks
    /// ties between equal points, which libmemcached leaves to `qsort`).
    pub(crate) fn new(servers: &[(String, u16)]) -> Self {
        let mut points = Vec::with_capacity(servers.len() * POINTS_PER_SERVER);
        for (index, (host, port)) in servers.iter().enumerate() {
            for n in 0..POINTS_PER_SERVER / 4 {
                let name = if *port == DEFAULT_PORT {
                    format!("{host}-{n}")
                } else {
                    format!("{host}:{port}-{n}")
                };
                for chunk in md5(name.as_bytes()).chunks_exact(4) {
                    if let [a, b, c, e] = *chunk {
                        points.push((u32::from_le_bytes([a, b, c, e]), index));
                    }
                }
            }
        }
        points.sort_unstable();
        Self {
            points,
            servers: servers.len(),
        }
    }

    /// Servers for `hash` in ring order, distinct, skipping those `usable` rejects, at most
    /// `want` of them. The first is the key's primary.
    pub(crate) fn walk(
        &self,
        hash: u32,
        want: usize,
        usable: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
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
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn servers(ports: &[u16]) -> Vec<(String, u16)> {
        ports.iter().map(|&p| ("127.0.0.1".to_owned(), p)).collect()
    }

    #[test]
    fn md5_point_layout() {
        // MD5("127.0.0.1:21211-0"), the first digest of that server, read as four
        // little-endian words, must be among its points.
        let d = md5(b"127.0.0.1:21211-0");
        let r = Ring::new(&servers(&[21211]));
        assert_eq!(r.points.len(), POINTS_PER_SERVER);
        for chunk in d.chunks_exact(4) {
            let v = u32::from_le_bytes(chunk.try_into().unwrap());
            assert!(r.points.iter().any(|&(p, _)| p == v));
        }
        // The default port is left out of the name.
        let d = md5(b"127.0.0.1-0");
        let r = Ring::new(&servers(&[DEFAULT_PORT]));
        let v = u32::from_le_bytes(d[..4].try_into().unwrap());
        assert!(r.points.iter().any(|&(p, _)| p == v));
    }

    #[test]
    fn walk_gives_distinct_servers_and_skips_unusable_ones() {
        let r = Ring::new(&servers(&[21211, 21212, 21213]));
        for k in 0..200_u32 {
            let h = key_hash(format!("k{k}").as_bytes());
            let all = r.walk(h, 3, |_| true);
            let mut sorted = all.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
            // Without the primary, the rest keep their order: ejecting a server moves only
            // its own keys, to the next server on the ring.
            let without = r.walk(h, 2, |s| s != all[0]);
            assert_eq!(without, all[1..].to_vec());
        }
    }
}
