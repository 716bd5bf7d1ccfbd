//! Recordings of simulated sessions with faults replay identically; one altered input is
//! reported at the right line.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::record::{replay, ReplayError, ReplayItem};
use discord_gateway_proto::sim::{FakeGateway, ScriptAction, SimDriver, Trigger};
use discord_gateway_proto::{Command, StartOptions, Timestamp};

fn record(gateway: FakeGateway, seed: u64, until: Timestamp, with_command: bool) -> Vec<String> {
    let mut sim = SimDriver::recorded(
        config(),
        StartOptions::default(),
        seed,
        Timestamp::ZERO,
        gateway,
    )
    .unwrap();
    sim.run_until(at_ms(5_000));
    if with_command {
        let presence = Command::from_json(
            r#"{"op":3,"d":{"since":null,"activities":[],"status":"idle","afk":true}}"#,
        )
        .unwrap();
        sim.send(presence).unwrap();
    }
    sim.run_until(until);
    std::iter::from_fn(|| sim.pop_recording_line()).collect()
}

fn replays(recording: &[String]) -> Vec<String> {
    let mut decisions = Vec::new();
    let summary = replay(recording.iter().map(String::as_str), |item| {
        if let ReplayItem::Decision(d) = item {
            decisions.push(d.to_string());
        }
    })
    .unwrap_or_else(|e| panic!("replay failed: {e}"));
    assert_eq!(summary.lines, recording.len());
    assert!(summary.outputs > 10);
    decisions
}

fn faulty_gateway() -> FakeGateway {
    let mut gateway = gateway();
    gateway
        .dispatch_stream(
            Trigger::ReadySent(1),
            ms(100),
            ms(700),
            (0..30).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
        )
        .at(at_ms(20_000), ScriptAction::RequestHeartbeat)
        .stop_acking_after(2, None)
        .after(Trigger::ResumedSent(1), secs(10), ScriptAction::Reconnect)
        .after(
            Trigger::ResumedSent(2),
            secs(10),
            ScriptAction::InvalidSession(true),
        )
        .after(
            Trigger::ResumedSent(3),
            secs(10),
            ScriptAction::InvalidSession(false),
        )
        .after(
            Trigger::ReadySent(2),
            secs(10),
            ScriptAction::Close {
                code: 4009,
                reason: "timed out".into(),
            },
        )
        .after(
            Trigger::ReadySent(3),
            secs(10),
            ScriptAction::Close {
                code: 4000,
                reason: "unknown".into(),
            },
        )
        .after(
            Trigger::ResumedSent(4),
            secs(10),
            ScriptAction::Close {
                code: 4014,
                reason: "disallowed".into(),
            },
        );
    gateway
}

#[test]
fn a_session_with_every_fault_replays_identically() {
    let recording = record(faulty_gateway(), 11, at_ms(900_000), true);
    let decisions = replays(&recording).join("\n");
    for needle in [
        "zombie connection",
        "op 7",
        "op 9 invalid session (true)",
        "op 9 invalid session (false)",
        "4009",
        "close code must not be retried",
    ] {
        assert!(
            decisions.contains(needle),
            "no {needle:?} in the trace:\n{decisions}"
        );
    }
    assert!(
        recording.iter().all(|l| !l.contains(TOKEN)),
        "the token leaked into the recording"
    );
}

#[test]
fn recordings_are_deterministic() {
    assert_eq!(
        record(faulty_gateway(), 3, at_ms(600_000), true),
        record(faulty_gateway(), 3, at_ms(600_000), true)
    );
}

#[test]
fn an_altered_input_is_reported_where_behaviour_first_differs() {
    let recording = record(faulty_gateway(), 5, at_ms(300_000), false);
    // Turn the first op 7 into an unknown opcode: the machine no longer reconnects there.
    let index = recording
        .iter()
        .position(|l| l.contains(r#"\"op\":7"#))
        .expect("an op 7 in the recording");
    let mut altered = recording.clone();
    altered[index] = altered[index].replace(r#"\"op\":7"#, r#"\"op\":77"#);
    match replay(altered.iter().map(String::as_str), |_| {}) {
        Err(ReplayError::Mismatch {
            line,
            expected,
            actual,
        }) => {
            // The first output after the altered input is where behaviour changed.
            let first_output = (index + 1..recording.len())
                .find(|&i| {
                    !recording[i].contains(r#""kind":"text""#)
                        && !recording[i].contains(r#""kind":"timeout""#)
                })
                .unwrap();
            assert_eq!(line, first_output + 1, "reported line {line}");
            assert!(
                expected.contains("close")
                    || expected.contains("Close")
                    || expected.contains("event"),
                "{expected}"
            );
            assert!(actual.contains("UnknownOpcode(77)"), "{actual}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}
