//! A zstd-stream encoder for tests: one zstd context per connection, every message flushed
//! (its block ends) but the frame never ended, as Discord sends. Built on `zstd-safe`, the
//! binding the crate itself uses for `zstd-stream`, so the tests need no second zstd crate.
//! Included with `#[path]` where needed.

use zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

/// One connection's compression context.
pub struct ZstdStream(CCtx<'static>);

impl ZstdStream {
    /// A context compressing at `level`.
    pub fn new(level: i32) -> Self {
        let mut context = CCtx::create();
        context
            .set_parameter(CParameter::CompressionLevel(level))
            .expect("a valid zstd level");
        ZstdStream(context)
    }

    /// A context whose frame declares a window of `2^log` bytes.
    #[allow(dead_code)] // not every test that includes this file needs it
    pub fn with_window_log(level: i32, log: u32) -> Self {
        let mut stream = ZstdStream::new(level);
        stream
            .0
            .set_parameter(CParameter::WindowLog(log))
            .expect("a valid zstd window log");
        stream
    }

    /// Compresses one whole message: all of it in, then flushed until its block is out.
    pub fn message(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::with_capacity(message.len() / 2 + 1024);
        let mut input = InBuffer::around(message);
        while input.pos() < message.len() {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let pos = out.len();
            let mut output = OutBuffer::around_pos(&mut out, pos);
            self.0
                .compress_stream(&mut output, &mut input)
                .expect("zstd compresses");
        }
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let pos = out.len();
            let mut output = OutBuffer::around_pos(&mut out, pos);
            if self.0.flush_stream(&mut output).expect("zstd flushes") == 0 {
                return out;
            }
        }
    }
}
