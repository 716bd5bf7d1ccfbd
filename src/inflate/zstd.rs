//! zstd-stream: one libzstd decompression context per connection (zstd-safe).
//!
//! Each WebSocket message is one gateway message, but Discord never ends the zstd frame: it
//! flushes (ends a block) after every message and the next message continues the same frame,
//! with back-references into the window of earlier messages. So the context is kept across
//! messages and each message is decompressed until all of its bytes are consumed and the
//! decoder has flushed everything it can. (This relies on Discord's one gateway message per
//! WebSocket message: a WebSocket message holding only part of one would come out as the part
//! its complete blocks decode to.)
//!
//! # Why not the pure-Rust ruzstd
//! ruzstd's `FrameDecoder` (0.9) only releases decoded bytes beyond the last `window_size`
//! bytes until the frame is finished (`can_collect`, `read` and `decode_from_to` all drain
//! "to window size"), and nothing public reads the retained tail. In a frame that never ends,
//! each message would stay stuck in the decoder until a window's worth (megabytes) of later
//! messages pushes it out. libzstd's `ZSTD_decompressStream` flushes everything it decoded.
//!
//! # Memory
//! libzstd allocates the window and block buffers when it reads the frame header, as large as
//! the header asks (up to its own 128 MiB default cap). The window is bounded by
//! [`Limits::max_window`] instead (`ZSTD_d_windowLogMax`; default 8 MiB against the 256 KiB
//! Discord's frames declare): a frame header asking for more is
//! [`InflateError::WindowTooLarge`], found before anything is allocated for it.
//! [`ZstdInflater::heap_bytes`] reports what is held (`ZSTD_sizeof_DCtx`). libzstd buffers incomplete blocks itself, so
//! [`Limits::max_buffered_compressed`](crate::config::Limits::max_buffered_compressed) does
//! not apply: a block is at most 128 KiB.

use alloc::vec::Vec;

use zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer, ResetDirective};

use super::{grow_output, InflateError};
use crate::config::{ConfigError, Limits};

/// libzstd's error for a frame whose window is over `ZSTD_d_windowLogMax`, as its functions
/// return it (the negated error code).
const WINDOW_TOO_LARGE: usize =
    (zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge as usize)
        .wrapping_neg();

/// One connection's zstd state.
pub(super) struct ZstdInflater {
    context: DCtx<'static>,
    max_message_size: usize,
    /// The largest window accepted, in bytes (a power of two).
    max_window: usize,
}

impl core::fmt::Debug for ZstdInflater {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ZstdInflater")
            .field("context_bytes", &self.context.sizeof())
            .field("max_message_size", &self.max_message_size)
            .field("max_window", &self.max_window)
            .finish()
    }
}

impl ZstdInflater {
    pub(super) fn new(limits: &Limits) -> Result<Self, ConfigError> {
        let window_log = limits.max_window_log()?;
        let mut context = DCtx::create();
        context
            .set_parameter(DParameter::WindowLogMax(window_log))
            .map_err(|_| ConfigError::MaxWindow(limits.max_window))?;
        Ok(ZstdInflater {
            context,
            max_message_size: limits.max_message_size,
            max_window: 1 << window_log,
        })
    }

    pub(super) fn reset(&mut self) {
        // Drops the frame in progress and any error; keeps parameters and buffers. Cannot fail
        // for a session reset.
        let _ = self.context.reset(ResetDirective::SessionOnly);
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.context.sizeof()
    }

    /// `out` is empty.
    pub(super) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<bool, InflateError> {
        if input.is_empty() {
            // Nothing to decode, and nothing pending (every feed flushes all it can). libzstd
            // counts calls without progress and fails the stream after 16 in a row, so an
            // empty message must not reach it: 16 empty binary messages would break a healthy
            // connection.
            return Ok(false);
        }
        let limit = self.max_message_size;
        let mut input = InBuffer::around(input);
        loop {
            if out.len() == out.capacity() {
                grow_output(out, limit)?;
            }
            let (in_before, out_before) = (input.pos(), out.len());
            {
                let mut output = OutBuffer::around_pos(out, out_before);
                self.context
                    .decompress_stream(&mut output, &mut input)
                    .map_err(|code| match code {
                        WINDOW_TOO_LARGE => InflateError::WindowTooLarge {
                            limit: self.max_window,
                        },
                        _ => InflateError::Corrupt,
                    })?;
            }
            if out.len() > limit {
                return Err(InflateError::MessageTooLarge { limit });
            }
            let room_left = out.len() < out.capacity();
            if input.pos() == input.src.len() && room_left {
                // Everything consumed, and the decoder stopped with room left: it has flushed
                // all it can. A message that decompressed to nothing is not a message.
                return Ok(!out.is_empty());
            }
            if input.pos() == in_before && out.len() == out_before && room_left {
                // Input and room left, but no progress.
                return Err(InflateError::Corrupt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Decompressor;
    use super::*;
    use crate::config::Compression;
    use alloc::vec;

    /// Compresses each message through one context and flushes it without ending the
    /// frame, as Discord does.
    fn zstd_stream(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        use zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};
        let mut context = CCtx::create();
        context
            .set_parameter(CParameter::CompressionLevel(3))
            .unwrap();
        let mut frame = |message: &[u8]| {
            let mut out: Vec<u8> = Vec::with_capacity(message.len() + 1024);
            let mut input = InBuffer::around(message);
            while input.pos() < message.len() {
                out.reserve(1024);
                let pos = out.len();
                context
                    .compress_stream(&mut OutBuffer::around_pos(&mut out, pos), &mut input)
                    .unwrap();
            }
            loop {
                out.reserve(1024);
                let pos = out.len();
                if context
                    .flush_stream(&mut OutBuffer::around_pos(&mut out, pos))
                    .unwrap()
                    == 0
                {
                    return out;
                }
            }
        };
        messages.iter().map(|m| frame(m)).collect()
    }

    #[test]
    fn messages_in_one_frame() {
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                alloc::format!(r#"{{"op":0,"s":{i},"d":"{}"}}"#, "xy".repeat(i * 10)).into_bytes()
            })
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
        let frames = zstd_stream(&refs);
        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for (frame, message) in frames.iter().zip(&messages) {
            assert_eq!(d.feed(frame, &mut out), Ok(true));
            assert_eq!(&out, message);
        }
        assert!(d.heap_bytes() > 0);
        // A new connection: a new frame.
        d.reset();
        let frames = zstd_stream(&[b"new connection"]);
        assert_eq!(d.feed(&frames[0], &mut out), Ok(true));
        assert_eq!(out, b"new connection");
    }

    /// Found by the `inflate` fuzz target: libzstd fails a stream after 16 calls in a row
    /// that make no progress, so 16 empty binary messages used to break the connection.
    #[test]
    fn empty_messages_do_not_break_the_stream() {
        let frames = zstd_stream(&[b"before", b"after"]);
        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&frames[0], &mut out), Ok(true));
        for _ in 0..100 {
            assert_eq!(d.feed(&[], &mut out), Ok(false));
            assert!(out.is_empty());
        }
        assert_eq!(d.feed(&frames[1], &mut out), Ok(true));
        assert_eq!(out, b"after");
    }

    #[test]
    fn limits_and_corruption() {
        let bomb = vec![b'z'; 4 << 20];
        let frames = zstd_stream(&[&bomb]);
        assert!(frames[0].len() < 4096);
        let limits = Limits {
            max_message_size: 100_000,
            ..Limits::default()
        };
        let mut d =
            Decompressor::new(Compression::ZstdStream, &limits).expect("available compression");
        let mut out = Vec::new();
        assert_eq!(
            d.feed(&frames[0], &mut out),
            Err(InflateError::MessageTooLarge { limit: 100_000 })
        );
        assert!(out.capacity() <= 100_001);
        d.reset();
        assert_eq!(
            d.feed(b"definitely not zstd", &mut out),
            Err(InflateError::Corrupt)
        );
        // The error sticks until a reset.
        let frames = zstd_stream(&[b"ok"]);
        assert_eq!(d.feed(&frames[0], &mut out), Err(InflateError::Corrupt));
        d.reset();
        assert_eq!(d.feed(&frames[0], &mut out), Ok(true));
        assert_eq!(out, b"ok");
    }
}
