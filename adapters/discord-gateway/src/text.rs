//! [`SharedStr`]: UTF-8 text in shared, reference-counted memory, the type of a dispatch's
//! name and `d`.

use std::fmt;
use std::ops::{Deref, Range};

use bytes::Bytes;

/// Immutable UTF-8 text backed by [`Bytes`]: cloning and slicing share the memory instead
/// of copying it.
///
/// A dispatch's `d` received as a plain text message is a slice of the message the
/// WebSocket library read, so handing it to the application costs no copy and no
/// allocation. Holding one keeps that message's memory alive: parse `d` and drop it (or
/// copy it with `to_string`) rather than keeping many for a long time.
///
/// It dereferences to `&str`, so `serde_json::from_str(&event.data)` works as is.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Bytes);

impl SharedStr {
    /// Text with a `'static` lifetime, without copying it.
    pub const fn from_static(text: &'static str) -> Self {
        SharedStr(Bytes::from_static(text.as_bytes()))
    }

    /// A copy of `text` in memory of its own (one allocation, none if empty).
    pub fn copy_from(text: &str) -> Self {
        SharedStr(Bytes::copy_from_slice(text.as_bytes()))
    }

    /// The text.
    #[inline]
    #[allow(unsafe_code)]
    pub fn as_str(&self) -> &str {
        // SAFETY: a `SharedStr` is only ever built from a `str`, a `String`, tungstenite's
        // UTF-8-checked `Utf8Bytes`, a text message tokio-websockets checked (see
        // `from_websocket_text`), or a range of another `SharedStr` that `slice` checked
        // falls on char boundaries: its bytes are always UTF-8. (Checking them again on
        // every access would cost a pass over `d` each time the application reads it.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The text's bytes, shared.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The underlying [`Bytes`].
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// The part of the text in `range`, sharing its memory; `None` if `range` is out of
    /// bounds or does not fall on char boundaries.
    pub fn slice(&self, range: Range<usize>) -> Option<SharedStr> {
        let text = self.as_str();
        if range.start > range.end
            || !text.is_char_boundary(range.start)
            || !text.is_char_boundary(range.end)
        {
            return None;
        }
        Some(SharedStr(self.0.slice(range)))
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        SharedStr(Bytes::from(text.into_bytes()))
    }
}

impl From<&'static str> for SharedStr {
    fn from(text: &'static str) -> Self {
        SharedStr::from_static(text)
    }
}

impl From<tungstenite::Utf8Bytes> for SharedStr {
    /// Takes over a text message's bytes (no copy).
    fn from(text: tungstenite::Utf8Bytes) -> Self {
        SharedStr(Bytes::from(text))
    }
}

impl SharedStr {
    /// Takes over a text message's bytes (no copy); `None` for any other kind of message.
    /// tokio-websockets checks a text message's UTF-8 as it reads it (with simdutf8) and
    /// remembers that it did, so `as_text` checks nothing again here: it only proves it.
    #[cfg(feature = "tokio")]
    pub(crate) fn from_websocket_text(message: tokio_websockets::Message) -> Option<SharedStr> {
        message.as_text()?;
        Some(SharedStr(Bytes::from(message.into_payload())))
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_and_check_boundaries() {
        let text = SharedStr::from(String::from(r#"{"t":"é","d":{}}"#));
        let d = text.slice(14..16).expect("in bounds");
        assert_eq!(d, "{}");
        assert_eq!(d.as_bytes().as_ptr(), text.as_bytes()[14..].as_ptr());
        // "é" is two bytes, starting at 6: a range ending inside it is refused.
        assert!(text.slice(6..7).is_none());
        assert!(text.slice(3..99).is_none());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = text.slice(5..4);
        assert!(reversed.is_none());
        assert_eq!(text.slice(6..8).as_deref(), Some("é"));
    }

    #[test]
    fn conversions() {
        let t = SharedStr::from(tungstenite::Utf8Bytes::from_static("hello"));
        assert_eq!(t.to_string(), "hello");
        assert_eq!(format!("{t:?}"), "\"hello\"");
        assert_eq!(SharedStr::copy_from("x"), SharedStr::from_static("x"));
        assert_eq!(String::from(SharedStr::from("y")), "y");
    }
}
