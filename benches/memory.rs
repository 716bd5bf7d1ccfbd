//! Bytes per machine, without compression: `size_of::<GatewayMachine>()` plus
//! `heap_bytes()`, with the configuration shared through one `Arc` (not counted).
//! Cross-checked against a counting allocator over 10,000 idle machines.
//!
//! Not a criterion bench (nothing is timed): `cargo bench -p discord-gateway-benches --bench
//! memory` prints a table.

#[path = "support/drive.rs"]
mod drive;
#[path = "support/frames.rs"]
mod frames;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use discord_gateway_proto::{GatewayMachine, Message, ShardId, Timestamp};
use frames::{FrameSets, SEED};

/// Live heap bytes, as requested from the allocator.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BUDGET: usize = 1536;

fn row(state: &str, m: &GatewayMachine, target: bool) {
    let size = std::mem::size_of::<GatewayMachine>();
    let heap = m.heap_bytes();
    let total = size + heap;
    let verdict = match (target, total < BUDGET) {
        (false, _) => "-".to_string(),
        (true, true) => "< 1.5 KiB: met".to_string(),
        (true, false) => "< 1.5 KiB: MISSED".to_string(),
    };
    println!("| {state} | {size} | {heap} | {total} | {verdict} |");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let config = drive::shared_config(10_000);
    let handshake = drive::Handshake::new(SEED);
    println!("\n## Memory (no compression; config shared via Arc, not counted)\n");
    println!("| machine state | size_of | heap_bytes() | total | target |");
    println!("|---|---:|---:|---:|---|");

    let fresh =
        GatewayMachine::with_options(config.clone(), Default::default(), SEED, Timestamp::ZERO)
            .unwrap();
    row("new (Connect queued)", &fresh, false);
    let mut m = drive::connect_with(
        &config,
        ShardId::new(1, 10_000),
        SEED,
        Timestamp::from_secs(1),
        &handshake,
    );
    row(
        "just after READY (READY text and Identify still buffered)",
        &m,
        false,
    );
    drive::heartbeat_round(&mut m);
    drive::heartbeat_round(&mut m);
    row("idle: READY + two quiet heartbeat rounds", &m, true);
    let now = m.now();
    for frame in &FrameSets::new(SEED).guild_create {
        m.handle_message(now, Message::Text(frame));
        drive::drain(&mut m);
    }
    row("right after a 215 KB GUILD_CREATE", &m, false);
    drive::heartbeat_round(&mut m);
    drive::heartbeat_round(&mut m);
    row("idle again, two heartbeat rounds later", &m, true);

    // Cross-check heap_bytes() with what the allocator actually holds.
    let before = LIVE.load(Ordering::Relaxed);
    let n = 10_000u32;
    let mut fleet = Vec::with_capacity(n as usize);
    let vec_bytes = n as usize * std::mem::size_of::<GatewayMachine>();
    for id in 0..n {
        fleet.push(drive::idle_machine_with(
            &config,
            ShardId::new(id, n),
            u64::from(id) ^ SEED,
            &handshake,
        ));
    }
    let live = LIVE.load(Ordering::Relaxed) - before;
    let reported: usize = fleet.iter().map(GatewayMachine::heap_bytes).sum();
    println!(
        "\n10,000 idle machines: {} bytes live on the heap (the Vec of structs included) = {:.0} B per machine; \
         size_of + heap_bytes() says {:.0} B per machine.",
        live,
        live as f64 / f64::from(n),
        (vec_bytes + reported) as f64 / f64::from(n),
    );
}
