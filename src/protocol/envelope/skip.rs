//! Skipping a nested object or array (a value the envelope does not look inside, `d` above
//! all) 64 bytes at a time, without a step per token.
//!
//! Each block is classified into bit masks ([`classify`](super::classify)), and the masks
//! are combined with integer arithmetic: backslash runs decide which quotes are escaped, a
//! prefix XOR of the remaining quotes gives which bytes are inside strings, and the
//! brackets outside strings are counted until the one that closes the value (blocks where
//! the value cannot end are counted whole, with no step per bracket). What this checks is
//! exactly what delimiting the value needs, and the syntax of strings:
//!
//! - brackets balance (every close has an open before it) and nest at most [`MAX_DEPTH`]
//!   deep; whether a `]` closes a `[` rather than a `{` is not checked;
//! - every string is closed; inside it, no control character, and every escape is one of
//!   JSON's (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u` and four hex digits);
//! - no backslash outside a string.
//!
//! The tokens between (commas, colons, numbers, literals) and the kinds of brackets are not
//! checked: whatever parses the value later reports those. For valid JSON the value's end
//! is always where a JSON parser puts it, so a top-level field is never mistaken for a
//! nested one.

#[cfg(all(target_arch = "x86_64", feature = "std"))]
use super::classify::Avx2;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use super::classify::Sse2;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
use super::classify::Swar;
use super::classify::{Kernel, RareMasks};
use super::{malformed, skip_escape, EnvelopeError, MAX_DEPTH};

/// How many cache lines [`prefetch_start`] asks for: most gateway messages fit.
const PREFETCH_LINES: usize = 8;

/// Asks the CPU to start loading the first [`PREFETCH_LINES`] cache lines of `bytes`
/// together, rather than meeting one miss after another (a text that has just been
/// received is usually in cache already; one that is not gains most; past those lines the
/// hardware prefetcher has seen the stream). Changes no result.
#[inline(always)]
pub(super) fn prefetch_start(bytes: &[u8]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    for line in 0..PREFETCH_LINES {
        Sse2::prefetch(bytes, 64 * line);
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let _ = bytes;
}

/// Skips the object or array whose opening bracket is at `start`; returns the index after
/// its closing bracket.
pub(super) fn skip_container(bytes: &[u8], start: usize) -> Result<usize, EnvelopeError> {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if let Some(avx2) = Avx2::detect() {
        // SAFETY: `avx2` exists only if this CPU has AVX2, PCLMULQDQ and POPCNT.
        #[allow(unsafe_code)]
        return unsafe { scan_avx2(avx2, bytes, start) };
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return scan(Sse2, bytes, start);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    return scan(Swar, bytes, start);
}

/// [`scan`] compiled for AVX2, so that the kernel's instructions are inlined into the loop.
///
/// # Safety
///
/// The CPU must have AVX2, PCLMULQDQ and POPCNT (which holding an [`Avx2`] proves).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
#[allow(unsafe_code)]
#[inline(never)]
#[target_feature(enable = "avx2,pclmulqdq,popcnt")]
unsafe fn scan_avx2(avx2: Avx2, bytes: &[u8], start: usize) -> Result<usize, EnvelopeError> {
    scan(avx2, bytes, start)
}

/// The block loop, with the given kernel.
#[inline(always)]
fn scan<K: Kernel>(kernel: K, bytes: &[u8], start: usize) -> Result<usize, EnvelopeError> {
    debug_assert!(matches!(bytes.get(start), Some(b'{' | b'[')));
    let mut scanner = Scanner::default();
    let mut at = start;
    while let Some(block) = bytes.get(at..).and_then(<[u8]>::first_chunk::<64>) {
        if let Some(end) = scanner.block(kernel, bytes, at, block, 0)? {
            return Ok(at + end + 1);
        }
        at += 64;
    }
    // Fewer than 64 bytes left.
    let rest = bytes.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Err(unterminated(bytes, start));
    }
    let mut padded = [b' '; 64];
    let (block, shift) = match bytes.last_chunk::<64>() {
        // The last 64 bytes of the text, which overlap the previous block: the bits of
        // what was scanned already are shifted out, and those past the end come in as
        // zeros, bytes of no class.
        Some(last) => (last, at + 64 - bytes.len()),
        // A text shorter than one block: padded with spaces, which are in no class.
        None => {
            padded[..rest.len()].copy_from_slice(rest);
            (&padded, 0)
        }
    };
    match scanner.block(kernel, bytes, at, block, shift as u32)? {
        Some(end) => Ok(at + end + 1),
        None => Err(unterminated(bytes, start)),
    }
}

/// The state carried from one block to the next.
#[derive(Default)]
struct Scanner {
    /// All ones when the previous block ended inside a string, else zero.
    in_string: u64,
    /// 1 when the previous block ended with an unescaped backslash, which escapes this
    /// block's first byte, else 0.
    escape_pending: u64,
    /// How many containers are open.
    depth: usize,
}

impl Scanner {
    /// Scans the block at `at`, whose bytes are `block` from byte `shift` on (`shift` is
    /// zero but for the last block, which may overlap the one before); returns the
    /// position in the block of the bracket that closes the value, if it is in this block.
    #[inline(always)]
    fn block<K: Kernel>(
        &mut self,
        kernel: K,
        bytes: &[u8],
        at: usize,
        block: &[u8; 64],
        shift: u32,
    ) -> Result<Option<usize>, EnvelopeError> {
        // Shifting right drops the bytes before `at`; the bits past the end of the text
        // come in as zeros, bytes of no class.
        let masks = kernel.classify(block);
        let mut quotes = masks.quote >> shift;
        let mut rare = RareMasks::default();
        let mut escaped = 0;
        if (masks.rare >> shift) | self.escape_pending != 0 {
            let found = kernel.classify_rare(block);
            rare = RareMasks {
                backslash: found.backslash >> shift,
                control: found.control >> shift,
            };
            escaped = self.escaped(rare.backslash);
            quotes &= !escaped;
        }
        // Bit i: an odd number of quotes at or before i, i.e. an opening quote or a byte
        // inside a string (closing quotes are clear).
        let strings = kernel.prefix_xor(quotes) ^ self.in_string;
        self.in_string = ((strings as i64) >> 63) as u64;

        let opens = (masks.open >> shift) & !strings;
        let closes = (masks.close >> shift) & !strings;
        let (open_count, close_count) = (opens.count_ones() as usize, closes.count_ones() as usize);
        let mut end = None;
        if close_count < self.depth && self.depth + open_count <= MAX_DEPTH {
            // Neither the end nor too deep a nesting can be in this block.
            self.depth = self.depth + open_count - close_count;
        } else {
            let (depth, found) = count_brackets(self.depth, opens, closes)?;
            self.depth = depth;
            end = found;
        }
        if rare.backslash | rare.control | escaped != 0 {
            // Bytes after the end belong to the envelope again: the checks stop there.
            let checked = end.map_or(u64::MAX, |i| u64::MAX >> (63 - i));
            check_rare(bytes, at, rare, escaped & checked, strings, checked)?;
        }
        Ok(end)
    }

    /// The bytes escaped by a backslash (the byte after each backslash that is not itself
    /// escaped), updating the carry into the next block; with no branch, whatever the runs
    /// of backslashes.
    ///
    /// In a run of backslashes, the first, third, fifth… escape the byte after them (the
    /// second, fourth… are escaped backslashes), so which bytes after the run's first one
    /// are escaped depends on whether the run starts at an even or an odd position. Adding
    /// the starts of the runs at odd positions to the backslashes carries each such run
    /// into the bit after its end (and a run that reaches bit 63 out of the word: the last
    /// backslash then escapes the next block's first byte), leaving the runs at even
    /// positions in place. Shifted left by one, that flips the even/odd pattern over the
    /// bytes after the runs that started at even positions.
    #[inline(always)]
    fn escaped(&mut self, backslashes: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        // A backslash escaped by the previous block's last one starts no escape.
        let backslashes = backslashes & !self.escape_pending;
        let after_backslash = backslashes << 1 | self.escape_pending;
        let run_starts = backslashes & !after_backslash;
        let (carried, overflow) = backslashes.overflowing_add(run_starts & !EVEN);
        self.escape_pending = u64::from(overflow);
        (EVEN ^ (carried << 1)) & after_backslash
    }
}

/// Counts a block's brackets one at a time from `depth`; returns the depth after them and
/// where the value ends, if it does in this block (the depth is then zero).
#[inline(always)]
fn count_brackets(
    mut depth: usize,
    opens: u64,
    closes: u64,
) -> Result<(usize, Option<usize>), EnvelopeError> {
    let mut brackets = opens | closes;
    while brackets != 0 {
        let i = brackets.trailing_zeros() as usize;
        brackets &= brackets - 1;
        if opens & (1 << i) != 0 {
            if depth == MAX_DEPTH {
                return Err(EnvelopeError::TooDeep);
            }
            depth += 1;
        } else {
            // The scan starts at an open bracket and stops when all are closed, so a close
            // always has an open container here.
            depth -= 1;
            if depth == 0 {
                return Ok((0, Some(i)));
            }
        }
    }
    Ok((depth, None))
}

/// Checks a block's rare bytes up to the end of the value (`checked`): no control
/// character inside a string, no backslash outside one, and a valid escape after each
/// backslash.
#[inline(never)]
fn check_rare(
    bytes: &[u8],
    at: usize,
    rare: RareMasks,
    mut escapes: u64,
    strings: u64,
    checked: u64,
) -> Result<(), EnvelopeError> {
    let bad_control = rare.control & strings & checked;
    let stray_backslash = rare.backslash & !strings & checked;
    if bad_control | stray_backslash != 0 {
        return Err(string_fault(at, bad_control, stray_backslash));
    }
    while escapes != 0 {
        let i = at + escapes.trailing_zeros() as usize;
        escapes &= escapes - 1;
        skip_escape(bytes, i)?;
    }
    Ok(())
}

/// The error for the first control character inside a string or backslash outside one.
#[cold]
#[inline(never)]
fn string_fault(at: usize, bad_control: u64, stray_backslash: u64) -> EnvelopeError {
    let i = (bad_control | stray_backslash).trailing_zeros() as usize;
    if bad_control & (1 << i) != 0 {
        malformed(at + i, "control character in a string")
    } else {
        malformed(at + i, "backslash outside a string")
    }
}

#[cold]
fn unterminated(bytes: &[u8], start: usize) -> EnvelopeError {
    let what = if bytes[start] == b'{' {
        "unterminated object"
    } else {
        "unterminated array"
    };
    malformed(bytes.len(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope::classify::Swar;
    use alloc::vec::Vec;

    /// The promise, a byte at a time: where the value at 0 ends, or `None` if its strings
    /// or brackets are broken.
    fn reference(bytes: &[u8]) -> Option<usize> {
        let (mut depth, mut in_string, mut i) = (0usize, false, 0);
        while i < bytes.len() {
            match (in_string, bytes[i]) {
                (true, b'"') => in_string = false,
                (true, b'\\') => {
                    match bytes.get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = bytes.get(i + 2..i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                    i += 1;
                }
                (true, 0..=0x1f) => return None,
                (true, _) => {}
                (false, b'"') => in_string = true,
                (false, b'\\') => return None,
                (false, b'{' | b'[') => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return None;
                    }
                }
                (false, b'}' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                (false, _) => {}
            }
            i += 1;
        }
        None
    }

    /// Which bytes the backslashes of a word escape, a bit at a time.
    fn escaped_plain(backslashes: u64, carry: u64) -> (u64, u64) {
        let (mut escaped, mut pending) = (0, carry == 1);
        for i in 0..64 {
            if pending {
                escaped |= 1 << i;
                pending = false;
            } else if backslashes & (1 << i) != 0 {
                pending = true;
            }
        }
        (escaped, u64::from(pending))
    }

    #[test]
    fn escaped_bytes_agree_with_a_plain_walk() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut words = Vec::new();
        // Every pattern of 16 bits, at the bottom, the top and across the middle.
        for pattern in 0..=u64::from(u16::MAX) {
            words.extend([pattern, pattern << 48, pattern << 24, !pattern]);
        }
        // Random words, sparse and dense.
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let y = x.rotate_left(17);
            words.extend([x, x & y, x | y]);
        }
        for word in words {
            for carry in [0, 1] {
                let mut scanner = Scanner {
                    escape_pending: carry,
                    ..Scanner::default()
                };
                let escaped = scanner.escaped(word);
                assert_eq!(
                    (escaped, scanner.escape_pending),
                    escaped_plain(word, carry),
                    "{word:#066b} carry {carry}"
                );
            }
        }
    }

    /// Every kernel this machine has, through the same loop `skip_container` runs.
    fn every_kernel(bytes: &[u8]) -> Vec<Result<usize, EnvelopeError>> {
        let mut results = Vec::from([scan(Swar, bytes, 0)]);
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        results.push(scan(Sse2, bytes, 0));
        #[cfg(all(target_arch = "x86_64", feature = "std"))]
        if let Some(avx2) = Avx2::detect() {
            // SAFETY: `avx2` exists only if this CPU has what `scan_avx2` needs.
            #[allow(unsafe_code)]
            results.push(unsafe { scan_avx2(avx2, bytes, 0) });
        }
        results.push(skip_container(bytes, 0));
        results
    }

    /// Random texts over the bytes that matter, with strings, escapes and brackets across
    /// block boundaries: every kernel finds the end the reference finds, or fails where it
    /// fails, with the same error.
    #[test]
    fn kernels_agree_with_the_reference() {
        const ALPHABET: &[u8] = b"\"\\{}[]a \x01unt0:,";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..20_000 {
            let len = 1 + (next() % 300) as usize;
            let mut text = Vec::with_capacity(len);
            text.push(if case % 2 == 0 { b'{' } else { b'[' });
            // Mostly plain bytes, so that values often close.
            while text.len() < len {
                let r = next();
                text.push(if r % 3 == 0 {
                    ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                } else {
                    b'a'
                });
            }
            let expected = reference(&text);
            for (kernel, result) in every_kernel(&text).into_iter().enumerate() {
                assert_eq!(
                    result.ok(),
                    expected,
                    "kernel {kernel} on {:?}",
                    alloc::string::String::from_utf8_lossy(&text)
                );
            }
            let results = every_kernel(&text);
            assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");
        }
    }

    #[test]
    fn ends_and_faults_at_every_block_offset() {
        use alloc::format;
        for pad in 0..140 {
            let body = "a".repeat(pad);
            for (text, expected) in [
                (format!(r#"{{"k":"{body}"}}tail"#), Some(pad + 8)),
                (format!(r#"[{body}]"#), Some(pad + 2)),
                (format!(r#"{{"k":"{body}\"}}"}}x"#), Some(pad + 11)),
                (format!(r#"{{"k":"{body}\\"}}x"#), Some(pad + 10)),
                (format!("{{\"k\":\"{body}\u{1}\"}}"), None),
                (format!(r#"{{"k":{body}\}}"#), None),
                (format!(r#"{{"k":"{body}\x"}}"#), None),
                (format!(r#"{{"k":"{body}\u00e9\uD83D"}}"#), Some(pad + 20)),
                (format!(r#"{{"k":"{body}}}"#), None),
            ] {
                assert_eq!(reference(text.as_bytes()), expected, "{text}");
                for result in every_kernel(text.as_bytes()) {
                    assert_eq!(result.ok(), expected, "{text}");
                }
            }
        }
    }
}
