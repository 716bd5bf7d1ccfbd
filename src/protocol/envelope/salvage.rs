//! Reading what can still be read of a message that [`read_envelope`](super::read_envelope)
//! rejected: the error path, never the fast one.
//!
//! A dispatch whose `d` holds an invalid escape or a raw control character (or whose top
//! level has such a fault elsewhere) is still, most of the time, a dispatch whose `t`, `s`
//! and `d` can be told apart. Dropping it would lose the event for good: the next dispatch
//! moves the session's sequence past it and no resume can replay it. So the machine asks
//! this reader what the message was, and delivers what it can.
//!
//! The reader walks the top-level object as the strict one does, but leniently:
//!
//! - in strings (keys and values, nested or not), a backslash escapes whatever byte follows
//!   and control characters are taken as they are; a string still has to close;
//! - a value other than `op`, `s` and `t` is skipped to the `,` or `}` that ends it at its
//!   level, counting brackets outside strings (any kind closes any kind, any depth);
//! - `op` and `s` must be a plain non-negative integer (or `s` null), `t` a string (or
//!   null): a field with another value, or given twice, is not read;
//! - the walk stops at the first fault it cannot step over (an unterminated string,
//!   brackets that never balance, a missing `:`), keeping the fields read before it.
//!
//! It allocates nothing and does not recurse. For a message the strict reader accepts, it
//! reads the same four fields.

use super::skip_ws;

/// The top-level fields that could be read from a message, each `None` when it was absent,
/// null, invalid, given twice, or past the point where reading had to stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Salvage<'a> {
    /// `op`.
    pub op: Option<u64>,
    /// `s`.
    pub sequence: Option<u64>,
    /// `t`, as written between the quotes.
    pub event_name: Option<&'a str>,
    /// `d`, as raw text (`Some` only when its end was found and, for an object or array,
    /// its brackets balance).
    pub data: Option<&'a str>,
}

/// One field's state during the walk.
#[derive(Clone, Copy)]
enum Field<T> {
    Absent,
    Read(T),
    /// Present but unreadable or given twice: never trusted.
    Spoiled,
}

impl<T> Field<T> {
    fn set(&mut self, value: Option<T>) {
        *self = match (&*self, value) {
            (Field::Absent, Some(value)) => Field::Read(value),
            _ => Field::Spoiled,
        };
    }

    fn get(self) -> Option<T> {
        match self {
            Field::Read(value) => Some(value),
            _ => None,
        }
    }
}

/// Reads what can be read of `text` (see the module docs). Never fails: what could not be
/// read is `None`.
pub fn salvage_envelope(text: &str) -> Salvage<'_> {
    let bytes = text.as_bytes();
    let mut op = Field::Absent;
    let mut sequence = Field::Absent;
    let mut event_name: Field<Option<&str>> = Field::Absent;
    let mut data = Field::Absent;
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) == Some(&b'{') {
        i = skip_ws(bytes, i + 1);
        while bytes.get(i) == Some(&b'"') {
            let Some(key_end) = lenient_string_end(bytes, i + 1) else {
                break;
            };
            let key = &bytes[i + 1..key_end - 1];
            i = skip_ws(bytes, key_end);
            if bytes.get(i) != Some(&b':') {
                break;
            }
            let start = skip_ws(bytes, i + 1);
            let end = lenient_value_end(bytes, start);
            let value = end.map(|end| text[start..end].trim_end_matches(is_json_ws));
            match key {
                b"op" => op.set(value.and_then(plain_unsigned)),
                b"s" => sequence.set(value.and_then(nullable_unsigned)),
                b"t" => event_name.set(value.and_then(nullable_name)),
                b"d" => data.set(value.filter(|v| !v.is_empty())),
                _ => {}
            }
            let Some(end) = end else {
                break;
            };
            i = end;
            if bytes.get(i) != Some(&b',') {
                break;
            }
            i = skip_ws(bytes, i + 1);
        }
    }
    Salvage {
        op: op.get(),
        sequence: sequence.get().flatten(),
        event_name: event_name.get().flatten(),
        data: data.get(),
    }
}

fn is_json_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The index after the quote that closes the string whose body starts at `i`; a backslash
/// escapes any byte. `None` if it never closes.
fn lenient_string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index where the value starting at `start` ends: the `,` or `}` that follows it at
/// the top level, outside strings and brackets. `None` if a string never closes, the
/// brackets never balance, or the text ends first.
fn lenient_value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    loop {
        match bytes.get(i) {
            // A value must be followed by what ends it: a scalar cut off by the end of the
            // text may have been longer.
            None => return None,
            Some(b'"') => i = lenient_string_end(bytes, i + 1)?,
            Some(b'{' | b'[') => {
                depth += 1;
                i += 1;
            }
            Some(b',') if depth == 0 => return Some(i),
            Some(b'}') if depth == 0 => return Some(i),
            Some(b'}' | b']') => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            Some(_) => i += 1,
        }
    }
}

/// A plain non-negative integer: digits only, no leading zero, no overflow.
fn plain_unsigned(value: &str) -> Option<u64> {
    let digits = value.as_bytes();
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return None;
    }
    value.parse().ok()
}

/// `null` (read, as `None`) or a plain non-negative integer.
fn nullable_unsigned(value: &str) -> Option<Option<u64>> {
    if value == "null" {
        return Some(None);
    }
    plain_unsigned(value).map(Some)
}

/// `null` (read, as `None`) or one string, returned as written between its quotes.
fn nullable_name(value: &str) -> Option<Option<&str>> {
    if value == "null" {
        return Some(None);
    }
    let body = value.strip_prefix('"')?;
    let end = lenient_string_end(body.as_bytes(), 0)?;
    (end == body.len()).then(|| Some(&body[..end - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope::read_envelope;

    #[test]
    fn a_bad_escape_inside_d_leaves_every_field_readable() {
        let s = salvage_envelope(r#"{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"a":"\q"}}"#);
        assert_eq!(
            s,
            Salvage {
                op: Some(0),
                sequence: Some(3),
                event_name: Some("MESSAGE_CREATE"),
                data: Some(r#"{"a":"\q"}"#),
            }
        );
        // A raw control character, d first, whitespace, a bad escape in a nested key.
        let s = salvage_envelope(
            "{ \"d\" : [\"a\u{1}b\",{\"\\x\":1}] , \"op\":0,\"s\":9,\"t\":\"X\" }",
        );
        assert_eq!(
            (s.op, s.sequence, s.event_name, s.data),
            (
                Some(0),
                Some(9),
                Some("X"),
                Some("[\"a\u{1}b\",{\"\\x\":1}]")
            )
        );
    }

    #[test]
    fn reading_stops_at_a_fault_it_cannot_step_over() {
        // Truncated inside d: t and s were read, d was not.
        let s = salvage_envelope(r#"{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"a":"x"#);
        assert_eq!(
            (s.op, s.sequence, s.event_name, s.data),
            (Some(0), Some(3), Some("MESSAGE_CREATE"), None)
        );
        // Brackets that never balance.
        let s = salvage_envelope(r#"{"s":4,"d":[[1],"op":0}"#);
        assert_eq!((s.sequence, s.data, s.op), (Some(4), None, None));
        // Not an object at all.
        assert_eq!(salvage_envelope("not json"), Salvage::default());
        assert_eq!(salvage_envelope(""), Salvage::default());
        assert_eq!(salvage_envelope("[1]"), Salvage::default());
    }

    #[test]
    fn doubtful_fields_are_not_read() {
        let s = salvage_envelope(r#"{"op":0,"s":3,"s":4,"t":"A","d":{}}"#);
        assert_eq!((s.op, s.sequence, s.event_name), (Some(0), None, Some("A")));
        let s = salvage_envelope(r#"{"op":"0","s":"3","t":5,"d":{}}"#);
        assert_eq!((s.op, s.sequence, s.event_name), (None, None, None));
        let s = salvage_envelope(r#"{"op":01,"s":-3,"t":"A" "B","d":}"#);
        assert_eq!(
            (s.op, s.sequence, s.event_name, s.data),
            (None, None, None, None)
        );
        let s = salvage_envelope(r#"{"op":0,"s":99999999999999999999999,"d":{}}"#);
        assert_eq!(s.sequence, None);
    }

    #[test]
    fn what_the_strict_reader_accepts_is_read_alike() {
        for text in [
            r#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"op":7,"t":"x","s":[1,{"d":2}]}}"#,
            r#" { "d" : {"t":"FAKE","op":11,"s":9,"q":"\"}op\""} , "op" : 0 , "s" : 3 , "t" : "REAL" } "#,
            r#"{"t":null,"s":null,"op":11,"d":null}"#,
            r#"{"op":11}"#,
            r#"{"op":10,"d":{"heartbeat_interval":41250},"x":[true,false,null,-1.5e3]}"#,
            r#"{"op":0,"d":"a\"b\\","s":1,"t":"A\u00e9"}"#,
            r#"{"op":9,"d":false }"#,
        ] {
            let strict = read_envelope(text).unwrap();
            let lenient = salvage_envelope(text);
            assert_eq!(lenient.op, Some(strict.op), "{text}");
            assert_eq!(lenient.sequence, strict.sequence, "{text}");
            assert_eq!(lenient.event_name, strict.event_name, "{text}");
            assert_eq!(lenient.data, strict.data, "{text}");
        }
    }
}
