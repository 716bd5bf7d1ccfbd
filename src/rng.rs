//! The machine's only source of randomness: a small deterministic generator seeded once from
//! the driver's `rand_core` RNG (or an explicit seed), so that a recording needs only the seed.

use core::time::Duration;

/// SplitMix64: tiny state, good statistical quality for jitter, fully deterministic.
#[derive(Clone, Debug)]
pub(crate) struct Prng {
    state: u64,
}

impl Prng {
    pub(crate) fn new(seed: u64) -> Self {
        Prng { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform fraction in `[0, 1)`, as 53 bits.
    pub(crate) fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform duration in `[min, max)` (`min` when the range is empty), microsecond grain.
    pub(crate) fn duration_between(&mut self, min: Duration, max: Duration) -> Duration {
        let lo = min.as_micros() as u64;
        let hi = max.as_micros() as u64;
        if hi <= lo {
            return min;
        }
        Duration::from_micros(lo + self.next_u64() % (hi - lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_ranges_hold() {
        let mut a = Prng::new(7);
        let mut b = Prng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let f = a.fraction();
            assert!((0.0..1.0).contains(&f));
            b.fraction();
            let d = a.duration_between(Duration::from_secs(1), Duration::from_secs(5));
            assert!(d >= Duration::from_secs(1) && d < Duration::from_secs(5));
            b.duration_between(Duration::from_secs(1), Duration::from_secs(5));
        }
    }
}
