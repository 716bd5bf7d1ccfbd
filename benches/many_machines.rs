//! One process running many shards: `handle_timeout` (+ the drain the contract requires)
//! over 10,000 idle connected machines sharing one `Arc<GatewayConfig>`.
//!
//! - `spurious_10k`: a timer wheel woke the process but no machine is due: each machine is
//!   asked and answers `Wait(deadline)` (target: under 1 ms for all 10,000);
//! - `heartbeat_round_10k`: every machine's beat is due: the beat goes out, its ACK comes
//!   back, each drained (a full heartbeat round of a 10,000-shard process).

#[path = "support/drive.rs"]
mod drive;
#[path = "support/frames.rs"]
mod frames;
#[path = "support/report.rs"]
mod report;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use discord_gateway_proto::{GatewayMachine, Message, Output, ShardId};

const MACHINES: u32 = 10_000;
const ACK: &str = r#"{"t":null,"s":null,"op":11,"d":null}"#;

fn machines() -> Vec<GatewayMachine> {
    let config = drive::shared_config(MACHINES);
    let handshake = drive::Handshake::new(frames::SEED);
    (0..MACHINES)
        .map(|id| {
            let seed = u64::from(id) ^ frames::SEED;
            drive::idle_machine_with(&config, ShardId::new(id, MACHINES), seed, &handshake)
        })
        .collect()
}

fn main() {
    let results = report::Results::start();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args();
    let mut fleet = machines();
    let mut group = c.benchmark_group("many_machines");
    group.throughput(Throughput::Elements(u64::from(MACHINES)));
    group.sampling_mode(SamplingMode::Flat);

    // Every idle machine's next deadline is a heartbeat tens of seconds away.
    // Just before the earliest of them (a machine that has seen a later `now` clamps to it).
    let earliest = fleet.iter().filter_map(|m| m.poll_timeout()).min().unwrap();
    let quiet = earliest.saturating_sub(Duration::from_millis(1));
    group.bench_function("spurious_10k", |b| {
        b.iter(|| {
            let mut waits = 0u64;
            for m in fleet.iter_mut() {
                m.handle_timeout(black_box(quiet));
                if let Output::Wait(Some(at)) = m.poll_output() {
                    waits += at.as_micros() & 1;
                }
            }
            waits
        })
    });

    // Heartbeat rounds: time moves one interval per round, so every beat is due each time.
    let interval = fleet[0].heartbeat_interval().unwrap();
    let mut now = fleet.iter().filter_map(|m| m.poll_timeout()).max().unwrap();
    group.bench_function("heartbeat_round_10k", |b| {
        b.iter(|| {
            let mut sent = 0usize;
            for m in fleet.iter_mut() {
                m.handle_timeout(now);
                sent += drive::drain(m).sends;
                m.handle_message(now, Message::Text(ACK));
                drive::drain(m);
            }
            now = now.saturating_add(interval);
            assert_eq!(sent, MACHINES as usize, "every machine beat once");
            sent
        })
    });
    group.finish();
    c.final_summary();

    println!("\n## Many machines (10,000 idle connected machines, one Arc<GatewayConfig>)\n");
    println!("| bench | total per round | per machine | target |");
    println!("|---|---:|---:|---|");
    for (name, target) in [
        ("spurious_10k", "< 1 ms total"),
        ("heartbeat_round_10k", "-"),
    ] {
        if let Some(ns) = results.nanos("many_machines", name) {
            let met = match name {
                "spurious_10k" if ns < 1e6 => " (met)",
                "spurious_10k" => " (missed)",
                _ => "",
            };
            println!(
                "| {name} | {:.1} us | {:.1} ns | {target}{met} |",
                ns / 1e3,
                ns / f64::from(MACHINES)
            );
        }
    }
}
