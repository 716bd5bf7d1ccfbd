//! A session survives what does not end it: a network outage (every connect failing, on
//! both URLs), a Ctrl-C during one, op 7 instead of Hello, the late close frame of a socket
//! already closed, and a replay longer than the READY/RESUMED timeout. Only the server
//! (op 9 false, 4007/4009), the stale cutoff or the resume circuit breaker end a session.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::config::Timeouts;
use discord_gateway_proto::sim::{ConnectBehavior, ScriptAction, SimDriver, Trigger};
use discord_gateway_proto::{
    CloseFrame, DisconnectReason, Event, GatewayConfig, GatewayMachine, Message, OpCode, Output,
    Phase, StartOptions, Timestamp,
};

fn message(n: u32) -> ScriptAction {
    ScriptAction::dispatch("MESSAGE_CREATE", format!(r#"{{"n":{n}}}"#))
}

/// The `n` of every MESSAGE_CREATE delivered, in order.
fn messages(sim: &SimDriver) -> Vec<u64> {
    sim.trace()
        .dispatches()
        .filter(|(_, d)| d.name == "MESSAGE_CREATE")
        .map(|(_, d)| {
            serde_json::from_str::<serde_json::Value>(&d.data).unwrap()["n"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// A live session whose network goes down at 20 s (the socket drops, every connect to
/// either URL fails as `behavior` says), while the server goes on producing events 1-3.
fn outage(behavior: ConnectBehavior, timeouts: Timeouts, seed: u64) -> SimDriver {
    let mut sim = SimDriver::new(config().with_timeouts(timeouts), seed, gateway()).unwrap();
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    sim.gateway_mut()
        .connect_rule(RESUME, behavior, None)
        .connect_rule(MAIN, behavior, None)
        .at(at_ms(25_000), message(1))
        .at(at_ms(30_000), message(2))
        .at(at_ms(45_000), message(3));
    sim.server(ScriptAction::Drop);
    sim
}

#[test]
fn a_network_outage_keeps_the_session_and_the_missed_events_are_replayed() {
    // Refused at once, or hanging until the connect timeout: either way, for 30 s.
    for (behavior, connect_timeout) in [
        (ConnectBehavior::Refuse, secs(30)),
        (ConnectBehavior::Hang, secs(4)),
    ] {
        let timeouts = Timeouts {
            connect: connect_timeout,
            ..Timeouts::default()
        };
        let mut sim = outage(behavior, timeouts, 21);
        sim.run_until(at_ms(50_000));
        // The network is back.
        sim.gateway_mut().config_mut().connect_rules.clear();
        let resumed = run_to_resumed(&mut sim);
        assert!(resumed < at_ms(50_000 + 70_000), "{behavior:?}: {resumed}");

        let what = format!("{behavior:?}\n{}", sim.trace());
        // Every attempt in the outage failed, on both URLs in turn, and kept the session.
        let connects: Vec<_> = sim.trace().connects().collect();
        let during: Vec<_> = connects[1..connects.len() - 1].to_vec();
        assert!(during.len() >= 3, "{what}");
        for (i, (t, url)) in during.iter().enumerate() {
            assert!(*t < at_ms(50_000), "{what}");
            let want = if i % 2 == 0 { RESUME_URL } else { MAIN_URL };
            assert_eq!(*url, want, "attempt {i} at {t}: {what}");
        }
        let d = disconnects(&sim);
        assert!(d.iter().all(|(_, d)| d.resume), "{what}");
        let failure = match behavior {
            ConnectBehavior::Refuse => DisconnectReason::TransportLost,
            _ => DisconnectReason::ConnectTimeout,
        };
        assert!(d[1..].iter().all(|(_, d)| d.reason == failure), "{what}");
        // Resumed, not identified anew, and the events of the gap arrived, in order.
        assert_eq!(sim.gateway().received_op(2).count(), 1, "{what}");
        assert_eq!(sim.gateway().received_op(6).count(), 1, "{what}");
        assert_eq!(sim.machine().session().unwrap().id, "sim-session-1");
        assert_eq!(messages(&sim), [1, 2, 3], "{what}");
        assert!(sim
            .trace()
            .other_events()
            .any(|(_, e)| *e == Event::Resumed { replayed: 3 }));
        assert_eq!(sim.machine().reconnect_attempts(), 0);
        assert_clean(&sim);
    }
}

#[test]
fn a_shutdown_during_an_outage_keeps_the_session() {
    // Ctrl-C in the middle of the outage, keeping the session: it is saved, and a new
    // process resumes it once the network is back, with the events of the gap.
    let mut sim = outage(ConnectBehavior::Refuse, Timeouts::default(), 22);
    sim.run_until(at_ms(35_000));
    assert_ne!(sim.machine().phase(), Phase::Connected);
    sim.shutdown(true).unwrap();
    let kept = sim
        .trace()
        .other_events()
        .any(|(_, e)| *e == Event::Shutdown { session_kept: true });
    assert!(kept, "{}", sim.trace());
    let session = sim
        .machine()
        .session()
        .cloned()
        .expect("the session is kept");
    assert_eq!(session.id, "sim-session-1");
    assert_eq!(session.sequence, 1);

    let (_, mut gateway, _) = sim.into_parts();
    gateway.config_mut().connect_rules.clear();
    let options = StartOptions {
        session: Some(session),
        ..StartOptions::default()
    };
    let mut sim = SimDriver::with_options(config(), options, 23, at_ms(60_000), gateway).unwrap();
    run_to_resumed(&mut sim);
    assert_eq!(sim.trace().connects().next().unwrap().1, RESUME_URL);
    assert_eq!(sim.trace().send_times(OpCode::Identify), []);
    assert_eq!(messages(&sim), [1, 2, 3]);
    assert_clean(&sim);
}

#[test]
fn op7_instead_of_hello_is_not_a_failed_resume() {
    // Four resume connections in a row get op 7 instead of Hello (more than the breaker's
    // three): the server asking for a reconnect says nothing against the session.
    let mut gateway = gateway();
    gateway
        .connect_rule(RESUME, ConnectBehavior::AcceptWithoutHello, Some(4))
        .at(at_ms(20_000), ScriptAction::Reconnect);
    for n in 2..=5 {
        gateway.after(Trigger::Connected(n), ms(10), ScriptAction::Reconnect);
    }
    let mut sim = SimDriver::new(config(), 24, gateway).unwrap();
    run_to_ready(&mut sim);
    sim.run_until(at_ms(20_000));
    run_to_resumed(&mut sim);
    let urls: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
    assert_eq!(urls[0], MAIN_URL);
    assert_eq!(urls[1..], [RESUME_URL; 5]);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 5);
    assert!(d
        .iter()
        .all(|(_, d)| d.reason == DisconnectReason::ReconnectRequested && d.resume));
    assert_eq!(sim.gateway().received_op(2).count(), 1, "{}", sim.trace());
    let resumes: Vec<_> = sim
        .gateway()
        .received_op(6)
        .map(|f| f.connection.0)
        .collect();
    assert_eq!(resumes, [6]);
    assert_clean(&sim);
}

// ----- by hand -----

const HELLO: &str = r#"{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}"#;

/// What one drain gave, copied out.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Connect(String),
    Send(OpCode),
    Close(u16),
    Event(String),
}

/// A machine driven by hand, so the test controls every input.
struct Hand {
    m: GatewayMachine,
    now: Timestamp,
}

impl Hand {
    /// Connected with a live session (READY at 0 s, resume URL `wss://resume.sim`).
    fn live(config: GatewayConfig) -> Self {
        let m = GatewayMachine::with_options(config, StartOptions::default(), 1, Timestamp::ZERO)
            .unwrap();
        let mut h = Hand {
            m,
            now: Timestamp::ZERO,
        };
        h.drain();
        h.m.handle_connected(h.now);
        h.drain();
        h.text(HELLO);
        h.text(
            r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://resume.sim"}}"#,
        );
        assert_eq!(h.m.phase(), Phase::Connected);
        h
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut outs = Vec::new();
        for _ in 0..1_000 {
            outs.push(match self.m.poll_output() {
                Output::Connect { url } => Out::Connect(url.into()),
                Output::Send(f) => Out::Send(f.opcode),
                Output::Close(f) => Out::Close(f.code),
                Output::Event(e) => Out::Event(format!("{e:?}")),
                Output::Wait(_) => return outs,
                other => panic!("an output this test does not know: {other:?}"),
            });
        }
        panic!("unbounded drain");
    }

    fn text(&mut self, text: &str) -> Vec<Out> {
        self.m.handle_message(self.now, Message::Text(text));
        self.drain()
    }

    /// Moves time on by `by`, waking at every deadline on the way; returns the outputs.
    fn advance(&mut self, by: Duration) -> Vec<Out> {
        let target = self.now.saturating_add(by);
        let mut outs = Vec::new();
        while let Some(d) = self.m.poll_timeout().filter(|d| *d <= target) {
            self.now = self.now.max(d);
            self.m.handle_timeout(self.now);
            outs.extend(self.drain());
        }
        self.now = target;
        outs
    }

    /// op 7, then the new socket opens and Hello comes: the machine sends Resume.
    fn reconnect_and_resume(&mut self) {
        let outs = self.text(r#"{"op":7,"d":null}"#);
        assert!(outs.contains(&Out::Connect(RESUME_URL.into())), "{outs:?}");
        self.m.handle_connected(self.now);
        self.drain();
        assert!(self.text(HELLO).contains(&Out::Send(OpCode::Resume)));
        assert_eq!(self.m.phase(), Phase::Resuming);
    }
}

fn disconnected(outs: &[Out]) -> bool {
    outs.iter()
        .any(|o| matches!(o, Out::Event(e) if e.starts_with("Disconnected")))
}

#[test]
fn a_late_close_frame_from_the_old_socket_changes_nothing() {
    let mut h = Hand::live(config());
    // op 7: Close, and Connect to the resume URL, at once.
    let outs = h.text(r#"{"op":7,"d":null}"#);
    let actions: Vec<_> = outs
        .iter()
        .filter(|o| !matches!(o, Out::Event(_)))
        .collect();
    assert_eq!(
        actions,
        [&Out::Close(4000), &Out::Connect(RESUME_URL.into())]
    );
    // The old socket's close handshake completes: the driver reports its close frame.
    h.m.handle_closed(
        h.now,
        Some(CloseFrame {
            code: 1000,
            reason: "",
        }),
    );
    assert_eq!(h.drain(), []);
    assert_eq!(h.m.phase(), Phase::Connecting);
    assert_eq!(h.m.session().unwrap().id, "abc");
    assert_eq!(h.m.current_url(), RESUME_URL);
    // The new socket opens and the machine resumes on it.
    h.m.handle_connected(h.now);
    h.drain();
    assert_eq!(
        h.text(HELLO)
            .into_iter()
            .filter(|o| matches!(o, Out::Send(_)))
            .collect::<Vec<_>>(),
        [Out::Send(OpCode::Resume)]
    );
    // A failed connection attempt (no close frame) still counts as one.
    let mut h = Hand::live(config());
    h.text(r#"{"op":7,"d":null}"#);
    h.m.handle_closed(h.now, None);
    let outs = h.drain();
    assert!(disconnected(&outs), "{outs:?}");
    assert_eq!(h.m.session().unwrap().id, "abc");
}

#[test]
fn a_replay_longer_than_the_ready_timeout_completes_while_it_keeps_coming() {
    let timeouts = Timeouts {
        ready: secs(15),
        ..Timeouts::default()
    };
    let mut h = Hand::live(config().with_timeouts(timeouts));
    h.reconnect_and_resume();
    // 40 s of replay, one dispatch every 5 s: far longer than the 15 s timeout.
    let mut outs = Vec::new();
    for seq in 2..=9 {
        outs.extend(h.advance(secs(5)));
        outs.extend(h.text(&format!(
            r#"{{"t":"MESSAGE_CREATE","s":{seq},"op":0,"d":{{}}}}"#
        )));
        if h.m.phase() == Phase::Resuming {
            // ACK whatever beat went out, so only the replay's timing matters.
            outs.extend(h.text(r#"{"op":11,"d":null}"#));
        }
    }
    assert!(!disconnected(&outs), "{outs:?}");
    assert_eq!(h.m.phase(), Phase::Resuming);
    let outs = h.text(r#"{"t":"RESUMED","s":10,"op":0,"d":null}"#);
    assert!(
        outs.contains(&Out::Event("Resumed { replayed: 8 }".into())),
        "{outs:?}"
    );
    assert_eq!(h.m.phase(), Phase::Connected);
    assert_eq!(h.m.session().unwrap().sequence, 10);
}

#[test]
fn a_replay_that_falls_silent_times_out_after_the_ready_timeout() {
    let timeouts = Timeouts {
        ready: secs(15),
        ..Timeouts::default()
    };
    let mut h = Hand::live(config().with_timeouts(timeouts));
    h.reconnect_and_resume();
    h.advance(secs(10));
    h.text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{}}"#);
    h.text(r#"{"op":11,"d":null}"#);
    // Silence: the timeout counts from the last replayed dispatch (at 10 s), not from the
    // Resume (at 0 s).
    assert!(!disconnected(&h.advance(ms(14_999))));
    let outs = h.advance(ms(1));
    assert!(
        outs.iter()
            .any(|o| matches!(o, Out::Event(e) if e.contains("ReadyTimeout"))),
        "{outs:?}"
    );
}
