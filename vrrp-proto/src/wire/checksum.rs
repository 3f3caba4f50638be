//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-header sums VRRPv3 needs.

use core::net::IpAddr;

/// The ones'-complement sum of `data` added to `acc`, not yet folded or complemented.
///
/// Odd-length data is padded with a zero byte, as RFC 1071 requires.
pub(crate) fn sum(data: &[u8], acc: u64) -> u64 {
    let mut acc = acc;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_be_bytes(w);
        // Add the four 16-bit words; the carries accumulate in the upper bits of `acc`.
        acc += (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a running sum into 16 bits and complements it.
pub(crate) fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // `acc` fits in 16 bits after the fold.
    !(acc as u16)
}

/// The RFC 1071 Internet checksum of `data` (the value to store in a checksum field that was
/// zero while summing).
pub fn internet_checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// The unfolded sum of the IPv4 or IPv6 pseudo-header for an upper-layer message of `len`
/// bytes with protocol (next header) `proto`, as RFC 5798 §5.2.8 requires for VRRPv3.
///
/// Returns `None` when `src` and `dst` are of different families.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> Option<u64> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let acc = sum(&s.octets(), 0);
            let acc = sum(&d.octets(), acc);
            // zero, protocol, 16-bit length
            Some(acc + u64::from(proto) + u64::from(len & 0xffff))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let acc = sum(&s.octets(), 0);
            let acc = sum(&d.octets(), acc);
            // 32-bit length, three zero bytes, next header
            Some(acc + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(proto))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        // Odd length pads with zero.
        assert_eq!(internet_checksum(&[0x12]), !0x1200);
        // Chunked and bytewise paths agree.
        let long: [u8; 21] = core::array::from_fn(|i| (i * 37) as u8);
        let mut acc = 0u64;
        for w in long.chunks(2) {
            let hi = u64::from(w[0]) << 8;
            acc += hi + w.get(1).map_or(0, |&b| u64::from(b));
        }
        assert_eq!(internet_checksum(&long), finish(acc));
    }
}
