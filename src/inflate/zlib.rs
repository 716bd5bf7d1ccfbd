//! zlib-stream and payload compression: flate2 on its pure-Rust zlib-rs backend.
//!
//! - zlib-stream: one inflate context for the whole connection. A message is complete when the
//!   compressed bytes received since the previous message end with `00 00 ff ff` (the sync
//!   flush marker); it is then inflated with a sync flush. A message that arrives in one
//!   WebSocket message (the common case) is inflated straight from the input; pieces of a
//!   split message are buffered, up to [`Limits::max_buffered_compressed`] bytes.
//! - Payload compression: every binary message is a complete, standalone zlib stream; the
//!   context is reset (allocation kept) before each one.

use alloc::vec::Vec;

use flate2::{Decompress, FlushDecompress, Status};

use super::{grow_output, InflateError};
use crate::config::Limits;

/// The four bytes that end every zlib-stream message (an empty stored block: sync flush).
const SYNC_FLUSH_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Heap held by flate2's zlib-rs inflate state once it has inflated data: the state itself and
/// its 32 KiB window (with zlib-rs' padding). Measured with a counting allocator
/// (`tests/inflate_alloc.rs` checks it stays accurate).
pub(super) const INFLATE_STATE_BYTES: usize = 47_552;

/// Which zlib framing a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `compress=zlib-stream`.
    Stream,
    /// Identify `compress: true`.
    Payload,
}

/// One connection's zlib state.
pub(super) struct ZlibInflater {
    mode: Mode,
    inflate: Decompress,
    /// Pieces of a zlib-stream message that has not ended yet. Empty between messages; its
    /// capacity is kept.
    buffer: Vec<u8>,
    max_message_size: usize,
    max_buffered_compressed: usize,
}

impl core::fmt::Debug for ZlibInflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZlibInflater")
            .field("mode", &self.mode)
            .field("total_in", &self.inflate.total_in())
            .field("total_out", &self.inflate.total_out())
            .field("buffered", &self.buffer.len())
            .field("max_message_size", &self.max_message_size)
            .field("max_buffered_compressed", &self.max_buffered_compressed)
            .finish()
    }
}

impl ZlibInflater {
    fn new(mode: Mode, limits: &Limits) -> Self {
        ZlibInflater {
            mode,
            inflate: Decompress::new(true),
            buffer: Vec::new(),
            max_message_size: limits.max_message_size,
            max_buffered_compressed: limits.max_buffered_compressed,
        }
    }

    /// A zlib-stream context.
    pub(super) fn stream(limits: &Limits) -> Self {
        Self::new(Mode::Stream, limits)
    }

    /// A payload-compression context.
    pub(super) fn payload(limits: &Limits) -> Self {
        Self::new(Mode::Payload, limits)
    }

    pub(super) fn reset(&mut self) {
        self.inflate.reset(true);
        self.buffer.clear();
    }

    pub(super) fn heap_bytes(&self) -> usize {
        INFLATE_STATE_BYTES + self.buffer.capacity()
    }

    /// `out` is empty.
    pub(super) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<bool, InflateError> {
        match self.mode {
            Mode::Payload => {
                self.inflate.reset(true);
                inflate(&mut self.inflate, input, out, self.max_message_size, true)?;
                Ok(true)
            }
            Mode::Stream if self.buffer.is_empty() && input.ends_with(&SYNC_FLUSH_SUFFIX) => {
                // The common case: a whole message, inflated without a copy.
                inflate(&mut self.inflate, input, out, self.max_message_size, false)?;
                Ok(true)
            }
            Mode::Stream => {
                if self.buffer.len().saturating_add(input.len()) > self.max_buffered_compressed {
                    self.buffer.clear();
                    return Err(InflateError::BufferTooLarge {
                        limit: self.max_buffered_compressed,
                    });
                }
                self.buffer.extend_from_slice(input);
                if !self.buffer.ends_with(&SYNC_FLUSH_SUFFIX) {
                    return Ok(false);
                }
                let result = inflate(
                    &mut self.inflate,
                    &self.buffer,
                    out,
                    self.max_message_size,
                    false,
                );
                self.buffer.clear();
                result.map(|()| true)
            }
        }
    }
}

/// Inflates all of `input` into the empty `out` with a sync flush, stopping with an error as
/// soon as the output passes `limit` bytes.
///
/// `whole_stream`: `input` is one complete zlib stream (payload compression), which must end
/// exactly at the end of `input`. Otherwise `input` continues the connection's stream, and the
/// message is done when all of it is consumed and the inflater has room left (everything it
/// could produce is out).
fn inflate(
    inflate: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    whole_stream: bool,
) -> Result<(), InflateError> {
    loop {
        if out.len() == out.capacity() {
            grow_output(out, limit)?;
        }
        let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        // Both deltas are bounded by the slices' lengths, so they fit in usize.
        let consumed = (inflate.total_in() - in_before) as usize;
        let produced = (inflate.total_out() - out_before) as usize;
        input = input.get(consumed..).ok_or(InflateError::Corrupt)?;
        if out.len() > limit {
            return Err(InflateError::MessageTooLarge { limit });
        }
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd if input.is_empty() => return Ok(()),
            // Data after the end of the stream.
            Status::StreamEnd => return Err(InflateError::Corrupt),
            Status::Ok | Status::BufError if input.is_empty() && room_left => {
                return if whole_stream {
                    // A payload that stops before the end of its stream: truncated.
                    Err(InflateError::Corrupt)
                } else {
                    Ok(())
                };
            }
            // Input and room left, but no progress: nothing valid can follow.
            Status::Ok | Status::BufError if consumed == 0 && produced == 0 && room_left => {
                return Err(InflateError::Corrupt)
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Decompressor;
    use super::*;
    use crate::config::Compression;
    use alloc::vec;
    use flate2::{Compress, Compression as Level, FlushCompress};

    /// Compresses each message with a sync flush through one context, as Discord does.
    fn zlib_stream(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut c = Compress::new(Level::default(), true);
        messages
            .iter()
            .map(|m| {
                let mut out = Vec::new();
                let start = c.total_in();
                loop {
                    out.reserve(m.len() + 1024);
                    let consumed = (c.total_in() - start) as usize;
                    c.compress_vec(&m[consumed..], &mut out, FlushCompress::Sync)
                        .unwrap();
                    // All input taken and room left: the flush is complete.
                    if (c.total_in() - start) as usize == m.len() && out.len() < out.capacity() {
                        break;
                    }
                }
                assert!(out.ends_with(&SYNC_FLUSH_SUFFIX));
                out
            })
            .collect()
    }

    fn limits(max_message_size: usize, max_buffered_compressed: usize) -> Limits {
        Limits {
            max_message_size,
            max_buffered_compressed,
            ..Limits::default()
        }
    }

    #[test]
    fn whole_and_split_messages() {
        let messages: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                alloc::format!(
                    r#"{{"op":0,"s":{i},"t":"X","d":{{"n":"{}"}}}}"#,
                    "ab".repeat(i)
                )
                .into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        let frames = zlib_stream(&refs);
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for (i, (frame, message)) in frames.iter().zip(&messages).enumerate() {
            if i % 3 == 0 {
                // Split into three pieces, one of them empty, the suffix itself cut in two.
                let cut = frame.len() - 2;
                assert_eq!(d.feed(&frame[..cut / 2], &mut out), Ok(false));
                assert_eq!(d.feed(&[], &mut out), Ok(false));
                assert_eq!(d.feed(&frame[cut / 2..cut], &mut out), Ok(false));
                assert_eq!(d.feed(&frame[cut..], &mut out), Ok(true));
            } else {
                assert_eq!(d.feed(frame, &mut out), Ok(true));
            }
            assert_eq!(&out, message);
        }
        assert!(d.heap_bytes() >= INFLATE_STATE_BYTES);
    }

    #[test]
    fn reset_starts_a_new_context() {
        let a = zlib_stream(&[b"first connection", b"second message"]);
        let b = zlib_stream(&[b"new connection"]);
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&a[0], &mut out), Ok(true));
        // Half a message is pending when the connection drops.
        assert_eq!(d.feed(&a[1][..3], &mut out), Ok(false));
        d.reset();
        assert_eq!(d.feed(&b[0], &mut out), Ok(true));
        assert_eq!(out, b"new connection");
        // Without a reset, a second zlib header in the same stream is corrupt data.
        assert_eq!(d.feed(&a[0], &mut out), Err(InflateError::Corrupt));
    }

    #[test]
    fn message_limit_stops_a_bomb() {
        let bomb = vec![b'a'; 1 << 20];
        let frames = zlib_stream(&[&bomb]);
        assert!(frames[0].len() < 2048);
        let mut d = Decompressor::new(Compression::ZlibStream, &limits(64 * 1024, 1 << 20))
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(
            d.feed(&frames[0], &mut out),
            Err(InflateError::MessageTooLarge { limit: 64 * 1024 })
        );
        assert!(out.capacity() <= 64 * 1024 + 1, "{}", out.capacity());
        // Exactly at the limit is fine.
        let frames = zlib_stream(&[&bomb[..1000]]);
        let mut d = Decompressor::new(Compression::ZlibStream, &limits(1000, 1 << 20))
            .expect("available compression");
        assert_eq!(d.feed(&frames[0], &mut out), Ok(true));
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn buffer_limit_stops_a_never_ending_message() {
        let mut d = Decompressor::new(Compression::ZlibStream, &limits(1 << 20, 100))
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&[0x78; 60], &mut out), Ok(false));
        assert_eq!(
            d.feed(&[0x9c; 41], &mut out),
            Err(InflateError::BufferTooLarge { limit: 100 })
        );
        // The buffer is emptied but keeps its capacity for the next connection.
        assert!(d.heap_bytes() >= INFLATE_STATE_BYTES + 60);
        d.reset();
        let frames = zlib_stream(&[b"after reset"]);
        assert_eq!(d.feed(&frames[0], &mut out), Ok(true));
        assert_eq!(out, b"after reset");
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(
            d.feed(&[1, 2, 3, 4, 0, 0, 0xff, 0xff], &mut out),
            Err(InflateError::Corrupt)
        );
        // A valid zlib header, then a block of the reserved type 3. (Not every flipped bit is
        // detectable: a sync-flushed message carries no checksum.)
        d.reset();
        let mut frame = zlib_stream(&[b"hello hello hello"]).remove(0);
        frame[2] |= 0b110;
        assert_eq!(d.feed(&frame, &mut out), Err(InflateError::Corrupt));
    }

    #[test]
    fn payload_compression() {
        let mut d = Decompressor::new(Compression::Payload, &limits(1 << 16, 0))
            .expect("available compression");
        let mut out = Vec::new();
        for message in [&b"{\"op\":10}"[..], b"{\"op\":0,\"d\":{}}"] {
            let compressed = {
                let mut c = Compress::new(Level::default(), true);
                let mut v = Vec::with_capacity(256);
                c.compress_vec(message, &mut v, FlushCompress::Finish)
                    .unwrap();
                v
            };
            assert_eq!(d.feed(&compressed, &mut out), Ok(true));
            assert_eq!(out, message);
            // Truncated, or followed by garbage: corrupt.
            assert_eq!(
                d.feed(&compressed[..compressed.len() - 2], &mut out),
                Err(InflateError::Corrupt)
            );
            let mut trailing = compressed.clone();
            trailing.push(0);
            assert_eq!(d.feed(&trailing, &mut out), Err(InflateError::Corrupt));
        }
    }
}
