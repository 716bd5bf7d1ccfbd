//! The smol `Shard` against `FakeGatewayServer`: the tokio shard's scenarios
//! (`tests/tokio_shard.rs`), run on smol's executor with smol's stack underneath. The
//! scripts and checks are shared (`tests/support/shard.rs`); each scenario is bounded in
//! time and nothing leaves 127.0.0.1.

#[path = "support/shard.rs"]
mod shard_support;

use std::future::Future;
use std::time::Duration;

use discord_gateway::proto::sim::{Closer, ScriptAction};
use discord_gateway::smol::Shard;
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{Compression, SendError, ShardEvent, ShardOptions};
use shard_support::*;
use smol::Timer;

fn shard(server: &FakeGatewayServer) -> Shard {
    Shard::from_config(config(server), ShardOptions::new().seed(42)).expect("valid config")
}

/// Runs `future` on smol, failing the test after [`LIMIT`].
fn run<T>(future: impl Future<Output = T>) -> T {
    smol::block_on(async {
        smol::future::or(async { Some(future.await) }, async {
            Timer::after(LIMIT + Duration::from_secs(5)).await;
            None
        })
        .await
        .expect("the test did not finish in time")
    })
}

/// Polls `shard` until `done` holds for an event (included in the result) or the shard
/// ends; panics after [`LIMIT`].
async fn events_until(
    shard: &mut Shard,
    mut done: impl FnMut(&ShardEvent) -> bool,
) -> Vec<ShardEvent> {
    let mut seen = Vec::new();
    let finished = smol::future::or(
        async {
            while let Some(event) = shard.next_event().await {
                let stop = done(&event);
                seen.push(event);
                if stop {
                    break;
                }
            }
            true
        },
        async {
            Timer::after(LIMIT).await;
            false
        },
    )
    .await;
    assert!(finished, "scenario not done within {LIMIT:?}: {seen:#?}");
    seen
}

#[test]
fn happy_path_identifies_and_delivers_dispatches() {
    run(async {
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
    });
}

#[test]
fn zombie_resumes_on_the_resume_url_and_replays_the_missed_dispatch() {
    run(async {
        let server = FakeGatewayServer::start(zombie_gateway());
        let mut shard = shard(&server);
        let events = events_until(&mut shard, is_resumed).await;
        check_zombie(&events, &server);
        // The zombie was closed (in the background) with a code that keeps the session.
        assert_closed_keeping_the_session(closed_by(&server, 1).await);
        check_resumed_on_the_second_connection(&server.stop_async().await);
    });
}

#[test]
fn op7_reconnects_and_resumes() {
    run(async {
        let server = FakeGatewayServer::start(op7_gateway());
        let mut shard = shard(&server);
        let events = events_until(&mut shard, is_resumed).await;
        check_op7(&events, &server);
        let gateway = server.stop_async().await;
        assert!(gateway.connections()[1].resumed);
        assert_no_violations(&gateway);
    });
}

#[test]
fn op9_false_identifies_anew() {
    run(async {
        let server = FakeGatewayServer::start(op9_gateway());
        let mut shard = shard(&server);
        let events = events_until(&mut shard, second_ready()).await;
        let url = server.url().to_owned();
        check_op9(&events, &url, &server.stop_async().await);
    });
}

#[test]
fn a_fatal_close_ends_the_stream() {
    run(async {
        let server = FakeGatewayServer::start(fatal_gateway());
        let mut shard = shard(&server);
        // No stop condition: the shard must end by itself.
        let events = events_until(&mut shard, |_| false).await;
        check_fatal(&events);
        assert_eq!(shard.next_event().await, None, "stays ended");
        assert_eq!(
            shard.sender().send_json(PRESENCE).await,
            Err(SendError::Stopped)
        );
        server.stop_async().await;
    });
}

fn compressed(compression: Compression) {
    run(async {
        let server = FakeGatewayServer::start(compressed_gateway());
        let config = config(&server).with_compression(compression);
        let mut shard = Shard::from_config(config, ShardOptions::new().seed(7)).expect("config");
        let events = events_until(&mut shard, is_resumed).await;
        check_compressed(&events, compression, &server.stop_async().await);
    });
}

#[test]
fn no_compression() {
    compressed(Compression::None);
}

#[test]
fn zlib_stream() {
    compressed(Compression::ZlibStream);
}

#[test]
fn zstd_stream() {
    compressed(Compression::ZstdStream);
}

#[test]
fn a_command_from_another_task_is_answered_by_a_dispatch() {
    run(async {
        let server = FakeGatewayServer::start(fast_gateway());
        let mut shard = shard(&server);
        events_until(&mut shard, is_ready).await;

        let sender = shard.sender();
        let task = smol::spawn(async move { sender.send_json(PRESENCE).await });
        // The shard must be polled for the command to go out; meanwhile the "server side"
        // of the test answers it once it arrived.
        let answer = async {
            let arrived = server
                .wait_until_async(Duration::from_secs(5), |g| g.received_op(3).count() == 1)
                .await;
            assert!(arrived, "the presence update never arrived");
            server.perform(presence_answer());
        };
        let (events, ()) = futures_util::future::join(
            events_until(&mut shard, is_dispatch("PRESENCE_UPDATE")),
            answer,
        )
        .await;
        assert_eq!(task.await, Ok(()));
        check_command_answered(&events, &server.stop_async().await);
    });
}

#[test]
fn refusals_are_typed() {
    run(async {
        let server = FakeGatewayServer::start(refusals_gateway());
        let mut shard =
            Shard::from_config(refusals_config(&server), ShardOptions::new()).expect("config");
        let sender = shard.sender();
        let task = smol::spawn(async move {
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
        while !task.is_finished() {
            smol::future::or(
                async {
                    assert!(shard.next_event().await.is_some());
                },
                async {
                    Timer::after(Duration::from_millis(5)).await;
                },
            )
            .await;
        }
        let (results, huge, invalid) = task.await;
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
    });
}

#[test]
fn a_closed_session_is_resumed_by_a_new_shard() {
    run(async {
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

        let saved = serde_json::to_string(&session).expect("serialize");
        let session = serde_json::from_str(&saved).expect("deserialize");
        let mut second =
            Shard::resume(config(&server), session, ShardOptions::new()).expect("config");
        let events = events_until(&mut second, is_resumed).await;
        let resume_url = server.resume_url().to_owned();
        check_resumed_by_a_new_shard(&events, &resume_url, &server.stop_async().await);
    });
}

#[test]
fn a_send_on_a_dead_socket_is_a_lost_connection_and_the_session_resumes() {
    run(async {
        let server = FakeGatewayServer::start(fast_gateway());
        let mut shard = shard(&server);
        events_until(&mut shard, is_dispatch("READY")).await;
        // The server resets the connection while the shard is not polled: the shard learns
        // of it only when it sends.
        server.perform(ScriptAction::Drop);
        assert_eq!(closed_by(&server, 1).await, Some(Closer::ServerDrop));
        Timer::after(Duration::from_millis(100)).await;
        shard.command_json(PRESENCE).expect("accepted");
        let events = events_until(&mut shard, is_resumed).await;
        check_failed_send(&events);
        let gateway = server.stop_async().await;
        assert!(gateway.connections()[1].resumed);
    });
}

#[test]
fn next_event_is_cancel_safe() {
    use discord_gateway::proto::sim::Trigger;
    run(async {
        let mut gateway = fast_gateway();
        gateway.dispatch_stream(
            Trigger::ReadySent(1),
            Duration::from_millis(1),
            Duration::from_millis(1),
            (0..100).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
        );
        let server = FakeGatewayServer::start(gateway);
        let mut shard = shard(&server);
        let mut sequences = Vec::new();
        let mut cancelled = 0u32;
        while sequences.len() < 100 {
            let event = smol::future::or(async { Some(shard.next_event().await) }, async {
                Timer::after(Duration::from_micros(300)).await;
                None
            })
            .await;
            match event {
                Some(Some(ShardEvent::Dispatch(d))) if d.name == "MESSAGE_CREATE" => {
                    sequences.push(d.sequence);
                }
                Some(Some(_)) => {}
                Some(None) => panic!("the shard ended"),
                None => cancelled += 1,
            }
        }
        // Every dispatch arrived once, in order, though the future was dropped mid-wait.
        assert_eq!(sequences, (2..102).collect::<Vec<u64>>());
        assert!(cancelled > 0, "the timer branch never won");
        server.stop_async().await;
    });
}

/// The shard can move to another task or thread.
#[allow(dead_code)]
fn shard_is_send_and_unpin() {
    fn check<T: Send + Unpin + 'static>() {}
    check::<Shard>();
}

#[test]
fn shards_sharing_an_identify_queue_take_turns() {
    run(async {
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
        futures_util::future::join(
            events_until(&mut a[0], is_ready),
            events_until(&mut b[0], is_ready),
        )
        .await;
        check_identifies_took_turns(&queue, &server.stop_async().await);
    });
}
