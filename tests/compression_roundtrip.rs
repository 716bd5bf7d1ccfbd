//! Round trips through real compressors: streams made the way Discord makes them, fed to
//! [`Decompressor`] whole, in pieces, across reconnects, and hostile.
#![cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]

use discord_gateway_proto::config::{Compression, Limits};
use discord_gateway_proto::inflate::{Decompressor, InflateError};

#[cfg(feature = "zlib-stream")]
#[path = "../benches/support/frames.rs"]
mod frames;
#[cfg(feature = "zstd-stream")]
#[path = "support/zstd_stream.rs"]
mod zstd_support;

/// A small seeded generator (SplitMix64), so every run sees the same messages and splits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "guild",
    "member",
    "presence",
    "online",
    "idle",
    "dnd",
    "Spotify",
    "playing",
    "channel",
    "general",
    "role",
    "emoji",
    "embed",
    "footer",
    "thumbnail",
    "author",
    "reaction",
    "typing",
];

/// Gateway-like JSON messages of varied sizes: mostly small dispatches, a few large ones.
fn messages(rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|seq| {
            let words = match rng.below(20) {
                0 => 3_000 + rng.below(12_000), // a GUILD_CREATE-sized message
                1..=4 => 300 + rng.below(500),
                _ => 5 + rng.below(120),
            };
            let mut text = String::new();
            for _ in 0..words {
                text.push_str(WORDS[rng.below(WORDS.len())]);
                text.push(' ');
                if rng.below(8) == 0 {
                    text.push_str(&rng.next().to_string());
                }
            }
            format!(r#"{{"t":"MESSAGE_CREATE","s":{seq},"op":0,"d":{{"content":"{text}"}}}}"#)
                .into_bytes()
        })
        .collect()
}

/// Cuts `frame` into 1 to 4 pieces at seeded points (pieces but the last may be empty).
fn split<'a>(rng: &mut Rng, frame: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = (0..rng.below(4)).map(|_| rng.below(frame.len())).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(&frame[start..cut]);
        start = cut;
    }
    pieces.push(&frame[start..]);
    pieces
}

fn limits(max_message_size: usize, max_buffered_compressed: usize) -> Limits {
    Limits {
        max_message_size,
        max_buffered_compressed,
        ..Limits::default()
    }
}

#[cfg(feature = "zlib-stream")]
mod zlib {
    use super::*;
    use crate::frames::KeyOrder;
    use flate2::{Compress, Compression as Level, FlushCompress};

    /// One zlib context per connection, a sync flush after every message: Discord's
    /// zlib-stream.
    pub(crate) struct ZlibStream(Compress);

    impl ZlibStream {
        pub(crate) fn new() -> Self {
            ZlibStream(Compress::new(Level::default(), true))
        }

        pub(crate) fn message(&mut self, message: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let start = self.0.total_in();
            // No flush until all the input is in (every sync-flushing call would end in its own
            // 00 00 ff ff), then one sync flush, given room until it completes.
            while ((self.0.total_in() - start) as usize) < message.len() {
                out.reserve(message.len() / 2 + 1024);
                let consumed = (self.0.total_in() - start) as usize;
                self.0
                    .compress_vec(&message[consumed..], &mut out, FlushCompress::None)
                    .unwrap();
            }
            loop {
                out.reserve(1024);
                self.0
                    .compress_vec(&[], &mut out, FlushCompress::Sync)
                    .unwrap();
                if out.len() < out.capacity() {
                    break;
                }
            }
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
            out
        }
    }

    #[test]
    fn many_messages_whole_and_split_across_reconnects() {
        let mut rng = Rng(7);
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for connection in 0..3 {
            let mut stream = ZlibStream::new();
            for (i, message) in messages(&mut rng, 300).iter().enumerate() {
                let frame = stream.message(message);
                let pieces = split(&mut rng, &frame);
                let (last, first) = pieces.split_last().unwrap();
                for piece in first {
                    assert_eq!(d.feed(piece, &mut out), Ok(false));
                }
                assert_eq!(
                    d.feed(last, &mut out),
                    Ok(true),
                    "connection {connection}, message {i}"
                );
                assert!(out == *message, "connection {connection}, message {i}");
            }
            d.reset();
        }
    }

    #[test]
    fn reset_drops_a_partial_message_and_starts_a_new_context() {
        let mut rng = Rng(11);
        let msgs = messages(&mut rng, 3);
        let mut old = ZlibStream::new();
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&old.message(&msgs[0]), &mut out), Ok(true));
        let half = old.message(&msgs[1]);
        assert_eq!(d.feed(&half[..half.len() / 2], &mut out), Ok(false));
        d.reset();
        let mut new = ZlibStream::new();
        assert_eq!(d.feed(&new.message(&msgs[2]), &mut out), Ok(true));
        assert_eq!(out, msgs[2]);
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let mut stream = ZlibStream::new();
        let mut d = Decompressor::new(Compression::ZlibStream, &limits(1 << 20, 1 << 20))
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&stream.message(b"{\"op\":11}"), &mut out), Ok(true));
        // 8 MiB of zeros compress to ~8 KiB: only 1 MiB + 1 byte of output may exist.
        let zeros = vec![0u8; 8 << 20];
        let bomb = stream.message(&zeros);
        drop(zeros);
        assert!(bomb.len() < 300_000);
        assert_eq!(
            d.feed(&bomb, &mut out),
            Err(InflateError::MessageTooLarge { limit: 1 << 20 })
        );
        assert!(out.capacity() <= (1 << 20) + 1);
    }

    #[test]
    fn never_ending_message_stops_at_the_buffer_limit() {
        let mut d = Decompressor::new(Compression::ZlibStream, &limits(1 << 20, 10_000))
            .expect("available compression");
        let mut out = Vec::new();
        let mut stream = ZlibStream::new();
        let frame = stream.message(&messages(&mut Rng(3), 1)[0]);
        let unfinished = &frame[..frame.len() - 4];
        let mut fed = 0;
        let error = loop {
            match d.feed(unfinished, &mut out) {
                Ok(false) => fed += unfinished.len(),
                other => break other,
            }
        };
        assert_eq!(error, Err(InflateError::BufferTooLarge { limit: 10_000 }));
        assert!(fed <= 10_000);
        assert!(d.heap_bytes() < 100_000, "{}", d.heap_bytes());
    }

    #[test]
    fn corrupt_data_is_an_error_and_reset_recovers() {
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        let mut rng = Rng(5);
        for _ in 0..200 {
            // Random garbage ending like a message: an error, never a panic.
            let mut garbage: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            garbage.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let _ = d.feed(&garbage, &mut out);
            d.reset();
        }
        assert_eq!(
            d.feed(b"\x78\x9c\xff\xff\x00\x00\xff\xff", &mut out),
            Err(InflateError::Corrupt)
        );
        d.reset();
        let mut stream = ZlibStream::new();
        assert_eq!(d.feed(&stream.message(b"fine"), &mut out), Ok(true));
        assert_eq!(out, b"fine");
    }

    #[test]
    fn payload_compression_one_stream_per_message() {
        let mut rng = Rng(13);
        let mut d = Decompressor::new(Compression::Payload, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for message in messages(&mut rng, 40) {
            let mut c = Compress::new(Level::default(), true);
            let mut frame = Vec::with_capacity(message.len() + 1024);
            c.compress_vec(&message, &mut frame, FlushCompress::Finish)
                .unwrap();
            assert_eq!(d.feed(&frame, &mut out), Ok(true));
            assert!(out == message);
        }
        let bomb = {
            let mut c = Compress::new(Level::default(), true);
            let mut frame = Vec::with_capacity(1 << 16);
            c.compress_vec(&vec![b' '; 8 << 20], &mut frame, FlushCompress::Finish)
                .unwrap();
            frame
        };
        let mut d = Decompressor::new(Compression::Payload, &limits(4096, 0))
            .expect("available compression");
        assert_eq!(
            d.feed(&bomb, &mut out),
            Err(InflateError::MessageTooLarge { limit: 4096 })
        );
    }

    /// Feeds `frames` (zlib-stream messages, in order) to one decompressor; each must come
    /// out whole as the next of `messages`.
    fn feed_stream<'a>(frames: impl IntoIterator<Item = &'a [u8]>, messages: &[&[u8]]) {
        let mut d = Decompressor::new(Compression::ZlibStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        let mut count = 0;
        for (i, frame) in frames.into_iter().enumerate() {
            assert_eq!(d.feed(frame, &mut out), Ok(true), "message {i}");
            assert!(out == messages[i], "message {i} differs");
            count += 1;
        }
        assert_eq!(count, messages.len());
    }

    /// The benches' seeded busy-bot stream (HELLO, READY, three GUILD_CREATEs of up to
    /// ~300 KB among 5000 frames with escapes and non-ASCII text, `benches/support/frames.rs`)
    /// through the real zlib compressor as Discord sends it: one context, a sync flush per
    /// message. Generated here, so it runs on a fresh clone.
    #[test]
    fn generated_corpus_stream() {
        let texts = frames::render(
            &frames::FrameSets::new(frames::SEED).mixed,
            KeyOrder::Discord,
        );
        let messages: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        assert_eq!(messages.len(), 5000);
        assert!(messages.iter().any(|m| m.len() > 200_000), "a GUILD_CREATE");
        let mut zlib = ZlibStream::new();
        let compressed: Vec<Vec<u8>> = messages.iter().map(|m| zlib.message(m)).collect();
        feed_stream(compressed.iter().map(Vec::as_slice), &messages);
    }

    /// The shared corpus: 5000 gateway frames through one zlib context (Python's zlib), each
    /// framed `[u32 LE len][bytes]`, from `../shared/corpus` beside the repository (or
    /// `DGP_CORPUS_DIR`). Fails if the corpus is not there.
    #[test]
    #[ignore = "reads ../shared/corpus, outside the repository (or DGP_CORPUS_DIR)"]
    fn shared_corpus_stream() {
        let dir = std::env::var_os("DGP_CORPUS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
            });
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .unwrap_or_else(|e| panic!("no corpus at {}: {name}: {e}", dir.display()))
        };
        let bin = read("mixed_stream.zlib.bin");
        let jsonl = String::from_utf8(read("mixed_stream.jsonl")).expect("UTF-8 corpus");
        let messages: Vec<&[u8]> = jsonl.lines().map(str::as_bytes).collect();
        let mut frames = Vec::new();
        let mut rest = &bin[..];
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let (frame, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
            frames.push(frame);
            rest = tail;
        }
        assert_eq!(frames.len(), 5000);
        feed_stream(frames, &messages);
    }
}

#[cfg(feature = "zstd-stream")]
mod zstd_stream {
    use super::*;
    use crate::zstd_support::ZstdStream;
    use discord_gateway_proto::config::DEFAULT_MAX_WINDOW;

    #[test]
    fn many_messages_across_reconnects() {
        let mut rng = Rng(17);
        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        for connection in 0..3 {
            let mut stream = ZstdStream::new(3);
            for (i, message) in messages(&mut rng, 300).iter().enumerate() {
                let frame = stream.message(message);
                assert_eq!(d.feed(&frame, &mut out), Ok(true), "{connection}/{i}");
                assert!(out == *message, "connection {connection}, message {i}");
            }
            d.reset();
        }
    }

    #[test]
    fn back_references_span_messages() {
        // The second message is a repeat of the first: it compresses to a few bytes that
        // point into the previous message's window, so it only decodes in the same context.
        let mut rng = Rng(19);
        let message = messages(&mut rng, 1).remove(0);
        let mut stream = ZstdStream::new(3);
        let first = stream.message(&message);
        let second = stream.message(&message);
        assert!(second.len() < first.len() / 4);
        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&first, &mut out), Ok(true));
        assert_eq!(d.feed(&second, &mut out), Ok(true));
        assert_eq!(out, message);
        // A reset forgets the window.
        d.reset();
        assert_eq!(d.feed(&second, &mut out), Err(InflateError::Corrupt));
    }

    #[test]
    fn bomb_and_corruption() {
        let mut stream = ZstdStream::new(3);
        let mut d = Decompressor::new(Compression::ZstdStream, &limits(1 << 20, 0))
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(d.feed(&stream.message(b"{\"op\":11}"), &mut out), Ok(true));
        let zeros = vec![0u8; 8 << 20];
        let bomb = stream.message(&zeros);
        drop(zeros);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            d.feed(&bomb, &mut out),
            Err(InflateError::MessageTooLarge { limit: 1 << 20 })
        );
        assert!(out.capacity() <= (1 << 20) + 1);

        let mut rng = Rng(23);
        for _ in 0..200 {
            let garbage: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            d.reset();
            let _ = d.feed(&garbage, &mut out);
        }
        d.reset();
        let mut stream = ZstdStream::new(3);
        assert_eq!(d.feed(&stream.message(b"fine"), &mut out), Ok(true));
        assert_eq!(out, b"fine");
    }

    #[test]
    fn huge_window_is_refused() {
        // A frame header declaring a 2^31-byte window (Window_Descriptor exponent 21).
        let header = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        let mut out = Vec::new();
        assert_eq!(
            d.feed(&header, &mut out),
            Err(InflateError::WindowTooLarge {
                limit: DEFAULT_MAX_WINDOW
            })
        );
        assert!(d.heap_bytes() < 1 << 20, "{}", d.heap_bytes());
    }

    /// The window a frame may make libzstd allocate is `Limits::max_window` (default 8 MiB),
    /// not libzstd's 128 MiB: a real stream compressed with a 16 MiB window is refused before
    /// anything is allocated for it, and accepted when the limit allows it.
    #[test]
    fn a_window_over_max_window_is_refused_before_it_is_allocated() {
        let message = br#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
        let frame = ZstdStream::with_window_log(3, 24).message(message);
        let mut out = Vec::new();

        let mut d = Decompressor::new(Compression::ZstdStream, &Limits::default())
            .expect("available compression");
        assert_eq!(
            d.feed(&frame, &mut out),
            Err(InflateError::WindowTooLarge { limit: 8 << 20 })
        );
        assert!(out.is_empty());
        assert!(d.heap_bytes() < 1 << 20, "{} heap bytes", d.heap_bytes());
        // Until a reset (a new connection) the stream stays failed.
        d.reset();
        assert_eq!(
            d.feed(&ZstdStream::new(3).message(message), &mut out),
            Ok(true)
        );

        let wide = Limits {
            max_window: 16 << 20,
            ..Limits::default()
        };
        let mut d = Decompressor::new(Compression::ZstdStream, &wide).expect("valid limits");
        assert_eq!(d.feed(&frame, &mut out), Ok(true));
        assert_eq!(out, message);
        assert!(d.heap_bytes() > 16 << 20, "the 16 MiB window is held");
    }

    /// Discord's frames declare a 256 KiB window (window log 18): the default accepts it with
    /// room to spare, and so does a limit of exactly 256 KiB; a limit that is not a power of
    /// two counts as the power of two below it.
    #[test]
    fn discords_window_fits_and_limits_round_down() {
        let message = br#"{"op":11}"#;
        let frame = ZstdStream::with_window_log(3, 18).message(message);
        let mut out = Vec::new();
        for (max_window, accepted) in [
            (DEFAULT_MAX_WINDOW, true),
            (256 << 10, true),
            ((512 << 10) - 1, true),
            ((256 << 10) - 1, false),
        ] {
            let limits = Limits {
                max_window,
                ..Limits::default()
            };
            let mut d = Decompressor::new(Compression::ZstdStream, &limits).expect("valid limits");
            let expected = if accepted {
                Ok(true)
            } else {
                Err(InflateError::WindowTooLarge { limit: 128 << 10 })
            };
            assert_eq!(
                d.feed(&frame, &mut out),
                expected,
                "max_window {max_window}"
            );
        }
    }

    /// In the machine: a connection whose zstd frame asks for more than `max_window` is a
    /// clear protocol error and a reconnect that keeps the session (resumes).
    #[test]
    fn a_window_over_max_window_is_a_protocol_error_and_a_resume() {
        use discord_gateway_proto::{
            DisconnectReason, Event, GatewayConfig, GatewayMachine, Intents, Message, Output,
            ProtocolError, Session, StartOptions, Timestamp, Token,
        };
        let session = Session {
            id: "s".into(),
            sequence: 5,
            resume_url: Some("wss://resume.example".into()),
            last_alive: Timestamp::ZERO,
        };
        let config = GatewayConfig::new(Token::new("t"), Intents::GUILDS)
            .with_compression(Compression::ZstdStream);
        let options = StartOptions {
            session: Some(session.clone()),
            ..StartOptions::default()
        };
        let mut m = GatewayMachine::with_options(config, options, 1, Timestamp::ZERO).unwrap();
        /// What a drain gave, owned.
        #[derive(Debug, PartialEq)]
        enum Seen {
            Error(ProtocolError),
            Close,
            Disconnected(DisconnectReason, bool),
            Other(String),
        }
        let drain = |m: &mut GatewayMachine| {
            let mut seen = Vec::new();
            loop {
                seen.push(match m.poll_output() {
                    Output::Wait(_) => return seen,
                    Output::Event(Event::ProtocolError(e)) => Seen::Error(e),
                    Output::Close(_) => Seen::Close,
                    Output::Event(Event::Disconnected(d)) => Seen::Disconnected(d.reason, d.resume),
                    other => Seen::Other(format!("{other:?}")),
                });
            }
        };
        drain(&mut m);
        let t = Timestamp::from_secs(1);
        m.handle_connected(t);
        drain(&mut m);
        let hello = br#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
        let frame = ZstdStream::with_window_log(3, 24).message(hello);
        m.handle_message(t, Message::Binary(&frame));
        let seen = drain(&mut m);
        assert_eq!(
            seen[..3],
            [
                Seen::Error(ProtocolError::Decompress(InflateError::WindowTooLarge {
                    limit: 8 << 20
                })),
                Seen::Close,
                Seen::Disconnected(DisconnectReason::Protocol, true),
            ],
            "{seen:#?}"
        );
        assert_eq!(m.session(), Some(&session));
        assert!(m.heap_bytes() < 1 << 20, "{} heap bytes", m.heap_bytes());
    }

    /// A limit below zstd's smallest window (1 KiB) is a configuration error.
    #[test]
    fn a_max_window_below_one_kib_is_refused() {
        let limits = Limits {
            max_window: 1000,
            ..Limits::default()
        };
        assert_eq!(
            Decompressor::new(Compression::ZstdStream, &limits).err(),
            Some(discord_gateway_proto::config::ConfigError::MaxWindow(1000))
        );
    }
}
