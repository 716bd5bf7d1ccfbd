//! Transport decompression throughput: our `Decompressor` against the raw decompressors with
//! no wrapper, and the candidate backends against each other. Results: `benches/README.md`.
//!
//! Input: the shared corpus (`mixed_stream.jsonl` and `mixed_stream.zlib.bin`, 5000 frames)
//! from `$DGP_CORPUS_DIR` or `../shared/corpus` beside the repository; without it, 5000
//! gateway-like messages from a seeded generator. Throughput counts decompressed bytes.
//!
//! Run: `cargo bench -p discord-gateway-benches --bench inflate`

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use discord_gateway_proto::config::{Compression, Limits};
use discord_gateway_proto::inflate::Decompressor;

/// Room for the largest message, so the raw loops never reallocate (the wrapper's `out` keeps
/// its capacity across messages too).
const OUT_CAPACITY: usize = 8 << 20;

struct Input {
    messages: Vec<Vec<u8>>,
    zlib: Vec<Vec<u8>>,
    zstd: Vec<Vec<u8>>,
    bytes: u64,
}

fn input() -> Input {
    let dir = std::env::var_os("DGP_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    let corpus = (
        std::fs::read_to_string(dir.join("mixed_stream.jsonl")),
        std::fs::read(dir.join("mixed_stream.zlib.bin")),
    );
    let (source, messages, zlib) = match corpus {
        (Ok(jsonl), Ok(bin)) => {
            let messages: Vec<Vec<u8>> = jsonl.lines().map(|l| l.as_bytes().to_vec()).collect();
            let mut zlib = Vec::new();
            let mut rest = &bin[..];
            while let Some((len, tail)) = rest.split_first_chunk::<4>() {
                let (frame, tail) = tail.split_at(u32::from_le_bytes(*len) as usize);
                zlib.push(frame.to_vec());
                rest = tail;
            }
            assert_eq!(zlib.len(), messages.len());
            (format!("corpus {}", dir.display()), messages, zlib)
        }
        _ => {
            let messages = generated(5000);
            let zlib = zlib_stream(&messages);
            (
                "seeded generator (no corpus found)".to_owned(),
                messages,
                zlib,
            )
        }
    };
    let zstd = zstd_stream(&messages);
    let bytes = messages.iter().map(|m| m.len() as u64).sum();
    let zlib_bytes: usize = zlib.iter().map(Vec::len).sum();
    let zstd_bytes: usize = zstd.iter().map(Vec::len).sum();
    eprintln!(
        "input: {source}: {} messages, {bytes} bytes; zlib-stream {zlib_bytes} bytes, \
         zstd-stream (level 3) {zstd_bytes} bytes",
        messages.len()
    );
    Input {
        messages,
        zlib,
        zstd,
        bytes,
    }
}

/// Gateway-like messages from a seeded SplitMix64: mostly small dispatches, some large ones.
fn generated(count: usize) -> Vec<Vec<u8>> {
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
        "avatar",
        "discriminator",
        "global_name",
        "activities",
        "client_status",
    ];
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|seq| {
            let fields = match next() % 100 {
                0 => 3000 + next() % 6000,
                1..=20 => 40 + next() % 120,
                _ => 5 + next() % 30,
            };
            let mut d = String::from("{");
            for i in 0..fields {
                let word = WORDS[(next() % WORDS.len() as u64) as usize];
                d.push_str(&format!(
                    r#""{word}{}":"{}","#,
                    i % 7,
                    next() % 1_000_000_007
                ));
            }
            d.push_str(r#""id":"1"}"#);
            format!(r#"{{"t":"PRESENCE_UPDATE","s":{seq},"op":0,"d":{d}}}"#).into_bytes()
        })
        .collect()
}

/// One zlib context, a sync flush per message (Discord's zlib-stream).
fn zlib_stream(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    use flate2::{Compress, Compression as Level, FlushCompress};
    let mut c = Compress::new(Level::default(), true);
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            let start = c.total_in();
            while ((c.total_in() - start) as usize) < m.len() {
                out.reserve(m.len() / 2 + 1024);
                let done = (c.total_in() - start) as usize;
                c.compress_vec(&m[done..], &mut out, FlushCompress::None)
                    .unwrap();
            }
            loop {
                out.reserve(1024);
                c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
                if out.len() < out.capacity() {
                    break out;
                }
            }
        })
        .collect()
}

/// One zstd context, flushed per message, the frame never ended (Discord's zstd-stream).
fn zstd_stream(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    messages
        .iter()
        .map(|m| {
            encoder.write_all(m).unwrap();
            encoder.flush().unwrap();
            std::mem::take(encoder.get_mut())
        })
        .collect()
}

fn raw_flate2(frames: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    use flate2::{Decompress, FlushDecompress};
    let mut d = Decompress::new(true);
    let mut total = 0;
    for frame in frames {
        out.clear();
        let start = d.total_in();
        loop {
            d.decompress_vec(
                &frame[(d.total_in() - start) as usize..],
                out,
                FlushDecompress::Sync,
            )
            .unwrap();
            if (d.total_in() - start) as usize == frame.len() && out.len() < out.capacity() {
                break;
            }
        }
        total += black_box(&out).len();
    }
    total
}

fn raw_miniz_oxide(frames: &[Vec<u8>], out: &mut [u8]) -> usize {
    use miniz_oxide::inflate::stream::{inflate, InflateState};
    use miniz_oxide::{DataFormat, MZFlush};
    let mut state = InflateState::new_boxed(DataFormat::Zlib);
    let mut total = 0;
    for frame in frames {
        let (mut read, mut written) = (0, 0);
        loop {
            let r = inflate(
                &mut state,
                &frame[read..],
                &mut out[written..],
                MZFlush::Sync,
            );
            r.status.unwrap();
            read += r.bytes_consumed;
            written += r.bytes_written;
            if read == frame.len() && written < out.len() {
                break;
            }
        }
        total += black_box(&out[..written]).len();
    }
    total
}

fn raw_zstd_c(frames: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer};
    let mut d = DCtx::create();
    let mut total = 0;
    for frame in frames {
        out.clear();
        let mut input = InBuffer::around(frame);
        loop {
            let pos = out.len();
            let mut output = OutBuffer::around_pos(out, pos);
            d.decompress_stream(&mut output, &mut input).unwrap();
            if input.pos() == frame.len() && out.len() < out.capacity() {
                break;
            }
        }
        total += black_box(&out).len();
    }
    total
}

fn ours(compression: Compression, frames: &[Vec<u8>], out: &mut Vec<u8>) -> usize {
    let mut d = Decompressor::new(compression, &Limits::default()).expect("available compression");
    let mut total = 0;
    for frame in frames {
        assert_eq!(d.feed(frame, out), Ok(true));
        total += black_box(&out).len();
    }
    total
}

/// ruzstd's `FrameDecoder` on the first zstd-stream message: how much of it does it release
/// before the frame ends? (It keeps the last window-size bytes; see src/inflate/zstd.rs.)
fn ruzstd_streaming_probe(input: &Input) {
    let mut decoder = ruzstd::decoding::FrameDecoder::new();
    let mut target = vec![0; OUT_CAPACITY];
    let mut released = 0;
    let mut source = &input.zstd[0][..];
    while let Ok((read, written)) = decoder.decode_from_to(source, &mut target) {
        released += written;
        source = &source[read..];
        if read == 0 && written == 0 {
            break;
        }
    }
    eprintln!(
        "ruzstd FrameDecoder::decode_from_to on zstd-stream message 1: released {released} of \
         {} bytes (the rest waits for the frame to end)",
        input.messages[0].len()
    );
}

/// This thread's CPU time: unlike wall time, it does not count the time other processes on a
/// busy machine take from us.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs every variant once per round, interleaved, and prints the best and median thread CPU
/// time of each over `DGP_BENCH_ROUNDS` rounds (default 15). Robust on a shared machine where
/// criterion's wall-clock numbers swing with other people's builds.
#[cfg(target_os = "linux")]
fn cpu_time_table(bytes: u64, variants: &mut [(&str, &mut dyn FnMut() -> usize)]) {
    let rounds: usize = std::env::var("DGP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            let start = thread_cpu_time();
            black_box(f());
            times[i].push(thread_cpu_time() - start);
        }
    }
    eprintln!("thread CPU time, {rounds} interleaved rounds:");
    eprintln!(
        "  {:<34} {:>10} {:>10} {:>10}",
        "", "best ms", "median ms", "MiB/s"
    );
    for ((name, _), t) in variants.iter().zip(&mut times) {
        t.sort();
        let best = t[0].as_secs_f64();
        eprintln!(
            "  {name:<34} {:>10.2} {:>10.2} {:>10.1}",
            best * 1e3,
            t[t.len() / 2].as_secs_f64() * 1e3,
            bytes as f64 / best / (1024.0 * 1024.0)
        );
    }
}

fn benches(c: &mut Criterion) {
    let input = input();
    let mut out = Vec::with_capacity(OUT_CAPACITY);
    let mut out_slice = vec![0u8; OUT_CAPACITY];
    for expected in [
        raw_flate2(&input.zlib, &mut out),
        raw_miniz_oxide(&input.zlib, &mut out_slice),
        ours(Compression::ZlibStream, &input.zlib, &mut out),
        raw_zstd_c(&input.zstd, &mut out),
        ours(Compression::ZstdStream, &input.zstd, &mut out),
    ] {
        assert_eq!(expected as u64, input.bytes);
    }
    ruzstd_streaming_probe(&input);

    let whole: Vec<u8> = input.messages.concat();
    let frame = zstd::bulk::compress(&whole, 3).unwrap();
    #[cfg(target_os = "linux")]
    {
        let mut outs: Vec<Vec<u8>> = (0..6).map(|_| Vec::with_capacity(OUT_CAPACITY)).collect();
        let [o1, o2, o3, o4, o5, o6] = &mut outs[..] else {
            unreachable!()
        };
        cpu_time_table(
            input.bytes,
            &mut [
                ("zlib-stream flate2+zlib-rs raw", &mut || {
                    raw_flate2(&input.zlib, o1)
                }),
                ("zlib-stream miniz_oxide raw", &mut || {
                    raw_miniz_oxide(&input.zlib, &mut out_slice)
                }),
                ("zlib-stream Decompressor", &mut || {
                    ours(Compression::ZlibStream, &input.zlib, o2)
                }),
                ("zstd-stream libzstd raw", &mut || {
                    raw_zstd_c(&input.zstd, o3)
                }),
                ("zstd-stream Decompressor", &mut || {
                    ours(Compression::ZstdStream, &input.zstd, o4)
                }),
                ("zstd one frame: ruzstd", &mut || {
                    o5.clear();
                    let mut decoder = ruzstd::decoding::FrameDecoder::new();
                    decoder.decode_all_to_vec(&frame, o5).unwrap();
                    o5.len()
                }),
                ("zstd one frame: libzstd", &mut || {
                    o6.clear();
                    let mut d = zstd::zstd_safe::DCtx::create();
                    d.decompress(o6, &frame).unwrap();
                    o6.len()
                }),
            ],
        );
    }

    let mut g = c.benchmark_group("zlib-stream");
    g.throughput(Throughput::Bytes(input.bytes));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("flate2+zlib-rs raw", |b| {
        b.iter(|| raw_flate2(&input.zlib, &mut out))
    });
    g.bench_function("miniz_oxide raw", |b| {
        b.iter(|| raw_miniz_oxide(&input.zlib, &mut out_slice))
    });
    g.bench_function("Decompressor", |b| {
        b.iter(|| ours(Compression::ZlibStream, &input.zlib, &mut out))
    });
    g.finish();

    let mut g = c.benchmark_group("zstd-stream");
    g.throughput(Throughput::Bytes(input.bytes));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("libzstd raw", |b| {
        b.iter(|| raw_zstd_c(&input.zstd, &mut out))
    });
    g.bench_function("Decompressor", |b| {
        b.iter(|| ours(Compression::ZstdStream, &input.zstd, &mut out))
    });
    g.finish();

    // ruzstd cannot decode zstd-stream (above); for the record, the two decoders on the same
    // data as one finished frame.
    let mut g = c.benchmark_group("zstd one finished frame");
    g.throughput(Throughput::Bytes(input.bytes));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("ruzstd", |b| {
        b.iter(|| {
            out.clear();
            let mut decoder = ruzstd::decoding::FrameDecoder::new();
            decoder.decode_all_to_vec(&frame, &mut out).unwrap();
            black_box(&out).len()
        })
    });
    g.bench_function("libzstd", |b| {
        b.iter(|| {
            out.clear();
            let mut d = zstd::zstd_safe::DCtx::create();
            d.decompress(&mut out, &frame).unwrap();
            black_box(&out).len()
        })
    });
    g.finish();
}

criterion_group!(inflate, benches);
criterion_main!(inflate);
