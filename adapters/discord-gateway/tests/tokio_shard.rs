//! The tokio `Shard` against `FakeGatewayServer`: real WebSockets on loopback, the sans-IO
//! `sim::FakeGateway` behind them. Each scenario is bounded in time; nothing leaves
//! 127.0.0.1.

use std::time::Duration;

use discord_gateway::proto::close_code::CloseCode;
use discord_gateway::proto::sim::{
    Closer, ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimGuild, Trigger,
    ViolationKind,
};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::tokio::Shard;
use discord_gateway::{
    Compression, DisconnectReason, FatalReason, GatewayConfig, Intents, SendError, ShardEvent,
    ShardOptions, Token,
};

/// The longest any scenario may take.
const LIMIT: Duration = Duration::from_secs(15);

fn fast_gateway() -> FakeGateway {
    FakeGateway::new(FakeGatewayConfig {
        hello_interval: Duration::from_secs(1),
        ack_delay: Duration::from_millis(10),
        ready_delay: Duration::from_millis(20),
        resume_delay: Duration::from_millis(20),
        invalid_session_delay: Duration::from_millis(20),
        // READY lists guild 1; the scenarios script their dispatches themselves.
        guilds: vec![SimGuild::new(1, "sim guild")],
        guild_create_delay: None,
        ..FakeGatewayConfig::default()
    })
}

fn config(server: &FakeGatewayServer) -> GatewayConfig {
    let mut config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(server.url());
    config.identify.invalid_session_delay = (Duration::from_millis(50), Duration::from_millis(100));
    config
}

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

fn dispatch<'a>(events: &'a [ShardEvent], name: &str) -> Vec<(u64, &'a str)> {
    events
        .iter()
        .filter_map(ShardEvent::as_dispatch)
        .filter(|d| d.name == name)
        .map(|d| (d.sequence, d.data.as_str()))
        .collect()
}

fn connects(events: &[ShardEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            ShardEvent::Connecting { url } => Some(url.as_str()),
            _ => None,
        })
        .collect()
}

/// Asserts that the client did nothing Discord would refuse. A heartbeat carrying an older
/// sequence than the server last sent is not counted: the beat crossed a dispatch in flight
/// (sent before the dispatch arrived), which no client can avoid and Discord accepts.
fn assert_no_violations(gateway: &FakeGateway) {
    let serious: Vec<_> = gateway
        .violations()
        .iter()
        .filter(|v| {
            !matches!(
                v.kind,
                ViolationKind::HeartbeatSequence {
                    expected: Some(expected),
                    got: Some(got),
                } if got < expected
            )
        })
        .collect();
    assert!(serious.is_empty(), "{serious:?}");
}

fn is_resumed(event: &ShardEvent) -> bool {
    matches!(event, ShardEvent::Resumed { .. })
}

fn is_dispatch(name: &'static str) -> impl Fn(&ShardEvent) -> bool {
    move |event| event.as_dispatch().is_some_and(|d| d.name == name)
}

/// Waits until the fake saw connection `n` (1-based) end, and tells how.
async fn closed_by(server: &FakeGatewayServer, n: usize) -> Option<Closer> {
    let ended = server
        .wait_until_async(Duration::from_secs(5), move |g| {
            g.connections()
                .get(n - 1)
                .is_some_and(|c| c.closed.is_some())
        })
        .await;
    assert!(ended, "connection {n} never ended");
    server
        .inspect_async(move |g| g.connections()[n - 1].closed.map(|(_, closer)| closer))
        .await
        .flatten()
}

#[tokio::test]
async fn happy_path_identifies_and_delivers_dispatches() {
    let mut gateway = fast_gateway();
    gateway.dispatch_stream(
        Trigger::ReadySent(1),
        Duration::from_millis(20),
        Duration::from_millis(20),
        [
            ("GUILD_CREATE", r#"{"id":"1"}"#),
            ("MESSAGE_CREATE", r#"{"content":"hi"}"#),
        ],
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_dispatch("MESSAGE_CREATE")).await;

    let ready = events
        .iter()
        .find_map(|e| match e {
            ShardEvent::Ready(info) => Some(info),
            _ => None,
        })
        .expect("READY");
    assert_eq!(ready.session_id, "sim-session-1");
    assert!(events.iter().any(|e| matches!(e, ShardEvent::Hello { .. })));
    assert_eq!(dispatch(&events, "READY").len(), 1);
    assert_eq!(dispatch(&events, "GUILD_CREATE"), [(2, r#"{"id":"1"}"#)]);
    assert_eq!(
        dispatch(&events, "MESSAGE_CREATE"),
        [(3, r#"{"content":"hi"}"#)]
    );
    let urls = connects(&events);
    assert_eq!(urls.len(), 1);
    assert!(urls[0].starts_with(server.url()), "{urls:?}");

    // The upgrade carried Discord's User-Agent form.
    let requests = server.upgrade_requests_async().await;
    let agent = requests[0]
        .user_agent
        .as_deref()
        .expect("a User-Agent header");
    assert!(agent.starts_with("DiscordBot (https://"), "{agent}");
    assert!(
        agent.ends_with(concat!(", ", env!("CARGO_PKG_VERSION"), ")")),
        "{agent}"
    );

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
    let mut gateway = fast_gateway();
    gateway.stop_acking_after(1, Some(ConnectionId(1)));
    // Sent while the client reconnects (connection 2 open, not yet resumed): missed, and
    // replayed on Resume.
    gateway.after(
        Trigger::Connected(2),
        Duration::ZERO,
        ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"missed"}"#),
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_resumed).await;

    assert!(
        events.iter().any(|e| matches!(
            e,
            ShardEvent::Disconnected {
                reason: DisconnectReason::Zombie,
                resume: true,
                ..
            }
        )),
        "{events:#?}"
    );
    let urls = connects(&events);
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls[1].starts_with(server.resume_url()), "{urls:?}");
    assert_eq!(
        dispatch(&events, "MESSAGE_CREATE"),
        [(2, r#"{"content":"missed"}"#)],
        "{events:#?}"
    );
    assert_eq!(events.last(), Some(&ShardEvent::Resumed { replayed: 1 }));
    // The zombie was closed with a code that keeps the session.
    match closed_by(&server, 1).await {
        Some(Closer::Client(code)) => assert!(!matches!(code, 1000 | 1001), "{code}"),
        other => panic!("connection 1 ended by {other:?}"),
    }
    let gateway = server.stop_async().await;
    assert!(gateway.connections()[1].resumed && !gateway.connections()[1].identified);
    assert_no_violations(&gateway);
}

#[tokio::test]
async fn op7_reconnects_and_resumes() {
    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(50),
        ScriptAction::Reconnect,
    );
    gateway.after(
        Trigger::Connected(2),
        Duration::ZERO,
        ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"missed"}"#),
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    let events = events_until(&mut shard, is_resumed).await;
    assert!(events.iter().any(|e| matches!(
        e,
        ShardEvent::Disconnected {
            reason: DisconnectReason::ReconnectRequested,
            resume: true,
            ..
        }
    )));
    assert!(connects(&events)[1].starts_with(server.resume_url()));
    assert_eq!(
        dispatch(&events, "MESSAGE_CREATE"),
        [(2, r#"{"content":"missed"}"#)]
    );
    let gateway = server.stop_async().await;
    assert!(gateway.connections()[1].resumed);
    assert_no_violations(&gateway);
}

#[tokio::test]
async fn op9_false_identifies_anew() {
    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(50),
        ScriptAction::InvalidSession(false),
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    let mut readies = 0;
    let events = events_until(&mut shard, |e| {
        readies += usize::from(matches!(e, ShardEvent::Ready(_)));
        readies == 2
    })
    .await;
    assert!(events.contains(&ShardEvent::InvalidSession { resumable: false }));
    let Some(ShardEvent::Ready(second)) = events.last() else {
        panic!("{events:#?}");
    };
    assert_eq!(second.session_id, "sim-session-2");
    assert!(connects(&events)
        .iter()
        .all(|u| u.starts_with(server.url())));
    let gateway = server.stop_async().await;
    assert_eq!(gateway.received_op(2).count(), 2, "two identifies");
    assert_eq!(gateway.received_op(6).count(), 0, "no resume");
    assert_no_violations(&gateway);
}

#[tokio::test]
async fn a_fatal_close_ends_the_stream() {
    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(50),
        ScriptAction::Close {
            code: 4004,
            reason: "Authentication failed.".into(),
        },
    );
    let server = FakeGatewayServer::start(gateway);
    let mut shard = shard(&server);
    // No stop condition: the shard must end by itself.
    let events = events_until(&mut shard, |_| false).await;
    assert_eq!(
        events.last(),
        Some(&ShardEvent::Fatal(FatalReason::CloseCode(CloseCode(4004))))
    );
    assert_eq!(shard.next_event().await, None, "stays ended");
    assert_eq!(connects(&events).len(), 1, "never reconnects");
    // Commands after the end are refused.
    assert_eq!(
        shard
            .sender()
            .send_json(r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#)
            .await,
        Err(SendError::Stopped)
    );
    server.stop_async().await;
}

/// Five dispatches, then op 7 and a resume on a new connection (a new compression context).
async fn compressed(compression: Compression, query: Option<&str>) {
    let mut gateway = fast_gateway();
    gateway.dispatch_stream(
        Trigger::ReadySent(1),
        Duration::from_millis(10),
        Duration::from_millis(10),
        (0..5).map(|i| ("MESSAGE_CREATE", format!(r#"{{"content":"message {i}"}}"#))),
    );
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(100),
        ScriptAction::Reconnect,
    );
    let server = FakeGatewayServer::start(gateway);
    let config = config(&server).with_compression(compression);
    let mut shard = Shard::from_config(config, ShardOptions::new().seed(7)).expect("config");
    let events = events_until(&mut shard, is_resumed).await;
    let urls = connects(&events);
    assert_eq!(urls.len(), 2, "{events:#?}");
    for url in urls {
        match query {
            Some(query) => assert!(url.contains(query), "{url}"),
            None => assert!(!url.contains("compress="), "{url}"),
        }
    }
    let messages = dispatch(&events, "MESSAGE_CREATE");
    assert_eq!(messages.len(), 5, "{events:#?}");
    assert_eq!(messages[4], (6, r#"{"content":"message 4"}"#));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ShardEvent::ProtocolError(_))),
        "{events:#?}"
    );
    let gateway = server.stop_async().await;
    assert_no_violations(&gateway);
}

#[tokio::test]
async fn no_compression() {
    compressed(Compression::None, None).await;
}

#[tokio::test]
async fn zlib_stream() {
    compressed(Compression::ZlibStream, Some("compress=zlib-stream")).await;
}

#[tokio::test]
async fn zstd_stream() {
    compressed(Compression::ZstdStream, Some("compress=zstd-stream")).await;
}

const PRESENCE: &str = r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#;

#[tokio::test]
async fn a_command_from_another_task_is_answered_by_a_dispatch() {
    let server = FakeGatewayServer::start(fast_gateway());
    let mut shard = shard(&server);
    events_until(&mut shard, |e| matches!(e, ShardEvent::Ready(_))).await;

    let sender = shard.sender();
    let task = tokio::spawn(async move { sender.send_json(PRESENCE).await });
    // The shard must be polled for the command to go out; meanwhile the "server side" of
    // the test answers it once it arrived.
    let answer = async {
        let arrived = server
            .wait_until_async(Duration::from_secs(5), |g| g.received_op(3).count() == 1)
            .await;
        assert!(arrived, "the presence update never arrived");
        server.perform(ScriptAction::dispatch(
            "PRESENCE_UPDATE",
            r#"{"status":"idle","user":{"id":"1"}}"#,
        ));
    };
    let (events, ()) = tokio::join!(
        events_until(&mut shard, is_dispatch("PRESENCE_UPDATE")),
        answer
    );
    assert_eq!(task.await.expect("sender task"), Ok(()));
    assert_eq!(
        dispatch(&events, "PRESENCE_UPDATE"),
        [(2, r#"{"status":"idle","user":{"id":"1"}}"#)]
    );
    let gateway = server.stop_async().await;
    let presence = gateway.received_op(3).next().expect("op 3");
    assert_eq!(presence.data().expect("d")["status"], "idle");
}

#[tokio::test]
async fn refusals_are_typed() {
    let mut gateway = fast_gateway();
    // READY comes late: commands wait in the machine's queue meanwhile.
    gateway.config_mut().ready_delay = Duration::from_millis(300);
    let server = FakeGatewayServer::start(gateway);
    let mut config = config(&server);
    config.limits.command_queue = 2;
    let mut shard = Shard::from_config(config, ShardOptions::new()).expect("config");
    let sender = shard.sender();
    let task = tokio::spawn(async move {
        let results = [
            sender.send_json(PRESENCE).await,
            sender.send_json(PRESENCE).await,
            sender.send_json(PRESENCE).await,
        ];
        let huge = format!(
            r#"{{"op":3,"d":{{"since":null,"activities":[{{"name":"{}","type":0}}],"status":"idle","afk":false}}}}"#,
            "x".repeat(5000)
        );
        (
            results,
            sender.send_json(&huge).await,
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
    assert_eq!(results[..2], [Ok(()), Ok(())]);
    assert_eq!(results[2], Err(SendError::QueueFull { capacity: 2 }));
    assert!(
        matches!(huge, Err(SendError::PayloadTooLarge { size, limit: 4096, .. }) if size > 5000),
        "{huge:?}"
    );
    assert!(
        matches!(invalid, Err(SendError::InvalidCommand(_))),
        "{invalid:?}"
    );

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
    match closed_by(&server, 1).await {
        Some(Closer::Client(code)) => assert!(!matches!(code, 1000 | 1001), "{code}"),
        other => panic!("connection 1 ended by {other:?}"),
    }
    // Missed while no shard runs: replayed to the next one.
    server.perform(ScriptAction::dispatch(
        "MESSAGE_CREATE",
        r#"{"content":"while away"}"#,
    ));

    // The session survives a round trip through JSON (a session file).
    let saved = serde_json::to_string(&session).expect("serialize");
    let session = serde_json::from_str(&saved).expect("deserialize");
    let mut second = Shard::resume(config(&server), session, ShardOptions::new()).expect("config");
    let events = events_until(&mut second, is_resumed).await;
    assert_eq!(
        dispatch(&events, "MESSAGE_CREATE"),
        [(2, r#"{"content":"while away"}"#)]
    );
    assert!(connects(&events)[0].starts_with(server.resume_url()));
    let gateway = server.stop_async().await;
    assert_eq!(
        gateway.received_op(2).count(),
        1,
        "identified once, resumed once"
    );
    assert_eq!(gateway.received_op(6).count(), 1);
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
    let Some(ShardEvent::TransportError(error)) = events.first() else {
        panic!("{events:#?}");
    };
    assert!(error.starts_with("send failed"), "{error}");
    assert!(matches!(
        events[1],
        ShardEvent::Disconnected {
            reason: DisconnectReason::TransportLost,
            resume: true,
            ..
        }
    ));
    // The session goes on (the frame that met the dead socket is gone with it, as on any
    // transport loss).
    let gateway = server.stop_async().await;
    assert!(gateway.connections()[1].resumed);
}

#[tokio::test]
async fn shards_sharing_an_identify_queue_take_turns() {
    use discord_gateway::{SessionStartLimit, ShardId, SharedIdentifyQueue};
    let server = FakeGatewayServer::start(fast_gateway());
    let spacing = Duration::from_millis(300);
    let queue = SharedIdentifyQueue::new(SessionStartLimit {
        total: 1000,
        remaining: 1000,
        reset_after: 86_400_000,
        max_concurrency: 1,
    })
    .with_spacing(spacing);
    let config = std::sync::Arc::new(config(&server));
    let mut shards: Vec<Shard> = (0..2)
        .map(|id| {
            let options = ShardOptions::new()
                .shard(ShardId::new(id, 2))
                .identify_queue(queue.clone());
            Shard::from_config(std::sync::Arc::clone(&config), options).expect("config")
        })
        .collect();
    let (a, b) = shards.split_at_mut(1);
    let ready = |e: &ShardEvent| matches!(e, ShardEvent::Ready(_));
    tokio::join!(
        events_until(&mut a[0], ready),
        events_until(&mut b[0], ready)
    );
    assert_eq!(queue.remaining(), 998);
    let gateway = server.stop_async().await;
    let identifies: Vec<_> = gateway.received_op(2).map(|f| f.time).collect();
    assert_eq!(identifies.len(), 2);
    let gap = identifies[1].saturating_duration_since(identifies[0]);
    assert!(
        gap >= spacing,
        "identifies {gap:?} apart, under the {spacing:?} spacing"
    );
    // First come, first served: either may go first, each once.
    let mut shard_ids: Vec<String> = gateway
        .received_op(2)
        .map(|f| f.data().expect("d")["shard"].to_string())
        .collect();
    shard_ids.sort();
    assert_eq!(shard_ids, ["[0,2]", "[1,2]"]);
    assert_no_violations(&gateway);
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
    match closed_by(&server, 1).await {
        Some(Closer::Client(code)) => assert!(!matches!(code, 1000 | 1001), "{code}"),
        other => panic!("connection 1 ended by {other:?}"),
    }
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
