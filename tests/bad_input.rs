//! Bad input from the network never panics and never loses the session: each gives a
//! `ProtocolError` event and the machine goes on (beats on schedule, session intact).
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::protocol::envelope::EnvelopeError;
use discord_gateway_proto::sim::{FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver};
use discord_gateway_proto::{Backoff, DisconnectReason, Message, OpCode, Phase, ProtocolError};

/// Delivers `action` at 10 s on a live session and checks that the machine reports one
/// protocol error matching `expected` and goes on as if nothing happened.
fn survives(action: ScriptAction, expected: impl Fn(&ProtocolError) -> bool) {
    let plain = {
        let mut sim = sim(31);
        sim.run_until(at_ms(200_000));
        beats(&sim)
    };
    let mut sim = sim(31);
    sim.gateway_mut().at(at_ms(10_000), action.clone()).at(
        at_ms(11_000),
        ScriptAction::dispatch("MESSAGE_CREATE", "{}"),
    );
    run_to_ready(&mut sim);
    let session = sim.machine().session().cloned().unwrap();
    sim.run_until(at_ms(10_000));
    let errors = protocol_errors(&sim);
    assert_eq!(errors.len(), 1, "{action:?}: {errors:?}");
    assert!(expected(&errors[0]), "{action:?}: {errors:?}");
    assert_eq!(sim.machine().phase(), Phase::Connected, "{action:?}");
    assert_eq!(sim.machine().session(), Some(&session), "{action:?}");
    sim.run_until(at_ms(200_000));
    assert!(disconnects(&sim).is_empty(), "{action:?}");
    assert_eq!(beats(&sim), plain, "{action:?}: the schedule is untouched");
    assert_eq!(
        sim.machine().session().unwrap().sequence,
        2,
        "{action:?}: dispatches go on"
    );
    assert_clean(&sim);
}

#[test]
fn invalid_json() {
    for text in [
        "{not json",
        "",
        "[1,2]",
        r#"{"op":1"#,
        r#"{"op":11} trailing"#,
    ] {
        survives(ScriptAction::Text(text.into()), |e| {
            matches!(e, ProtocolError::Envelope(EnvelopeError::Malformed { .. }))
        });
    }
}

#[test]
fn non_utf8_text() {
    survives(ScriptAction::TextBytes(vec![b'{', 0xff, 0xfe, b'}']), |e| {
        *e == ProtocolError::InvalidUtf8
    });
}

#[test]
fn valid_utf8_text_bytes_are_read_as_text() {
    let mut sim = sim(31);
    sim.gateway_mut().at(
        at_ms(10_000),
        ScriptAction::TextBytes(br#"{"t":"X","s":2,"op":0,"d":{}}"#.to_vec()),
    );
    sim.run_until(at_ms(10_000));
    assert!(protocol_errors(&sim).is_empty());
    assert_eq!(sim.machine().session().unwrap().sequence, 2);
}

#[test]
fn unknown_opcode() {
    survives(ScriptAction::Text(r#"{"op":99,"d":null}"#.into()), |e| {
        *e == ProtocolError::UnknownOpcode(99)
    });
}

#[test]
fn an_opcode_the_server_never_sends() {
    survives(ScriptAction::Text(r#"{"op":2,"d":{}}"#.into()), |e| {
        *e == ProtocolError::UnexpectedOpcode(OpCode::Identify)
    });
}

#[test]
fn missing_fields() {
    survives(ScriptAction::Text(r#"{"d":{"op":1}}"#.into()), |e| {
        *e == ProtocolError::Envelope(EnvelopeError::MissingOpcode)
    });
    survives(ScriptAction::Text(r#"{"op":"1"}"#.into()), |e| {
        matches!(
            e,
            ProtocolError::Envelope(EnvelopeError::InvalidField { field: "op" })
        )
    });
    // A dispatch without a sequence or a name.
    survives(
        ScriptAction::Text(r#"{"op":0,"t":"X","d":{}}"#.into()),
        |e| *e == ProtocolError::MalformedPayload(OpCode::Dispatch),
    );
    survives(ScriptAction::Text(r#"{"op":0,"s":9,"d":{}}"#.into()), |e| {
        *e == ProtocolError::MalformedPayload(OpCode::Dispatch)
    });
}

#[test]
fn binary_with_compression_off() {
    survives(
        ScriptAction::Binary(vec![0x78, 0x9c, 0, 0, 0xff, 0xff]),
        |e| *e == ProtocolError::UnexpectedBinary,
    );
}

#[test]
fn a_second_hello() {
    survives(ScriptAction::Hello, |e| {
        matches!(e, ProtocolError::OutOfPhase(OpCode::Hello, _))
    });
}

#[test]
fn ack_before_hello() {
    let mut sim = SimDriver::new(
        config(),
        32,
        FakeGateway::new(FakeGatewayConfig {
            hello_delay: Some(secs(5)),
            ..gateway_config()
        }),
    )
    .unwrap();
    sim.gateway_mut().at(at_ms(1_000), ScriptAction::Ack);
    sim.run_until(at_ms(1_000));
    assert_eq!(
        protocol_errors(&sim),
        [ProtocolError::OutOfPhase(
            OpCode::HeartbeatAck,
            "awaiting hello"
        )]
    );
    assert_eq!(sim.machine().phase(), Phase::AwaitingHello);
    let ready = run_to_ready(&mut sim);
    assert_eq!(sim.trace().send_times(OpCode::Identify), [at_ms(5_000)]);
    assert_eq!(ready, at_ms(5_100));
    assert!(disconnects(&sim).is_empty());
    assert_clean(&sim);
}

#[test]
fn dispatch_before_ready() {
    let mut sim = SimDriver::new(
        config(),
        33,
        FakeGateway::new(FakeGatewayConfig {
            ready_delay: secs(5),
            ..gateway_config()
        }),
    )
    .unwrap();
    sim.gateway_mut().at(
        at_ms(1_000),
        ScriptAction::Text(r#"{"t":"MESSAGE_CREATE","s":7,"op":0,"d":{}}"#.into()),
    );
    let ready = run_to_ready(&mut sim);
    assert_eq!(
        protocol_errors(&sim),
        [ProtocolError::OutOfPhase(OpCode::Dispatch, "identifying")]
    );
    assert_eq!(ready, at_ms(5_000));
    // The stray dispatch was not taken as part of the session.
    assert_eq!(sim.machine().session().unwrap().sequence, 1);
    assert_eq!(sim.trace().dispatches().count(), 1);
    assert_clean(&sim);
}

#[test]
fn a_message_with_no_open_connection() {
    let mut sim = SimDriver::new(
        config().with_reconnect(Backoff::seed_linear()),
        34,
        gateway(),
    )
    .unwrap();
    sim.gateway_mut().at(at_ms(10_000), ScriptAction::Drop);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(11_000));
    assert_eq!(sim.machine().phase(), Phase::Disconnected);
    sim.input("stale socket message", |m, now| {
        m.handle_message(now, Message::Text(r#"{"op":11}"#))
    });
    sim.input("stale socket close", |m, now| m.handle_closed(now, None));
    assert_eq!(protocol_errors(&sim), [ProtocolError::NotConnected]);
    assert_eq!(disconnects(&sim).len(), 1, "the stale close is ignored");
    run_to_resumed(&mut sim);
    assert_eq!(sim.trace().connects().nth(1).unwrap().0, at_ms(14_000));
}

#[test]
fn a_hello_without_an_interval_reconnects_and_keeps_the_session() {
    let mut sim = sim(35);
    sim.gateway_mut().at(at_ms(10_000), ScriptAction::Reconnect);
    run_to_ready(&mut sim);
    // The resume connection gets a broken Hello first.
    sim.gateway_mut().config_mut().hello_delay = None;
    sim.run_until(at_ms(10_000));
    sim.server(ScriptAction::Text(r#"{"op":10,"d":{}}"#.into()));
    assert_eq!(
        protocol_errors(&sim),
        [ProtocolError::MalformedPayload(OpCode::Hello)]
    );
    let d = disconnects(&sim);
    assert_eq!(d.last().unwrap().1.reason, DisconnectReason::Protocol);
    assert!(d.last().unwrap().1.resume);
    sim.gateway_mut().config_mut().hello_delay = Some(secs(0));
    run_to_resumed(&mut sim);
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-1");
    assert_clean(&sim);
}

#[test]
fn a_ready_without_a_session_id_reconnects_and_identifies() {
    let mut sim = SimDriver::new(
        config(),
        36,
        FakeGateway::new(FakeGatewayConfig {
            ready_delay: secs(5),
            ..gateway_config()
        }),
    )
    .unwrap();
    sim.gateway_mut().at(
        at_ms(1_000),
        ScriptAction::Text(r#"{"t":"READY","s":1,"op":0,"d":{"v":10}}"#.into()),
    );
    sim.run_until(at_ms(1_000));
    assert_eq!(
        protocol_errors(&sim),
        [ProtocolError::MalformedPayload(OpCode::Dispatch)]
    );
    assert_eq!(disconnect_reasons(&sim), [DisconnectReason::Protocol]);
    let ready = run_to_ready(&mut sim);
    assert_eq!(
        sim.trace().send_times(OpCode::Identify),
        [at_ms(0), at_ms(1_000)]
    );
    assert_eq!(ready, at_ms(6_000));
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-2");
}

#[test]
fn a_storm_of_garbage_never_panics() {
    // Deterministic pseudo-random junk, interleaved with real traffic.
    let mut sim = sim(37);
    let mut x: u64 = 0x1234_5678;
    for i in 0..300u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 40) as usize;
        let bytes: Vec<u8> = (0..len).map(|k| (x >> (k % 8 * 8)) as u8).collect();
        let action = match x % 4 {
            0 => ScriptAction::TextBytes(bytes),
            1 => ScriptAction::Binary(bytes),
            2 => ScriptAction::Text(String::from_utf8_lossy(&bytes).into_owned()),
            _ => ScriptAction::Text(format!(r#"{{"op":{},"d":{}}}"#, x % 50, x % 3)),
        };
        sim.gateway_mut().at(at_ms(1_000 + i * 997), action);
    }
    sim.run_until(at_ms(400_000));
    assert!(!protocol_errors(&sim).is_empty());
    assert!(!sim.machine().phase().is_terminal());
}
