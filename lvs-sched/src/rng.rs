//! Injected randomness: the crate never reads an OS or std RNG.

/// A source of random 32-bit words (implement it over your own RNG).
pub trait Rng: Send + core::fmt::Debug {
    /// The next uniformly distributed word.
    fn next_u32(&mut self) -> u32;

    /// Uniform in `0..ceil` (`ceil > 0`), by Lemire's multiply-shift with rejection, the
    /// kernel's `get_random_u32_below`. Returns 0 when `ceil == 0`.
    fn below(&mut self, ceil: u32) -> u32 {
        if ceil == 0 {
            return 0;
        }
        let mut mult = u64::from(ceil) * u64::from(self.next_u32());
        if (mult as u32) < ceil {
            let bound = ceil.wrapping_neg() % ceil;
            while (mult as u32) < bound {
                mult = u64::from(ceil) * u64::from(self.next_u32());
            }
        }
        (mult >> 32) as u32
    }
}

/// SplitMix64, a small seeded generator (deterministic for a given seed).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl Rng for SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}
