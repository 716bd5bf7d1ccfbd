//! The blocking `Shard` against `FakeGatewayServer`: the tokio shard's scenarios
//! (`tests/tokio_shard.rs`) on a plain thread, no async runtime. The scripts and checks are
//! shared (`tests/support/shard.rs`); each scenario is bounded in time (the shard is driven
//! with `next_event_timeout`) and nothing leaves 127.0.0.1.

#[path = "support/shard.rs"]
mod shard_support;

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use discord_gateway::blocking::Shard;
use discord_gateway::proto::sim::{Closer, FakeGateway, FakeGatewayConfig, ScriptAction};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{Command, Compression, SendError, ShardEvent, ShardOptions};
use shard_support::*;

fn shard(server: &FakeGatewayServer) -> Shard {
    Shard::from_config(config(server), ShardOptions::new().seed(42)).expect("valid config")
}

/// Runs `shard` until `done` holds for an event (included in the result) or the shard
/// ends; panics after [`LIMIT`].
fn events_until(shard: &mut Shard, mut done: impl FnMut(&ShardEvent) -> bool) -> Vec<ShardEvent> {
    let until = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match shard.next_event_timeout(left) {
            Ok(event) => {
                let stop = done(&event);
                seen.push(event);
                if stop {
                    return seen;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return seen,
            Err(RecvTimeoutError::Timeout) => {
                panic!("scenario not done within {LIMIT:?}: {seen:#?}")
            }
        }
    }
}

fn command(json: &str) -> Command {
    Command::from_json(json).expect("a command")
}

#[test]
fn happy_path_identifies_and_delivers_dispatches() {
    let server = FakeGatewayServer::start(happy_path_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_dispatch("MESSAGE_CREATE"));
    let requests = server.upgrade_requests();
    check_happy_path(&events, &server, requests[0].user_agent.as_deref());

    // Closing without keeping the session ends it: close 1000, no session returned.
    assert_eq!(shard.close(false), None);
    assert_eq!(
        shard.next_event(),
        Some(ShardEvent::Closed {
            session_kept: false
        })
    );
    assert_eq!(shard.next_event(), None);
    assert_eq!(closed_by_blocking(&server, 1), Some(Closer::Client(1000)));
    let gateway = server.stop();
    assert_eq!(gateway.received_op(2).count(), 1, "one identify");
    assert_no_violations(&gateway);
}

#[test]
fn zombie_resumes_on_the_resume_url_and_replays_the_missed_dispatch() {
    let server = FakeGatewayServer::start(zombie_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_resumed);
    check_zombie(&events, &server);
    // The zombie was closed with a code that keeps the session.
    assert_closed_keeping_the_session(closed_by_blocking(&server, 1));
    check_resumed_on_the_second_connection(&server.stop());
}

#[test]
fn op7_reconnects_and_resumes() {
    let server = FakeGatewayServer::start(op7_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_resumed);
    check_op7(&events, &server);
    let gateway = server.stop();
    assert!(gateway.connections()[1].resumed);
    assert_no_violations(&gateway);
}

#[test]
fn op9_false_identifies_anew() {
    let server = FakeGatewayServer::start(op9_gateway());
    let mut shard = shard(&server);
    let events = events_until(&mut shard, second_ready());
    let url = server.url().to_owned();
    check_op9(&events, &url, &server.stop());
}

#[test]
fn a_fatal_close_ends_the_iterator() {
    let server = FakeGatewayServer::start(fatal_gateway());
    let mut shard = shard(&server);
    // No stop condition: the shard must end by itself.
    let events = events_until(&mut shard, |_| false);
    check_fatal(&events);
    assert_eq!(shard.next_event(), None, "stays ended");
    assert_eq!(shard.iter().count(), 0);
    assert_eq!(
        shard.sender().send_blocking(command(PRESENCE)),
        Err(SendError::Stopped)
    );
    server.stop();
}

fn compressed(compression: Compression) {
    let server = FakeGatewayServer::start(compressed_gateway());
    let config = config(&server).with_compression(compression);
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(7)).expect("config");
    let events = events_until(&mut shard, is_resumed);
    check_compressed(&events, compression, &server.stop());
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
fn a_command_from_another_thread_is_answered_by_a_dispatch() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_ready);

    let sender = shard.sender();
    let thread = std::thread::spawn(move || sender.send_blocking(command(PRESENCE)));
    // The "server side" answers the presence once it arrived, from a thread of its own
    // while this one runs the shard.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let arrived =
                server.wait_until(Duration::from_secs(5), |g| g.received_op(3).count() == 1);
            assert!(arrived, "the presence update never arrived");
            server.perform(presence_answer());
        });
        let events = events_until(&mut shard, is_dispatch("PRESENCE_UPDATE"));
        assert_eq!(
            dispatch(&events, "PRESENCE_UPDATE"),
            [(2, r#"{"status":"idle","user":{"id":"1"}}"#)]
        );
    });
    assert_eq!(thread.join().expect("sender thread"), Ok(()));
    let gateway = server.stop();
    assert_eq!(gateway.received_op(3).count(), 1);
}

/// The loop waits on the socket with nothing due for seconds (heartbeats 40 s apart, the
/// first one late for this seed); a command from another thread must end that wait at once
/// and go out, not wait for the next deadline. The thread running the shard makes one
/// blocking call that only an answer to the command can end.
#[test]
fn a_command_from_another_thread_wakes_the_waiting_loop() {
    let server = FakeGatewayServer::start(FakeGateway::new(FakeGatewayConfig {
        hello_interval: Duration::from_secs(40),
        ready_delay: Duration::from_millis(10),
        guild_create_delay: None,
        ..FakeGatewayConfig::default()
    }));
    // Seed 1 puts the first heartbeat more than 20 s after Hello: nothing else wakes the
    // loop during the test (checked below: no heartbeat before the command).
    let mut shard =
        Shard::from_config(config(&server), ShardOptions::new().seed(1)).expect("config");
    events_until(&mut shard, is_dispatch("READY"));
    let sender = shard.sender();
    std::thread::scope(|scope| {
        let sent_at = scope.spawn(move || {
            // Let the shard's thread settle into its wait.
            std::thread::sleep(Duration::from_millis(300));
            let sent_at = Instant::now();
            assert_eq!(sender.send_blocking(command(PRESENCE)), Ok(()));
            sent_at
        });
        let server = &server;
        let answered = scope.spawn(move || {
            let arrived =
                server.wait_until(Duration::from_secs(10), |g| g.received_op(3).count() == 1);
            let arrived_at = Instant::now();
            assert!(arrived, "the command never left");
            let beats = server
                .inspect(|g| g.received_op(1).count())
                .expect("server");
            assert_eq!(beats, 0, "a heartbeat woke the loop before the command");
            server.perform(presence_answer());
            arrived_at
        });
        // One wait, ended only by the answer to the command.
        let event = loop {
            match shard.next_event_timeout(Duration::from_secs(10)) {
                Ok(ShardEvent::Dispatch(d)) if d.name == "PRESENCE_UPDATE" => break d,
                Ok(event) => assert!(event.as_dispatch().is_none(), "{event:?}"),
                Err(e) => panic!("no answer: {e:?}"),
            }
        };
        assert_eq!(event.sequence, 2);
        let latency = answered
            .join()
            .expect("server side")
            .saturating_duration_since(sent_at.join().expect("sender"));
        println!("a command from another thread reached the server after {latency:?}");
    });
    server.stop();
}

#[test]
fn refusals_are_typed() {
    let server = FakeGatewayServer::start(refusals_gateway());
    let mut shard =
        Shard::from_config(refusals_config(&server), ShardOptions::new()).expect("config");
    let sender = shard.sender();
    let thread = std::thread::spawn(move || {
        let results = [
            sender.send_blocking(command(PRESENCE)),
            sender.send_blocking(command(PRESENCE)),
            sender.send_blocking(command(PRESENCE)),
        ];
        let huge = discord_gateway_proto_command(&huge_presence());
        (
            results,
            huge.map_or_else(Err, |c| sender.send_blocking(c)),
            discord_gateway_proto_command("{\"op\":99}"),
        )
    });
    let until = Instant::now() + LIMIT;
    while !thread.is_finished() {
        assert!(Instant::now() < until, "the sender never got its answers");
        match shard.next_event_timeout(Duration::from_millis(5)) {
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => panic!("the shard ended"),
        }
    }
    let (results, huge, invalid) = thread.join().expect("sender thread");
    check_refusals(&results, &huge, &invalid.map(|_| ()));

    // Once closed (or dropped), the shard refuses with `Stopped`.
    let sender = shard.sender();
    shard.close(false);
    assert_eq!(
        sender.send_blocking(command(PRESENCE)),
        Err(SendError::Stopped)
    );
    assert_eq!(shard.command_json(PRESENCE), Err(SendError::Stopped));
    let late = shard.sender();
    drop(shard);
    assert_eq!(
        late.send_blocking(command(PRESENCE)),
        Err(SendError::Stopped)
    );
    assert!(late.is_closed());
    server.stop();
}

/// Raw JSON as a command, refused as the shard's `command_json` refuses it.
fn discord_gateway_proto_command(json: &str) -> Result<Command, SendError> {
    Command::from_json(json).map_err(|e| SendError::InvalidCommand(e.to_string()))
}

#[test]
fn a_closed_session_is_resumed_by_a_new_shard() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut first = shard(&server);
    events_until(&mut first, is_dispatch("READY"));
    let session = first.close(true).expect("a kept session");
    assert_eq!(session.id, "sim-session-1");
    assert_eq!(
        first.next_event(),
        Some(ShardEvent::Closed { session_kept: true })
    );
    assert_closed_keeping_the_session(closed_by_blocking(&server, 1));
    // Missed while no shard runs: replayed to the next one.
    server.perform(while_away());

    let saved = serde_json::to_string(&session).expect("serialize");
    let session = serde_json::from_str(&saved).expect("deserialize");
    let mut second = Shard::resume(config(&server), session, ShardOptions::new()).expect("config");
    let events = events_until(&mut second, is_resumed);
    let resume_url = server.resume_url().to_owned();
    check_resumed_by_a_new_shard(&events, &resume_url, &server.stop());
}

#[test]
fn a_send_on_a_dead_socket_is_a_lost_connection_and_the_session_resumes() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_dispatch("READY"));
    // The server resets the connection while the shard is not running: it learns of it
    // only when it sends.
    server.perform(ScriptAction::Drop);
    assert_eq!(closed_by_blocking(&server, 1), Some(Closer::ServerDrop));
    std::thread::sleep(Duration::from_millis(100));
    shard.command_json(PRESENCE).expect("accepted");
    let events = events_until(&mut shard, is_resumed);
    check_failed_send(&events);
    let gateway = server.stop();
    assert!(gateway.connections()[1].resumed);
}

#[test]
fn a_sender_closes_the_shard_from_another_thread() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_dispatch("READY"));
    let sender = shard.sender();
    let thread = std::thread::spawn(move || {
        let sent = sender.send_blocking(command(PRESENCE));
        (sent, sender.close_blocking(true))
    });
    // The iterator ends by itself after `Closed`.
    let events: Vec<ShardEvent> = shard.iter().collect();
    assert_eq!(
        events.last(),
        Some(&ShardEvent::Closed { session_kept: true })
    );
    let (sent, session) = thread.join().expect("thread");
    assert_eq!(sent, Ok(()));
    assert_eq!(session.expect("kept").id, "sim-session-1");
    assert_closed_keeping_the_session(closed_by_blocking(&server, 1));
    let gateway = server.stop();
    assert_eq!(
        gateway.received_op(3).count(),
        1,
        "the presence went out first"
    );
}

#[test]
fn next_event_timeout_times_out_while_the_shard_heartbeats() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, is_dispatch("READY"));
    // Nothing but heartbeats for 2.5 s: no event for the application (ACKs are events,
    // so count the time without a dispatch instead).
    let until = Instant::now() + Duration::from_millis(2500);
    let mut timeouts = 0;
    while Instant::now() < until {
        match shard.next_event_timeout(Duration::from_millis(100)) {
            Ok(event) => assert!(event.as_dispatch().is_none(), "{event:?}"),
            Err(RecvTimeoutError::Timeout) => timeouts += 1,
            Err(RecvTimeoutError::Disconnected) => panic!("the shard ended"),
        }
    }
    assert!(timeouts > 0);
    let gateway = server.stop();
    // 1 s heartbeats kept going while the application polled with timeouts.
    assert!(
        gateway.received_op(1).count() >= 2,
        "{}",
        gateway.received_op(1).count()
    );
    assert_eq!(gateway.connections().len(), 1);
    assert_no_violations(&gateway);
}

/// The shard can move to another thread.
#[allow(dead_code)]
fn shard_is_send() {
    fn check<T: Send + 'static>() {}
    check::<Shard>();
}

/// Two shards on two threads: the one waiting for its turn is woken through its readiness
/// queue when the other's call (or its own deadline) grants it.
#[test]
fn shards_on_two_threads_sharing_an_identify_queue_take_turns() {
    let server = FakeGatewayServer::start(fast_gateway());
    let queue = shared_queue();
    let config = std::sync::Arc::new(config(&server));
    std::thread::scope(|scope| {
        for id in 0..2 {
            let options = queued_options(id, &queue);
            let config = std::sync::Arc::clone(&config);
            scope.spawn(move || {
                let mut shard = Shard::from_config(config, options).expect("config");
                events_until(&mut shard, is_ready);
            });
        }
    });
    check_identifies_took_turns(&queue, &server.stop());
}

/// A port nobody listens on, by IP and by name (resolved on the DNS helper thread): each
/// attempt fails with a transport error naming the TCP connect, and the shard retries.
#[test]
fn a_refused_connect_is_reported_and_retried() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("addr").port()
    };
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("ws://{host}:{port}");
        let config = discord_gateway::GatewayConfig::new(
            discord_gateway::Token::new("test-token"),
            discord_gateway::Intents::GUILDS,
        )
        .with_gateway_url(url.as_str());
        let mut shard = Shard::from_config(config, ShardOptions::new().seed(3)).expect("config");
        let mut errors = Vec::new();
        let events = events_until(&mut shard, |e| {
            if let ShardEvent::TransportError(error) = e {
                errors.push(error.clone());
            }
            errors.len() == 2
        });
        for error in &errors {
            assert!(
                error.starts_with(&format!(
                    "connection failed: TCP connect to {host}:{port} failed"
                )),
                "{error}"
            );
        }
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ShardEvent::Disconnected { .. })),
            "{events:#?}"
        );
        assert_eq!(connects(&events).len(), 2, "{events:#?}");
    }
}
