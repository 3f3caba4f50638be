//! Hash functions and consistent-hash tables shared by the schedulers.

pub mod ketama;
pub mod maglev;

use core::net::IpAddr;

const fn crc32_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}
static CRC_TABLE: [u32; 256] = crc32_table();

/// Running CRC-32 (IEEE, as nginx's `ngx_crc32_init/update/final`).
#[derive(Clone, Copy, Debug)]
pub struct Crc32(u32);

impl Crc32 {
    /// `ngx_crc32_init`.
    #[must_use]
    pub const fn new() -> Self {
        Self(0xFFFF_FFFF)
    }
    /// `ngx_crc32_update`.
    #[must_use]
    pub fn update(mut self, data: &[u8]) -> Self {
        for &b in data {
            let idx = usize::from((self.0 as u8) ^ b);
            self.0 = CRC_TABLE.get(idx).copied().unwrap_or(0) ^ (self.0 >> 8);
        }
        self
    }
    /// `ngx_crc32_final`.
    #[must_use]
    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

/// CRC-32 of `data` (`ngx_crc32_long`).
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    Crc32::new().update(data).finish()
}

/// SipHash-1-3 of `data` with the 128-bit key `(k0, k1)`, 64-bit result.
///
/// On 64-bit kernels `hsiphash` is SipHash-1-3 truncated to 32 bits (lib/siphash.c), so
/// `siphash13(..) as u32` is the kernel's `hsiphash`.
#[must_use]
pub fn siphash13(k0: u64, k1: u64, data: &[u8]) -> u64 {
    siphash_cd::<1, 3>(k0, k1, data)
}

/// SipHash-2-4 (the reference SipHash), used to check the shared round code.
#[must_use]
pub fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    siphash_cd::<2, 4>(k0, k1, data)
}

/// One SipRound over `(v0, v1, v2, v3)`.
#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    let [v0, v1, v2, v3] = v;
    *v0 = v0.wrapping_add(*v1);
    *v1 = v1.rotate_left(13);
    *v1 ^= *v0;
    *v0 = v0.rotate_left(32);
    *v2 = v2.wrapping_add(*v3);
    *v3 = v3.rotate_left(16);
    *v3 ^= *v2;
    *v0 = v0.wrapping_add(*v3);
    *v3 = v3.rotate_left(21);
    *v3 ^= *v0;
    *v2 = v2.wrapping_add(*v1);
    *v1 = v1.rotate_left(17);
    *v1 ^= *v2;
    *v2 = v2.rotate_left(32);
}

const fn sip_init(k0: u64, k1: u64) -> [u64; 4] {
    [
        0x736f_6d65_7073_6575 ^ k0,
        0x646f_7261_6e64_6f6d ^ k1,
        0x6c79_6765_6e65_7261 ^ k0,
        0x7465_6462_7974_6573 ^ k1,
    ]
}

/// Absorb the final block `last` (length byte and tail), finalise, and fold.
#[inline(always)]
fn sip_finish<const C: usize, const D: usize>(mut v: [u64; 4], last: u64) -> u64 {
    v[3] ^= last;
    for _ in 0..C {
        sip_round(&mut v);
    }
    v[0] ^= last;
    v[2] ^= 0xff;
    for _ in 0..D {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn siphash_cd<const C: usize, const D: usize>(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = sip_init(k0, k1);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let m = u64::from_le_bytes(b);
        v[3] ^= m;
        for _ in 0..C {
            sip_round(&mut v);
        }
        v[0] ^= m;
    }
    let mut last = (data.len() as u64) << 56;
    for (i, &byte) in chunks.remainder().iter().enumerate() {
        last |= u64::from(byte) << (8 * i);
    }
    sip_finish::<C, D>(v, last)
}

/// [`siphash13`] of the four little-endian bytes of `x`, without the byte loop (the
/// kernel's `hsiphash_1u32`).
#[must_use]
#[inline]
pub fn siphash13_u32(k0: u64, k1: u64, x: u32) -> u64 {
    sip_finish::<1, 3>(sip_init(k0, k1), (4u64 << 56) | u64::from(x))
}

/// The kernel's address fold for hashing: the IPv4 address, or the XOR of the four 32-bit
/// words of an IPv6 address, as a host-order `u32` (`ntohl(addr_fold)`).
#[must_use]
pub fn addr_fold(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let mut x = 0u32;
            for w in o.chunks_exact(4) {
                x ^= u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
            }
            x
        }
    }
}

/// `hash_32(val, bits)` from include/linux/hash.h (`GOLDEN_RATIO_32 = 0x61C88647`).
#[must_use]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// `x % d` for 32-bit `x` and a fixed 32-bit `d > 0` by two multiplications instead of a
/// division (D. Lemire, O. Kaser, N. Kurz, "Faster remainder by direct computation", 2019):
/// `M = floor((2^64 - 1) / d) + 1` (mod 2^64), and `x % d = ((M * x mod 2^64) * d) >> 64`,
/// exact for every 32-bit `x` and `d`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FastMod {
    m: u64,
    d: u32,
}

impl FastMod {
    pub(crate) const fn new(d: u32) -> Option<Self> {
        if d == 0 {
            return None;
        }
        Some(Self {
            m: (u64::MAX / d as u64).wrapping_add(1),
            d,
        })
    }
    /// `x % d`.
    pub(crate) fn rem(self, x: u32) -> u32 {
        let low = self.m.wrapping_mul(u64::from(x));
        // The product of a `u64` and a `u32`, shifted by 64, is below `d`: it fits `u32`.
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastmod_equals_remainder() {
        let edges = [
            0u32,
            1,
            2,
            3,
            3000,
            4093,
            6270,
            6271,
            65_535,
            65_536,
            65_537,
            u32::MAX - 1,
            u32::MAX,
        ];
        let mut x = 12_345u32;
        for d in edges
            .iter()
            .copied()
            .chain(1..300)
            .chain((0..300).map(|k| u32::MAX - k))
        {
            let Some(f) = FastMod::new(d) else {
                assert_eq!(d, 0);
                continue;
            };
            for _ in 0..200 {
                x = x.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
                assert_eq!(f.rem(x), x % d, "{x} % {d}");
            }
            for &e in &edges {
                assert_eq!(f.rem(e), e % d, "{e} % {d}");
            }
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn siphash13_u32_equals_bytes() {
        let mut x = 1u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(2_654_435_761).wrapping_add(12345);
            for k in [0u64, 2_654_435_761, u64::MAX] {
                assert_eq!(siphash13_u32(k, k, x), siphash13(k, k, &x.to_le_bytes()));
            }
        }
    }

    #[test]
    fn siphash24_reference_vectors() {
        // The SipHash paper's vectors: key 00..0f; message empty and 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(siphash24(k0, k1, b""), 0x726f_db47_dd0e_0e31);
        let msg: [u8; 15] = core::array::from_fn(|i| i as u8);
        assert_eq!(siphash24(k0, k1, &msg), 0xa129_ca61_49be_45e5);
    }
}
