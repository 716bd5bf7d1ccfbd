//! Steady-state dispatch handling allocates nothing, and an idle connected machine stays
//! small. Counted with a global allocator wrapper (this test binary only; not timed).
//!
//! The machine is driven by hand (Connect -> handle_connected -> Hello -> grant_identify ->
//! READY -> dispatches), the way a driver does, with frames from the benches' generator.

#[path = "../benches/support/drive.rs"]
mod drive;
#[path = "../benches/support/frames.rs"]
mod frames;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use discord_gateway_proto::{Message, ShardId, Timestamp};
use frames::{render, FrameGen, FrameSets, KeyOrder, SEED};

/// Counts allocations made by the current thread (tests run on several threads).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static DEALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = DEALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn deallocations() -> u64 {
    DEALLOCATIONS.with(Cell::get)
}

/// How the driver gives the machine its messages.
#[derive(Clone, Copy)]
enum Feed {
    /// `handle_message(Message::Text)`: lent, the machine copies.
    Lent,
    /// `handle_text_buffer`: each frame read into the buffer the machine gave back last
    /// time, then handed over.
    HandedOver,
}

/// What a counted pass cost.
struct Counted {
    allocations: u64,
    deallocations: u64,
    dispatches: usize,
}

/// Feeds `frames` in two warm-up passes (handed over, the driver's buffer and the
/// machine's alternate, so both must grow to the largest frame), then a counted pass.
fn steady_state(frames: &[String], feed: Feed) -> Counted {
    let config = drive::shared_config(1);
    let now = Timestamp::from_secs(1);
    let mut m = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    let mut buffer = String::new();
    let mut run = |m: &mut discord_gateway_proto::GatewayMachine| {
        let mut dispatches = 0;
        for frame in frames {
            match feed {
                Feed::Lent => m.handle_message(now, Message::Text(frame)),
                Feed::HandedOver => {
                    // The socket read, into the driver's buffer.
                    buffer.push_str(frame);
                    m.handle_text_buffer(now, &mut buffer);
                }
            }
            dispatches += drive::drain(m).dispatches;
        }
        dispatches
    };
    run(&mut m);
    run(&mut m);
    let (allocs, deallocs) = (allocations(), deallocations());
    let dispatches = run(&mut m);
    Counted {
        allocations: allocations() - allocs,
        deallocations: deallocations() - deallocs,
        dispatches,
    }
}

#[test]
fn dispatch_frames_allocate_nothing_in_steady_state() {
    let sets = FrameSets::new(SEED);
    let stream = render(&sets.mixed[2..], KeyOrder::Discord);
    let d_first = render(&sets.mixed[2..], KeyOrder::DataFirst);
    for (name, frames) in [
        ("heartbeat ACK", &sets.heartbeat_ack),
        ("TYPING_START", &sets.typing_start),
        ("PRESENCE_UPDATE", &sets.presence_update),
        ("MESSAGE_CREATE with embed", &sets.message_create_embed),
        ("GUILD_CREATE", &sets.guild_create),
        ("mixed stream", &stream),
        ("mixed stream, d first", &d_first),
    ] {
        let Counted {
            allocations: allocs,
            dispatches,
            ..
        } = steady_state(frames, Feed::Lent);
        let expected = frames.iter().filter(|f| !f.contains(r#""op":11"#)).count();
        assert_eq!(dispatches, expected, "{name}: every dispatch comes out");
        assert_eq!(
            allocs,
            0,
            "{name}: {allocs} allocations for {} frames",
            frames.len()
        );
    }
}

#[test]
fn handed_over_buffers_neither_allocate_nor_free_in_steady_state() {
    let sets = FrameSets::new(SEED);
    let stream = render(&sets.mixed[2..], KeyOrder::Discord);
    for (name, frames) in [
        ("MESSAGE_CREATE with embed", &sets.message_create_embed),
        ("GUILD_CREATE", &sets.guild_create),
        ("mixed stream", &stream),
    ] {
        let Counted {
            allocations: allocs,
            deallocations: deallocs,
            dispatches,
        } = steady_state(frames, Feed::HandedOver);
        let expected = frames.iter().filter(|f| !f.contains(r#""op":11"#)).count();
        assert_eq!(dispatches, expected, "{name}: every dispatch comes out");
        assert_eq!((allocs, deallocs), (0, 0), "{name}: allocations, frees");
    }
}

#[test]
fn idle_connected_machine_is_small() {
    // Config shared through an Arc, as among the shards of a process: not counted.
    let config = drive::shared_config(16);
    let mut gen = FrameGen::new(SEED);
    let frames = render(
        &[
            gen.typing_start(),
            gen.message_create_embed(),
            gen.presence_update(),
        ],
        KeyOrder::Discord,
    );
    let mut m = drive::idle_machine(&config, ShardId::new(3, 16), SEED);
    let bytes = drive::footprint(&m);
    eprintln!(
        "idle connected machine: {} struct + {} heap = {bytes} bytes",
        std::mem::size_of_val(&m),
        m.heap_bytes()
    );
    assert!(bytes < 1536, "{bytes} bytes");

    // Busy for a while (a GUILD_CREATE and dispatches), then quiet again: the buffers the
    // burst needed are given back within one heartbeat round.
    let now = m.now();
    for frame in FrameSets::new(SEED).guild_create.iter().chain(&frames) {
        m.handle_message(now, Message::Text(frame));
        drive::drain(&mut m);
    }
    assert!(drive::footprint(&m) > 100_000);
    drive::heartbeat_round(&mut m);
    drive::heartbeat_round(&mut m);
    let after = drive::footprint(&m);
    assert!(after < 1536, "{after} bytes after a burst");
}

/// Three dispatches of about 1.5 MiB (over the 1 MiB a receive buffer always keeps).
fn large_frames() -> Vec<String> {
    let filler = "x".repeat(3 << 19);
    (1..=3)
        .map(|s| format!(r#"{{"t":"GUILD_CREATE","s":{s},"op":0,"d":{{"f":"{filler}"}}}}"#))
        .collect()
}

#[test]
fn back_to_back_large_frames_reuse_the_receive_buffer() {
    for feed in [Feed::Lent, Feed::HandedOver] {
        let Counted {
            allocations,
            deallocations,
            dispatches,
        } = steady_state(&large_frames(), feed);
        assert_eq!(dispatches, 3);
        assert_eq!(
            (allocations, deallocations),
            (0, 0),
            "allocations, frees for three 1.5 MiB frames in a row"
        );
    }
}

#[test]
fn a_grown_receive_buffer_is_given_back_once_traffic_is_small() {
    let config = drive::shared_config(1);
    let now = Timestamp::from_secs(1);
    let mut m = drive::connected_machine(&config, ShardId::ONE, SEED, now);
    for frame in large_frames() {
        m.handle_message(now, Message::Text(&frame));
        drive::drain(&mut m);
    }
    assert!(m.heap_bytes() > 3 << 19);
    // A few small messages between large ones keep it ...
    let small = FrameSets::new(SEED).typing_start;
    for frame in &small[..3] {
        m.handle_message(now, Message::Text(frame));
        drive::drain(&mut m);
    }
    assert!(m.heap_bytes() > 3 << 19, "kept between large messages");
    // ... a run of them gives it back.
    for frame in &small[3..5] {
        m.handle_message(now, Message::Text(frame));
        drive::drain(&mut m);
    }
    assert!(
        m.heap_bytes() <= (1 << 20) + 4096,
        "{} bytes",
        m.heap_bytes()
    );
    // And a quiet heartbeat round gives back the rest, as before.
    drive::heartbeat_round(&mut m);
    drive::heartbeat_round(&mut m);
    assert!(drive::footprint(&m) < 1536);
}
