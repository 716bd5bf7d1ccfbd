//! Heap held per idle connected shard in a fleet: the shard (machine, tungstenite's
//! buffers, tokio's socket registration) plus what the fleet adds (its task, its status,
//! its place in the table and in the identify queue). Counted with a counting allocator as
//! bytes allocated minus bytes freed on the fleet's thread: a current-thread runtime runs
//! every shard task there, while the fake gateway runs on a thread of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use discord_gateway::fleet::{Fleet, FleetEvent};
use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{
    GatewayConfig, Intents, SessionStartLimit, ShardEvent, ShardId, SharedIdentifyQueue, Token,
};

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|n| n.set(n.get() + bytes as i64));
}

fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|n| n.set(n.get() - bytes as i64));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrink(layout.size());
        grow(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

const SHARDS: u32 = 200;

#[test]
fn an_idle_shard_in_a_fleet_stays_small() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig {
        hello_interval: Duration::from_secs(40),
        ready_delay: Duration::from_millis(1),
        guild_create_delay: None,
        ..FakeGatewayConfig::default()
    }));
    let per_shard = runtime.block_on(async {
        let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
            .with_gateway_url(server.url());
        // Everyone in one go: identify spacing is not what this measures.
        let queue = SharedIdentifyQueue::new(SessionStartLimit {
            total: 1000,
            remaining: 1000,
            reset_after: 86_400_000,
            max_concurrency: SHARDS,
        });
        // Warm the process-wide parts (TLS roots are not used on ws://; tokio's timer wheel,
        // the clock) with a fleet of one, so they do not count against the 200.
        let warm = Fleet::builder(config.clone())
            .identify_queue(queue.clone())
            .start([ShardId::new(0, 1)])
            .expect("fleet");
        drop(warm);
        tokio::time::sleep(Duration::from_millis(50)).await;

        let before = live_bytes();
        let mut fleet = Fleet::builder(config)
            .identify_queue(queue)
            .start((0..SHARDS).map(|id| ShardId::new(id, SHARDS)))
            .expect("fleet");
        let mut ready = 0;
        while ready < SHARDS {
            match tokio::time::timeout(Duration::from_secs(30), fleet.next_event()).await {
                Ok(Some(FleetEvent::Shard {
                    event: ShardEvent::Ready(_),
                    ..
                })) => ready += 1,
                Ok(Some(_)) => {}
                other => panic!("{ready} ready, then {other:?}"),
            }
        }
        // Idle a moment; read what is left (each shard's READY dispatch).
        let idle = async {
            while let Some(event) = fleet.next_event().await {
                drop(event);
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(200), idle).await;
        let held = live_bytes() - before;
        fleet.shutdown(false).await;
        held / i64::from(SHARDS)
    });
    drop(runtime);
    server.stop();
    println!(
        "heap per idle connected shard in a fleet of {SHARDS} (ws://, uncompressed): {per_shard} B"
    );
    // A plain shard holds about 12 KiB (tests/dispatch_alloc.rs); the fleet adds its task
    // (about 3 KiB: the store's and the closing steps' futures are boxed, not carried), its
    // status and its bookkeeping.
    assert!(per_shard < 20 * 1024, "{per_shard} bytes per shard");
}
