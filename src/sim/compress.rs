//! The fake gateway's side of transport compression: one compression context per
//! connection, chosen by the URL's `compress` parameter, as Discord does.

use alloc::vec::Vec;

/// Compresses what the fake gateway sends on one connection.
pub(crate) enum ServerCompressor {
    /// zlib-stream: one zlib context, a sync flush (ending `00 00 ff ff`) after each message.
    #[cfg(feature = "zlib-stream")]
    Zlib(flate2::Compress),
    /// zstd-stream: one zstd context, each message flushed, the frame never ended.
    #[cfg(feature = "zstd-stream")]
    Zstd(zstd_safe::CCtx<'static>),
}

impl core::fmt::Debug for ServerCompressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl ServerCompressor {
    /// The compressor a connection to `url` asks for, if any (and if compiled in).
    pub(crate) fn for_url(url: &str) -> Option<Self> {
        let query = url.split_once('?')?.1;
        let value = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("compress="))?;
        match value {
            #[cfg(feature = "zlib-stream")]
            "zlib-stream" => Some(ServerCompressor::Zlib(flate2::Compress::new(
                flate2::Compression::default(),
                true,
            ))),
            #[cfg(feature = "zstd-stream")]
            "zstd-stream" => Some(ServerCompressor::Zstd(zstd_safe::CCtx::create())),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match *self {
            #[cfg(feature = "zlib-stream")]
            ServerCompressor::Zlib(_) => "zlib-stream",
            #[cfg(feature = "zstd-stream")]
            ServerCompressor::Zstd(_) => "zstd-stream",
        }
    }

    /// Compresses one whole message.
    #[cfg_attr(
        not(any(feature = "zlib-stream", feature = "zstd-stream")),
        allow(unused_variables)
    )]
    pub(crate) fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        match *self {
            #[cfg(feature = "zlib-stream")]
            ServerCompressor::Zlib(ref mut c) => zlib_message(c, message),
            #[cfg(feature = "zstd-stream")]
            ServerCompressor::Zstd(ref mut c) => zstd_message(c, message),
        }
    }
}

#[cfg(feature = "zlib-stream")]
fn zlib_message(c: &mut flate2::Compress, message: &[u8]) -> Vec<u8> {
    use flate2::FlushCompress;
    let mut out = Vec::with_capacity(message.len() / 2 + 64);
    let start = c.total_in();
    // Everything in without flushing, then one sync flush with room until it completes.
    while ((c.total_in() - start) as usize) < message.len() {
        out.reserve(message.len() / 2 + 1024);
        let consumed = (c.total_in() - start) as usize;
        if c.compress_vec(&message[consumed..], &mut out, FlushCompress::None)
            .is_err()
        {
            return out;
        }
    }
    loop {
        out.reserve(1024);
        if c.compress_vec(&[], &mut out, FlushCompress::Sync).is_err() || out.len() < out.capacity()
        {
            return out;
        }
    }
}

#[cfg(feature = "zstd-stream")]
fn zstd_message(c: &mut zstd_safe::CCtx<'static>, message: &[u8]) -> Vec<u8> {
    use zstd_safe::{InBuffer, OutBuffer};
    let mut out: Vec<u8> = Vec::with_capacity(message.len() / 2 + 1024);
    let mut input = InBuffer::around(message);
    // All the input in, then flush until the block is out (the frame is never ended).
    while input.pos() < message.len() {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
        }
        let pos = out.len();
        let mut output = OutBuffer::around_pos(&mut out, pos);
        if c.compress_stream(&mut output, &mut input).is_err() {
            return out;
        }
    }
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
        }
        let pos = out.len();
        let mut output = OutBuffer::around_pos(&mut out, pos);
        match c.flush_stream(&mut output) {
            Ok(0) | Err(_) => return out,
            Ok(_) => {}
        }
    }
}
