//! Transport and payload decompression, behind the `zlib-stream` and `zstd-stream` features.
//!
//! The machine owns one [`Decompressor`] per connection and [resets](Decompressor::reset) it
//! on every new connection. Drivers hand binary WebSocket messages to the machine as they are;
//! the decompressor turns them into complete gateway messages. Drivers that run their own
//! decoding (or benchmarks) can use [`Decompressor`] directly.
//!
//! | [`Compression`] | backend | what one [`feed`](Decompressor::feed) gets |
//! |---|---|---|
//! | `ZlibStream` | flate2 on zlib-rs (pure Rust) | a message or a piece; it ends in `00 00 ff ff` |
//! | `Payload` | flate2 on zlib-rs (pure Rust) | one complete, standalone zlib stream |
//! | `ZstdStream` | libzstd through zstd-safe | one message, part of a frame that never ends |
//!
//! # Hostile input
//! Everything a peer sends is bounded by [`Limits`]:
//! - a message that would decompress to more than [`Limits::max_message_size`] bytes fails
//!   with [`InflateError::MessageTooLarge`] as soon as the limit is crossed: output stops
//!   there, and the decompressor never grows the output buffer past the limit plus one byte
//!   (a decompression bomb costs at most that much memory);
//! - a zlib-stream message that arrives in pieces is buffered, and all its pieces together may
//!   not exceed [`Limits::max_buffered_compressed`] compressed bytes
//!   ([`InflateError::BufferTooLarge`]); a message that arrives whole is never buffered, so
//!   that limit does not apply to it;
//! - a zstd frame whose header declares a window over [`Limits::max_window`] (default
//!   8 MiB) fails with [`InflateError::WindowTooLarge`] before libzstd allocates it;
//! - corrupt data fails with [`InflateError::Corrupt`].
//!
//! Nothing panics. After an error the stream is unusable: call [`reset`](Decompressor::reset)
//! (the machine reconnects).
//!
//! # Allocation
//! In steady state a message costs no heap allocation: the compressed-bytes buffer (used only
//! when a zlib-stream message arrives in pieces) and the decompressor state are kept across
//! messages and across [`reset`](Decompressor::reset), and the caller's output `Vec` is
//! reused; it grows only when a message is larger than its capacity.

use alloc::vec::Vec;

use thiserror::Error;

use crate::config::{Compression, ConfigError, Limits};

#[cfg(feature = "zlib-stream")]
mod zlib;
#[cfg(feature = "zstd-stream")]
mod zstd;

/// Why a compressed message could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The compressed data is corrupt.
    #[error("corrupt compressed data")]
    Corrupt,
    /// One decompressed message would exceed the configured limit.
    #[error("decompressed message exceeds {limit} bytes")]
    MessageTooLarge {
        /// The limit, [`Limits::max_message_size`].
        limit: usize,
    },
    /// Compressed bytes of an unfinished message exceed the configured limit.
    #[error("more than {limit} compressed bytes buffered without a complete message")]
    BufferTooLarge {
        /// The limit, [`Limits::max_buffered_compressed`].
        limit: usize,
    },
    /// Binary data arrived but this connection is not compressed.
    #[error("binary data on an uncompressed connection")]
    NotCompressed,
    /// A zstd frame declares a window larger than the configured limit; nothing was
    /// allocated for it.
    #[error("the zstd frame needs a window over {limit} bytes")]
    WindowTooLarge {
        /// The largest window accepted, [`Limits::max_window`] rounded down to a power of two.
        limit: usize,
    },
}

/// The crate-internal name the machine uses.
#[allow(dead_code)] // until the machine calls it
pub(crate) type Inflater = Decompressor;

/// The decompression state of one connection: turns binary WebSocket messages into complete
/// gateway messages (JSON text).
///
/// - [`new`](Self::new) once per machine, [`reset`](Self::reset) on every new connection
///   (a new stream context; buffers keep their capacity);
/// - [`feed`](Self::feed) every binary WebSocket message, in order;
/// - [`heap_bytes`](Self::heap_bytes) to account for the memory it holds.
///
/// ```
/// # #[cfg(feature = "zlib-stream")] {
/// use discord_gateway_proto::config::{Compression, Limits};
/// use discord_gateway_proto::inflate::Decompressor;
///
/// let mut decompressor = Decompressor::new(Compression::ZlibStream, &Limits::default())?;
/// let mut message = Vec::new();
/// // `{"op":11}` through zlib with a sync flush, as Discord sends it.
/// let frame = [
///     0x78, 0x9c, 0xaa, 0x56, 0xca, 0x2f, 0x50, 0xb2, 0x32, 0x34, 0xac, 0x05, 0x00, 0x00,
///     0x00, 0xff, 0xff,
/// ];
/// assert_eq!(decompressor.feed(&frame, &mut message), Ok(true));
/// assert_eq!(message, br#"{"op":11}"#);
/// # }
/// # Ok::<(), discord_gateway_proto::config::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct Decompressor {
    compression: Compression,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    None,
    #[cfg(feature = "zlib-stream")]
    Zlib(zlib::ZlibInflater),
    #[cfg(feature = "zstd-stream")]
    Zstd(zstd::ZstdInflater),
}

impl Decompressor {
    /// A decompressor for `compression`, bounded by `limits` (see the [module docs](self)).
    /// Allocates the decompression context; buffers come with the first messages.
    ///
    /// # Errors
    /// [`ConfigError::CompressionUnavailable`] when `compression` needs a crate feature that
    /// is off in this build; [`ConfigError::MaxWindow`] when [`Limits::max_window`] is below
    /// 1 KiB.
    pub fn new(compression: Compression, limits: &Limits) -> Result<Self, ConfigError> {
        compression.check_available()?;
        limits.max_window_log()?;
        let backend = match compression {
            #[cfg(feature = "zlib-stream")]
            Compression::ZlibStream => Backend::Zlib(zlib::ZlibInflater::stream(limits)),
            #[cfg(feature = "zlib-stream")]
            Compression::Payload => Backend::Zlib(zlib::ZlibInflater::payload(limits)),
            #[cfg(feature = "zstd-stream")]
            Compression::ZstdStream => Backend::Zstd(zstd::ZstdInflater::new(limits)?),
            // `None`, and the compressions `check_available` refused above.
            _ => Backend::None,
        };
        #[cfg(not(any(feature = "zlib-stream", feature = "zstd-stream")))]
        let _ = limits;
        Ok(Decompressor {
            compression,
            backend,
        })
    }

    /// The compression this decompressor handles.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Forgets the stream: the next [`feed`](Self::feed) starts a new connection's context.
    /// Drops any partly buffered message; keeps the buffers' and the state's allocations.
    pub fn reset(&mut self) {
        match &mut self.backend {
            Backend::None => {}
            #[cfg(feature = "zlib-stream")]
            Backend::Zlib(z) => z.reset(),
            #[cfg(feature = "zstd-stream")]
            Backend::Zstd(z) => z.reset(),
        }
    }

    /// Feeds one binary WebSocket message.
    ///
    /// Returns `Ok(true)` when `out` (always cleared first) holds one complete decompressed
    /// gateway message, and `Ok(false)` when more data is needed: a zlib-stream message
    /// arriving in pieces (its bytes are buffered until they end with `00 00 ff ff`), or a
    /// zstd message that decompressed to nothing.
    ///
    /// `out` is meant to be reused from message to message: it grows only when a message is
    /// larger than its capacity, and never past [`Limits::max_message_size`] plus one byte.
    ///
    /// # Errors
    /// [`InflateError::NotCompressed`] for [`Compression::None`]; the limit errors and
    /// [`InflateError::Corrupt`] as described in the [module docs](self). After an error,
    /// [`reset`](Self::reset) before feeding more.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<bool, InflateError> {
        out.clear();
        match &mut self.backend {
            Backend::None => {
                let _ = input;
                Err(InflateError::NotCompressed)
            }
            #[cfg(feature = "zlib-stream")]
            Backend::Zlib(z) => z.feed(input, out),
            #[cfg(feature = "zstd-stream")]
            Backend::Zstd(z) => z.feed(input, out),
        }
    }

    /// Heap bytes held by the decompressor state and its buffers, not counting the caller's
    /// output `Vec`.
    ///
    /// - zlib: a measured constant (46.4 KiB) for the zlib-rs inflate state with its 32 KiB
    ///   window (held from the first message on), plus the capacity of the buffer for messages
    ///   that arrive in pieces;
    /// - zstd: what libzstd reports for its context (`ZSTD_sizeof_DCtx`), which includes the
    ///   window and block buffers sized by the frame header (at most [`Limits::max_window`]
    ///   plus 128 KiB and the context itself).
    pub fn heap_bytes(&self) -> usize {
        match &self.backend {
            Backend::None => 0,
            #[cfg(feature = "zlib-stream")]
            Backend::Zlib(z) => z.heap_bytes(),
            #[cfg(feature = "zstd-stream")]
            Backend::Zstd(z) => z.heap_bytes(),
        }
    }
}

/// Makes room in the full `out` for more output, growing geometrically but never past
/// `limit + 1` bytes of capacity: output that reaches `limit + 1` bytes is over the limit.
#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
fn grow_output(out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
    /// The first allocation, and the smallest step after it.
    const MIN_GROWTH: usize = 16 * 1024;
    let len = out.len();
    if len > limit {
        return Err(InflateError::MessageTooLarge { limit });
    }
    let target = len
        .saturating_mul(2)
        .max(len.saturating_add(MIN_GROWTH))
        .min(limit.saturating_add(1));
    out.reserve_exact(target - len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Machines move between threads (one task per shard), and their decompressor with them.
    #[test]
    fn decompressor_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Decompressor>();
    }

    #[test]
    fn uncompressed_connection_rejects_binary() {
        let mut d = Decompressor::new(Compression::None, &Limits::default()).unwrap();
        let mut out = Vec::from(&b"stale"[..]);
        assert_eq!(d.feed(b"x", &mut out), Err(InflateError::NotCompressed));
        assert!(out.is_empty());
        assert_eq!(d.heap_bytes(), 0);
        d.reset();
        assert_eq!(d.compression(), Compression::None);
    }

    #[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
    #[test]
    fn output_growth_is_capped_at_the_limit() {
        let mut out = Vec::new();
        grow_output(&mut out, 100).unwrap();
        assert_eq!(out.capacity(), 101);
        out.resize(101, 0);
        assert_eq!(
            grow_output(&mut out, 100),
            Err(InflateError::MessageTooLarge { limit: 100 })
        );
        let mut out = Vec::new();
        grow_output(&mut out, usize::MAX).unwrap();
        assert!(out.capacity() >= 16 * 1024);
    }
}
