//! Close codes: every code in PROTOCOL.md's table (resume / drop + identify / fatal), a
//! dropped transport, and the closes the client itself sends on shutdown.
#![cfg(feature = "sim")]

mod common;

use common::*;
use discord_gateway_proto::sim::{Closer, FakeGatewayConfig, ScriptAction, SimDriver};
use discord_gateway_proto::{
    CloseCode, Command, CommandError, DisconnectReason, Event, FatalReason, OpCode, Phase, Token,
};

/// The table from PROTOCOL.md, plus codes the table does not list.
const RESUME_CODES: &[u16] = &[
    4000, 4001, 4002, 4005, 4008, 1000, 1001, 1006, 1011, 4006, 4999,
];
const IDENTIFY_CODES: &[u16] = &[4003, 4007, 4009];
const FATAL_CODES: &[u16] = &[4004, 4010, 4011, 4012, 4013, 4014];

/// READY, two dispatches, then the server closes with `code` at 10 s.
fn closed_with(code: u16) -> SimDriver {
    let mut sim = sim(3);
    sim.gateway_mut()
        .at(
            at_ms(5_000),
            ScriptAction::dispatch("MESSAGE_CREATE", r#"{"id":"1"}"#),
        )
        .at(
            at_ms(6_000),
            ScriptAction::dispatch("MESSAGE_CREATE", r#"{"id":"2"}"#),
        )
        .at(at_ms(10_000), ScriptAction::close(code));
    sim.run_until(at_ms(10_000));
    sim
}

#[test]
fn resume_codes_reconnect_to_the_resume_url_and_resume() {
    for &code in RESUME_CODES {
        let mut sim = closed_with(code);
        let session = sim.machine().session().cloned().expect("session kept");
        assert_eq!(session.sequence, 3, "{code}");
        let resumed = run_to_resumed(&mut sim);
        let d = disconnects(&sim);
        assert_eq!(d.len(), 1, "{code}");
        assert_eq!(d[0].0, at_ms(10_000));
        assert_eq!(
            d[0].1.reason,
            DisconnectReason::ServerClose(CloseCode(code))
        );
        assert!(d[0].1.resume, "{code}");
        // The first reconnect after a healthy connection is immediate.
        assert_eq!(d[0].1.reconnect_at, at_ms(10_000));
        let connects: Vec<_> = sim.trace().connects().collect();
        assert_eq!(
            connects,
            [(at_ms(0), MAIN_URL), (at_ms(10_000), RESUME_URL)],
            "{code}"
        );
        // The client does not answer the server's close with a close of its own.
        assert_eq!(sim.trace().client_closes().count(), 0, "{code}");
        let resume: Vec<_> = sim.gateway().received_op(6).collect();
        assert_eq!(resume.len(), 1);
        assert_eq!(resume[0].time, at_ms(10_000));
        assert_eq!(resume[0].data().unwrap()["session_id"], "sim-session-1");
        assert_eq!(resume[0].data().unwrap()["seq"], 3);
        assert_eq!(resumed, at_ms(10_100));
        assert_eq!(sim.machine().phase(), Phase::Connected);
        assert_eq!(
            sim.gateway().received_op(2).count(),
            1,
            "{code}: no second identify"
        );
        assert_clean(&sim);
    }
}

#[test]
fn identify_codes_drop_the_session_and_identify_at_the_main_url() {
    for &code in IDENTIFY_CODES {
        let mut sim = closed_with(code);
        assert_eq!(sim.machine().session(), None, "{code}");
        let d = disconnects(&sim);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].1.reason,
            DisconnectReason::ServerClose(CloseCode(code))
        );
        assert!(!d[0].1.resume, "{code}");
        run_to_ready(&mut sim);
        let connects: Vec<_> = sim.trace().connects().collect();
        assert_eq!(
            connects,
            [(at_ms(0), MAIN_URL), (at_ms(10_000), MAIN_URL)],
            "{code}"
        );
        assert_eq!(
            sim.gateway().received_op(6).count(),
            0,
            "{code}: never resumes"
        );
        let identifies: Vec<_> = sim.gateway().received_op(2).map(|f| f.time).collect();
        assert_eq!(identifies, [at_ms(0), at_ms(10_000)], "{code}");
        assert_eq!(sim.machine().session().unwrap().id, "sim-session-2");
        assert_clean(&sim);
    }
}

#[test]
fn fatal_codes_stop_for_good() {
    for &code in FATAL_CODES {
        let mut sim = closed_with(code);
        let reason = FatalReason::CloseCode(CloseCode(code));
        assert_eq!(sim.machine().phase(), Phase::Fatal(reason), "{code}");
        assert_eq!(sim.machine().poll_timeout(), None);
        let events: Vec<_> = sim.trace().other_events().map(|(_, e)| e.clone()).collect();
        assert_eq!(events.last(), Some(&Event::Fatal(reason)), "{code}");
        assert!(disconnects(&sim).is_empty(), "{code}: no reconnect planned");
        // The server closed the socket: the client has nothing left to close.
        assert_eq!(sim.trace().client_closes().count(), 0, "{code}");
        let before = sim.trace().len();
        sim.run_for(secs(3600));
        assert_eq!(
            sim.trace().len(),
            before,
            "{code}: nothing happens after a fatal close"
        );
        // Commands are refused; inputs give nothing but Wait(None) (the driver checks).
        assert_eq!(
            sim.send(Command::UpdatePresence(presence())),
            Err(CommandError::Stopped)
        );
        assert_eq!(sim.grant_identify(), Err(CommandError::Stopped));
        sim.input("timeout", |m, now| m.handle_timeout(now));
        sim.input("message", |m, now| {
            m.handle_message(now, discord_gateway_proto::Message::Text(r#"{"op":11}"#))
        });
        sim.input("closed", |m, now| m.handle_closed(now, None));
        assert_eq!(sim.shutdown(false), Err(CommandError::Stopped));
        assert_eq!(sim.machine().phase(), Phase::Fatal(reason));
        assert_eq!(sim.trace().connects().count(), 1);
    }
}

#[test]
fn a_wrong_token_is_closed_with_4004_and_is_fatal() {
    let gateway = discord_gateway_proto::sim::FakeGateway::new(FakeGatewayConfig {
        token: Some(Token::new("another token")),
        ..FakeGatewayConfig::default()
    });
    let mut sim = SimDriver::new(config(), 1, gateway).unwrap();
    sim.run_for(secs(600));
    assert_eq!(
        sim.machine().phase(),
        Phase::Fatal(FatalReason::CloseCode(CloseCode::AUTHENTICATION_FAILED))
    );
    assert_eq!(sim.trace().connects().count(), 1);
    assert_eq!(sim.trace().sent_opcodes(), [OpCode::Identify]);
}

#[test]
fn a_dropped_transport_resumes() {
    let mut sim = sim(4);
    sim.gateway_mut().at(at_ms(10_000), ScriptAction::Drop);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(10_000));
    assert_eq!(disconnect_reasons(&sim), [DisconnectReason::TransportLost]);
    run_to_resumed(&mut sim);
    let connects: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
    assert_eq!(connects, [MAIN_URL, RESUME_URL]);
    assert_eq!(sim.trace().client_closes().count(), 0);
    assert_clean(&sim);
}

#[test]
fn shutdown_without_keeping_the_session_closes_with_1000_and_drops_it() {
    let mut sim = sim(5);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(30_000));
    sim.shutdown(false).unwrap();
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes, [(at_ms(30_000), 1000)]);
    assert_eq!(sim.machine().phase(), Phase::Closed);
    assert_eq!(sim.machine().session(), None);
    assert!(sim.trace().other_events().any(|(_, e)| *e
        == Event::Shutdown {
            session_kept: false
        }));
    // Closing with 1000 ends the session on Discord's side.
    assert!(!sim.gateway().sessions()[0].valid);
    assert_eq!(
        sim.gateway().connections()[0].closed,
        Some((at_ms(30_000), Closer::Client(1000)))
    );
    let before = sim.trace().len();
    sim.run_for(secs(3600));
    assert_eq!(sim.trace().len(), before);
    assert_eq!(sim.machine().poll_timeout(), None);
}

#[test]
fn shutdown_keeping_the_session_closes_with_a_resumable_code() {
    let mut sim = sim(5);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(30_000));
    sim.shutdown(true).unwrap();
    let closes: Vec<_> = sim.trace().client_closes().collect();
    assert_eq!(closes.len(), 1);
    let code = closes[0].1;
    assert!(
        !CloseCode(code).invalidates_session_when_sent(),
        "{code} would end the session"
    );
    assert_eq!(sim.machine().phase(), Phase::Closed);
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-1");
    assert!(sim
        .trace()
        .other_events()
        .any(|(_, e)| *e == Event::Shutdown { session_kept: true }));
    assert!(sim.gateway().sessions()[0].valid);
    let before = sim.trace().len();
    sim.run_for(secs(3600));
    assert_eq!(sim.trace().len(), before);
}

#[test]
fn shutdown_of_a_stopped_machine_is_refused_and_changes_nothing() {
    let mut sim = sim(5);
    run_to_ready(&mut sim);
    sim.run_until(at_ms(30_000));
    assert_eq!(sim.shutdown(true), Ok(()));
    let before = sim.trace().len();
    // A second shutdown, even one that would end the session, is refused like `send`:
    // nothing is output, and the kept session stays kept.
    assert_eq!(sim.shutdown(false), Err(CommandError::Stopped));
    assert_eq!(sim.machine().phase(), Phase::Closed);
    assert_eq!(sim.machine().session().unwrap().id, "sim-session-1");
    assert_eq!(sim.trace().client_closes().count(), 1);
    assert_eq!(
        sim.trace().len(),
        before + 1,
        "only the shutdown input itself is traced"
    );
}

#[test]
fn shutdown_while_disconnected_sends_nothing() {
    let mut sim = SimDriver::new(
        config().with_reconnect(discord_gateway_proto::Backoff::seed_linear()),
        5,
        gateway(),
    )
    .unwrap();
    sim.gateway_mut().at(at_ms(10_000), ScriptAction::Drop);
    sim.run_until(at_ms(11_000));
    assert_eq!(sim.machine().phase(), Phase::Disconnected);
    sim.shutdown(true).unwrap();
    assert_eq!(sim.trace().client_closes().count(), 0);
    assert_eq!(sim.machine().phase(), Phase::Closed);
    sim.run_for(secs(60));
    assert_eq!(
        sim.trace().connects().count(),
        1,
        "no reconnect after shutdown"
    );
}

pub fn presence() -> discord_gateway_proto::protocol::commands::UpdatePresence {
    use discord_gateway_proto::protocol::commands::{Status, UpdatePresence};
    UpdatePresence {
        since: None,
        activities: vec![],
        status: Status::Online,
        afk: false,
    }
}
