//! Byte classification of 64-byte blocks: for each class of byte the structural skip cares
//! about, a 64-bit mask with bit `i` set when byte `i` of the block is in the class.
//!
//! Three kernels give the same masks: [`Swar`] (word-sized bit tricks, any target), [`Sse2`]
//! (16 bytes per instruction; part of the x86-64 baseline) and [`Avx2`] (32 bytes per
//! instruction, and a carry-less multiply for the prefix XOR; chosen at run time when the
//! CPU has it, with `std`). Tests check that they agree on every byte value at every
//! position, so which one runs never changes a result.
//!
//! The SIMD kernels are the crate's only `unsafe` code. A kernel value is a token: `Sse2`
//! exists only where the target guarantees SSE2, and an `Avx2` only comes from
//! [`Avx2::detect`], so holding one proves the CPU runs its instructions.

/// The common classes of the 64 bytes of one block, one bit per byte (bit 0 = byte 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct BlockMasks {
    /// `"`.
    pub quote: u64,
    /// `{` or `[`.
    pub open: u64,
    /// `}` or `]`.
    pub close: u64,
    /// A byte of [`RareMasks`]: a backslash or a control character. Gateway text has few,
    /// so the scan looks at them only in blocks where this is not zero.
    pub rare: u64,
}

/// The rare classes of one block, one bit per byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct RareMasks {
    /// `\\`.
    pub backslash: u64,
    /// A control character (below 0x20), which JSON forbids inside strings.
    pub control: u64,
}

/// A way to classify blocks.
pub(super) trait Kernel: Copy {
    /// The common masks of one block.
    fn classify(self, block: &[u8; 64]) -> BlockMasks;

    /// The rare masks of one block.
    fn classify_rare(self, block: &[u8; 64]) -> RareMasks;

    /// Bit i of the result: the XOR of bits 0..=i of `x`.
    #[inline(always)]
    fn prefix_xor(self, mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }
}

/// The portable kernel and its word-sized bit tricks. (On x86-64 only the tests use it,
/// to check the SIMD kernels against it.)
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
mod swar {
    use super::{BlockMasks, Kernel, RareMasks};

    /// The portable kernel: eight bytes at a time in a `u64`.
    #[derive(Clone, Copy, Debug)]
    pub(in crate::protocol::envelope) struct Swar;

    impl Kernel for Swar {
        #[inline(always)]
        fn classify(self, block: &[u8; 64]) -> BlockMasks {
            let mut masks = BlockMasks::default();
            for k in 0..8 {
                let w = u64::from_le_bytes(core::array::from_fn(|i| block[8 * k + i]));
                let shift = 8 * k;
                let folded = w | (ONES * 0x20);
                masks.quote |= pack(zero_bytes(w ^ (ONES * u64::from(b'"')))) << shift;
                masks.open |= pack(zero_bytes(folded ^ (ONES * u64::from(b'{')))) << shift;
                masks.close |= pack(zero_bytes(folded ^ (ONES * u64::from(b'}')))) << shift;
                let backslash = zero_bytes(w ^ (ONES * u64::from(b'\\')));
                let control = zero_bytes(w & (ONES * 0xe0));
                masks.rare |= pack(backslash | control) << shift;
            }
            masks
        }

        #[inline(always)]
        fn classify_rare(self, block: &[u8; 64]) -> RareMasks {
            let mut masks = RareMasks::default();
            for k in 0..8 {
                let w = u64::from_le_bytes(core::array::from_fn(|i| block[8 * k + i]));
                let shift = 8 * k;
                masks.backslash |= pack(zero_bytes(w ^ (ONES * u64::from(b'\\')))) << shift;
                masks.control |= pack(zero_bytes(w & (ONES * 0xe0))) << shift;
            }
            masks
        }
    }

    /// `0x0101..01`: one in every byte of a word.
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    /// `0x7f7f..7f`.
    const LOWS: u64 = u64::from_ne_bytes([0x7f; 8]);

    /// The high bit of every zero byte of `w`, exactly (no borrow between bytes).
    #[inline(always)]
    fn zero_bytes(w: u64) -> u64 {
        !(((w & LOWS) + LOWS) | w | LOWS)
    }

    /// The high bits of `flags` (one per byte) packed into the low 8 bits, byte 0 lowest.
    #[inline(always)]
    fn pack(flags: u64) -> u64 {
        // Each flag sits at bit 8k; the multiplier moves byte k's flag to bit 56 + k, and no
        // two partial products share a bit, so nothing carries.
        ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }
}
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(unused_imports)
)]
pub(super) use swar::Swar;

/// The SSE2 kernel. SSE2 is part of the x86-64 baseline, so this exists on every x86-64
/// target (unless built with SSE2 explicitly disabled).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[derive(Clone, Copy, Debug)]
pub(super) struct Sse2;

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
impl Kernel for Sse2 {
    #[inline(always)]
    fn classify(self, block: &[u8; 64]) -> BlockMasks {
        let mut masks = BlockMasks::default();
        for k in 0..4 {
            let lane = Self::lane(block, k);
            let shift = 16 * k;
            masks.quote |= lane.quote << shift;
            masks.open |= lane.open << shift;
            masks.close |= lane.close << shift;
            masks.rare |= lane.rare << shift;
        }
        masks
    }

    #[inline(always)]
    fn classify_rare(self, block: &[u8; 64]) -> RareMasks {
        let mut masks = RareMasks::default();
        for k in 0..4 {
            let lane = Self::lane(block, k);
            masks.backslash |= lane.backslash << (16 * k);
            masks.control |= lane.control << (16 * k);
        }
        masks
    }
}

/// The classes of 16 (SSE2) or 32 (AVX2) bytes, in the low bits of each mask.
#[cfg(target_arch = "x86_64")]
struct Lane {
    quote: u64,
    open: u64,
    close: u64,
    backslash: u64,
    control: u64,
    /// `backslash | control`, from one mask instruction instead of two.
    rare: u64,
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
impl Sse2 {
    /// Asks the CPU to start loading the cache line holding `bytes[at]`, if `at` is in
    /// bounds: a hint that changes no result.
    #[inline(always)]
    pub(super) fn prefetch(bytes: &[u8], at: usize) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        if let Some(byte) = bytes.get(at) {
            // SAFETY: a prefetch is only a hint: it never faults and changes no memory. SSE
            // is part of the x86-64 baseline, as the `cfg` on this impl guarantees.
            unsafe { _mm_prefetch::<_MM_HINT_T0>((byte as *const u8).cast::<i8>()) }
        }
    }

    /// Classifies bytes `16 * k..16 * k + 16` of the block (`k` < 4).
    #[inline(always)]
    fn lane(block: &[u8; 64], k: usize) -> Lane {
        use core::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        assert!(k < 4);
        // SAFETY: the intrinsics need SSE2, which the `cfg` on this impl guarantees is
        // enabled for the whole compilation; the load reads 16 bytes at offset 16 * k < 64
        // of the 64-byte block, and unaligned loads are allowed. (This is not a
        // `#[target_feature]` function because such a function cannot be
        // `#[inline(always)]`, and being inlined into the scan loop is the point.)
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * k).cast::<__m128i>());
            let bits = |v: __m128i| -> u64 {
                // `as u16` keeps the 16 mask bits.
                u64::from(_mm_movemask_epi8(v) as u16)
            };
            // `as i8` reinterprets the byte.
            let equal = |v: __m128i, byte: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8));
            // `[` and `]` are `{` and `}` with bit 5 clear; no other byte maps onto them.
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let backslash = equal(v, b'\\');
            // Unsigned `max(b, 0x1f) == 0x1f` exactly when `b <= 0x1f`.
            let control = equal(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), 0x1f);
            Lane {
                quote: bits(equal(v, b'"')),
                open: bits(equal(folded, b'{')),
                close: bits(equal(folded, b'}')),
                backslash: bits(backslash),
                control: bits(control),
                rare: bits(_mm_or_si128(backslash, control)),
            }
        }
    }
}

/// The AVX2 kernel (with PCLMULQDQ for the prefix XOR, and POPCNT). Only [`Avx2::detect`]
/// makes one, and only on a CPU that has all three.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx2 {
    _proof: (),
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
impl Avx2 {
    /// The kernel, if this CPU has AVX2, PCLMULQDQ and POPCNT (`std` caches the answer).
    #[inline]
    pub(super) fn detect() -> Option<Self> {
        let has = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("pclmulqdq")
            && std::is_x86_feature_detected!("popcnt");
        has.then_some(Self { _proof: () })
    }

    /// Classifies bytes `32 * k..32 * k + 32` of the block (`k` < 2).
    #[inline(always)]
    #[allow(unsafe_code)]
    fn half(self, block: &[u8; 64], k: usize) -> Lane {
        use core::arch::x86_64::{
            __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
            _mm256_or_si256, _mm256_set1_epi8,
        };
        assert!(k < 2);
        // SAFETY: `self` exists only if `detect` found AVX2 on this CPU; the load reads 32
        // bytes at offset 32 * k < 64 of the 64-byte block, and unaligned loads are allowed.
        unsafe {
            let v = _mm256_loadu_si256(block.as_ptr().add(32 * k).cast::<__m256i>());
            // `as u32` keeps the 32 mask bits.
            let bits = |v: __m256i| -> u64 { u64::from(_mm256_movemask_epi8(v) as u32) };
            // `as i8` reinterprets the byte.
            let equal = |v: __m256i, byte: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(byte as i8));
            let folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
            let backslash = equal(v, b'\\');
            let control = equal(_mm256_max_epu8(v, _mm256_set1_epi8(0x1f)), 0x1f);
            Lane {
                quote: bits(equal(v, b'"')),
                open: bits(equal(folded, b'{')),
                close: bits(equal(folded, b'}')),
                backslash: bits(backslash),
                control: bits(control),
                rare: bits(_mm256_or_si256(backslash, control)),
            }
        }
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[allow(unsafe_code)]
impl Kernel for Avx2 {
    #[inline(always)]
    fn classify(self, block: &[u8; 64]) -> BlockMasks {
        let (low, high) = (self.half(block, 0), self.half(block, 1));
        BlockMasks {
            quote: low.quote | high.quote << 32,
            open: low.open | high.open << 32,
            close: low.close | high.close << 32,
            rare: low.rare | high.rare << 32,
        }
    }

    #[inline(always)]
    fn classify_rare(self, block: &[u8; 64]) -> RareMasks {
        // The classes not asked for are computed and dropped: the compiler removes them.
        let (low, high) = (self.half(block, 0), self.half(block, 1));
        RareMasks {
            backslash: low.backslash | high.backslash << 32,
            control: low.control | high.control << 32,
        }
    }

    #[inline(always)]
    fn prefix_xor(self, x: u64) -> u64 {
        use core::arch::x86_64::{
            _mm_clmulepi64_si128, _mm_cvtsi128_si64, _mm_set1_epi8, _mm_set_epi64x,
        };
        // SAFETY: `self` exists only if `detect` found PCLMULQDQ on this CPU. Multiplying by
        // all ones without carries XORs every bit into all the bits above it.
        unsafe {
            let product = _mm_clmulepi64_si128::<0>(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1));
            _mm_cvtsi128_si64(product) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masks by definition, one byte at a time.
    fn classify_plain(block: &[u8; 64]) -> (BlockMasks, RareMasks) {
        let mut masks = BlockMasks::default();
        let mut rare = RareMasks::default();
        for (i, &b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            let set = |mask: &mut u64, yes: bool| *mask |= if yes { bit } else { 0 };
            set(&mut masks.quote, b == b'"');
            set(&mut masks.open, b == b'{' || b == b'[');
            set(&mut masks.close, b == b'}' || b == b']');
            set(&mut masks.rare, b == b'\\' || b < 0x20);
            set(&mut rare.backslash, b == b'\\');
            set(&mut rare.control, b < 0x20);
        }
        (masks, rare)
    }

    fn both(kernel: impl Kernel, block: &[u8; 64]) -> (BlockMasks, RareMasks) {
        (kernel.classify(block), kernel.classify_rare(block))
    }

    #[test]
    fn prefix_xor_agrees() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..1000 {
            // xorshift: a spread of bit patterns.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let expected = (0..64).fold(0u64, |acc, i| {
                let parity = (x & (u64::MAX >> (63 - i))).count_ones() as u64 & 1;
                acc | (parity << i)
            });
            assert_eq!(Swar.prefix_xor(x), expected);
            #[cfg(all(target_arch = "x86_64", feature = "std"))]
            if let Some(avx2) = Avx2::detect() {
                assert_eq!(avx2.prefix_xor(x), expected);
            }
        }
    }

    #[test]
    fn every_byte_value_at_every_position() {
        for value in 0..=255u8 {
            for position in 0..64 {
                // The byte among neighbours that are each in a different class.
                let mut block: [u8; 64] = core::array::from_fn(|i| b"a\"\\{[}]\x01 \xff"[i % 10]);
                block[position] = value;
                let expected = classify_plain(&block);
                assert_eq!(both(Swar, &block), expected, "{value:#x} at {position}");
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                assert_eq!(both(Sse2, &block), expected, "{value:#x} at {position}");
                #[cfg(all(target_arch = "x86_64", feature = "std"))]
                if let Some(avx2) = Avx2::detect() {
                    assert_eq!(both(avx2, &block), expected, "{value:#x} at {position}");
                }
            }
        }
    }
}
