//! Allocations per dispatch event, end to end: socket, TLS-less WebSocket, machine and the
//! conversion to `ShardEvent`, counted on the thread that polls the shard. Beside it, the
//! same stream read by a bare client of the same WebSocket library (tokio-websockets for the
//! tokio shard, tungstenite and async-tungstenite for the blocking and smol ones): what the
//! WebSocket library and the runtime allocate by themselves. The shard's own share is the
//! difference.
//!
//! (The core's share alone, without the socket, is pinned exactly by the unit tests in
//! `src/core.rs`: 0 per dispatch uncompressed, 1 with zlib-stream.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use discord_gateway::tokio::Shard;
use discord_gateway::{GatewayConfig, Intents, ShardEvent, ShardOptions, Token};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Counts allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
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
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        grow(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        shrink(layout.size());
        grow(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

const DISPATCHES: u64 = 2000;
const HELLO: &str = r#"{"op":10,"d":{"heartbeat_interval":60000}}"#;
const READY: &str = r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"abc","resume_gateway_url":"ws://127.0.0.1:9","user":{"id":"1"},"guilds":[]}}"#;

fn message(sequence: u64) -> String {
    format!(
        r#"{{"t":"MESSAGE_CREATE","s":{sequence},"op":0,"d":{{"id":"{sequence}","content":"hello number {sequence}","author":{{"id":"7","username":"someone"}},"channel_id":"5"}}}}"#
    )
}

/// A minimal gateway on its own thread: Hello, READY after the client's first text, then
/// the dispatches, all at once (the client reads them as fast as it can), then silence.
fn serve_stream() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut ws = tokio_tungstenite::accept_async(tcp)
                .await
                .expect("handshake");
            ws.send(Message::text(HELLO)).await.expect("hello");
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() {
                    break;
                }
            }
            ws.send(Message::text(READY)).await.expect("ready");
            for s in 2..DISPATCHES + 2 {
                ws.feed(Message::text(message(s))).await.expect("dispatch");
            }
            ws.flush().await.expect("flush");
            // Keep the connection open until the client is done.
            while let Some(Ok(_)) = ws.next().await {}
        });
    });
    url
}

/// Allocations per dispatch after the first, for the tokio `Shard`.
async fn shard_allocations() -> f64 {
    let url = serve_stream();
    let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(url.trim_end_matches('/'))
        .with_auto_grant(true);
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(1)).expect("config");
    let mut seen = 0u64;
    let mut before = 0;
    while let Some(event) = shard.next_event().await {
        if let ShardEvent::Dispatch(d) = &event {
            if d.name == "MESSAGE_CREATE" {
                seen += 1;
                if seen == 1 {
                    before = allocations();
                }
                if seen == DISPATCHES {
                    break;
                }
            }
        }
    }
    let allocated = allocations() - before;
    allocated as f64 / (DISPATCHES - 1) as f64
}

/// Allocations per message after the first dispatch, for a bare tokio-websockets client
/// (the tokio shard's WebSocket library) with the shard's flush threshold.
async fn bare_websocket_allocations() -> f64 {
    let url = serve_stream();
    let tcp = tokio::net::TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/'))
        .await
        .expect("connect");
    let (mut ws, _) = tokio_websockets::ClientBuilder::new()
        .uri(&url)
        .expect("uri")
        .config(tokio_websockets::Config::default().flush_threshold(0))
        .connect_on(tcp)
        .await
        .expect("handshake");
    let _hello = ws.next().await;
    ws.send(tokio_websockets::Message::text("{}"))
        .await
        .expect("identify");
    let mut seen = 0u64;
    let mut before = 0;
    while let Some(Ok(message)) = ws.next().await {
        if let Some(text) = message.as_text() {
            if text.contains("MESSAGE_CREATE") {
                seen += 1;
                if seen == 1 {
                    before = allocations();
                }
                if seen == DISPATCHES {
                    break;
                }
            }
        }
    }
    let allocated = allocations() - before;
    allocated as f64 / (DISPATCHES - 1) as f64
}

#[test]
fn the_shard_adds_no_allocation_per_dispatch_to_the_websocket_library_s() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let limit = Duration::from_secs(30);
    let bare = runtime
        .block_on(async { tokio::time::timeout(limit, bare_websocket_allocations()).await })
        .expect("bare client in time");
    let shard = runtime
        .block_on(async { tokio::time::timeout(limit, shard_allocations()).await })
        .expect("shard in time");
    println!("allocations per dispatch: bare tokio-websockets {bare:.3}, tokio Shard {shard:.3}");
    // The shard's own share is zero (the unit tests pin it exactly); what remains is the
    // WebSocket library's and tokio's, which vary with how the reads batch. Allow that
    // variation (one allocation per 20 dispatches), never one per dispatch.
    assert!(
        shard <= bare + 0.05,
        "the shard allocates per dispatch: {shard:.3} against {bare:.3} for the bare socket"
    );
}

/// Allocations per dispatch after the first, for the blocking `Shard` on this thread.
fn blocking_shard_allocations() -> f64 {
    use discord_gateway::blocking::Shard;
    let url = serve_stream();
    let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(url.trim_end_matches('/'))
        .with_auto_grant(true);
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(1)).expect("config");
    let mut seen = 0u64;
    let mut before = 0;
    while seen < DISPATCHES {
        let event = shard
            .next_event_timeout(Duration::from_secs(30))
            .expect("events in time");
        if event
            .as_dispatch()
            .is_some_and(|d| d.name == "MESSAGE_CREATE")
        {
            seen += 1;
            if seen == 1 {
                before = allocations();
            }
        }
    }
    let allocated = allocations() - before;
    allocated as f64 / (DISPATCHES - 1) as f64
}

/// Allocations per message after the first dispatch, for a bare blocking tungstenite
/// client (std's TcpStream) with the same buffer sizes as the shard's.
fn bare_blocking_websocket_allocations() -> f64 {
    let url = serve_stream();
    let address = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    let tcp = std::net::TcpStream::connect(address).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::tungstenite::client::client_with_config(url.as_str(), tcp, Some(config))
            .expect("handshake");
    let _hello = ws.read();
    ws.send(Message::text("{}")).expect("identify");
    let mut seen = 0u64;
    let mut before = 0;
    while let Ok(message) = ws.read() {
        if let Message::Text(text) = &message {
            if text.contains("MESSAGE_CREATE") {
                seen += 1;
                if seen == 1 {
                    before = allocations();
                }
                if seen == DISPATCHES {
                    break;
                }
            }
        }
    }
    let allocated = allocations() - before;
    allocated as f64 / (DISPATCHES - 1) as f64
}

#[test]
fn the_blocking_shard_adds_no_allocation_per_dispatch_to_the_websocket_library_s() {
    let bare = bare_blocking_websocket_allocations();
    let shard = blocking_shard_allocations();
    println!(
        "allocations per dispatch: bare blocking tungstenite {bare:.3}, blocking Shard {shard:.3}"
    );
    assert!(
        shard <= bare + 0.05,
        "the shard allocates per dispatch: {shard:.3} against {bare:.3} for the bare socket"
    );
}

/// Allocations per dispatch after the first, for the smol `Shard` polled on this thread.
async fn smol_shard_allocations() -> f64 {
    use discord_gateway::smol::Shard;
    let url = serve_stream();
    let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(url.trim_end_matches('/'))
        .with_auto_grant(true);
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(1)).expect("config");
    let mut seen = 0u64;
    let mut before = 0;
    while let Some(event) = shard.next_event().await {
        if event
            .as_dispatch()
            .is_some_and(|d| d.name == "MESSAGE_CREATE")
        {
            seen += 1;
            if seen == 1 {
                before = allocations();
            }
            if seen == DISPATCHES {
                break;
            }
        }
    }
    let allocated = allocations() - before;
    allocated as f64 / (DISPATCHES - 1) as f64
}

/// Allocations per message after the first dispatch, for a bare async-tungstenite client
/// on smol's TCP with the same buffer sizes as the shard's.
async fn bare_smol_websocket_allocations() -> f64 {
    let url = serve_stream();
    let address = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_owned();
    let tcp = smol::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = async_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config))
        .await
        .expect("handshake");
    let _hello = ws.next().await;
    ws.send(Message::text("{}")).await.expect("identify");
    let mut seen = 0u64;
    let mut before = 0;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = &message {
            if text.contains("MESSAGE_CREATE") {
                seen += 1;
                if seen == 1 {
                    before = allocations();
                }
                if seen == DISPATCHES {
                    break;
                }
            }
        }
    }
    let allocated = allocations() - before;
    allocated as f64 / (DISPATCHES - 1) as f64
}

/// Runs `future` on smol, failing after 30 s.
fn smol_in_time<T>(future: impl std::future::Future<Output = T>) -> T {
    smol::block_on(smol::future::or(async { Some(future.await) }, async {
        smol::Timer::after(Duration::from_secs(30)).await;
        None
    }))
    .expect("in time")
}

#[test]
fn the_smol_shard_adds_no_allocation_per_dispatch_to_the_websocket_library_s() {
    let bare = smol_in_time(bare_smol_websocket_allocations());
    let shard = smol_in_time(smol_shard_allocations());
    println!("allocations per dispatch: bare async-tungstenite {bare:.3}, smol Shard {shard:.3}");
    assert!(
        shard <= bare + 0.05,
        "the shard allocates per dispatch: {shard:.3} against {bare:.3} for the bare socket"
    );
}

/// Heap held by one connected, idle shard after READY (plain `ws://`, so no TLS state):
/// the machine, tungstenite's buffers, tokio's registration of the socket, the loop's own
/// state. Counted as bytes allocated minus bytes freed on the shard's thread; the fake
/// server runs on a thread of its own.
async fn idle_shard_bytes(compression: discord_gateway::Compression) -> i64 {
    use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig};
    use discord_gateway::testing::FakeGatewayServer;

    let server = FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig {
        hello_interval: Duration::from_secs(40),
        ready_delay: Duration::from_millis(5),
        ..FakeGatewayConfig::default()
    }));
    let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(server.url())
        .with_compression(compression);
    let before = live_bytes();
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(1)).expect("config");
    while let Some(event) = shard.next_event().await {
        if event.as_dispatch().is_some_and(|d| d.name == "READY") {
            break;
        }
    }
    // Idle a moment: nothing arrives (the next heartbeat is seconds away).
    let _ = tokio::time::timeout(Duration::from_millis(50), shard.next_event()).await;
    let held = live_bytes() - before;
    drop(shard);
    server.stop_async().await;
    held
}

#[test]
fn an_idle_connected_shard_stays_small() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let plain = runtime.block_on(idle_shard_bytes(discord_gateway::Compression::None));
    let zlib = runtime.block_on(idle_shard_bytes(discord_gateway::Compression::ZlibStream));
    println!("heap per idle connected shard (ws://): uncompressed {plain} B, zlib-stream {zlib} B");
    // The read buffer is 8 KiB of it; tungstenite's default would be 128 KiB alone.
    assert!(plain < 16 * 1024, "{plain} bytes");
    assert!(zlib < 128 * 1024, "{zlib} bytes");
}

/// [`idle_shard_bytes`] for the blocking shard (its readiness queue included).
fn idle_blocking_shard_bytes(compression: discord_gateway::Compression) -> i64 {
    use discord_gateway::proto::sim::{FakeGateway, FakeGatewayConfig};
    use discord_gateway::testing::FakeGatewayServer;

    let server = FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig {
        hello_interval: Duration::from_secs(40),
        ready_delay: Duration::from_millis(5),
        ..FakeGatewayConfig::default()
    }));
    let config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(server.url())
        .with_compression(compression);
    let before = live_bytes();
    let mut shard =
        discord_gateway::blocking::Shard::from_config(config, ShardOptions::new().seed(1))
            .expect("config");
    loop {
        let event = shard
            .next_event_timeout(Duration::from_secs(10))
            .expect("READY in time");
        if event.as_dispatch().is_some_and(|d| d.name == "READY") {
            break;
        }
    }
    // Idle a moment: nothing arrives (the next heartbeat is seconds away).
    let _ = shard.next_event_timeout(Duration::from_millis(50));
    let held = live_bytes() - before;
    drop(shard);
    server.stop();
    held
}

#[test]
fn an_idle_connected_blocking_shard_stays_small() {
    let plain = idle_blocking_shard_bytes(discord_gateway::Compression::None);
    let zlib = idle_blocking_shard_bytes(discord_gateway::Compression::ZlibStream);
    println!(
        "heap per idle connected blocking shard (ws://): uncompressed {plain} B, zlib-stream {zlib} B"
    );
    assert!(plain < 40 * 1024, "{plain} bytes");
    assert!(zlib < 128 * 1024, "{zlib} bytes");
}
