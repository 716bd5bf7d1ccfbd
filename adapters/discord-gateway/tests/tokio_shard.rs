//! The tokio `Shard` against `FakeGatewayServer`: real WebSockets on loopback, the sans-IO
//! `sim::FakeGateway` behind them. Each scenario is bounded in time; nothing leaves
//! 127.0.0.1. The scripts and checks the smol and blocking shards share are in
//! `tests/support/shard.rs`.

#[path = "support/shard.rs"]
mod shard_support;

use std::time::Duration;

use discord_gateway::proto::sim::{Closer, ScriptAction, Trigger};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::tokio::Shard;
use discord_gateway::{Compression, SendError, ShardEvent, ShardOptions};
use shard_support::*;

fn shard(server: &FakeGatewayServer) -> Shard {
    Shard::from_config(config(server), ShardOptions::new().seed(42)).expect("valid config")
}

/// Polls `shard` until `done` holds for an event (included in the result) or the shard
/// ends; panics after [`LIMIT`].
async fn events_until(
    shard: &mut Shard,
    mut done: impl FnMut(&ShardEvent) -> bool,
) -> Vec<ShardEvent> {
    let mut seen = Vec::new();
    let run = async {
        while let Some(event) = shard.next_event().await {
            let stop = done(&event);
            seen.push(event);
            if stop {
                break;
            }
        }
    };
    if tokio::time::timeout(LIMIT, run).await.is_err() {
        panic!("scenario not done within {LIMIT:?}: {seen:#?}");
    }
    seen
}

#[tokio::test]
async fn happy_path_identifies_and_delivers_dispatches() {
    let server = FakeGatewayServer::start(happy_path_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_dispatch("MESSAGE_CREATE")).await;
    let requests = server.upgrade_requests_async().await;
    check_happy_path(&events, &server, requests[0].user_agent.as_deref());

    // Closing without keeping the session ends it: close 1000, no session returned.
    assert_eq!(shard.close(false).await, None);
    assert_eq!(
        shard.next_event().await,
        Some(ShardEvent::Closed {
            session_kept: false
        })
    );
    assert_eq!(shard.next_event().await, None);
    assert_eq!(closed_by(&server, 1).await, Some(Closer::Client(1000)));
    let gateway = server.stop_async().await;
    assert_eq!(gateway.received_op(2).count(), 1, "one identify");
    assert_no_violations(&gateway);
}

#[tokio::test]
async fn zombie_resumes_on_the_resume_url_and_replays_the_missed_dispatch() {
    let server = FakeGatewayServer::start(zombie_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_resumed).await;
    check_zombie(&events, &server);
    // The zombie was closed with a code that keeps the session.
    assert_closed_keeping_the_session(closed_by(&server, 1).await);
    check_resumed_on_the_second_connection(&server.stop_async().await);
}

#[tokio::test]
async fn op7_reconnects_and_resumes() {
    let server = FakeGatewayServer::start(op7_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_resumed).await;
    check_op7(&events, &server);
    let gateway = server.stop_async().await;
    assert!(gateway.connections()[1].resumed);
    assert_no_violations(&gateway);
}

#[tokio::test]
async fn op9_false_identifies_anew() {
    let server = FakeGatewayServer::start(op9_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, second_ready()).await;
    let url = server.url().to_owned();
    check_op9(&events, &url, &server.stop_async().await);
}

#[tokio::test]
async fn a_fatal_close_ends_the_stream() {
    let server = FakeGatewayServer::start(fatal_gateway());
    let mut shard = shard(&server);
    // No stop condition: the shard must end by itself.
    let events = events_until(&mut shard, |_| false).await;
    check_fatal(&events);
    assert_eq!(shard.next_event().await, None, "stays ended");
    // Commands after the end are refused.
    assert_eq!(
        shard.sender().send_json(PRESENCE).await,
        Err(SendError::Stopped)
    );
    server.stop_async().await;
}

/// Five dispatches, then op 7 and a resume on a new connection (a new compression context).
async fn compressed(compression: Compression) {
    let server = FakeGatewayServer::start(compressed_gateway());
    let config = config(&server).with_compression(compression);
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(7)).expect("config");
    let events = events_until(&mut shard, is_resumed).await;
    check_compressed(&events, compression, &server.stop_async().await);
}

#[tokio::test]
async fn no_compression() {
    compressed(Compression::None).await;
}

#[tokio::test]
async fn zlib_stream() {
    compressed(Compression::ZlibStream).await;
}

#[tokio::test]
async fn zstd_stream() {
    compressed(Compression::ZstdStream).await;
}

#[tokio::test]
async fn a_command_from_another_task_is_answered_by_a_dispatch() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_ready).await;

    let sender = shard.sender();
    let task = tokio::spawn(async move { sender.send_json(PRESENCE).await });
    // The shard must be polled for the command to go out; meanwhile the "server side" of
    // the test answers it once it arrived.
    let answer = async {
        let arrived = server
            .wait_until_async(Duration::from_secs(5), |g| g.received_op(3).count() == 1)
            .await;
        assert!(arrived, "the presence update never arrived");
        server.perform(presence_answer());
    };
    let (events, ()) = tokio::join!(
        events_until(&mut shard, is_dispatch("PRESENCE_UPDATE")),
        answer
    );
    assert_eq!(task.await.expect("sender task"), Ok(()));
    check_command_answered(&events, &server.stop_async().await);
}

#[tokio::test]
async fn refusals_are_typed() {
    let server = FakeGatewayServer::start(refusals_gateway());
    let mut shard =
        Shard::from_config(refusals_config(&server), ShardOptions::new()).expect("config");
    let sender = shard.sender();
    let task = tokio::spawn(async move {
        let results = [
            sender.send_json(PRESENCE).await,
            sender.send_json(PRESENCE).await,
            sender.send_json(PRESENCE).await,
        ];
        (
            results,
            sender.send_json(&huge_presence()).await,
            sender.send_json("{\"op\":99}").await,
        )
    });
    let run = async {
        while !task.is_finished() {
            tokio::select! {
                event = shard.next_event() => assert!(event.is_some()),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    };
    tokio::time::timeout(LIMIT, run).await.expect("in time");
    let (results, huge, invalid) = task.await.expect("sender task");
    check_refusals(&results, &huge, &invalid);

    // Once closed (or dropped), the shard refuses with `Stopped`.
    let sender = shard.sender();
    shard.close(false).await;
    assert_eq!(sender.send_json(PRESENCE).await, Err(SendError::Stopped));
    assert_eq!(shard.command_json(PRESENCE), Err(SendError::Stopped));
    let late = shard.sender();
    drop(shard);
    assert_eq!(late.send_json(PRESENCE).await, Err(SendError::Stopped));
    assert!(late.is_closed());
    server.stop_async().await;
}

#[tokio::test]
async fn a_closed_session_is_resumed_by_a_new_shard() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut first = shard(&server);
    events_until(&mut first, is_dispatch("READY")).await;
    let session = first.close(true).await.expect("a kept session");
    assert_eq!(session.id, "sim-session-1");
    assert_eq!(
        first.next_event().await,
        Some(ShardEvent::Closed { session_kept: true })
    );
    assert_closed_keeping_the_session(closed_by(&server, 1).await);
    // Missed while no shard runs: replayed to the next one.
    server.perform(while_away());

    // The session survives a round trip through JSON (a session file).
    let saved = serde_json::to_string(&session).expect("serialize");
    let session = serde_json::from_str(&saved).expect("deserialize");
    let mut second = Shard::resume(config(&server), session, ShardOptions::new()).expect("config");
    let events = events_until(&mut second, is_resumed).await;
    let resume_url = server.resume_url().to_owned();
    check_resumed_by_a_new_shard(&events, &resume_url, &server.stop_async().await);
}

#[tokio::test]
async fn a_send_on_a_dead_socket_is_a_lost_connection_and_the_session_resumes() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_dispatch("READY")).await;
    // The server resets the connection while the shard is not polled: the shard learns
    // of it only when it sends.
    server.perform(ScriptAction::Drop);
    assert_eq!(closed_by(&server, 1).await, Some(Closer::ServerDrop));
    tokio::time::sleep(Duration::from_millis(100)).await;
    shard.command_json(PRESENCE).expect("accepted");
    let events = events_until(&mut shard, is_resumed).await;
    check_failed_send(&events);
    // The session goes on (the frame that met the dead socket is gone with it, as on any
    // transport loss).
    let gateway = server.stop_async().await;
    assert!(gateway.connections()[1].resumed);
}

#[tokio::test]
async fn shards_sharing_an_identify_queue_take_turns() {
    let server = FakeGatewayServer::start(fast_gateway());
    let queue = shared_queue();
    let config = std::sync::Arc::new(config(&server));
    let mut shards: Vec<Shard> = (0..2)
        .map(|id| {
            Shard::from_config(std::sync::Arc::clone(&config), queued_options(id, &queue))
                .expect("config")
        })
        .collect();
    let (a, b) = shards.split_at_mut(1);
    tokio::join!(
        events_until(&mut a[0], is_ready),
        events_until(&mut b[0], is_ready)
    );
    check_identifies_took_turns(&queue, &server.stop_async().await);
}

/// The shard can move to another task and be polled from `tokio::select!`.
#[allow(dead_code)]
fn shard_is_send_and_unpin() {
    fn check<T: Send + Unpin + 'static>() {}
    check::<Shard>();
    check::<discord_gateway::ShardSender>();
}

#[tokio::test]
async fn next_event_is_cancel_safe_in_select() {
    let mut gateway = fast_gateway();
    gateway.dispatch_stream(
        Trigger::ReadySent(1),
        Duration::from_millis(1),
        Duration::from_millis(1),
        (0..100).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    let mut ticker = tokio::time::interval(Duration::from_micros(300));
    let mut sequences = Vec::new();
    let mut cancelled = 0u32;
    let run = async {
        while sequences.len() < 100 {
            tokio::select! {
                event = shard.next_event() => match event {
                    Some(ShardEvent::Dispatch(d)) if d.name == "MESSAGE_CREATE" => {
                        sequences.push(d.sequence);
                    }
                    Some(_) => {}
                    None => panic!("the shard ended"),
                },
                _ = ticker.tick() => cancelled += 1,
            }
        }
    };
    tokio::time::timeout(LIMIT, run).await.expect("in time");
    // Every dispatch arrived once, in order, though the future was dropped mid-wait.
    assert_eq!(sequences, (2..102).collect::<Vec<u64>>());
    assert!(cancelled > 0, "the timer branch never won");
    server.stop_async().await;
}

#[tokio::test]
async fn the_recording_replays_and_the_trace_explains() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(30),
        ScriptAction::Reconnect,
    );
    let server = FakeGatewayServer::start(gateway);
    let recording = Shared::default();
    let options = ShardOptions::new()
        .seed(3)
        .trace(true)
        .record(recording.clone());
    let mut shard = Shard::from_config(config(&server), options).expect("config");
    let events = events_until(&mut shard, is_resumed).await;
    assert!(
        events.iter().any(|e| matches!(e, ShardEvent::Decision(_))),
        "{events:#?}"
    );
    drop(shard);
    let text = String::from_utf8(recording.0.lock().expect("buffer").clone()).expect("UTF-8");
    assert!(!text.contains("test-token"), "the token is never recorded");
    let summary = discord_gateway::proto::record::replay(text.lines(), |_| {})
        .unwrap_or_else(|e| panic!("the recording does not replay: {e}"));
    assert!(summary.outputs > 10, "{summary:?}");
    server.stop_async().await;
}

#[tokio::test]
async fn a_sender_closes_the_shard_from_another_thread() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_dispatch("READY")).await;
    let sender = shard.sender();
    // A plain thread (no runtime): a blocking send, then a close keeping the session.
    let thread = std::thread::spawn(move || {
        let command = discord_gateway::Command::from_json(PRESENCE).expect("command");
        let sent = sender.send_blocking(command);
        let session = sender.close_blocking(true);
        (sent, session)
    });
    let events = events_until(&mut shard, |e| e.is_final()).await;
    assert_eq!(
        events.last(),
        Some(&ShardEvent::Closed { session_kept: true })
    );
    assert_eq!(shard.next_event().await, None);
    let (sent, session) = thread.join().expect("thread");
    assert_eq!(sent, Ok(()));
    assert_eq!(session.expect("kept").id, "sim-session-1");
    assert_closed_keeping_the_session(closed_by(&server, 1).await);
    let gateway = server.stop_async().await;
    assert_eq!(
        gateway.received_op(3).count(),
        1,
        "the presence went out first"
    );
}

#[tokio::test]
async fn a_sequence_gap_is_reported_before_the_dispatch() {
    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(20),
        ScriptAction::Text(r#"{"t":"MESSAGE_CREATE","s":10,"op":0,"d":{"content":"late"}}"#.into()),
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_dispatch("MESSAGE_CREATE")).await;
    let n = events.len();
    assert_eq!(
        events[n - 2],
        ShardEvent::SequenceGap {
            expected: 2,
            received: 10
        },
        "{events:#?}"
    );
    assert_eq!(
        dispatch(&events, "MESSAGE_CREATE"),
        [(10, r#"{"content":"late"}"#)]
    );
    server.stop_async().await;
}
