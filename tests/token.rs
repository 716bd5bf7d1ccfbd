//! The token never appears in any `Debug` output: the machine, its outputs and events, the
//! sim's trace (Debug and printed), the fake gateway and its records.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::ScriptAction;
use discord_gateway_proto::{GatewayMachine, Message, Output, StartOptions, Timestamp};

fn assert_no_token(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} leaks the token:\n{text}");
    // Not even a recognisable piece of it.
    assert!(
        !text.contains("s3cr3t"),
        "{what} leaks part of the token:\n{text}"
    );
}

/// Drains a machine by hand, formatting every output with `Debug`.
fn drain_debug(machine: &mut GatewayMachine, seen: &mut Vec<String>) {
    loop {
        let output = machine.poll_output();
        seen.push(format!("{output:?} {output:#?}"));
        if let Output::Wait(_) = output {
            break;
        }
    }
}

#[test]
fn machine_outputs_and_events_never_show_the_token() {
    let hello = r#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
    let ready = r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://resume.sim"}}"#;
    let mut seen = Vec::new();
    // Identify.
    let mut m = GatewayMachine::with_options(config(), StartOptions::default(), 1, Timestamp::ZERO)
        .unwrap();
    drain_debug(&mut m, &mut seen);
    m.handle_connected(at_ms(1));
    drain_debug(&mut m, &mut seen);
    m.handle_message(at_ms(2), Message::Text(hello));
    let mut identify_seen = false;
    loop {
        match m.poll_output() {
            Output::Send(frame) => {
                assert!(frame.text.contains(TOKEN), "the frame itself carries it");
                identify_seen = true;
                seen.push(format!("{frame:?}"));
            }
            Output::Wait(_) => break,
            other => seen.push(format!("{other:?}")),
        }
    }
    assert!(identify_seen);
    m.handle_message(at_ms(3), Message::Text(ready));
    drain_debug(&mut m, &mut seen);
    seen.push(format!("{m:?} {m:#?}"));
    seen.push(format!("{:?}", m.config()));
    // Resume, from a saved session.
    let session = m.session().cloned();
    let mut m = GatewayMachine::with_options(
        config(),
        StartOptions {
            session,
            ..StartOptions::default()
        },
        2,
        at_ms(10),
    )
    .unwrap();
    drain_debug(&mut m, &mut seen);
    m.handle_connected(at_ms(11));
    m.handle_message(at_ms(12), Message::Text(hello));
    drain_debug(&mut m, &mut seen);
    assert!(seen.iter().any(|s| s.contains("Resume")));
    assert!(seen.iter().any(|s| s.contains("Identify")));
    for s in &seen {
        assert_no_token("an output", s);
    }
}

#[test]
fn the_trace_and_the_fake_gateway_never_show_the_token() {
    let mut sim = sim(1);
    sim.gateway_mut()
        .at(at_ms(10_000), ScriptAction::Reconnect)
        .at(at_ms(20_000), ScriptAction::InvalidSession(false));
    sim.run_until(at_ms(60_000));
    sim.shutdown(true).unwrap();
    assert!(sim.gateway().received_op(2).count() >= 2);
    assert!(sim.gateway().received_op(6).count() >= 1);
    assert_no_token("the trace (Debug)", &format!("{:?}", sim.trace()));
    assert_no_token("the trace (printed)", &sim.trace().to_string());
    assert_no_token("the driver", &format!("{sim:?}"));
    assert_no_token("the fake gateway", &format!("{:?}", sim.gateway()));
    assert_no_token(
        "the received frames",
        &format!("{:?}", sim.gateway().received()),
    );
    for f in sim
        .gateway()
        .received_op(2)
        .chain(sim.gateway().received_op(6))
    {
        assert_eq!(f.data().unwrap()["token"], "<redacted>");
    }
    // The fake did check it: a wrong one would have been closed with 4004.
    assert!(sim.gateway().config().token.is_some());
}
