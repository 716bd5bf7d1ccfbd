//! Discord's own envelope form, `{"t":…,"s":…,"op":…,"d":…}` with no whitespace: the form
//! of every message the gateway sends, read with word-sized compares and no decisions
//! about keys.
//!
//! Anything this path does not recognise (another key order, whitespace, an escaped event
//! name, a number of more than seven digits, any error at all) makes it give up with
//! `None`, and the general reader reads the text again from the start and reports what is
//! wrong. So this path only ever has to be right about what it accepts.

use super::{expect, non_digits, skip_value, string_stops, unsigned, word_at, Envelope, ONES};

/// Reads `text` if it is in Discord's form, else `None`.
#[inline(always)]
pub(super) fn read(text: &str) -> Option<Envelope<'_>> {
    let bytes = text.as_bytes();
    let (event_name, i) = event_name(text)?;
    let i = expect(bytes, i, b",\"s\":")?;
    let (sequence, i) = match bytes.get(i) {
        Some(b'n') => (None, expect(bytes, i, b"null")?),
        _ => {
            let (value, end) = short_unsigned(bytes, i, "s")?;
            (Some(value), end)
        }
    };
    let (op, i) = short_unsigned(bytes, expect(bytes, i, b",\"op\":")?, "op")?;
    let start = expect(bytes, i, b",\"d\":")?;
    let end = skip_value(bytes, start).ok()?;
    if bytes.get(end..) != Some(b"}") {
        return None;
    }
    Some(Envelope {
        op,
        sequence,
        event_name,
        data: text.get(start..end),
    })
}

/// `{"t":` and then `null` or a name with no escapes; returns the name and the index after
/// it.
#[inline(always)]
fn event_name(text: &str) -> Option<(Option<&str>, usize)> {
    let bytes = text.as_bytes();
    let i = expect(bytes, 0, b"{\"t\":")?;
    match bytes.get(i)? {
        b'n' => Some((None, expect(bytes, i, b"null")?)),
        b'"' => {
            let end = plain_string_end(bytes, i + 1)?;
            Some((Some(&text[i + 1..end]), end + 1))
        }
        _ => None,
    }
}

/// The index of the quote that closes the string whose body starts at `start`, if the
/// string has no escape or control character and closes within 32 bytes (every event name
/// Discord has does).
#[inline(always)]
fn plain_string_end(bytes: &[u8], start: usize) -> Option<usize> {
    for word in 0..4 {
        let at = start + 8 * word;
        // Only the lowest flag is exact, and only the lowest is used.
        let stops = string_stops(word_at(bytes, at)?);
        if stops != 0 {
            let i = at + (stops.trailing_zeros() / 8) as usize;
            return (bytes[i] == b'"').then_some(i);
        }
    }
    None
}

/// A non-negative integer without a leading zero at `i`, and the index after it. Up to
/// seven digits (every `op`, and `s` for the first ten million events of a session) are
/// read as one word; longer ones one digit at a time.
#[inline(always)]
fn short_unsigned(bytes: &[u8], i: usize, field: &'static str) -> Option<(u64, usize)> {
    match word_at(bytes, i).map(digits_value) {
        Some(Digits::Short(value, len)) => Some((value, i + len)),
        Some(Digits::Long) => unsigned(bytes, i, field).ok(),
        Some(Digits::Invalid) | None => None,
    }
}

/// What the low bytes of a word hold.
enum Digits {
    /// One to seven digits without a leading zero: their value and count.
    Short(u64, usize),
    /// Eight digits or more.
    Long,
    /// No digit, or a leading zero.
    Invalid,
}

/// The run of ASCII digits at the low end of `w` (little-endian: the first byte lowest).
#[inline(always)]
fn digits_value(w: u64) -> Digits {
    let len = (non_digits(w).trailing_zeros() / 8) as usize;
    if len == 8 {
        return Digits::Long;
    }
    if len == 0 || (len > 1 && w & 0xff == u64::from(b'0')) {
        return Digits::Invalid;
    }
    // Each byte XOR '0': a digit becomes its value.
    let t = w ^ (ONES * u64::from(b'0'));
    // The digits moved to the top bytes, zeros (leading zeros) below them; then pairs of
    // bytes, of 16-bit lanes and of 32-bit lanes are combined, most significant first.
    let d = t << (8 * (8 - len));
    let d = (d * 10 + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
    let d = (d * 100 + (d >> 16)) & 0x0000_ffff_0000_ffff;
    let d = (d * 10_000 + (d >> 32)) & 0xffff_ffff;
    Digits::Short(d, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn digits_in_a_word_match_a_plain_parse() {
        for len in 1..=8usize {
            for value in [
                0u64, 1, 7, 9, 10, 42, 99, 100, 12_345, 999_999, 1_000_000, 9_999_999, 12_345_678,
            ] {
                let text = format!("{value}");
                if text.len() != len {
                    continue;
                }
                for tail in [b',', b'}', b'.', b'e', b' ', 0x80, b'/', b':'] {
                    let mut word = [tail; 8];
                    word[..len].copy_from_slice(text.as_bytes());
                    let got = digits_value(u64::from_le_bytes(word));
                    match got {
                        Digits::Short(v, l) => assert_eq!((v, l), (value, len), "{text}"),
                        Digits::Long => assert_eq!(len, 8, "{text}"),
                        Digits::Invalid => panic!("{text} read as invalid"),
                    }
                }
            }
        }
        for bad in [
            *b",1234567",
            *b"0123456,",
            *b"00,,,,,,",
            *b"-1,,,,,,",
            *b"/0,,,,,,",
        ] {
            assert!(matches!(
                digits_value(u64::from_le_bytes(bad)),
                Digits::Invalid
            ));
        }
        assert!(matches!(
            digits_value(u64::from_le_bytes(*b"0,,,,,,,")),
            Digits::Short(0, 1)
        ));
        assert!(matches!(
            digits_value(u64::from_le_bytes(*b"12345678")),
            Digits::Long
        ));
    }

    #[test]
    fn every_seven_digit_boundary() {
        for value in (0..10_000_000u64).step_by(9_973).chain([9_999_999]) {
            let text = format!("{value},");
            let mut word = [b'}'; 8];
            word[..text.len()].copy_from_slice(text.as_bytes());
            assert!(matches!(
                digits_value(u64::from_le_bytes(word)),
                Digits::Short(v, l) if v == value && l == text.len() - 1
            ));
        }
    }
}
