//! Record a run, replay it, and check the replay reproduces it; alter it, and check the
//! replay names the first difference; feed it garbage, and check the errors name the line.

use discord_gateway_proto::record::{replay, RecordingMachine, ReplayError, ReplayItem};
use discord_gateway_proto::*;

const TOKEN: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.super-secret-token-value";

fn config() -> GatewayConfig {
    GatewayConfig::new(Token::new(TOKEN), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .with_gateway_url("ws://127.0.0.1:9/gateway")
}

/// Drains outputs the way a driver must, returning the deadline of the final `Wait`.
fn drain(m: &mut RecordingMachine, log: &mut Vec<String>) -> Option<Timestamp> {
    loop {
        let out = m.poll_output();
        match out {
            Output::Wait(deadline) => return deadline,
            other => log.push(format!("{other:?}")),
        }
    }
}

fn lines(m: &mut RecordingMachine) -> Vec<String> {
    std::iter::from_fn(|| m.pop_line()).collect()
}

const HELLO: &str = r#"{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}"#;
const ACK: &str = r#"{"t":null,"s":null,"op":11,"d":null}"#;

fn ready(seq: u64) -> String {
    format!(
        r#"{{"t":"READY","s":{seq},"op":0,"d":{{"v":10,"session_id":"sess-1","resume_gateway_url":"ws://127.0.0.2:9","user":{{"id":"42"}},"guilds":[]}}}}"#
    )
}

fn message(seq: u64) -> String {
    format!(
        r#"{{"t":"MESSAGE_CREATE","s":{seq},"op":0,"d":{{"id":"{seq}","content":"hi \"op\":7"}}}}"#
    )
}

/// A run with the usual faults: identify, dispatches, a missed ACK (zombie), a resume on
/// the resume URL with replay, op 7, op 9 false, a rejected command, and a fatal close.
fn record_run(seed: u64) -> (Vec<String>, Vec<String>) {
    let mut log = Vec::new();
    let t = Timestamp::from_millis;
    let mut m = RecordingMachine::new(config(), StartOptions::default(), seed, t(0)).unwrap();
    drain(&mut m, &mut log);
    m.handle_connected(t(50));
    drain(&mut m, &mut log);
    m.handle_message(t(60), Message::Text(HELLO));
    drain(&mut m, &mut log);
    m.grant_identify(t(70)).unwrap();
    drain(&mut m, &mut log);
    m.handle_message(t(100), Message::Text(&ready(1)));
    drain(&mut m, &mut log);
    let mut buffer = String::new();
    for seq in 2..5 {
        if seq == 3 {
            // Handed over in the driver's buffer: recorded as text, replayed lent.
            buffer.push_str(&message(seq));
            m.handle_text_buffer(t(100 + seq * 10), &mut buffer);
        } else {
            m.handle_message(t(100 + seq * 10), Message::Text(&message(seq)));
        }
        drain(&mut m, &mut log);
    }
    let presence =
        Command::UpdatePresence(discord_gateway_proto::protocol::commands::UpdatePresence {
            since: None,
            activities: vec![],
            status: discord_gateway_proto::protocol::commands::Status::Online,
            afk: false,
        });
    m.send(t(200), presence).unwrap();
    drain(&mut m, &mut log);
    // First beat, acknowledged; second beat, not: zombie at the third.
    let mut deadline = m.poll_timeout().unwrap();
    m.handle_timeout(deadline);
    drain(&mut m, &mut log);
    m.handle_message(
        deadline.saturating_add(std::time::Duration::from_millis(80)),
        Message::Text(ACK),
    );
    drain(&mut m, &mut log);
    for _ in 0..2 {
        deadline = m.poll_timeout().unwrap();
        m.handle_timeout(deadline);
        drain(&mut m, &mut log);
    }
    assert_eq!(
        m.machine().phase(),
        Phase::Connecting,
        "zombie must reconnect"
    );
    let now = m.machine().now();
    m.handle_connected(now);
    drain(&mut m, &mut log);
    m.handle_message(now, Message::Text(HELLO));
    drain(&mut m, &mut log);
    m.handle_message(now, Message::Text(&message(5)));
    m.handle_message(now, Message::Text(r#"{"t":"RESUMED","s":6,"op":0,"d":{}}"#));
    drain(&mut m, &mut log);
    m.handle_message(now, Message::Text(r#"{"t":null,"s":null,"op":7,"d":null}"#));
    drain(&mut m, &mut log);
    m.handle_connected(now);
    m.handle_message(now, Message::Text(HELLO));
    m.handle_message(
        now,
        Message::Text(r#"{"t":null,"s":null,"op":9,"d":false}"#),
    );
    drain(&mut m, &mut log);
    assert!(m.grant_identify(now).is_err());
    drain(&mut m, &mut log);
    let deadline = m.poll_timeout().unwrap();
    m.handle_timeout(deadline);
    m.handle_connected(deadline);
    m.handle_message(deadline, Message::Text(HELLO));
    m.handle_message(deadline, Message::TextBytes(b"\xff\xfe not utf-8"));
    drain(&mut m, &mut log);
    m.handle_closed(
        deadline,
        Some(CloseFrame {
            code: 4004,
            reason: "Authentication failed.",
        }),
    );
    drain(&mut m, &mut log);
    assert!(matches!(m.machine().phase(), Phase::Fatal(_)));
    (lines(&mut m), log)
}

#[test]
fn a_recording_replays_identically() {
    let (recording, _) = record_run(7);
    let mut decisions = Vec::new();
    let mut outputs = 0;
    let summary = replay(recording.iter().map(String::as_str), |item| match item {
        ReplayItem::Decision(d) => decisions.push(d.to_string()),
        ReplayItem::Output { .. } => outputs += 1,
        ReplayItem::Input { .. } => {}
        other => panic!("a replay item this test does not know: {other:?}"),
    })
    .unwrap();
    assert_eq!(summary.lines, recording.len());
    assert_eq!(summary.outputs, outputs);
    assert!(summary.inputs > 20, "{summary:?}");
    // The trace explains the zombie, the resume on the resume URL, op 7, op 9 and the fatal close.
    let joined = decisions.join("\n");
    for needle in [
        "no ACK since the beat at",
        "zombie connection",
        "connect to the resume URL to resume",
        "op 7",
        "op 9 invalid session (false)",
        "close code must not be retried",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
    }
}

#[test]
fn the_token_never_appears_in_a_recording() {
    let (recording, log) = record_run(7);
    assert!(recording
        .iter()
        .all(|l| !l.contains(TOKEN) && !l.contains("super-secret")));
    assert!(
        recording.iter().any(|l| l.contains("<redacted>")),
        "identify should be recorded redacted"
    );
    assert!(
        log.iter().all(|l| !l.contains("super-secret")),
        "Debug output leaked the token"
    );
}

#[test]
fn same_seed_same_recording_other_seed_differs() {
    assert_eq!(record_run(7).0, record_run(7).0);
    assert_ne!(record_run(7).0, record_run(8).0);
}

#[test]
fn an_altered_input_is_reported_at_the_first_differing_output() {
    let (mut recording, _) = record_run(7);
    // Change Hello's interval: the first-beat deadline that follows must differ.
    let index = recording
        .iter()
        .position(|l| l.contains("heartbeat_interval"))
        .unwrap();
    recording[index] = recording[index].replace("41250", "40000");
    let err = replay(recording.iter().map(String::as_str), |_| {}).unwrap_err();
    match err {
        ReplayError::Mismatch {
            line,
            expected,
            actual,
        } => {
            assert!(
                line > index + 1,
                "mismatch at {line}, input at {}",
                index + 1
            );
            assert!(
                expected.contains("41.25s") || expected.contains("wait"),
                "{expected}"
            );
            assert_ne!(expected, actual);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn bad_recordings_name_the_line() {
    let (recording, _) = record_run(7);
    let r = |lines: Vec<&str>| replay(lines, |_| {}).unwrap_err();
    assert_eq!(r(vec![]), ReplayError::Empty);
    assert!(matches!(r(vec!["garbage"]), ReplayError::BadHeader(_)));
    let future = recording[0].replace("\"version\":1", "\"version\":99");
    assert_eq!(
        r(vec![&future]),
        ReplayError::UnsupportedVersion {
            found: 99,
            supported: 1
        }
    );
    let truncated = &recording[3][..recording[3].len() / 2];
    match r(vec![&recording[0], &recording[1], &recording[2], truncated]) {
        ReplayError::BadLine { line, .. } => assert_eq!(line, 4),
        other => panic!("{other:?}"),
    }
    match r(vec![&recording[0], r#"{"kind":"teleport","t":1}"#]) {
        ReplayError::BadLine { line, reason } => {
            assert_eq!(line, 2);
            assert!(reason.contains("teleport"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match r(vec![
        &recording[0],
        r#"{"kind":"binary","t":1,"base64":"!!"}"#,
    ]) {
        ReplayError::BadLine { line: 2, reason } => assert!(reason.contains("base64")),
        other => panic!("{other:?}"),
    }
}

/// A committed recording keeps replaying identically. A deliberate behaviour change
/// re-records it in the same commit (`RERECORD=1 cargo test --test record_replay`) and says
/// why in the message.
#[test]
fn the_committed_fixture_still_replays() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/recording-v1.jsonl"
    );
    if std::env::var_os("RERECORD").is_some() {
        let (recording, _) = record_run(7);
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, recording.join("\n") + "\n").unwrap();
    }
    let text = std::fs::read_to_string(path).expect("fixture present");
    let summary =
        replay(text.lines(), |_| {}).unwrap_or_else(|e| panic!("fixture no longer replays: {e}"));
    assert_eq!(summary.lines, text.lines().count());
    assert!(!text.contains("super-secret"));
}
