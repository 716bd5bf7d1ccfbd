//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies, so `cargo test` checks every input the fuzzers kept (crash regressions included)
//! without a fuzzer. See `fuzz/README.md`.

#[path = "support/fuzz_bodies.rs"]
mod fuzz_bodies;

use std::path::PathBuf;

/// Runs `body` on every file of `fuzz/corpus/<target>`; the corpus must not be empty.
fn replay_corpus(target: &str, body: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("corpus file");
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{} failed", file.display());
    }
}

#[test]
fn envelope_corpus() {
    replay_corpus("envelope", fuzz_bodies::envelope);
}

#[test]
fn commands_corpus() {
    replay_corpus("commands", fuzz_bodies::commands);
}

#[test]
fn machine_corpus() {
    replay_corpus("machine", fuzz_bodies::machine);
}

#[cfg(any(feature = "zlib-stream", feature = "zstd-stream"))]
#[test]
fn inflate_corpus() {
    replay_corpus("inflate", fuzz_bodies::inflate);
}

#[test]
fn replay_corpus_recordings() {
    replay_corpus("replay", fuzz_bodies::replay_recording);
}

// The checks themselves must be able to fail: each of these feeds a body's checker a
// violation it must catch, next to the correct case it must accept.

use discord_gateway_proto::protocol::commands::UpdateVoiceState;
use discord_gateway_proto::protocol::envelope::{Envelope, EnvelopeError};
use discord_gateway_proto::{
    Command, Event, FatalReason, Frame, OpCode, Output, Session, Snowflake, Timestamp,
};
use fuzz_bodies::{check_command_json, check_envelope, Checker};

fn panics(f: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err()
}

#[test]
fn envelope_check_catches_a_reader_that_disagrees_with_serde_json() {
    let text = r#"{"t":"A\u0042","s":5,"op":0,"d":{"x":[1,2]}}"#;
    let right = Envelope {
        op: 0,
        sequence: Some(5),
        event_name: Some(r"A\u0042"),
        data: Some(r#"{"x":[1,2]}"#),
    };
    check_envelope(text, Ok(right));
    assert!(panics(|| check_envelope(
        text,
        Ok(Envelope { op: 1, ..right })
    )));
    assert!(panics(|| check_envelope(
        text,
        Ok(Envelope {
            sequence: None,
            ..right
        })
    )));
    assert!(panics(|| check_envelope(
        text,
        Ok(Envelope {
            event_name: Some("AB "),
            ..right
        })
    )));
    assert!(panics(|| check_envelope(
        text,
        Ok(Envelope {
            data: Some(r#"{"x":[1]}"#),
            ..right
        })
    )));
    assert!(panics(|| check_envelope(
        text,
        Ok(Envelope {
            data: Some(r#" {"x":[1,2]}"#),
            ..right
        })
    )));
    // Rejecting a message serde_json reads is caught; rejecting a duplicated op is not.
    assert!(panics(|| check_envelope(
        text,
        Err(EnvelopeError::MissingOpcode)
    )));
    check_envelope(
        r#"{"op":1,"op":2}"#,
        Err(EnvelopeError::DuplicateField { field: "op" }),
    );
    // Accepting what serde_json rejects is caught, except for the documented exclusions.
    let op1 = Envelope {
        op: 1,
        sequence: None,
        event_name: None,
        data: None,
    };
    assert!(panics(|| check_envelope(r#"{"op":1,}"#, Ok(op1))));
    check_envelope(r#"{"op":1,"x":1e400}"#, Ok(op1));
    check_envelope(r#"{"op":1,"x":"\ud800"}"#, Ok(op1));
}

#[test]
fn command_check_catches_a_wrong_shape() {
    let command = Command::UpdateVoiceState(UpdateVoiceState::leave(Snowflake(7)));
    check_command_json(&command, &command.to_json());
    for wrong in [
        r#"{"op":4,"d":{"guild_id":7,"channel_id":null,"self_mute":false,"self_deaf":false}}"#,
        r#"{"op":4,"d":{"guild_id":"7","self_mute":false,"self_deaf":false}}"#,
        r#"{"op":4,"d":{"guild_id":"7","channel_id":null,"self_mute":false,"self_deaf":false},"s":1}"#,
        r#"{"op":3,"d":{"guild_id":"7","channel_id":null,"self_mute":false,"self_deaf":false}}"#,
    ] {
        assert!(
            panics(|| check_command_json(&command, wrong)),
            "accepted {wrong}"
        );
    }
}

fn send(opcode: OpCode, text: &str) -> Output<'_> {
    Output::Send(Frame { opcode, text })
}

const HELLO: Event<'static> = Event::Hello {
    heartbeat_interval: std::time::Duration::from_secs(41),
};
const BEAT: &str = r#"{"op":1,"d":null}"#;

/// A checker with an open socket on a fresh connection.
fn connected(auto_grant: bool) -> Checker {
    let mut c = Checker::new(auto_grant);
    c.on_output(&Output::Connect { url: "ws://x" }, Timestamp::ZERO, None);
    c.on_connected();
    c
}

#[test]
fn machine_checker_catches_handshake_violations() {
    let t = Timestamp::ZERO;
    let session = Session {
        id: "s".into(),
        sequence: 1,
        resume_url: None,
        last_alive: t,
    };
    let resume = r#"{"op":6,"d":{}}"#;
    let identify = r#"{"op":2,"d":{}}"#;
    // Resume after Hello with a session: fine. Before Hello, or without a session: caught.
    let mut c = connected(false);
    c.on_output(&Output::Event(HELLO), t, None);
    c.on_output(&send(OpCode::Resume, resume), t, Some(&session));
    assert!(panics(|| connected(false).on_output(
        &send(OpCode::Resume, resume),
        t,
        Some(&session)
    )));
    assert!(panics(|| {
        let mut c = connected(false);
        c.on_output(&Output::Event(HELLO), t, None);
        c.on_output(&send(OpCode::Resume, resume), t, None);
    }));
    // Identify needs a grant unless auto-granted.
    let mut c = connected(false);
    c.on_output(&Output::Event(HELLO), t, None);
    c.on_granted();
    c.on_output(&send(OpCode::Identify, identify), t, None);
    let mut c = connected(true);
    c.on_output(&Output::Event(HELLO), t, None);
    c.on_output(&send(OpCode::Identify, identify), t, None);
    assert!(panics(|| {
        let mut c = connected(false);
        c.on_output(&Output::Event(HELLO), t, None);
        c.on_output(&send(OpCode::Identify, identify), t, None);
    }));
    // Nothing is sent on a socket the driver has not reported open.
    assert!(panics(|| {
        let mut c = Checker::new(true);
        c.on_output(&Output::Connect { url: "ws://x" }, t, None);
        c.on_output(&Output::Event(HELLO), t, None);
        c.on_output(&send(OpCode::Heartbeat, BEAT), t, None);
    }));
}

#[test]
fn machine_checker_catches_floods_outputs_after_fatal_and_sequence_regressions() {
    // 120 frames in 60 s pass; the 121st within the same 60 s is caught, at 60 s it is not.
    let flood = |last: Timestamp| {
        let mut c = connected(true);
        c.on_output(&Output::Event(HELLO), Timestamp::ZERO, None);
        for i in 0..120 {
            c.on_output(
                &send(OpCode::Heartbeat, BEAT),
                Timestamp::from_millis(i),
                None,
            );
        }
        c.on_output(&send(OpCode::Heartbeat, BEAT), last, None);
    };
    flood(Timestamp::from_secs(60));
    assert!(panics(|| flood(Timestamp::from_millis(59_999))));

    let mut c = connected(true);
    let fatal = Output::Event(Event::Fatal(FatalReason::ReconnectAttemptsExhausted {
        attempts: 1,
    }));
    c.on_output(&fatal, Timestamp::ZERO, None);
    c.on_output(&Output::Wait(None), Timestamp::ZERO, None);
    assert!(panics(move || c.on_output(
        &Output::Wait(Some(Timestamp::MAX)),
        Timestamp::ZERO,
        None
    )));

    let session = |sequence| Session {
        id: "s".into(),
        sequence,
        resume_url: None,
        last_alive: Timestamp::ZERO,
    };
    let mut c = Checker::new(true);
    c.on_session(Some(&session(5)));
    c.on_session(Some(&session(5)));
    c.on_session(None);
    c.on_session(Some(&session(1)));
    assert!(panics(move || c.on_session(Some(&session(0)))));
}
