//! The two clients, driven the same way: our `discord_gateway::tokio::Shard` (events from
//! `next_event`, each dispatch's raw `d` taken) and twilight-gateway 0.18's `Shard` (raw
//! text messages from its `Stream` impl, `shard.next()`: 0.18's successor of
//! `next_message`, with no model parsing, the counterpart of our raw `d`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discord_gateway::tokio::Shard;
use discord_gateway::{
    Compression, GatewayConfig, Intents, ShardEvent, ShardId, ShardOptions, Token,
};
use futures_util::StreamExt as _;
use serde_json::{json, Value};
use twilight_gateway::queue::InMemoryQueue;
use twilight_gateway::{ConfigBuilder, Message};

use super::alloc::Snapshot;
use super::cpu::{process_cpu, raise_fd_limit, resident_bytes, thread_cpu};
use super::ticker::Ticker;
use super::{base_url, env_or, Client, Transport};

/// The token both clients present (the fake gateway accepts any).
const TOKEN: &str = "bench-token";

/// How a READY message starts, in Discord's key order.
const READY_PREFIX: &str = r#"{"t":"READY""#;

fn our_config(base: &str, transport: Transport) -> GatewayConfig {
    let compression = match transport {
        Transport::Plain => Compression::None,
        Transport::Zlib => Compression::ZlibStream,
    };
    GatewayConfig::new(Token::new(TOKEN), Intents::GUILDS)
        .with_gateway_url(base)
        .with_compression(compression)
}

/// Our options: the defaults. (The tokio shard's WebSocket, tokio-websockets, has no read
/// buffer size to set: `BufferSizes::read` is the smol and blocking shards'.)
fn our_options() -> ShardOptions {
    ShardOptions::new()
}

/// twilight's configuration for `base`, with an identify queue that never waits
/// (`max_concurrency` 0 makes twilight's `InMemoryQueue` a no-op): like ours without a
/// queue, every shard identifies as soon as Hello arrives.
fn twilight_config(base: &str, queue: InMemoryQueue) -> twilight_gateway::Config {
    ConfigBuilder::new(TOKEN.to_string(), twilight_gateway::Intents::GUILDS)
        .proxy_url(base.to_string())
        .queue(queue)
        .build()
}

/// A no-op twilight identify queue (call inside a tokio runtime: it spawns its task).
pub fn twilight_queue() -> InMemoryQueue {
    InMemoryQueue::new(0, 0, Duration::ZERO, 0)
}

/// What one client cost over a stream, measured on the thread that polled it.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Thread CPU time from READY to the last frame.
    pub cpu: Duration,
    /// Allocator calls and bytes in that time (zero when counting was off).
    pub alloc: Snapshot,
}

/// Our shard reads the fake gateway's stream (mode `stream`) on `server`: connects and
/// identifies, then, from READY on, takes every dispatch's `d` until the one with
/// `last_seq`. Must run on a current-thread runtime (the shard is polled on this thread).
pub async fn stream_ours(server: &str, transport: Transport, last_seq: u64) -> Window {
    let config = our_config(&base_url(server, Client::Ours, transport), transport);
    let mut shard = Shard::from_config(config, our_options().seed(1)).expect("config");
    loop {
        match shard.next_event().await {
            Some(ShardEvent::Dispatch(d)) if d.name == "READY" => break,
            Some(event) => check_ours(&event),
            None => panic!("our shard ended before READY"),
        }
    }
    let cpu = thread_cpu();
    let alloc = Snapshot::now();
    let mut taken = 0usize;
    loop {
        match shard.next_event().await {
            Some(ShardEvent::Dispatch(d)) => {
                taken += black_box(d.data).len();
                if d.sequence == last_seq {
                    break;
                }
            }
            Some(event) => check_ours(&event),
            None => panic!("our shard ended mid-stream"),
        }
    }
    let window = Window {
        cpu: thread_cpu() - cpu,
        alloc: Snapshot::now().since(alloc),
    };
    black_box(taken);
    window
}

/// Panics on an event that means the run went wrong (a lost connection mid-stream).
fn check_ours(event: &ShardEvent) {
    if matches!(
        event,
        ShardEvent::Disconnected { .. }
            | ShardEvent::TransportError(_)
            | ShardEvent::ProtocolError(_)
            | ShardEvent::Fatal(_)
    ) {
        panic!("our shard: {event:?}");
    }
}

/// twilight's shard reads the same stream: from READY on, takes every message's raw text
/// until `frames` have come.
pub async fn stream_twilight(
    server: &str,
    transport: Transport,
    queue: &InMemoryQueue,
    frames: u64,
) -> Window {
    let config = twilight_config(
        &base_url(server, Client::Twilight, transport),
        queue.clone(),
    );
    let mut shard = twilight_gateway::Shard::with_config(twilight_gateway::ShardId::ONE, config);
    loop {
        match shard.next().await {
            Some(Ok(Message::Text(text))) if text.starts_with(READY_PREFIX) => break,
            Some(Ok(Message::Text(_))) => {}
            other => panic!("twilight before READY: {other:?}"),
        }
    }
    let cpu = thread_cpu();
    let alloc = Snapshot::now();
    let mut taken = 0usize;
    let mut seen = 0;
    while seen < frames {
        match shard.next().await {
            Some(Ok(Message::Text(text))) => {
                taken += black_box(text).len();
                seen += 1;
            }
            other => panic!("twilight mid-stream: {other:?}"),
        }
    }
    let window = Window {
        cpu: thread_cpu() - cpu,
        alloc: Snapshot::now().since(alloc),
    };
    black_box(taken);
    window
}

/// Heap that twilight-gateway built with its `zlib` feature (as here) holds per shard for
/// its decompressor even on a connection that is not compressed: the 32 KiB output buffer
/// (`compression::BUFFER_SIZE`, allocated in `Decompressor::new`) and a fresh
/// `flate2::Decompress` (zlib-rs allocates its state at creation, the window only at the
/// first inflate). The decompressor is private, so this is measured on the same flate2
/// build. A bot without the feature has neither: its uncompressed shards are this much
/// smaller.
fn twilight_unused_decompressor_bytes() -> i64 {
    const TWILIGHT_BUFFER_SIZE: usize = 32 * 1024;
    let before = Snapshot::now();
    let buffer = vec![0u8; TWILIGHT_BUFFER_SIZE].into_boxed_slice();
    let state = flate2::Decompress::new(true);
    let held = Snapshot::now().since(before).live;
    drop((buffer, state));
    held
}

/// What the idle shards' tasks saw.
#[derive(Default)]
struct Counters {
    ready: AtomicU64,
    disconnects: AtomicU64,
    errors: AtomicU64,
    /// Times a shard's task was polled (how often the runtime woke it).
    polls: AtomicU64,
}

/// A shard's task, counting its polls.
struct Counted<F> {
    task: std::pin::Pin<Box<F>>,
    counters: Arc<Counters>,
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.counters.polls.fetch_add(1, Relaxed);
        self.task.as_mut().poll(cx)
    }
}

/// Spawns `task` as one shard's task, counting its polls.
fn spawn_counted<F>(counters: &Arc<Counters>, task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(Counted {
        task: Box::pin(task),
        counters: Arc::clone(counters),
    });
}

impl Counters {
    fn ours(&self, event: &ShardEvent) {
        match event {
            ShardEvent::Ready(_) => self.ready.fetch_add(1, Relaxed),
            ShardEvent::Disconnected { .. } => self.disconnects.fetch_add(1, Relaxed),
            ShardEvent::TransportError(_) | ShardEvent::ProtocolError(_) | ShardEvent::Fatal(_) => {
                self.errors.fetch_add(1, Relaxed)
            }
            _ => 0,
        };
    }

    fn twilight(&self, item: &Result<Message, twilight_gateway::error::ReceiveMessageError>) {
        match item {
            Ok(Message::Text(text)) if text.starts_with(READY_PREFIX) => {
                self.ready.fetch_add(1, Relaxed)
            }
            Ok(Message::Close(_)) => self.disconnects.fetch_add(1, Relaxed),
            Err(_) => self.errors.fetch_add(1, Relaxed),
            _ => 0,
        };
    }
}

/// The idle bench's client part (role `client`), in a process of its own: starts
/// `SHARD_BENCH_SHARDS` shards of `SHARD_BENCH_CLIENT` on `SHARD_BENCH_SERVER` with
/// `SHARD_BENCH_TRANSPORT`, each polled in its own tokio task on a multi-thread runtime
/// (`SHARD_BENCH_WORKERS` workers), waits until all are READY, lets them settle
/// (`SHARD_BENCH_SETTLE_SECS`: long enough for every shard's first beat), then idles for
/// `SHARD_BENCH_IDLE_SECS`. Prints `RESULT {json}`.
pub fn run_idle_client() {
    let client = Client::parse(&env_or("SHARD_BENCH_CLIENT", String::new())).expect("a client");
    let transport =
        Transport::parse(&env_or("SHARD_BENCH_TRANSPORT", String::new())).expect("a transport");
    let server: String = env_or("SHARD_BENCH_SERVER", String::new());
    let shards: u32 = env_or("SHARD_BENCH_SHARDS", 1000);
    let settle = Duration::from_secs_f64(env_or("SHARD_BENCH_SETTLE_SECS", 7.0));
    let idle = Duration::from_secs_f64(env_or("SHARD_BENCH_IDLE_SECS", 180.0));
    let workers: usize = env_or("SHARD_BENCH_WORKERS", 2);
    let fd_limit = raise_fd_limit(u64::from(shards) + 512);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime");
    let base = base_url(&server, client, transport);
    let mut result = runtime.block_on(run_idle(client, &base, transport, shards, settle, idle));
    result["fd_limit"] = json!(fd_limit);
    super::child::say("RESULT", &result.to_string());
    // The shards are not closed one by one: the process ends (the sockets with it).
    std::process::exit(0);
}

async fn run_idle(
    client: Client,
    base: &str,
    transport: Transport,
    shards: u32,
    settle: Duration,
    idle: Duration,
) -> Value {
    let counters = Arc::new(Counters::default());
    let queue = (client == Client::Twilight).then(twilight_queue);
    let unused_decompressor = twilight_unused_decompressor_bytes();
    let ticker = Ticker::start();
    // Let the runtime's lazily made parts (timer wheel, I/O driver) exist before the baseline.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let resident_before = resident_bytes().unwrap_or(0);
    let heap_before = Snapshot::now();
    let started = Instant::now();
    match client {
        Client::Ours => {
            let config = Arc::new(our_config(base, transport));
            for id in 0..shards {
                let options = our_options().shard(ShardId::new(id, shards));
                let mut shard = Shard::from_config(Arc::clone(&config), options).expect("config");
                let events = Arc::clone(&counters);
                spawn_counted(&counters, async move {
                    while let Some(event) = shard.next_event().await {
                        events.ours(&event);
                    }
                });
            }
        }
        Client::Twilight => {
            let config = twilight_config(base, queue.clone().expect("queue"));
            for id in 0..shards {
                let shard_id = twilight_gateway::ShardId::new(id, shards);
                let mut shard = twilight_gateway::Shard::with_config(shard_id, config.clone());
                let events = Arc::clone(&counters);
                spawn_counted(&counters, async move {
                    while let Some(item) = shard.next().await {
                        events.twilight(&item);
                    }
                });
            }
            drop(config);
        }
    }
    while counters.ready.load(Relaxed) < u64::from(shards)
        && started.elapsed() < Duration::from_secs(180)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_ready = started.elapsed();
    tokio::time::sleep(settle).await;
    let heap_settled = Snapshot::now().since(heap_before);
    let resident_settled = resident_bytes().unwrap_or(0);
    ticker.reset();
    let polls_before = counters.polls.load(Relaxed);
    let cpu_before = process_cpu();
    let calls_before = Snapshot::now();
    tokio::time::sleep(idle).await;
    let idle_cpu = process_cpu() - cpu_before;
    let idle_alloc = Snapshot::now().since(calls_before);
    let idle_polls = counters.polls.load(Relaxed) - polls_before;
    let heap_end = Snapshot::now().since(heap_before);
    let n = f64::from(shards);
    json!({
        "client": client.name(),
        "transport": transport.name(),
        "shards": shards,
        "ready": counters.ready.load(Relaxed),
        "disconnects": counters.disconnects.load(Relaxed),
        "errors": counters.errors.load(Relaxed),
        "all_ready_secs": all_ready.as_secs_f64(),
        "heap_per_shard": heap_settled.live as f64 / n,
        "heap_per_shard_end": heap_end.live as f64 / n,
        "resident_per_shard": (resident_settled.saturating_sub(resident_before)) as f64 / n,
        "idle_secs": idle.as_secs_f64(),
        "idle_cpu_secs": idle_cpu.as_secs_f64(),
        "cpu_us_per_shard_minute": idle_cpu.as_secs_f64() * 1e6 / n / (idle.as_secs_f64() / 60.0),
        "twilight_unused_decompressor_bytes": unused_decompressor,
        "idle_allocations": idle_alloc.calls,
        "idle_polls": idle_polls,
        "ticker": ticker.summary(),
        "idle_bytes_allocated": idle_alloc.bytes,
    })
}
