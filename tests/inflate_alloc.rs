//! Heap accounting of [`Decompressor`], with a counting global allocator: no allocation per
//! message in steady state, and `heap_bytes()` close to what is really held.
//!
//! Counting is per thread (tests run in parallel threads), and only Rust's allocator is seen:
//! libzstd allocates with `malloc`, so the zstd context is covered by `ZSTD_sizeof_DCtx`.
#![cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use discord_gateway_proto::config::{Compression, Limits};
use discord_gateway_proto::inflate::Decompressor;

#[cfg(feature = "zstd-stream")]
#[path = "support/zstd_stream.rs"]
mod zstd_support;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn record(allocations: usize, bytes: isize) {
    let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + allocations));
    let _ = LIVE_BYTES.try_with(|l| l.set(l.get() + bytes));
}

// SAFETY: every call is forwarded to `System` unchanged; the thread-local counters are
// const-initialised `Cell`s without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(1, layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(1, layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(0, -(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(1, new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, net bytes) made by `f` on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, isize) {
    let (a0, l0) = (ALLOCATIONS.with(Cell::get), LIVE_BYTES.with(Cell::get));
    let value = f();
    let (a1, l1) = (ALLOCATIONS.with(Cell::get), LIVE_BYTES.with(Cell::get));
    (value, a1 - a0, l1 - l0)
}

fn messages() -> Vec<Vec<u8>> {
    (0..64)
        .map(|i| {
            let body = "presence online idle Spotify guild member ".repeat(1 + (i * 37) % 90);
            format!(r#"{{"t":"PRESENCE_UPDATE","s":{i},"op":0,"d":"{body}"}}"#).into_bytes()
        })
        .collect()
}

#[cfg(feature = "zlib-stream")]
mod zlib {
    use super::*;
    use flate2::{Compress, Compression as Level, FlushCompress};

    fn stream(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = Compress::new(Level::default(), true);
        messages
            .iter()
            .map(|m| {
                let mut out = Vec::with_capacity(m.len() + 1024);
                c.compress_vec(m, &mut out, FlushCompress::Sync).unwrap();
                assert!(out.ends_with(&[0, 0, 0xff, 0xff]) && out.len() < out.capacity());
                out
            })
            .collect()
    }

    #[test]
    fn no_allocation_per_message_in_steady_state() {
        let messages = messages();
        let frames = stream(&messages);
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        // Every fourth message arrives in two pieces (through the buffer).
        let feed_all = |d: &mut Decompressor, out: &mut Vec<u8>| {
            for (i, frame) in frames.iter().enumerate() {
                if i % 4 == 0 {
                    assert_eq!(d.feed(&frame[..frame.len() / 2], out), Ok(false));
                    assert_eq!(d.feed(&frame[frame.len() / 2..], out), Ok(true));
                } else {
                    assert_eq!(d.feed(frame, out), Ok(true));
                }
                assert_eq!(*out, messages[i]);
            }
        };
        // Warm-up: the first connection sizes `out` and the buffer.
        feed_all(&mut d, &mut out);
        // Steady state: a second connection, same traffic.
        d.reset();
        let ((), allocations, _) = counted(|| feed_all(&mut d, &mut out));
        // The assertions compare with the expected messages, which allocates nothing either.
        assert_eq!(allocations, 0, "allocations in steady state");
    }

    #[test]
    fn payload_no_allocation_per_message() {
        let messages = messages();
        let frames: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| {
                let mut c = Compress::new(Level::default(), true);
                let mut out = Vec::with_capacity(m.len() + 1024);
                c.compress_vec(m, &mut out, FlushCompress::Finish).unwrap();
                out
            })
            .collect();
        let mut d = Decompressor::new(Compression::Payload, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for frame in &frames {
            assert_eq!(d.feed(frame, &mut out), Ok(true));
        }
        let ((), allocations, _) = counted(|| {
            for (frame, message) in frames.iter().zip(&messages) {
                assert_eq!(d.feed(frame, &mut out), Ok(true));
                assert_eq!(out, *message);
            }
        });
        assert_eq!(allocations, 0);
    }

    #[test]
    fn heap_bytes_matches_what_is_held() {
        let messages = messages();
        let frames = stream(&messages);
        let mut out = Vec::with_capacity(1 << 20);
        let (d, _, live) = counted(|| {
            let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
                .expect("available compression");
            assert_eq!(d.feed(&frames[0], &mut out), Ok(true));
            // A split message leaves the buffer with capacity.
            let f = &frames[1];
            assert_eq!(d.feed(&f[..f.len() / 2], &mut out), Ok(false));
            assert_eq!(d.feed(&f[f.len() / 2..], &mut out), Ok(true));
            d
        });
        let reported = d.heap_bytes();
        let held = live as usize;
        eprintln!("zlib: heap_bytes() = {reported}, measured = {held}");
        assert!(
            reported.abs_diff(held) * 10 <= held,
            "heap_bytes() = {reported}, measured = {held}"
        );
    }
}

#[cfg(feature = "zstd-stream")]
mod zstd_stream {
    use super::*;

    #[test]
    fn no_rust_allocation_per_message() {
        let messages = messages();
        let mut stream = crate::zstd_support::ZstdStream::new(3);
        let frames: Vec<Vec<u8>> = messages.iter().map(|m| stream.message(m)).collect();
        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for frame in &frames[..8] {
            assert_eq!(d.feed(frame, &mut out), Ok(true));
        }
        let largest = messages.iter().map(Vec::len).max().unwrap();
        out.reserve(largest);
        let ((), allocations, _) = counted(|| {
            for (frame, message) in frames.iter().zip(&messages).skip(8) {
                assert_eq!(d.feed(frame, &mut out), Ok(true));
                assert_eq!(out, *message);
            }
        });
        assert_eq!(allocations, 0);
        assert!(d.heap_bytes() > 0);
    }
}
