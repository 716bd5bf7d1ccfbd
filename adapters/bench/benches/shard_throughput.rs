//! Throughput, ours beside twilight-gateway 0.18 (issue 15): a loopback fake gateway (a
//! child process) streams the generated mixed frames to (a) our tokio `Shard`, whose loop
//! runs inside `next_event` and hands each dispatch's raw `d`, and (b) twilight's `Shard`
//! read as a `Stream` of raw text messages (`shard.next()`, 0.18's successor of
//! `next_message`; no model parsing). Both go through the same
//! Hello / Identify / READY handshake; the window runs from READY to the last frame.
//!
//! Per event: thread CPU time (the client runs on a current-thread runtime, so every cycle
//! it spends is on this thread; the server is another process) and allocator calls (a
//! counting global allocator). Interleaved rounds: each round runs every variant once, in
//! alternating order; the ratio reported is the median of the rounds' own ratios.
//! Allocations are counted in separate rounds first (which also warm up), and counting is
//! off while CPU time is measured.
//!
//! ```sh
//! cargo bench -p discord-gateway-shard-bench --bench shard_throughput
//! SHARD_BENCH_ROUNDS=25 SHARD_BENCH_STREAM_REPEATS=8 cargo bench -p discord-gateway-shard-bench --bench shard_throughput
//! ```

mod support;

use std::collections::BTreeMap;

use support::alloc::set_counting;
use support::child::Child;
use support::clients::{stream_ours, stream_twilight, twilight_queue, Window};
use support::stats::{bytes, median, min, ratio};
use support::{env_or, Client, Transport};

/// Every variant, in the order of even rounds (odd rounds run them backwards).
const VARIANTS: [(Client, Transport); 4] = [
    (Client::Ours, Transport::Plain),
    (Client::Twilight, Transport::Plain),
    (Client::Ours, Transport::Zlib),
    (Client::Twilight, Transport::Zlib),
];

fn main() {
    match std::env::var(support::ROLE).as_deref() {
        Ok("server") => return support::server::run(),
        Ok(role) => panic!("unknown role {role}"),
        Err(_) => {}
    }
    let repeats: u32 = env_or("SHARD_BENCH_STREAM_REPEATS", 4);
    let rounds: usize = env_or("SHARD_BENCH_ROUNDS", 15);
    let counted_rounds: usize = env_or("SHARD_BENCH_COUNTED_ROUNDS", 3);
    // `ours-plain,twilight-zlib`...: run only these (to profile one); default all.
    let only: String = env_or("SHARD_BENCH_VARIANTS", String::new());
    let wanted = |(client, transport): (Client, Transport)| {
        only.is_empty()
            || only
                .split(',')
                .any(|name| name.trim() == format!("{}-{}", client.name(), transport.name()))
    };
    let mut server = Child::spawn(
        "server",
        "fake gateway",
        &[
            // No heartbeat falls due in a window: the first is at a random point of ten
            // minutes (our machine's longest accepted interval).
            ("SHARD_BENCH_HELLO_MS", "600000".into()),
            ("SHARD_BENCH_STREAM_REPEATS", repeats.to_string()),
        ],
    );
    let url = server.expect("LISTEN");
    let stream = server.expect("STREAM");
    let field = |name: &str| -> u64 {
        stream
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("the server did not say {name}: {stream}"))
    };
    let (frames, last_seq) = (field("frames"), field("last_seq"));
    eprintln!(
        "{frames} frames per connection ({repeats} x the mixed stream), {counted_rounds} counted rounds, {rounds} timed rounds; load before: {}",
        load_average()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (counted, timed) = runtime.block_on(async {
        let queue = twilight_queue();
        let run = |client: Client, transport: Transport| {
            let queue = queue.clone();
            let url = url.clone();
            async move {
                match client {
                    Client::Ours => stream_ours(&url, transport, last_seq).await,
                    Client::Twilight => stream_twilight(&url, transport, &queue, frames).await,
                }
            }
        };
        let mut counted: BTreeMap<usize, Vec<Window>> = BTreeMap::new();
        let mut timed: BTreeMap<usize, Vec<Window>> = BTreeMap::new();
        for (rounds, counting, results) in [
            (counted_rounds, true, &mut counted),
            (rounds, false, &mut timed),
        ] {
            set_counting(counting);
            for round in 0..rounds {
                let mut order: Vec<usize> = (0..VARIANTS.len()).collect();
                if round % 2 == 1 {
                    order.reverse();
                }
                for v in order {
                    let (client, transport) = VARIANTS[v];
                    if !wanted((client, transport)) {
                        continue;
                    }
                    let window = run(client, transport).await;
                    results.entry(v).or_default().push(window);
                }
            }
        }
        set_counting(true);
        (counted, timed)
    });
    server.finish();

    let per_event = |windows: &[Window]| -> Vec<f64> {
        windows
            .iter()
            .map(|w| w.cpu.as_nanos() as f64 / frames as f64)
            .collect()
    };
    println!();
    println!(
        "Shard throughput: {frames} frames per connection, thread CPU time per event ({rounds} interleaved rounds) and allocations per event ({counted_rounds} counted rounds); load after: {}",
        load_average()
    );
    println!();
    println!("| transport | ours ns/event (median; best) | twilight ns/event (median; best) | twilight / ours CPU (median of rounds) | ours allocations/event | twilight allocations/event | ours bytes allocated/event | twilight bytes allocated/event |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for transport in [Transport::Plain, Transport::Zlib] {
        let index = |client: Client| {
            VARIANTS
                .iter()
                .position(|&v| v == (client, transport))
                .expect("variant")
        };
        let (ours, theirs) = (index(Client::Ours), index(Client::Twilight));
        if !(counted.contains_key(&ours) && counted.contains_key(&theirs)) {
            continue;
        }
        let ours_ns = per_event(&timed[&ours]);
        let theirs_ns = per_event(&timed[&theirs]);
        let ratios: Vec<f64> = ours_ns.iter().zip(&theirs_ns).map(|(o, t)| t / o).collect();
        let allocs = |v: usize| -> (f64, f64) {
            let windows = &counted[&v];
            let calls: Vec<f64> = windows
                .iter()
                .map(|w| w.alloc.calls as f64 / frames as f64)
                .collect();
            let bytes: Vec<f64> = windows
                .iter()
                .map(|w| w.alloc.bytes as f64 / frames as f64)
                .collect();
            (median(&calls), median(&bytes))
        };
        let (ours_calls, ours_bytes) = allocs(ours);
        let (theirs_calls, theirs_bytes) = allocs(theirs);
        println!(
            "| {} | {:.0}; {:.0} | {:.0}; {:.0} | {} | {:.3} | {:.3} | {} | {} |",
            transport.name(),
            median(&ours_ns),
            min(&ours_ns),
            median(&theirs_ns),
            min(&theirs_ns),
            ratio(median(&ratios)),
            ours_calls,
            theirs_calls,
            bytes(ours_bytes),
            bytes(theirs_bytes),
        );
    }
    let (core, simd) = utf8_checks();
    println!();
    println!(
        "UTF-8 check of a text message, per frame of this stream (best of 15 passes): core::str::from_utf8 (tungstenite: our smol and blocking shards) {core:.0} ns, simdutf8 (tokio-websockets: our tokio shard, twilight) {simd:.0} ns."
    );
}

/// What each WebSocket library's UTF-8 check of a text message costs on this stream: thread
/// CPU time per frame, best of 15 passes over the frames laid out one after another.
/// tungstenite (our smol and blocking shards) checks with `core::str::from_utf8`,
/// tokio-websockets (our tokio shard, twilight's) with `simdutf8`.
fn utf8_checks() -> (f64, f64) {
    use support::cpu::thread_cpu;
    use support::frames::{FrameGen, KeyOrder, SEED};
    let texts: Vec<String> = FrameGen::new(SEED ^ 1)
        .mixed_stream(5000)
        .iter()
        .skip(2)
        .map(|frame| frame.text(KeyOrder::Discord))
        .collect();
    let best = |check: &dyn Fn(&[u8]) -> bool| -> f64 {
        (0..15)
            .map(|_| {
                let start = thread_cpu();
                let valid = texts
                    .iter()
                    .filter(|text| check(std::hint::black_box(text.as_bytes())))
                    .count();
                assert_eq!(valid, texts.len());
                (thread_cpu() - start).as_nanos() as f64 / texts.len() as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let core = best(&|bytes| std::str::from_utf8(bytes).is_ok());
    let simd = best(&|bytes| simdutf8::basic::from_utf8(bytes).is_ok());
    (core, simd)
}

/// The 1-minute load average, as `uptime` shows it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
