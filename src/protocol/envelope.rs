//! The envelope reader: finds the top-level `op`, `s`, `t` and `d` of a gateway message
//! without building a JSON tree.
//!
//! Keys may come in any order, and `d` may itself contain keys named `op`, `s` or `t`: the
//! reader walks the top-level object token by token and skips nested values structurally
//! (strings with escapes, nesting), so it never confuses a nested key with a top-level one.
//! `d` is returned as raw JSON text for the application to parse with the model it likes.

use thiserror::Error;

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
    /// The `d` field as raw JSON text (`None` when absent; `Some("null")` when null).
    pub data: Option<&'a str>,
}

/// Why a message could not be read as a gateway envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
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
pub fn read_envelope(text: &str) -> Result<Envelope<'_>, EnvelopeError> {
    let bytes = text.as_bytes();
    let mut r = Reader { bytes, pos: 0 };
    r.skip_ws();
    r.expect(b'{', "expected '{'")?;
    let mut op = None;
    let mut sequence = None;
    let mut seen_s = false;
    let mut event_name = None;
    let mut seen_t = false;
    let mut data = None;
    r.skip_ws();
    if r.peek() == Some(b'}') {
        r.pos += 1;
    } else {
        loop {
            r.skip_ws();
            let key = r.string()?;
            r.skip_ws();
            r.expect(b':', "expected ':'")?;
            r.skip_ws();
            match key {
                "op" => {
                    if op.is_some() {
                        return Err(EnvelopeError::DuplicateField { field: "op" });
                    }
                    op = Some(r.unsigned("op")?);
                }
                "s" => {
                    if core::mem::replace(&mut seen_s, true) {
                        return Err(EnvelopeError::DuplicateField { field: "s" });
                    }
                    sequence = if r.null() {
                        None
                    } else {
                        Some(r.unsigned("s")?)
                    };
                }
                "t" => {
                    if core::mem::replace(&mut seen_t, true) {
                        return Err(EnvelopeError::DuplicateField { field: "t" });
                    }
                    event_name = if r.null() {
                        None
                    } else if r.peek() == Some(b'"') {
                        Some(r.string()?)
                    } else {
                        return Err(EnvelopeError::InvalidField { field: "t" });
                    };
                }
                "d" => {
                    if data.is_some() {
                        return Err(EnvelopeError::DuplicateField { field: "d" });
                    }
                    let start = r.pos;
                    r.skip_value()?;
                    data = Some(&text[start..r.pos]);
                }
                _ => r.skip_value()?,
            }
            r.skip_ws();
            match r.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(r.error_before("expected ',' or '}'")),
            }
        }
    }
    r.skip_ws();
    if r.pos != bytes.len() {
        return Err(r.error("trailing characters after the object"));
    }
    Ok(Envelope {
        op: op.ok_or(EnvelopeError::MissingOpcode)?,
        sequence,
        event_name,
        data,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn error(&self, what: &'static str) -> EnvelopeError {
        EnvelopeError::Malformed {
            offset: self.pos,
            what,
        }
    }

    fn error_before(&self, what: &'static str) -> EnvelopeError {
        EnvelopeError::Malformed {
            offset: self.pos.saturating_sub(1),
            what,
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), EnvelopeError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `null` if it is next.
    fn null(&mut self) -> bool {
        if self.bytes[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    fn unsigned(&mut self, field: &'static str) -> Result<u64, EnvelopeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .ok_or(EnvelopeError::InvalidField { field })?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && self.bytes[start] == b'0') {
            return Err(EnvelopeError::InvalidField { field });
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(EnvelopeError::InvalidField { field });
        }
        Ok(value)
    }

    /// Reads a string and returns its raw contents (escapes not decoded).
    fn string(&mut self) -> Result<&'a str, EnvelopeError> {
        self.expect(b'"', "expected a string")?;
        let start = self.pos;
        self.skip_string_body()?;
        let raw = &self.bytes[start..self.pos - 1];
        // The input is a `&str` and quotes are ASCII, so the slice is valid UTF-8.
        core::str::from_utf8(raw).map_err(|_| self.error("invalid UTF-8"))
    }

    /// Skips the rest of a string whose opening quote was consumed, through the closing quote.
    fn skip_string_body(&mut self) -> Result<(), EnvelopeError> {
        loop {
            let rest = &self.bytes[self.pos..];
            let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.bytes.len();
                return Err(self.error("unterminated string"));
            };
            if rest[..i].iter().any(|&b| b < 0x20) {
                return Err(self.error("control character in a string"));
            }
            self.pos += i + 1;
            if rest[i] == b'"' {
                return Ok(());
            }
            match self.next() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                Some(b'u') => {
                    for _ in 0..4 {
                        match self.next() {
                            Some(h) if h.is_ascii_hexdigit() => {}
                            _ => return Err(self.error_before("invalid \\u escape")),
                        }
                    }
                }
                _ => return Err(self.error_before("invalid escape")),
            }
        }
    }

    fn skip_number(&mut self) -> Result<(), EnvelopeError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let int_len = self.pos - int_start;
        if int_len == 0 || (int_len > 1 && self.bytes[int_start] == b'0') {
            self.pos = start;
            return Err(self.error("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let frac = self.pos;
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
            if self.pos == frac {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            let exp = self.pos;
            while let Some(b'0'..=b'9') = self.peek() {
                self.pos += 1;
            }
            if self.pos == exp {
                return Err(self.error("invalid number"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), EnvelopeError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// Skips one JSON value, checking its structure, without recursion.
    fn skip_value(&mut self) -> Result<(), EnvelopeError> {
        // One bit per open container: 1 = object, 0 = array.
        let mut stack: u128 = 0;
        let mut depth = 0usize;
        loop {
            // Expecting a value.
            self.skip_ws();
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    let is_object = self.peek() == Some(b'{');
                    self.pos += 1;
                    if depth == MAX_DEPTH {
                        return Err(EnvelopeError::TooDeep);
                    }
                    stack = (stack << 1) | u128::from(is_object);
                    depth += 1;
                    self.skip_ws();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        stack >>= 1;
                        depth -= 1;
                    } else {
                        if is_object {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.pos += 1;
                    self.skip_string_body()?;
                }
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.error("expected a value")),
            }
            // A value ended: close containers or move to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.skip_ws();
                let in_object = stack & 1 == 1;
                match (self.next(), in_object) {
                    (Some(b','), true) => {
                        self.skip_ws();
                        self.member_key()?;
                        break;
                    }
                    (Some(b','), false) => break,
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        stack >>= 1;
                        depth -= 1;
                    }
                    _ => return Err(self.error_before("expected ',' or the end of a container")),
                }
            }
        }
    }

    /// Reads `"key" :` inside an object.
    fn member_key(&mut self) -> Result<(), EnvelopeError> {
        self.expect(b'"', "expected a key")?;
        self.skip_string_body()?;
        self.skip_ws();
        self.expect(b':', "expected ':'")
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
            r#"{"op":1,"d":[1,]}"#,
            r#"{"op":1,"d":{"a"}}"#,
            r#"{"op":1} x"#,
            r#"{"op":1,"d":"\q"}"#,
            r#"{"op":1,"d":tru}"#,
            r#"{"op":1,"s":-1}"#,
            r#"{"op":99999999999999999999999}"#,
            r#"{"op":1,"d":[1 2]}"#,
            "{\"op\":1,\"d\":\"a\nb\"}",
        ] {
            assert!(read_envelope(bad).is_err(), "accepted {bad:?}");
        }
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
