//! nginx's ketama ring (`hash $key consistent`): crc32 points, 160 per unit of weight.
//!
//! Reproduced from `ngx_http_upstream_init_chash`: the base hash is
//! `crc32(host "\0" port)` where `host:port` is the server name as written; point `j` is
//! `crc32` continued from the base over the little-endian bytes of point `j-1` (0 for the
//! first); points are sorted by hash and duplicates dropped; a key maps to the first point
//! whose hash is `>= crc32(key)`, wrapping to the first point.

use alloc::vec::Vec;

use super::Crc32;

/// Points per unit of weight (nginx's constant).
pub const POINTS_PER_WEIGHT: u32 = 160;

/// Weights above this are capped when building the ring (nginx would allocate `160 * weight`
/// points; this keeps a ring bounded at 160 × 1024 points per server).
pub const MAX_RING_WEIGHT: u32 = 1024;

/// A sorted ketama continuum of `(hash, server index)` points.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    points: Vec<(u32, usize)>,
}

/// Split an nginx server name into host and port at the last `:` (`unix:` names have no port).
fn split_name(name: &[u8]) -> (&[u8], &[u8]) {
    if name.len() >= 5
        && name
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"unix:"))
    {
        return (name.get(5..).unwrap_or(&[]), &[]);
    }
    match name.iter().rposition(|&c| c == b':') {
        Some(i) => (
            name.get(..i).unwrap_or(&[]),
            name.get(i + 1..).unwrap_or(&[]),
        ),
        None => (name, &[]),
    }
}

impl Ring {
    /// Build the ring from `(server name, weight, index)` triples.
    #[must_use]
    pub fn build<'a>(servers: impl IntoIterator<Item = (&'a [u8], u32, usize)>) -> Self {
        let mut points = Vec::new();
        for (name, weight, idx) in servers {
            let (host, port) = split_name(name);
            let base = Crc32::new().update(host).update(&[0]).update(port);
            let mut prev = 0u32;
            let n = u64::from(weight.min(MAX_RING_WEIGHT)) * u64::from(POINTS_PER_WEIGHT);
            for _ in 0..n {
                let h = base.update(&prev.to_le_bytes()).finish();
                points.push((h, idx));
                prev = h;
            }
        }
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
        Self { points }
    }
    /// Number of points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.points.len()
    }
    /// Whether the ring has no points.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
    /// `ngx_http_upstream_find_chash_point`: index of the first point with hash `>= hash`
    /// (may equal `len()`, which wraps to 0).
    #[must_use]
    pub fn find_point(&self, hash: u32) -> usize {
        self.points.partition_point(|p| p.0 < hash)
    }
    /// The server index of point `i % len()`.
    #[must_use]
    pub fn server_at(&self, i: usize) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        self.points.get(i % self.points.len()).map(|p| p.1)
    }
}
