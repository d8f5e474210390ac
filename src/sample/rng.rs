//! A tiny, self-contained, seedable PRNG (SplitMix64) and the few
//! distributions the sample generator needs.
//!
//! Written here rather than taken from a crate so the byte stream can never
//! change under us with a dependency bump: the same seed must give the same
//! files on any machine and any version of pipe's dependencies. Only integer
//! arithmetic and correctly rounded IEEE operations (+, −, ×, ÷, sqrt) are
//! used; transcendental functions (ln, cos, pow) come from the platform's
//! libm and may differ in the last bit between machines, so they are avoided.

/// SplitMix64 (Steele, Lea & Flood, 2014): one 64-bit word of state, fast,
/// and good enough statistically for synthetic data.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a strong 64-bit mixer.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a string, to turn a model id into a stream key.
pub(crate) fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01B3);
    }
    h
}

impl Rng {
    /// A generator for one independent stream, keyed by a path of words
    /// (seed, purpose, index…). Keyed streams make each movie, centroid and
    /// noise vector independent of the order in which they are generated.
    pub(crate) fn keyed(parts: &[u64]) -> Self {
        let mut state = 0x6A09_E667_F3BC_C908u64;
        for &p in parts {
            state = mix(state ^ mix(p.wrapping_add(GOLDEN)));
        }
        Rng(state)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is < n / 2^64).
    /// `n == 0` yields 0 so callers never divide by zero.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`hi >= lo`).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `per_mille / 1000` (integers: no float rounding).
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// A uniformly chosen element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// An index chosen with probability proportional to `weights[i]`.
    pub(crate) fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }

    /// An index in `0..n` skewed towards small values (density ∝ 1/√x), so a
    /// few directors and actors have many films and most have one or two.
    pub(crate) fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        // min of two uniforms would be linear; the product is steeper and
        // closer to how film credits are distributed.
        ((u128::from(a) * u128::from(b)) / u128::from(n.max(1))) as u64
    }

    /// Approximately standard normal: the centred sum of four 16-bit uniforms
    /// (Irwin–Hall), scaled to unit variance. One 64-bit draw per value and
    /// only exact integer sums, so it is both fast and bit-reproducible.
    pub(crate) fn gauss(&mut self) -> f32 {
        let x = self.next_u64();
        let sum = (x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48);
        // Mean of the sum is 4 × 65535/2; variance 4 × 65536²/12.
        const SCALE: f32 = 1.732_050_8 / 65536.0;
        (sum as f32 - 131_070.0) * SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::keyed(&[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::keyed(&[1, 2]).next_u64(),
            Rng::keyed(&[2, 1]).next_u64()
        );
    }

    #[test]
    fn gauss_has_roughly_unit_variance() {
        let mut r = Rng::keyed(&[7]);
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|_| f64::from(r.gauss())).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn below_and_weighted_stay_in_range() {
        let mut r = Rng::keyed(&[3]);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
            assert!(r.weighted(&[0, 5, 0, 1]) % 2 == 1);
            assert!(r.skewed(10) < 10);
        }
        assert_eq!(r.below(0), 0);
    }
}
