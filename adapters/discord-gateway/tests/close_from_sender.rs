//! A close asked for through a `ShardSender` (a Ctrl-C handler's thread, say) sends its
//! close frame before the shard's stream ends, on every runtime: a program that exits as
//! soon as the stream ends (dropping the shard, and for tokio the runtime) has told Discord
//! goodbye (close 1000 ends the session at once; a 4000-range code keeps it resumable), not
//! just vanished.

#[path = "support/shard.rs"]
mod shard_support;

use discord_gateway::proto::sim::Closer;
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{ShardEvent, ShardOptions, ShardSender};
use shard_support::*;

/// Closes the shard from another thread once READY came, like a Ctrl-C handler; returns the
/// thread, which answers with the session if it was kept.
fn close_from_another_thread(
    sender: ShardSender,
    keep_session: bool,
) -> std::thread::JoinHandle<Option<discord_gateway::Session>> {
    std::thread::spawn(move || sender.close_blocking(keep_session))
}

/// What the fake saw after the program "exited" (the shard, and its runtime, dropped the
/// moment the stream ended).
fn check(server: FakeGatewayServer, events: &[ShardEvent], keep_session: bool) {
    assert_eq!(
        events.last(),
        Some(&ShardEvent::Closed {
            session_kept: keep_session
        }),
        "{events:#?}"
    );
    match closed_by_blocking(&server, 1) {
        Some(Closer::Client(code)) if keep_session => {
            assert!(!matches!(code, 1000 | 1001), "{code}")
        }
        closer => assert_eq!(closer, Some(Closer::Client(1000)), "{events:#?}"),
    }
    server.stop();
}

fn tokio(keep_session: bool) {
    let server = FakeGatewayServer::start(fast_gateway());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let events = runtime.block_on(async {
        let config = config(&server);
        let mut shard = discord_gateway::tokio::Shard::from_config(config, ShardOptions::new())
            .expect("config");
        let mut events = Vec::new();
        let mut closing = None;
        let run = async {
            while let Some(event) = shard.next_event().await {
                if is_ready(&event) {
                    closing = Some(close_from_another_thread(shard.sender(), keep_session));
                }
                events.push(event);
            }
        };
        tokio::time::timeout(LIMIT, run).await.expect("in time");
        let session = closing.expect("READY").join().expect("thread");
        assert_eq!(session.is_some(), keep_session);
        events
    });
    // The program exits: the runtime, and whatever it still runs, goes.
    drop(runtime);
    check(server, &events, keep_session);
}

fn smol(keep_session: bool) {
    let server = FakeGatewayServer::start(fast_gateway());
    let config = config(&server);
    let events = smol::block_on(async {
        let mut shard =
            discord_gateway::smol::Shard::from_config(config, ShardOptions::new()).expect("config");
        let mut events = Vec::new();
        let mut closing = None;
        while let Some(event) = shard.next_event().await {
            if is_ready(&event) {
                closing = Some(close_from_another_thread(shard.sender(), keep_session));
            }
            events.push(event);
        }
        let session = closing.expect("READY").join().expect("thread");
        assert_eq!(session.is_some(), keep_session);
        events
    });
    check(server, &events, keep_session);
}

fn blocking(keep_session: bool) {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard =
        discord_gateway::blocking::Shard::from_config(config(&server), ShardOptions::new())
            .expect("config");
    let mut events = Vec::new();
    let mut closing = None;
    let start = std::time::Instant::now();
    while let Some(event) = shard.next_event() {
        assert!(start.elapsed() < LIMIT, "{events:#?}");
        if is_ready(&event) {
            closing = Some(close_from_another_thread(shard.sender(), keep_session));
        }
        events.push(event);
    }
    drop(shard);
    let session = closing.expect("READY").join().expect("thread");
    assert_eq!(session.is_some(), keep_session);
    check(server, &events, keep_session);
}

#[test]
fn tokio_sends_the_close_frame_before_the_stream_ends() {
    tokio(false);
    tokio(true);
}

#[test]
fn smol_sends_the_close_frame_before_the_stream_ends() {
    smol(false);
    smol(true);
}

#[test]
fn blocking_sends_the_close_frame_before_the_stream_ends() {
    blocking(false);
    blocking(true);
}
