//! Envelope reader and whole-machine throughput on generated frames, each measured beside
//! its baselines in the same run:
//!
//! - `reader`: [`read_envelope`] of each frame (the whole frame is validated, `d` included);
//! - `machine`: `handle_message` + drain until `Wait` on a connected machine (copy into the
//!   machine's buffer, envelope, sequence tracking, the dispatch event out);
//! - `serde_value`: `serde_json::from_str::<serde_json::Value>` of each frame;
//! - `memchr_absent`: one `memchr` pass over all bytes of each frame for a byte that never
//!   occurs (0xFF is not UTF-8): the memory-bandwidth floor;
//! - `memchr_quotes`: counting the `"` of each frame with `memchr_iter`: one pass over every
//!   byte that also stops at every string boundary, as any JSON reader must.
//!
//! After criterion's own output, a table of per-frame times and ratios is printed (and
//! written to `<criterion dir>/throughput.md`).
//!
//! `GATEWAY_CORPUS_DIR=/path/to/corpus cargo bench --bench throughput` also measures
//! `mixed_stream.jsonl` / `mixed_stream_dfirst.jsonl` from a corpus directory, to compare the
//! generated frames with real-shaped ones. The benches never need it.

#[path = "support/drive.rs"]
mod drive;
#[path = "support/frames.rs"]
mod frames;
#[path = "support/report.rs"]
mod report;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use discord_gateway_proto::protocol::envelope::read_envelope;
use discord_gateway_proto::{Message, ShardId, Timestamp};

use frames::{render, FrameSets, KeyOrder, SEED};

/// One measured set of frames.
struct Set {
    /// Criterion group name.
    name: &'static str,
    /// What it is, for the table.
    label: &'static str,
    frames: Vec<String>,
}

fn sets() -> Vec<Set> {
    let g = FrameSets::new(SEED);
    // The stream after the handshake (HELLO and READY are the machine's own business).
    let stream = &g.mixed[2..];
    let mut sets = vec![
        Set {
            name: "heartbeat_ack",
            label: "heartbeat ACK",
            frames: g.heartbeat_ack,
        },
        Set {
            name: "typing_start",
            label: "TYPING_START",
            frames: g.typing_start,
        },
        Set {
            name: "presence_update",
            label: "PRESENCE_UPDATE",
            frames: g.presence_update,
        },
        Set {
            name: "message_create_embed",
            label: "MESSAGE_CREATE + embed",
            frames: g.message_create_embed,
        },
        Set {
            name: "guild_create",
            label: "GUILD_CREATE",
            frames: g.guild_create,
        },
        Set {
            name: "mixed",
            label: "mixed stream (t,s,op,d)",
            frames: render(stream, KeyOrder::Discord),
        },
        Set {
            name: "mixed_d_first",
            label: "mixed stream (op,d,s,t)",
            frames: render(stream, KeyOrder::DataFirst),
        },
    ];
    if let Some(dir) = std::env::var_os("GATEWAY_CORPUS_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let load = |file: &str| -> Option<Vec<String>> {
            let text = std::fs::read_to_string(dir.join(file)).ok()?;
            // Skip HELLO and READY, as for the generated stream.
            Some(text.lines().skip(2).map(str::to_owned).collect())
        };
        if let Some(frames) = load("mixed_stream.jsonl") {
            sets.push(Set {
                name: "corpus_mixed",
                label: "corpus mixed_stream.jsonl",
                frames,
            });
        }
        if let Some(frames) = load("mixed_stream_dfirst.jsonl") {
            sets.push(Set {
                name: "corpus_mixed_d_first",
                label: "corpus mixed_stream_dfirst.jsonl",
                frames,
            });
        }
    }
    sets
}

const FUNCTIONS: [&str; 5] = [
    "reader",
    "machine",
    "serde_value",
    "memchr_absent",
    "memchr_quotes",
];

fn bench_set(c: &mut Criterion, set: &Set) {
    let frames = &set.frames;
    let bytes: usize = frames.iter().map(String::len).sum();
    let mut group = c.benchmark_group(set.name);
    group.throughput(Throughput::Bytes(bytes as u64));
    if bytes > 100_000 {
        // Long iterations: equal-sized samples instead of criterion's linear ramp.
        group.sampling_mode(SamplingMode::Flat);
    }

    group.bench_function("reader", |b| {
        b.iter(|| {
            let mut seen = 0usize;
            for frame in frames {
                let e = read_envelope(black_box(frame)).expect("valid frame");
                seen += e.data.map_or(0, str::len) + e.op as usize;
            }
            seen
        })
    });

    let config = drive::shared_config(1);
    let now = Timestamp::from_secs(1);
    let mut machine = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    group.bench_function("machine", |b| {
        b.iter(|| {
            let mut seen = 0usize;
            for frame in frames {
                machine.handle_message(now, Message::Text(black_box(frame)));
                seen += drive::drain(&mut machine).data_bytes;
            }
            seen
        })
    });

    group.bench_function("serde_value", |b| {
        b.iter(|| {
            let mut seen = 0usize;
            for frame in frames {
                let v: serde_json::Value = serde_json::from_str(black_box(frame)).unwrap();
                seen += v.as_object().map_or(0, |o| o.len());
            }
            seen
        })
    });

    group.bench_function("memchr_absent", |b| {
        b.iter(|| {
            let mut seen = 0usize;
            for frame in frames {
                seen += memchr::memchr(0xFF, black_box(frame).as_bytes()).unwrap_or(1);
            }
            seen
        })
    });

    group.bench_function("memchr_quotes", |b| {
        b.iter(|| {
            let mut seen = 0usize;
            for frame in frames {
                seen += memchr::memchr_iter(b'"', black_box(frame).as_bytes()).count();
            }
            seen
        })
    });
    group.finish();
}

fn table(results: &report::Results, sets: &[Set]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| frames | n | bytes/frame | reader ns/frame (GB/s) | machine ns/frame | Value ns/frame | memchr absent | memchr quotes | Value / reader | reader / memchr absent | reader / memchr quotes | machine / reader |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for set in sets {
        let n = set.frames.len() as f64;
        let bytes = set.frames.iter().map(String::len).sum::<usize>() as f64;
        let [reader, machine, value, absent, quotes] =
            FUNCTIONS.map(|f| results.nanos(set.name, f));
        if reader.is_none() && machine.is_none() {
            continue;
        }
        let per_frame = |t: Option<f64>| t.map_or("-".into(), |t| format!("{:.0}", t / n));
        let gbps = reader.map_or("-".into(), |t| format!("{:.2}", bytes / t));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} ({gbps}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            set.label,
            set.frames.len(),
            bytes / n,
            per_frame(reader),
            per_frame(machine),
            per_frame(value),
            per_frame(absent),
            per_frame(quotes),
            report::ratio(value, reader),
            report::ratio(reader, absent),
            report::ratio(reader, quotes),
            report::ratio(machine, reader),
        );
    }
    out
}

fn main() {
    let results = report::Results::start();
    let sets = sets();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    for set in &sets {
        bench_set(&mut c, set);
    }
    c.final_summary();
    let table = table(&results, &sets);
    if table.lines().count() > 2 {
        println!("\n## Envelope and machine (median per frame)\n\n{table}");
        let _ = std::fs::write(results.path("throughput.md"), &table);
    }
}
