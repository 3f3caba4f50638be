//! nginx's ketama ring (`hash $key consistent`): crc32 points, 160 per unit of weight.
//!
//! Reproduced from `ngx_http_upstream_init_chash`: the base hash is
//! `crc32(host "\0" port)` where `host:port` is the server name as written; point `j` is
//! `crc32` continued from the base over the little-endian bytes of point `j-1` (0 for the
//! first); points are sorted by hash and duplicates dropped (nginx's `qsort` leaves which of
//! two equal hashes survives unspecified; here the lower server index); a key maps to the
//! first point whose hash is `>= crc32(key)`, wrapping to the first point. The ring's size
//! is bounded for huge weights: see [`MAX_EXACT_TOTAL_WEIGHT`].

use alloc::vec::Vec;

use super::Crc32;

/// Points per unit of weight (nginx's constant).
pub const POINTS_PER_WEIGHT: u32 = 160;

/// Largest total weight (of the primary peers) whose ring is exactly nginx's: 16,384, that is
/// [`MAX_RING_POINTS`] = 160 × 16,384 = 2,621,440 points (40 MiB in nginx as here, 16 bytes
/// a point).
///
/// nginx itself has no cap: `ngx_http_upstream_update_chash` allocates
/// `160 × total_weight` points and refuses the configuration when that allocation fails —
/// with weights near `i32::MAX` it would ask for terabytes. Above the cap this crate keeps the
/// ring bounded instead: server `i` gets `max(1, ⌊160 × w_i × 16,384 / total⌋)` points, the
/// *first* points of nginx's chain for that server (point `j` only depends on point `j - 1`),
/// so the ring is a subset of nginx's ring with the servers' shares kept to within one point.
pub const MAX_EXACT_TOTAL_WEIGHT: u64 = 16_384;

/// Most points in a ring built from weights totalling more than [`MAX_EXACT_TOTAL_WEIGHT`]
/// (plus at most one per server for the rounding up to one point).
pub const MAX_RING_POINTS: u64 = MAX_EXACT_TOTAL_WEIGHT * 160;

/// A sorted ketama continuum of `(hash, server index)` points.
#[derive(Clone, Debug, Default)]
pub struct Ring {
    points: Vec<(u32, usize)>,
}

/// Split an nginx server name into host and port as `ngx_http_upstream_update_chash` does:
/// `unix:` names have no port; otherwise the port is what follows the last `:` only when
/// that is all digits (scanning back from the end, a non-digit before any `:` means the
/// whole name is the host, e.g. `backend` or `[2001:db8::1]`).
fn split_name(name: &[u8]) -> (&[u8], &[u8]) {
    if name.len() >= 5
        && name
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"unix:"))
    {
        return (name.get(5..).unwrap_or(&[]), &[]);
    }
    for (j, &c) in name.iter().enumerate().rev() {
        if c == b':' {
            return (
                name.get(..j).unwrap_or(&[]),
                name.get(j + 1..).unwrap_or(&[]),
            );
        }
        if !c.is_ascii_digit() {
            break;
        }
    }
    (name, &[])
}

impl Ring {
    /// Build the ring from `(server name, weight, index)` triples: nginx's ring when the
    /// weights total at most [`MAX_EXACT_TOTAL_WEIGHT`], else its bounded subset described
    /// there.
    #[must_use]
    pub fn build<'a>(servers: impl IntoIterator<Item = (&'a [u8], u32, usize)>) -> Self {
        let servers: Vec<(&[u8], u32, usize)> = servers.into_iter().collect();
        let total: u64 = servers.iter().map(|s| u64::from(s.1)).sum();
        let per_weight = u64::from(POINTS_PER_WEIGHT);
        let count = |w: u32| -> u64 {
            if total <= MAX_EXACT_TOTAL_WEIGHT {
                u64::from(w) * per_weight
            } else if w == 0 {
                0
            } else {
                let scaled = u128::from(w) * u128::from(MAX_RING_POINTS) / u128::from(total.max(1));
                u64::try_from(scaled).unwrap_or(MAX_RING_POINTS).max(1)
            }
        };
        let all: u64 = servers.iter().map(|s| count(s.1)).sum();
        let mut points = Vec::with_capacity(usize::try_from(all).unwrap_or(0));
        for &(name, weight, idx) in &servers {
            let (host, port) = split_name(name);
            let base = Crc32::new().update(host).update(&[0]).update(port);
            let mut prev = 0u32;
            for _ in 0..count(weight) {
                let h = base.update(&prev.to_le_bytes()).finish();
                points.push((h, idx));
                prev = h;
            }
        }
        // By hash, then index: of points with equal hashes the lowest index stays.
        points.sort_unstable();
        points.dedup_by_key(|p| p.0);
        Self { points }
    }
    /// The points in ring order: `(hash, server index)`.
    #[must_use]
    pub fn points(&self) -> &[(u32, usize)] {
        &self.points
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

#[cfg(test)]
mod tests {
    use super::split_name;

    #[test]
    fn split_like_nginx() {
        let cases: [(&[u8], &[u8], &[u8]); 7] = [
            (b"10.0.0.1:80", b"10.0.0.1", b"80"),
            (b"[2001:db8::1]:8080", b"[2001:db8::1]", b"8080"),
            (b"[2001:db8::1]", b"[2001:db8::1]", b""),
            (b"backend", b"backend", b""),
            (b"host:", b"host", b""),
            (b"unix:/tmp/s:1", b"/tmp/s:1", b""),
            (b"a:b1", b"a:b1", b""),
        ];
        for (name, host, port) in cases {
            assert_eq!(
                split_name(name),
                (host, port),
                "{:?}",
                core::str::from_utf8(name)
            );
        }
    }
}
