//! What the tokio, smol and blocking shard tests share: the fake gateway's scripts for each
//! scenario, the shard's configuration, and the checks on the events a shard reported and
//! on what the fake received. Each runtime's test file only drives its shard.
//!
//! Included with `#[path = "support/shard.rs"] mod shard_support;` (the Redis helpers in
//! `support/mod.rs` need the `redis` feature; these need none).
#![allow(dead_code)]

use std::time::Duration;

use discord_gateway::proto::close_code::CloseCode;
use discord_gateway::proto::sim::{
    Closer, ConnectionId, FakeGateway, FakeGatewayConfig, ScriptAction, SimGuild, Trigger,
    ViolationKind,
};
use discord_gateway::testing::FakeGatewayServer;
use discord_gateway::{
    Compression, DisconnectReason, FatalReason, GatewayConfig, Intents, SendError, ShardEvent,
    Token,
};

/// The longest any scenario may take.
pub const LIMIT: Duration = Duration::from_secs(15);

/// A presence update as raw JSON.
pub const PRESENCE: &str =
    r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":false}}"#;

/// A fake gateway that answers quickly (1 s heartbeats, READY after 20 ms).
pub fn fast_gateway() -> FakeGateway {
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

/// The shard's configuration for `server` (short op-9 delays).
pub fn config(server: &FakeGatewayServer) -> GatewayConfig {
    let mut config = GatewayConfig::new(Token::new("test-token"), Intents::GUILDS)
        .with_gateway_url(server.url());
    config.identify.invalid_session_delay = (Duration::from_millis(50), Duration::from_millis(100));
    config
}

/// The `(sequence, d)` of each dispatch named `name`.
pub fn dispatch<'a>(events: &'a [ShardEvent], name: &str) -> Vec<(u64, &'a str)> {
    events
        .iter()
        .filter_map(ShardEvent::as_dispatch)
        .filter(|d| d.name == name)
        .map(|d| (d.sequence, d.data.as_str()))
        .collect()
}

/// The URL of each connection attempt.
pub fn connects(events: &[ShardEvent]) -> Vec<&str> {
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
pub fn assert_no_violations(gateway: &FakeGateway) {
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

pub fn is_resumed(event: &ShardEvent) -> bool {
    matches!(event, ShardEvent::Resumed { .. })
}

pub fn is_ready(event: &ShardEvent) -> bool {
    matches!(event, ShardEvent::Ready(_))
}

pub fn is_dispatch(name: &'static str) -> impl Fn(&ShardEvent) -> bool {
    move |event| event.as_dispatch().is_some_and(|d| d.name == name)
}

/// Whether connection `n` (1-based) has ended, as the fake saw it.
fn ended(n: usize) -> impl FnMut(&FakeGateway) -> bool + Send + 'static {
    move |g| {
        g.connections()
            .get(n - 1)
            .is_some_and(|c| c.closed.is_some())
    }
}

/// Waits until the fake saw connection `n` (1-based) end, and tells how (any executor).
pub async fn closed_by(server: &FakeGatewayServer, n: usize) -> Option<Closer> {
    let ended = server
        .wait_until_async(Duration::from_secs(5), ended(n))
        .await;
    assert!(ended, "connection {n} never ended");
    server
        .inspect_async(move |g| g.connections()[n - 1].closed.map(|(_, closer)| closer))
        .await
        .flatten()
}

/// [`closed_by`], blocking the thread.
pub fn closed_by_blocking(server: &FakeGatewayServer, n: usize) -> Option<Closer> {
    assert!(
        server.wait_until(Duration::from_secs(5), ended(n)),
        "connection {n} never ended"
    );
    server
        .inspect(move |g| g.connections()[n - 1].closed.map(|(_, closer)| closer))
        .flatten()
}

/// Asserts that a connection was closed by the client with a code that keeps the session.
pub fn assert_closed_keeping_the_session(closer: Option<Closer>) {
    match closer {
        Some(Closer::Client(code)) => assert!(!matches!(code, 1000 | 1001), "{code}"),
        other => panic!("the connection ended by {other:?}"),
    }
}

// ----- scenarios: the fake's script, and the checks once the shard got where it should -----

/// Happy path: READY, then GUILD_CREATE and MESSAGE_CREATE. Drive until MESSAGE_CREATE.
pub fn happy_path_gateway() -> FakeGateway {
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
    gateway
}

/// The events of the happy path, and the upgrade's `User-Agent`.
pub fn check_happy_path(
    events: &[ShardEvent],
    server: &FakeGatewayServer,
    user_agent: Option<&str>,
) {
    let ready = events
        .iter()
        .find_map(|e| match e {
            ShardEvent::Ready(info) => Some(info),
            _ => None,
        })
        .expect("READY");
    assert_eq!(ready.session_id, "sim-session-1");
    assert!(events.iter().any(|e| matches!(e, ShardEvent::Hello { .. })));
    assert_eq!(dispatch(events, "READY").len(), 1);
    assert_eq!(dispatch(events, "GUILD_CREATE"), [(2, r#"{"id":"1"}"#)]);
    assert_eq!(
        dispatch(events, "MESSAGE_CREATE"),
        [(3, r#"{"content":"hi"}"#)]
    );
    let urls = connects(events);
    assert_eq!(urls.len(), 1);
    assert!(urls[0].starts_with(server.url()), "{urls:?}");
    // The upgrade carried Discord's User-Agent form.
    let agent = user_agent.expect("a User-Agent header");
    assert!(agent.starts_with("DiscordBot (https://"), "{agent}");
    assert!(
        agent.ends_with(concat!(", ", env!("CARGO_PKG_VERSION"), ")")),
        "{agent}"
    );
}

/// Zombie: the fake stops ACKing connection 1; a dispatch is sent while the client
/// reconnects, and replayed on Resume. Drive until RESUMED.
pub fn zombie_gateway() -> FakeGateway {
    let mut gateway = fast_gateway();
    gateway.stop_acking_after(1, Some(ConnectionId(1)));
    // Sent while the client reconnects (connection 2 open, not yet resumed): missed, and
    // replayed on Resume.
    gateway.after(
        Trigger::Connected(2),
        Duration::ZERO,
        ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"missed"}"#),
    );
    gateway
}

/// A zombie verdict, a resume on the resume URL, the missed dispatch replayed.
pub fn check_zombie(events: &[ShardEvent], server: &FakeGatewayServer) {
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
    let urls = connects(events);
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(urls[1].starts_with(server.resume_url()), "{urls:?}");
    assert_eq!(
        dispatch(events, "MESSAGE_CREATE"),
        [(2, r#"{"content":"missed"}"#)],
        "{events:#?}"
    );
    assert_eq!(events.last(), Some(&ShardEvent::Resumed { replayed: 1 }));
}

/// What the fake saw of a resumed session: the second connection resumed, no identify.
pub fn check_resumed_on_the_second_connection(gateway: &FakeGateway) {
    assert!(gateway.connections()[1].resumed && !gateway.connections()[1].identified);
    assert_no_violations(gateway);
}

/// op 7: the fake asks for a reconnect 50 ms after READY, and sends a dispatch as the
/// client comes back. Drive until RESUMED.
pub fn op7_gateway() -> FakeGateway {
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
    gateway
}

/// A reconnect asked for, resumed on the resume URL, the missed dispatch delivered.
pub fn check_op7(events: &[ShardEvent], server: &FakeGatewayServer) {
    assert!(events.iter().any(|e| matches!(
        e,
        ShardEvent::Disconnected {
            reason: DisconnectReason::ReconnectRequested,
            resume: true,
            ..
        }
    )));
    assert!(connects(events)[1].starts_with(server.resume_url()));
    assert_eq!(
        dispatch(events, "MESSAGE_CREATE"),
        [(2, r#"{"content":"missed"}"#)]
    );
}

/// op 9 (not resumable) 50 ms after READY. Drive until the second READY.
pub fn op9_gateway() -> FakeGateway {
    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(50),
        ScriptAction::InvalidSession(false),
    );
    gateway
}

/// Counts READYs: true at the second.
pub fn second_ready() -> impl FnMut(&ShardEvent) -> bool {
    let mut readies = 0;
    move |e| {
        readies += usize::from(is_ready(e));
        readies == 2
    }
}

/// A new session on the main URL; two identifies, no resume.
pub fn check_op9(events: &[ShardEvent], main_url: &str, gateway: &FakeGateway) {
    assert!(events.contains(&ShardEvent::InvalidSession { resumable: false }));
    let Some(ShardEvent::Ready(second)) = events.last() else {
        panic!("{events:#?}");
    };
    assert_eq!(second.session_id, "sim-session-2");
    assert!(connects(events).iter().all(|u| u.starts_with(main_url)));
    assert_eq!(gateway.received_op(2).count(), 2, "two identifies");
    assert_eq!(gateway.received_op(6).count(), 0, "no resume");
    assert_no_violations(gateway);
}

/// A fatal close (4004) 50 ms after READY. Drive until the shard ends by itself.
pub fn fatal_gateway() -> FakeGateway {
    let mut gateway = fast_gateway();
    gateway.after(
        Trigger::ReadySent(1),
        Duration::from_millis(50),
        ScriptAction::Close {
            code: 4004,
            reason: "Authentication failed.".into(),
        },
    );
    gateway
}

/// The shard ended with the fatal reason and never reconnected.
pub fn check_fatal(events: &[ShardEvent]) {
    assert_eq!(
        events.last(),
        Some(&ShardEvent::Fatal(FatalReason::CloseCode(CloseCode(4004))))
    );
    assert_eq!(connects(events).len(), 1, "never reconnects");
}

/// Five dispatches, then op 7 and a resume on a new connection (a new compression
/// context). Drive until RESUMED.
pub fn compressed_gateway() -> FakeGateway {
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
    gateway
}

/// The query a compression mode puts in the URL.
pub fn compression_query(compression: Compression) -> Option<&'static str> {
    match compression {
        Compression::ZlibStream => Some("compress=zlib-stream"),
        Compression::ZstdStream => Some("compress=zstd-stream"),
        _ => None,
    }
}

/// Both connections asked for `compression`; the five dispatches arrived whole.
pub fn check_compressed(events: &[ShardEvent], compression: Compression, gateway: &FakeGateway) {
    let urls = connects(events);
    assert_eq!(urls.len(), 2, "{events:#?}");
    for url in urls {
        match compression_query(compression) {
            Some(query) => assert!(url.contains(query), "{url}"),
            None => assert!(!url.contains("compress="), "{url}"),
        }
    }
    let messages = dispatch(events, "MESSAGE_CREATE");
    assert_eq!(messages.len(), 5, "{events:#?}");
    assert_eq!(messages[4], (6, r#"{"content":"message 4"}"#));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ShardEvent::ProtocolError(_))),
        "{events:#?}"
    );
    assert_no_violations(gateway);
}

/// The server's answer to the presence update of the command scenario.
pub fn presence_answer() -> ScriptAction {
    ScriptAction::dispatch("PRESENCE_UPDATE", r#"{"status":"idle","user":{"id":"1"}}"#)
}

/// The presence went out and its answer came back.
pub fn check_command_answered(events: &[ShardEvent], gateway: &FakeGateway) {
    assert_eq!(
        dispatch(events, "PRESENCE_UPDATE"),
        [(2, r#"{"status":"idle","user":{"id":"1"}}"#)]
    );
    let presence = gateway.received_op(3).next().expect("op 3");
    assert_eq!(presence.data().expect("d")["status"], "idle");
}

/// The refusals scenario: READY comes late, so commands wait in a 2-slot queue.
pub fn refusals_gateway() -> FakeGateway {
    let mut gateway = fast_gateway();
    gateway.config_mut().ready_delay = Duration::from_millis(300);
    gateway
}

/// A queue of 2 for the refusals scenario.
pub fn refusals_config(server: &FakeGatewayServer) -> GatewayConfig {
    let mut config = config(server);
    config.limits.command_queue = 2;
    config
}

/// A presence update over 4096 bytes.
pub fn huge_presence() -> String {
    format!(
        r#"{{"op":3,"d":{{"since":null,"activities":[{{"name":"{}","type":0}}],"status":"idle","afk":false}}}}"#,
        "x".repeat(5000)
    )
}

/// Three presences into a queue of two, a huge one, an unknown opcode.
pub fn check_refusals(
    results: &[Result<(), SendError>],
    huge: &Result<(), SendError>,
    invalid: &Result<(), SendError>,
) {
    assert_eq!(results[..2], [Ok(()), Ok(())]);
    assert_eq!(results[2], Err(SendError::QueueFull { capacity: 2 }));
    assert!(
        matches!(huge, Err(SendError::PayloadTooLarge { size, limit: 4096, .. }) if *size > 5000),
        "{huge:?}"
    );
    assert!(
        matches!(invalid, Err(SendError::InvalidCommand(_))),
        "{invalid:?}"
    );
}

/// The missed dispatch sent while no shard runs, replayed to the next one.
pub fn while_away() -> ScriptAction {
    ScriptAction::dispatch("MESSAGE_CREATE", r#"{"content":"while away"}"#)
}

/// The new shard resumed on the resume URL and got the missed dispatch; one identify and
/// one resume in all.
pub fn check_resumed_by_a_new_shard(
    events: &[ShardEvent],
    resume_url: &str,
    gateway: &FakeGateway,
) {
    assert_eq!(
        dispatch(events, "MESSAGE_CREATE"),
        [(2, r#"{"content":"while away"}"#)]
    );
    assert!(connects(events)[0].starts_with(resume_url));
    assert_eq!(
        gateway.received_op(2).count(),
        1,
        "identified once, resumed once"
    );
    assert_eq!(gateway.received_op(6).count(), 1);
}

/// A send met the dead socket: reported as a transport error, then a disconnection that
/// resumes.
pub fn check_failed_send(events: &[ShardEvent]) {
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
}

/// The spacing of the shared identify queue in the turn-taking scenario.
pub const IDENTIFY_SPACING: Duration = Duration::from_millis(300);

/// A shared identify queue of one bucket with [`IDENTIFY_SPACING`].
pub fn shared_queue() -> discord_gateway::SharedIdentifyQueue {
    discord_gateway::SharedIdentifyQueue::new(discord_gateway::SessionStartLimit {
        total: 1000,
        remaining: 1000,
        reset_after: 86_400_000,
        max_concurrency: 1,
    })
    .with_spacing(IDENTIFY_SPACING)
}

/// The options of shard `id` of 2 taking turns on `queue`.
pub fn queued_options(
    id: u32,
    queue: &discord_gateway::SharedIdentifyQueue,
) -> discord_gateway::ShardOptions {
    discord_gateway::ShardOptions::new()
        .shard(discord_gateway::ShardId::new(id, 2))
        .identify_queue(queue.clone())
}

/// Both shards identified once, at least the spacing apart, and the budget shows it.
pub fn check_identifies_took_turns(
    queue: &discord_gateway::SharedIdentifyQueue,
    gateway: &FakeGateway,
) {
    assert_eq!(queue.remaining(), 998);
    let identifies: Vec<_> = gateway.received_op(2).map(|f| f.time).collect();
    assert_eq!(identifies.len(), 2);
    let gap = identifies[1].saturating_duration_since(identifies[0]);
    // The fake stamps a frame when its loop handles it, not when the bytes arrived: on a
    // busy machine the first can be stamped a few milliseconds late. Without the queue the
    // two identifies would be a few milliseconds apart, not hundreds.
    let stamping = Duration::from_millis(30);
    assert!(
        gap + stamping >= IDENTIFY_SPACING,
        "identifies {gap:?} apart, under the {IDENTIFY_SPACING:?} spacing"
    );
    // First come, first served: either may go first, each once.
    let mut shard_ids: Vec<String> = gateway
        .received_op(2)
        .map(|f| f.data().expect("d")["shard"].to_string())
        .collect();
    shard_ids.sort();
    assert_eq!(shard_ids, ["[0,2]", "[1,2]"]);
    assert_no_violations(gateway);
}
