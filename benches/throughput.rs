//! Envelope reader and whole-machine throughput on generated frames, each measured beside
//! its baselines in the same run:
//!
//! - `reader`: [`read_envelope`] of each frame (the top level validated, `d` delimited with
//!   its strings and bracket balance checked);
//! - `machine`: `handle_message` + drain until `Wait` on a connected machine (copy into the
//!   machine's buffer, envelope, sequence tracking, the dispatch event out);
//! - `machine_handed_over`: the same through `handle_text_buffer`, for a driver that reads
//!   each frame into a `String` of its own and hands it over (no copy). Filling the buffers
//!   (the driver's socket read) is not timed;
//! - `serde_value`: `serde_json::from_str::<serde_json::Value>` of each frame;
//! - `memchr_absent`: one `memchr` pass over all bytes of each frame for a byte that never
//!   occurs (0xFF is not UTF-8): the memory-bandwidth floor;
//! - `memchr_quotes`: counting the `"` of each frame with `memchr_iter`: one pass over every
//!   byte that also stops at every string boundary, as any JSON reader must.
//!
//! After criterion's own output, a table of per-frame times and ratios is printed (and
//! written to `<criterion dir>/throughput.md`).
//!
//! `GATEWAY_CORPUS_DIR=/path/to/corpus cargo bench -p discord-gateway-benches --bench
//! throughput` also measures `mixed_stream.jsonl` / `mixed_stream_dfirst.jsonl` from a corpus
//! directory, to compare the generated frames with real-shaped ones. The benches never need
//! it.

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
use discord_gateway_proto::{GatewayMachine, Message, ShardId, Timestamp};

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
            name: "guild_create_312k",
            label: "GUILD_CREATE ~312 KB, 4 back to back",
            frames: frames::guild_creates(SEED ^ 2, 344, 4),
        },
        Set {
            name: "guild_create_3m",
            label: "GUILD_CREATE ~3.3 MB, 2 back to back",
            frames: frames::guild_creates(SEED ^ 3, 4_020, 2),
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
    for set in &mut sets {
        set.frames = laid_out_in_order(set.frames.iter());
    }
    sets
}

/// Copies of `frames`, allocated one after another. The generator leaves its frames
/// scattered among its freed scratch buffers, with spare capacity after each; read from
/// there, the mixed stream pays a cache and TLB miss per frame that neither a WebSocket
/// driver (one receive buffer, reused) nor the corpus (read line after line) has. All
/// functions read the same copies.
fn laid_out_in_order<'a>(frames: impl Iterator<Item = &'a String>) -> Vec<String> {
    frames.map(|frame| frame.as_str().to_owned()).collect()
}

const FUNCTIONS: [&str; 6] = [
    "reader",
    "machine",
    "serde_value",
    "memchr_absent",
    "memchr_quotes",
    "machine_handed_over",
];

/// A driver's receive buffers for handing `frames` over: the set `repeat` times over, so
/// that one timed pass over small sets is long enough for the timer's cost not to count.
struct DriverBuffers<'a> {
    frames: &'a [String],
    /// How many times over the set the buffers hold.
    repeat: usize,
    buffers: Vec<String>,
}

impl<'a> DriverBuffers<'a> {
    fn new(frames: &'a [String], repeat: usize) -> Self {
        DriverBuffers {
            frames,
            repeat,
            buffers: Vec::new(),
        }
    }

    /// Refills every buffer (the socket reads; not timed), then times handing them over,
    /// draining after each. Returns the time per pass over the set.
    fn hand_over(&mut self, machine: &mut GatewayMachine, now: Timestamp) -> Duration {
        use criterion::measurement::{Measurement, WallTime};
        // Fresh copies, one after another: refilled in place, the buffers, swapped with the
        // machine's and regrown, would end up scattered over the heap.
        let fresh = laid_out_in_order(
            self.frames
                .iter()
                .cycle()
                .take(self.frames.len() * self.repeat),
        );
        drop(std::mem::replace(&mut self.buffers, fresh));
        let start = WallTime.start();
        let mut seen = 0usize;
        for buffer in &mut self.buffers {
            machine.handle_text_buffer(now, black_box(buffer));
            seen += drive::drain(machine).data_bytes;
        }
        black_box(seen);
        WallTime.end(start) / self.repeat as u32
    }
}

/// How many times over the set one timed pass goes: about 64 KiB of frames.
fn repeat_for(frames: &[String]) -> usize {
    let bytes: usize = frames.iter().map(String::len).sum();
    (64 * 1024 / bytes.max(1)).max(1)
}

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

    let mut handed_over = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    let mut buffers = DriverBuffers::new(frames, repeat_for(frames));
    group.bench_function("machine_handed_over", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| buffers.hand_over(&mut handed_over, now))
                .sum()
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

/// One set's line of a table.
#[derive(Clone, Copy)]
struct Row {
    /// Nanoseconds per pass over the set for each of [`FUNCTIONS`].
    times: [Option<f64>; 6],
    /// Value / reader, reader / memchr absent, reader / memchr quotes, machine / reader,
    /// handed over / reader.
    ratios: [Option<f64>; 5],
}

impl Row {
    /// A row whose ratios are those of its times.
    fn from_times(times: [Option<f64>; 6]) -> Self {
        let [reader, machine, value, absent, quotes, handed_over] = times;
        let ratios = [
            report::divide(value, reader),
            report::divide(reader, absent),
            report::divide(reader, quotes),
            report::divide(machine, reader),
            report::divide(handed_over, reader),
        ];
        Row { times, ratios }
    }
}

fn table(sets: &[Set], row: &dyn Fn(&Set) -> Option<Row>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| frames | n | bytes/frame | reader ns/frame (GB/s) | machine ns/frame | Value ns/frame | memchr absent | memchr quotes | Value / reader | reader / memchr absent | reader / memchr quotes | machine / reader | handed over ns/frame | handed over / reader |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for set in sets {
        let n = set.frames.len() as f64;
        let bytes = set.frames.iter().map(String::len).sum::<usize>() as f64;
        let Some(Row { times, ratios }) = row(set) else {
            continue;
        };
        let [reader, machine, value, absent, quotes, handed_over] = times;
        let [value_reader, reader_absent, reader_quotes, machine_reader, handed_over_reader] =
            ratios.map(report::format_ratio);
        let per_frame = |t: Option<f64>| t.map_or("-".into(), |t| format!("{:.0}", t / n));
        let gbps = reader.map_or("-".into(), |t| format!("{:.2}", bytes / t));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} ({gbps}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            set.label,
            set.frames.len(),
            bytes / n,
            per_frame(reader),
            per_frame(machine),
            per_frame(value),
            per_frame(absent),
            per_frame(quotes),
            value_reader,
            reader_absent,
            reader_quotes,
            machine_reader,
            per_frame(handed_over),
            handed_over_reader,
        );
    }
    out
}

/// Many rounds over the set, the functions interleaved within each round. The times are
/// each function's best: contention from other processes only ever adds time, so the
/// minimum is the steadiest estimate of a time on a shared machine. The ratios are the
/// median over rounds of the ratio within each round: the functions of one round run
/// within milliseconds of each other, so a change of clock speed or a noisy neighbour
/// that lasts longer than that cancels out of the ratio (the best times of two functions
/// can come from different moments).
fn interleaved_rounds(set: &Set) -> Row {
    use criterion::measurement::{Measurement, WallTime};
    let frames = &set.frames;
    let config = drive::shared_config(1);
    let now = Timestamp::from_secs(1);
    let mut machine = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    let mut handed_over = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    // Small sets are passed over several times per timing, so the timer's own cost and
    // resolution stay negligible.
    let repeat = repeat_for(frames);
    let mut buffers = DriverBuffers::new(frames, repeat);
    // Times `repeat` passes of `pass`; returns the time per pass.
    let timed = |pass: &mut dyn FnMut() -> usize| {
        let start = WallTime.start();
        for _ in 0..repeat {
            black_box(pass());
        }
        WallTime.end(start) / repeat as u32
    };
    let mut passes: [Box<dyn FnMut() -> Duration + '_>; 6] = [
        Box::new(|| {
            timed(&mut || {
                frames
                    .iter()
                    .map(|f| read_envelope(black_box(f)).map_or(0, |e| e.op as usize))
                    .sum()
            })
        }),
        Box::new(|| {
            timed(&mut || {
                let mut seen = 0;
                for frame in frames {
                    machine.handle_message(now, Message::Text(black_box(frame)));
                    seen += drive::drain(&mut machine).data_bytes;
                }
                seen
            })
        }),
        Box::new(|| {
            timed(&mut || {
                frames
                    .iter()
                    .map(|f| {
                        serde_json::from_str::<serde_json::Value>(black_box(f))
                            .map_or(0, |v| v.as_object().map_or(0, |o| o.len()))
                    })
                    .sum()
            })
        }),
        Box::new(|| {
            timed(&mut || {
                frames
                    .iter()
                    .map(|f| memchr::memchr(0xFF, black_box(f).as_bytes()).unwrap_or(1))
                    .sum()
            })
        }),
        Box::new(|| {
            timed(&mut || {
                frames
                    .iter()
                    .map(|f| memchr::memchr_iter(b'"', black_box(f).as_bytes()).count())
                    .sum()
            })
        }),
        Box::new(|| buffers.hand_over(&mut handed_over, now)),
    ];
    let mut round = || passes.each_mut().map(|pass| pass().as_nanos() as f64);
    let start = WallTime.start();
    round();
    // About two seconds per set.
    let once = WallTime.end(start).as_secs_f64();
    let rounds: Vec<[f64; 6]> = (0..(2.0 / once).clamp(10.0, 500.0) as usize)
        .map(|_| round())
        .collect();
    let best: [f64; 6] =
        std::array::from_fn(|f| rounds.iter().map(|r| r[f]).fold(f64::MAX, f64::min));
    let per_round: Vec<[Option<f64>; 5]> = rounds
        .iter()
        .map(|times| Row::from_times(times.map(Some)).ratios)
        .collect();
    let ratios = std::array::from_fn(|i| {
        let mut column: Vec<f64> = per_round.iter().filter_map(|r| r[i]).collect();
        column.sort_by(f64::total_cmp);
        column.get(column.len() / 2).copied()
    });
    Row {
        times: best.map(Some),
        ratios,
    }
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
    let ran: Vec<&Set> = sets
        .iter()
        .filter(|set| results.nanos(set.name, "reader").is_some())
        .collect();
    if ran.is_empty() {
        return;
    }
    let medians = table(&sets, &|set| {
        let times = FUNCTIONS.map(|f| results.nanos(set.name, f));
        times[0].map(|_| Row::from_times(times))
    });
    println!("\n## Envelope and machine: criterion medians, per frame\n\n{medians}");
    // Only under `cargo bench` (criterion's test mode runs each bench once, untimed).
    let best = if std::env::args().any(|a| a == "--bench") {
        let rounds: Vec<(&str, Row)> = ran
            .iter()
            .map(|set| (set.name, interleaved_rounds(set)))
            .collect();
        let best = table(&sets, &|set| {
            let (_, row) = rounds.iter().find(|(name, _)| *name == set.name)?;
            Some(*row)
        });
        println!(
            "\n## Envelope and machine: interleaved rounds, per frame (best times; ratios: median over rounds of each round's ratio)\n\n{best}"
        );
        best
    } else {
        String::new()
    };
    let _ = std::fs::write(
        results.path("throughput.md"),
        format!("criterion medians\n\n{medians}\ninterleaved rounds (best times; ratios: median over rounds of each round's ratio)\n\n{best}"),
    );
}
