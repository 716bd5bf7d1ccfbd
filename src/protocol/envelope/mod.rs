//! The envelope reader: finds the top-level `op`, `s`, `t` and `d` of a gateway message
//! without building a JSON tree.
//!
//! Keys may come in any order, and `d` may itself contain keys named `op`, `s` or `t`: the
//! reader walks the top-level object token by token and skips nested values structurally
//! (strings with escapes, nesting), so it never confuses a nested key with a top-level one.
//! `d` is returned as raw JSON text for the application to parse with the model it likes.
//!
//! Speed: the reader is on every message's path. The top level is read from indices into
//! the bytes, with a fast path for Discord's own `{"t","s","op","d"}` form; nested values,
//! `d` above all, are skipped 64 bytes at a time with SIMD bit masks (`skip`, with the
//! byte classification in `classify`), so the cost per byte is near that of one pass
//! over the bytes rather than one decision per token.

use thiserror::Error;

mod classify;
mod discord_form;
mod salvage;
mod skip;

pub use salvage::{salvage_envelope, Salvage};

/// The top-level fields of one gateway message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The `op` field.
    pub op: u64,
    /// The `s` field: the dispatch sequence number (`None` when null or absent).
    pub sequence: Option<u64>,
    /// The `t` field: the dispatch event name, as written between the quotes (`None` when
    /// null or absent).
    pub event_name: Option<&'a str>,
    /// The `d` field as raw JSON text (`None` when absent; `Some("null")` when null). An
    /// object or array is delimited exactly, but only its strings and bracket balance are
    /// checked (see [`read_envelope`]).
    pub data: Option<&'a str>,
}

/// Why a message could not be read as a gateway envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The text is not one well-formed JSON object.
    #[error("malformed JSON at byte {offset}: {what}")]
    Malformed {
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected or found.
        what: &'static str,
    },
    /// The object has no `op` field.
    #[error("the message has no \"op\" field")]
    MissingOpcode,
    /// A top-level field has the wrong type (e.g. a string `op`).
    #[error("the top-level field \"{field}\" has an invalid value")]
    InvalidField {
        /// The field name.
        field: &'static str,
    },
    /// A top-level field appears twice.
    #[error("the top-level field \"{field}\" appears twice")]
    DuplicateField {
        /// The field name.
        field: &'static str,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// How deep objects and arrays may nest inside a message.
pub const MAX_DEPTH: usize = 128;

/// Reads the envelope of one JSON gateway message.
///
/// What is checked, in one pass that builds nothing and allocates nothing:
///
/// - the top-level object fully: its syntax, and `op`, `s` and `t` as described on
///   [`Envelope`] (keys in any order, whitespace anywhere);
/// - scalar values (`"d": null`, a number, a string) fully;
/// - an object or array value (`d` above all) only as far as finding where it ends needs:
///   its strings (closed, valid escapes, no control characters) and its brackets (they
///   balance, at most [`MAX_DEPTH`] deep). The tokens between them are not checked: the
///   parser the application runs on [`Envelope::data`] reports those. For valid JSON the
///   value ends exactly where a JSON parser says, so a key nested in `d` is never taken
///   for a top-level one.
///
/// Skipping `d` this way runs 64 bytes at a time with SIMD where the CPU has it (SSE2 on
/// every x86-64, AVX2 when detected at run time with `std`), and the result is the same
/// on every CPU.
pub fn read_envelope(text: &str) -> Result<Envelope<'_>, EnvelopeError> {
    skip::prefetch_start(text.as_bytes());
    match discord_form::read(text) {
        Some(envelope) => Ok(envelope),
        None => read_any_form(text),
    }
}

/// Any valid form: keys in any order, absent or `null` fields, whitespace anywhere.
fn read_any_form(text: &str) -> Result<Envelope<'_>, EnvelopeError> {
    let bytes = text.as_bytes();
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return Err(malformed(i, "expected '{'"));
    }
    i = skip_ws(bytes, i + 1);
    let mut op = None;
    let mut sequence = None;
    let mut seen_s = false;
    let mut event_name = None;
    let mut seen_t = false;
    let mut data = None;
    if bytes.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if bytes.get(i) != Some(&b'"') {
                return Err(malformed(i, "expected a string"));
            }
            let key_start = i + 1;
            i = skip_string(bytes, key_start)?;
            let key = &bytes[key_start..i - 1];
            i = skip_ws(bytes, i);
            if bytes.get(i) != Some(&b':') {
                return Err(malformed(i, "expected ':'"));
            }
            i = skip_ws(bytes, i + 1);
            match key {
                b"op" => {
                    if op.is_some() {
                        return Err(EnvelopeError::DuplicateField { field: "op" });
                    }
                    let (value, end) = unsigned(bytes, i, "op")?;
                    op = Some(value);
                    i = end;
                }
                b"s" => {
                    if core::mem::replace(&mut seen_s, true) {
                        return Err(EnvelopeError::DuplicateField { field: "s" });
                    }
                    (sequence, i) = read_sequence(bytes, i)?;
                }
                b"t" => {
                    if core::mem::replace(&mut seen_t, true) {
                        return Err(EnvelopeError::DuplicateField { field: "t" });
                    }
                    (event_name, i) = read_event_name(text, i)?;
                }
                b"d" => {
                    if data.is_some() {
                        return Err(EnvelopeError::DuplicateField { field: "d" });
                    }
                    let end = skip_value(bytes, i)?;
                    data = Some(&text[i..end]);
                    i = end;
                }
                _ => i = skip_value(bytes, i)?,
            }
            i = skip_ws(bytes, i);
            match bytes.get(i) {
                Some(b',') => i = skip_ws(bytes, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err(malformed(i, "expected ',' or '}'")),
            }
        }
    }
    if skip_ws(bytes, i) != bytes.len() {
        return Err(malformed(i, "trailing characters after the object"));
    }
    Ok(Envelope {
        op: op.ok_or(EnvelopeError::MissingOpcode)?,
        sequence,
        event_name,
        data,
    })
}

/// `t` at `i`: `null` or a string, returned as written between the quotes; and the index
/// after it.
#[inline(always)]
fn read_event_name(text: &str, i: usize) -> Result<(Option<&str>, usize), EnvelopeError> {
    let bytes = text.as_bytes();
    if is_null(bytes, i) {
        return Ok((None, i + 4));
    }
    if bytes.get(i) != Some(&b'"') {
        return Err(EnvelopeError::InvalidField { field: "t" });
    }
    let end = skip_string(bytes, i + 1)?;
    Ok((Some(&text[i + 1..end - 1]), end))
}

/// `s` at `i`: `null` or a non-negative integer; and the index after it.
#[inline(always)]
fn read_sequence(bytes: &[u8], i: usize) -> Result<(Option<u64>, usize), EnvelopeError> {
    if is_null(bytes, i) {
        return Ok((None, i + 4));
    }
    let (value, end) = unsigned(bytes, i, "s")?;
    Ok((Some(value), end))
}

#[cold]
#[inline(never)]
fn malformed(offset: usize, what: &'static str) -> EnvelopeError {
    EnvelopeError::Malformed { offset, what }
}

/// `0x0101..01`: one in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// `0x8080..80`: the high bit of every byte of a word.
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The eight bytes at `i` as a little-endian word (byte `i` lowest), if there are eight.
#[inline(always)]
fn word_at(bytes: &[u8], i: usize) -> Option<u64> {
    let chunk: &[u8; 8] = bytes.get(i..)?.first_chunk()?;
    Some(u64::from_le_bytes(*chunk))
}

/// The high bit of each byte of `w` that ends a run of plain string bytes: `"`, `\` or a
/// control character (below 0x20). Bits above the lowest set one may be spurious (borrows),
/// so only the lowest is meaningful.
#[inline(always)]
fn string_stops(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    (quote | backslash | control) & HIGHS
}

/// Skips `' '`, `\t`, `\n`, `\r` from `i`.
#[inline(always)]
fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(i) {
        i += 1;
    }
    i
}

#[inline(always)]
fn is_null(bytes: &[u8], i: usize) -> bool {
    starts_with(bytes, i, b"null")
}

/// Whether `literal` is at `i`. Comparing fixed-size arrays compiles to a few integer
/// compares, where comparing slices may call `memcmp`.
#[inline(always)]
fn starts_with<const N: usize>(bytes: &[u8], i: usize, literal: &[u8; N]) -> bool {
    bytes
        .get(i..)
        .and_then(<[u8]>::first_chunk::<N>)
        .is_some_and(|found| found == literal)
}

/// The index after `literal` if it is at `i`.
#[inline(always)]
fn expect<const N: usize>(bytes: &[u8], i: usize, literal: &[u8; N]) -> Option<usize> {
    starts_with(bytes, i, literal).then_some(i + N)
}

/// Skips a string body from `i` (just after the opening quote) through the closing quote;
/// returns the index after it. Eight bytes at a time while no quote, backslash or control
/// character is in sight. (Sixteen at a time measured slower on these frames: most keys
/// and values end within the first word or two.)
#[inline(always)]
fn skip_string(bytes: &[u8], mut i: usize) -> Result<usize, EnvelopeError> {
    loop {
        while let Some(w) = word_at(bytes, i) {
            let stops = string_stops(w);
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        // `i` is at a stop byte, or fewer than eight bytes remain.
        match bytes.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i = skip_escape(bytes, i + 1)?,
            Some(0..=0x1f) => return Err(malformed(i, "control character in a string")),
            Some(_) => i += 1,
            None => return Err(malformed(i, "unterminated string")),
        }
    }
}

/// Checks the escape after a backslash at `i - 1`; returns the index after it. The
/// one-letter escapes inline; `\u` (four hex digits) and errors out of line.
#[inline(always)]
fn skip_escape(bytes: &[u8], i: usize) -> Result<usize, EnvelopeError> {
    match bytes.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        _ => skip_unicode_escape(bytes, i),
    }
}

/// `\u` and four hex digits at `i`, or the error for an invalid escape.
#[cold]
#[inline(never)]
fn skip_unicode_escape(bytes: &[u8], i: usize) -> Result<usize, EnvelopeError> {
    match bytes.get(i) {
        Some(b'u') => match bytes.get(i + 1..i + 5) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => Ok(i + 5),
            _ => Err(malformed(i, "invalid \\u escape")),
        },
        _ => Err(malformed(i, "invalid escape")),
    }
}

/// Reads a non-negative integer with no sign, fraction or exponent (`op`, `s`); returns it
/// and the index after it.
#[inline]
fn unsigned(
    bytes: &[u8],
    start: usize,
    field: &'static str,
) -> Result<(u64, usize), EnvelopeError> {
    let mut i = start;
    let mut value: u64 = 0;
    while let Some(&d @ b'0'..=b'9') = bytes.get(i) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(EnvelopeError::InvalidField { field })?;
        i += 1;
    }
    let digits = i - start;
    if digits == 0 || (digits > 1 && bytes[start] == b'0') {
        return Err(EnvelopeError::InvalidField { field });
    }
    if matches!(bytes.get(i), Some(b'.' | b'e' | b'E')) {
        return Err(EnvelopeError::InvalidField { field });
    }
    Ok((value, i))
}

/// The high bit of each byte of `w` that is not an ASCII digit (exact for every byte).
/// XOR '0' makes a digit 0..=9; the high bit of `(b & 0x7f) + 0x76` is set exactly when
/// that is 10 or more (no carry leaves a byte), and `| b` flags bytes >= 0x80.
#[inline(always)]
fn non_digits(w: u64) -> u64 {
    let t = w ^ (ONES * u64::from(b'0'));
    (((t & !HIGHS) + ONES * 0x76) | t) & HIGHS
}

/// Skips ASCII digits from `i`, eight at a time where eight bytes remain.
#[inline(always)]
fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while let Some(w) = word_at(bytes, i) {
        let non_digits = non_digits(w);
        if non_digits != 0 {
            return i + (non_digits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(b'0'..=b'9') = bytes.get(i) {
        i += 1;
    }
    i
}

/// Skips a number at `start`; returns the index after it.
#[inline(always)]
fn skip_number(bytes: &[u8], start: usize) -> Result<usize, EnvelopeError> {
    let int_start = start + usize::from(bytes.get(start) == Some(&b'-'));
    let mut i = skip_digits(bytes, int_start);
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && bytes[int_start] == b'0') {
        return Err(malformed(start, "invalid number"));
    }
    if let Some(b'.' | b'e' | b'E') = bytes.get(i) {
        i = skip_number_tail(bytes, i)?;
    }
    Ok(i)
}

/// The fraction and exponent of a number, from `i` at `.`, `e` or `E`.
#[inline(never)]
fn skip_number_tail(bytes: &[u8], mut i: usize) -> Result<usize, EnvelopeError> {
    if bytes.get(i) == Some(&b'.') {
        let frac = i + 1;
        i = skip_digits(bytes, frac);
        if i == frac {
            return Err(malformed(i, "invalid number"));
        }
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = bytes.get(i) {
            i += 1;
        }
        let exp = i;
        i = skip_digits(bytes, exp);
        if i == exp {
            return Err(malformed(i, "invalid number"));
        }
    }
    Ok(i)
}

/// Skips `word` at `i`; returns the index after it.
#[inline(always)]
fn skip_literal<const N: usize>(
    bytes: &[u8],
    i: usize,
    word: &[u8; N],
) -> Result<usize, EnvelopeError> {
    expect(bytes, i, word).ok_or_else(|| malformed(i, "invalid literal"))
}

/// Skips one JSON value at `i`; returns the index after it. A scalar is checked fully; an
/// object or array is delimited by [`skip::skip_container`], which checks its strings and
/// nesting but not the tokens between them.
fn skip_value(bytes: &[u8], i: usize) -> Result<usize, EnvelopeError> {
    match bytes.get(i) {
        Some(b'{' | b'[') => skip::skip_container(bytes, i),
        Some(b'"') => skip_string(bytes, i + 1),
        Some(b'-' | b'0'..=b'9') => skip_number(bytes, i),
        Some(b'n') => skip_literal(bytes, i, b"null"),
        Some(b'f') => skip_literal(bytes, i, b"false"),
        Some(b't') => skip_literal(bytes, i, b"true"),
        _ => Err(malformed(i, "expected a value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_discord_key_order() {
        let e = read_envelope(
            r#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"op":7,"t":"x","s":[1,{"d":2}]}}"#,
        )
        .unwrap();
        assert_eq!(e.op, 0);
        assert_eq!(e.sequence, Some(42));
        assert_eq!(e.event_name, Some("MESSAGE_CREATE"));
        assert_eq!(e.data, Some(r#"{"op":7,"t":"x","s":[1,{"d":2}]}"#));
    }

    #[test]
    fn reads_data_first_order_with_nested_decoys() {
        let e = read_envelope(r#" { "d" : {"t":"FAKE","op":11,"s":9,"q":"\"}op\""} , "op" : 0 , "s" : 3 , "t" : "REAL" } "#)
            .unwrap();
        assert_eq!((e.op, e.sequence, e.event_name), (0, Some(3), Some("REAL")));
        assert_eq!(e.data, Some(r#"{"t":"FAKE","op":11,"s":9,"q":"\"}op\""}"#));
    }

    #[test]
    fn nulls_and_absent_fields() {
        let e = read_envelope(r#"{"t":null,"s":null,"op":11,"d":null}"#).unwrap();
        assert_eq!(
            (e.op, e.sequence, e.event_name, e.data),
            (11, None, None, Some("null"))
        );
        let e = read_envelope(r#"{"op":11}"#).unwrap();
        assert_eq!(e.data, None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"op":1"#,
            r#"{"op":"1"}"#,
            r#"{"op":1.5}"#,
            r#"{"op":01}"#,
            r#"{"d":{}}"#,
            r#"{"op":1,"op":2}"#,
            r#"{"op":1} x"#,
            r#"{"op":1,"d":"\q"}"#,
            r#"{"op":1,"d":tru}"#,
            r#"{"op":1,"s":-1}"#,
            r#"{"op":99999999999999999999999}"#,
            "{\"op\":1,\"d\":\"a\nb\"}",
        ] {
            assert!(read_envelope(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn strings_are_checked_at_every_offset_of_the_word_scan() {
        use alloc::format;
        use alloc::string::String;
        // A stop byte (quote, escape, control character) at each position of the 8-byte
        // scan, near and far from the end of the text.
        for len in 0..40 {
            let body: String = "é".repeat(len / 2) + &"a".repeat(len % 2);
            for tail in ["", "                    "] {
                let ok = format!(r#"{{"op":0,"d":"{body}"{tail}}}"#);
                let e = read_envelope(&ok).unwrap();
                assert_eq!(e.data.unwrap(), format!("\"{body}\""));
                for bad in ["\u{1}", "\n", "\u{1f}"] {
                    let text = format!(r#"{{"op":0,"d":"{body}{bad}x"{tail}}}"#);
                    assert!(read_envelope(&text).is_err(), "{text:?}");
                }
                for escape in [r#"\""#, r"\\", r"\/", r"\n", r"\u00e9", r"\uD83D\uDE00"] {
                    let text = format!(r#"{{"op":0,"d":"{body}{escape}{body}"{tail}}}"#);
                    assert!(read_envelope(&text).is_ok(), "{text:?}");
                }
                for escape in [r"\x", r"\u12", r"\u12g4", r"\"] {
                    let text = format!(r#"{{"op":0,"d":"{body}{escape}"{tail}}}"#);
                    assert!(read_envelope(&text).is_err(), "{text:?}");
                }
                let unterminated = format!(r#"{{"op":0,"d":"{body}"#);
                assert!(read_envelope(&unterminated).is_err());
            }
        }
    }

    #[test]
    fn numbers_are_checked_at_every_length() {
        use alloc::format;
        for digits in 1..30 {
            let n = "9".repeat(digits);
            for good in [
                n.clone(),
                format!("-{n}"),
                format!("{n}.5"),
                format!("{n}e10"),
                format!("{n}.0E-3"),
                format!("[{n},{n}]"),
            ] {
                let text = format!(r#"{{"op":0,"d":{good}}}"#);
                assert_eq!(read_envelope(&text).unwrap().data, Some(good.as_str()));
            }
            for bad in [
                format!("0{n}"),
                format!("{n}."),
                format!("{n}e"),
                "-".into(),
                format!("{n}x"),
                format!("+{n}"),
                format!("{n}.e1"),
            ] {
                let text = format!(r#"{{"op":0,"d":{bad}}}"#);
                assert!(read_envelope(&text).is_err(), "{text:?}");
            }
        }
    }

    #[test]
    fn whitespace_everywhere_and_empty_containers() {
        let e = read_envelope(
            " {\n\t\"t\" : \"X\" ,\r\n \"s\":1, \"op\" :0 , \"d\" : { \"a\" : [ ] , \"b\" : { } , \"c\" : [ 1 , true , false , null , \"x\" , { \"k\" : [ [ ] ] } ] } } \n",
        )
        .unwrap();
        assert_eq!(e.event_name, Some("X"));
        assert!(e.data.unwrap().ends_with("] } ] }"));
        for bad in [
            r#"{"op":0,"d":nul}"#,
            r#"{"op":0,"d":}"#,
            r#"{"op":0,"d":[]]}"#,
            r#"{"op":0,"d":{}}}"#,
            r#"{"op":0,"t":5}"#,
            r#"{"op":0,"s":"1"}"#,
            r#"{"op":0,"d":{}"#,
            r#"{"op":0,"d":[[]"#,
            r#"{"op":0,"d":{"a":"}"}"#,
            r#"{"op":0,"d":{"a":1} "x"}"#,
        ] {
            assert!(read_envelope(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn tokens_inside_a_container_value_are_left_to_its_parser() {
        // The reader delimits `d` (strings and bracket balance) but does not check the
        // tokens between brackets, nor which kind of bracket closes which: the parser the
        // application runs on `d` reports these. The top-level fields around such a `d`
        // are still read exactly.
        for (text, data) in [
            (r#"{"op":0,"d":{"a":1,},"s":2}"#, r#"{"a":1,}"#),
            (r#"{"op":0,"d":[1 2],"s":2}"#, "[1 2]"),
            (r#"{"op":0,"d":{"a" 1},"s":2}"#, r#"{"a" 1}"#),
            (r#"{"op":0,"d":[true false x],"s":2}"#, "[true false x]"),
            (r#"{"op":0,"d":[{]},"s":2}"#, "[{]}"),
        ] {
            let e = read_envelope(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((e.op, e.sequence, e.data), (0, Some(2), Some(data)));
        }
    }

    #[test]
    fn strings_and_balance_inside_a_container_value_are_checked() {
        for (bad, offset) in [
            ("{\"op\":0,\"d\":{\"a\":\"x\ny\"}}", Some(19)),
            (r#"{"op":0,"d":{"a":\n}}"#, Some(17)),
            (r#"{"op":0,"d":{"a":"\q"}}"#, Some(19)),
            (r#"{"op":0,"d":{"a":"\u12x4"}}"#, Some(19)),
            (r#"{"op":0,"d":{"a":"x}}"#, None),
            (r#"{"op":0,"d":[[1]"#, None),
            (r#"{"op":0,"d":[1]]}"#, None),
        ] {
            match read_envelope(bad) {
                Err(EnvelopeError::Malformed { offset: at, .. }) => {
                    if let Some(offset) = offset {
                        assert_eq!(at, offset, "{bad}");
                    }
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn depth_limit_is_exact() {
        use alloc::string::String;
        let nest = |n: usize| {
            let mut s = String::from(r#"{"op":0,"d":"#);
            s.push_str(&"[".repeat(n));
            s.push_str(&"]".repeat(n));
            s.push('}');
            s
        };
        assert!(read_envelope(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(
            read_envelope(&nest(MAX_DEPTH + 1)),
            Err(EnvelopeError::TooDeep)
        );
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let mut s = alloc::string::String::from(r#"{"op":0,"d":"#);
        for _ in 0..100_000 {
            s.push('[');
        }
        assert_eq!(read_envelope(&s), Err(EnvelopeError::TooDeep));
    }
}
