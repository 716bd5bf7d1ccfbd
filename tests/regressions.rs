//! Regression tests for failures gateway clients are known to have had in the field, one
//! named test each.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::protocol::commands::{Status, UpdatePresence};
use discord_gateway_proto::sim::{
    ConnectBehavior, FakeGateway, FakeGatewayConfig, ScriptAction, SimDriver, Trigger,
};
use discord_gateway_proto::{
    Command, DisconnectReason, GatewayConfig, GatewayMachine, Message, OpCode, Output, Phase,
    Session, StartOptions, Timestamp,
};

const HELLO: &str = r#"{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}"#;

/// What one drain gave, copied out.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Connect(String),
    Send(OpCode, String),
    Close(u16),
    Event(String),
}

/// A machine driven by hand, so the test controls every frame.
struct Hand {
    m: GatewayMachine,
    now: Timestamp,
}

impl Hand {
    fn new(config: GatewayConfig, session: Option<Session>) -> (Self, Vec<Out>) {
        let options = StartOptions {
            session,
            ..StartOptions::default()
        };
        let m = GatewayMachine::with_options(config, options, 1, Timestamp::ZERO).unwrap();
        let mut h = Hand {
            m,
            now: Timestamp::ZERO,
        };
        let outs = h.drain();
        (h, outs)
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut outs = Vec::new();
        for _ in 0..1_000 {
            outs.push(match self.m.poll_output() {
                Output::Connect { url } => Out::Connect(url.into()),
                Output::Send(f) => Out::Send(f.opcode, f.text.into()),
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

    fn connected(&mut self) -> Vec<Out> {
        self.m.handle_connected(self.now);
        self.drain()
    }

    /// Moves time on, waking at every deadline; returns everything output on the way.
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

    /// Connected with a live session (READY with `resume_url`).
    fn live(config: GatewayConfig, resume_url: Option<&str>) -> Self {
        let (mut h, _) = Hand::new(config, None);
        h.connected();
        h.text(HELLO);
        let url = resume_url.map_or(String::new(), |u| format!(r#","resume_gateway_url":"{u}""#));
        h.text(&format!(
            r#"{{"t":"READY","s":1,"op":0,"d":{{"v":10,"session_id":"abc"{url}}}}}"#
        ));
        assert_eq!(h.m.phase(), Phase::Connected);
        h
    }
}

fn sends(outs: &[Out]) -> Vec<OpCode> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Send(op, _) => Some(*op),
            _ => None,
        })
        .collect()
}

fn saved_session(resume_url: Option<&str>) -> Session {
    Session {
        id: "abc".into(),
        sequence: 42,
        resume_url: resume_url.map(String::from),
        last_alive: Timestamp::ZERO,
    }
}

#[test]
fn resume_is_never_sent_before_hello() {
    // A restored session: the machine must wait for Hello whatever arrives first.
    let (mut h, _) = Hand::new(config(), Some(saved_session(Some(RESUME))));
    let mut before = h.connected();
    for early in [
        r#"{"op":11,"d":null}"#,
        r#"{"op":1,"d":null}"#,
        r#"{"t":"MESSAGE_CREATE","s":43,"op":0,"d":{}}"#,
        r#"{"op":9,"d":true}"#,
        r#"{"t":"RESUMED","s":43,"op":0,"d":null}"#,
    ] {
        before.extend(h.text(early));
    }
    before.extend(h.advance(secs(10)));
    assert_eq!(sends(&before), [], "{before:?}");
    assert_eq!(h.m.phase(), Phase::AwaitingHello);
    assert_eq!(
        h.m.session().unwrap().sequence,
        42,
        "nothing counted before Hello"
    );
    let after = h.text(HELLO);
    assert_eq!(sends(&after), [OpCode::Resume]);
    assert_eq!(h.m.phase(), Phase::Resuming);
}

#[test]
fn resume_url_without_query_keeps_v10_json_and_compress() {
    let mut configs = vec![(config(), "v=10&encoding=json")];
    #[cfg(feature = "zlib-stream")]
    configs.push((
        config().with_compression(discord_gateway_proto::Compression::ZlibStream),
        "v=10&encoding=json&compress=zlib-stream",
    ));
    for (config, query) in configs {
        for resume_url in [
            "wss://resume.sim",
            "wss://resume.sim/",
            "wss://resume.sim/?v=6",
            "wss://resume.sim?encoding=etf&compress=zstd-stream",
        ] {
            let mut h = Hand::live(config.clone(), Some(resume_url));
            let outs = h.text(r#"{"op":7,"d":null}"#);
            let connect = outs.iter().find_map(|o| match o {
                Out::Connect(u) => Some(u.clone()),
                _ => None,
            });
            assert_eq!(
                connect,
                Some(format!("wss://resume.sim/?{query}")),
                "READY said {resume_url}"
            );
        }
    }
}

#[test]
fn a_dead_resume_url_is_not_redialled_forever() {
    // A resume URL that refuses, hangs, or accepts but never says Hello: the next attempt
    // resumes through the main URL, keeping the session, at once rather than after the
    // 15-minute stale cutoff.
    for behavior in [
        ConnectBehavior::Refuse,
        ConnectBehavior::Hang,
        ConnectBehavior::AcceptWithoutHello,
    ] {
        let mut gateway = gateway();
        gateway
            .connect_rule(RESUME, behavior, None)
            .at(at_ms(20_000), ScriptAction::Drop);
        let mut sim = SimDriver::new(config(), 3, gateway).unwrap();
        run_to_ready(&mut sim);
        sim.run_until(at_ms(20_000));
        let resumed = run_to_resumed(&mut sim);
        assert!(
            resumed < at_ms(20_000 + 60_000),
            "{behavior:?}: resumed only at {resumed}"
        );
        let urls: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
        assert_eq!(urls, [MAIN_URL, RESUME_URL, MAIN_URL], "{behavior:?}");
        assert_eq!(sim.trace().send_times(OpCode::Identify).len(), 1);
        assert_eq!(sim.trace().send_times(OpCode::Resume).len(), 1);
    }
}

#[test]
fn a_zombie_is_closed_and_redialled_at_once_without_waiting_for_the_peer() {
    let mut h = Hand::live(config(), Some(RESUME));
    // The first beat goes out; no ACK ever comes (the socket is dead).
    let first = h.advance(INTERVAL);
    assert_eq!(sends(&first), [OpCode::Heartbeat]);
    let verdict = h.advance(INTERVAL);
    // In the same drain: close (a resumable code), then connect again. Nothing waits for a
    // close handshake or a `handle_closed` from the dead socket.
    let actions: Vec<_> = verdict
        .iter()
        .filter(|o| !matches!(o, Out::Event(_)))
        .collect();
    assert_eq!(
        actions,
        [&Out::Close(4000), &Out::Connect(RESUME_URL.into())],
        "{verdict:?}"
    );
    assert_eq!(h.m.phase(), Phase::Connecting);
    // The new socket opens and the machine resumes on it.
    h.connected();
    assert_eq!(sends(&h.text(HELLO)), [OpCode::Resume]);
}

#[test]
fn an_op1_storm_does_not_exhaust_the_rate_limit() {
    // op 1 every 5 ms for 90 s while the application sends 150 commands: the fake closes
    // with 4008 at the 121st frame in 60 s; it must never have to.
    let mut gateway = gateway();
    for i in 0..18_000u64 {
        gateway.at(at_ms(1_000 + i * 5), ScriptAction::RequestHeartbeat);
    }
    let mut sim = SimDriver::new(config(), 4, gateway).unwrap();
    run_to_ready(&mut sim);
    for _ in 0..150 {
        sim.send(Command::UpdatePresence(UpdatePresence {
            since: None,
            activities: vec![],
            status: Status::Online,
            afk: false,
        }))
        .unwrap();
    }
    sim.run_until(at_ms(200_000));
    assert_clean(&sim);
    assert_eq!(sim.trace().connects().count(), 1);
    assert_eq!(
        sim.gateway().received_op(3).count(),
        150,
        "every command went out"
    );
    assert!(disconnect_reasons(&sim).is_empty());
}

#[test]
fn envelope_keys_inside_d_or_in_another_order_are_not_misread() {
    let mut h = Hand::live(config(), Some(RESUME));
    // d first, with decoy op/t/s keys inside it (and inside strings).
    let outs = h.text(
        r#"{"d":{"op":7,"s":999,"t":"READY","d":{"op":9,"d":false}},"op":0,"s":2,"t":"MESSAGE_CREATE"}"#,
    );
    assert!(
        outs.iter().any(|o| matches!(o, Out::Event(e)
            if e.contains("MESSAGE_CREATE") && e.contains("sequence: 2"))),
        "{outs:?}"
    );
    let outs = h.text(r#"{"s":null,"d":{"t":"X","op":9,"d":false},"op":11,"t":null}"#);
    assert!(outs.iter().all(|o| !matches!(o, Out::Close(_))), "{outs:?}");
    assert!(outs
        .iter()
        .all(|o| !matches!(o, Out::Event(e) if e.contains("InvalidSession"))));
    let outs = h
        .text(r#"{"t":"MESSAGE_CREATE","d":{"a":[{"op":7}],"b":"\"s\":5,\"op\":1"},"op":0,"s":3}"#);
    assert_eq!(sends(&outs), []);
    // op 1 whose d is a string that looks like an envelope.
    let outs = h.text(r#"{"d":"{\"op\":7}","op":1}"#);
    assert_eq!(sends(&outs), [OpCode::Heartbeat]);
    assert_eq!(h.m.phase(), Phase::Connected);
    assert_eq!(h.m.session().unwrap().sequence, 3);
}

#[test]
fn a_server_1000_before_ready_reconnects() {
    for code in [1000, 1001] {
        let mut gateway = gateway();
        gateway.after(Trigger::Identified(1), ms(10), ScriptAction::close(code));
        let mut sim = SimDriver::new(config(), 5, gateway).unwrap();
        run_to_ready(&mut sim);
        assert_eq!(sim.trace().connects().count(), 2, "{code}");
        assert_eq!(sim.trace().send_times(OpCode::Identify).len(), 2, "{code}");
        assert!(matches!(
            disconnect_reasons(&sim)[..],
            [DisconnectReason::ServerClose(c)] if c.0 == code
        ));
        assert_eq!(sim.machine().phase(), Phase::Connected);
    }
}

#[test]
fn offline_connects_back_off_instead_of_looping() {
    // The network is down: every connection fails at once (refused), or opens and drops
    // before Hello. Consecutive failures wait longer and longer; none is instant.
    for behavior in [ConnectBehavior::Refuse, ConnectBehavior::AcceptWithoutHello] {
        let mut gateway = gateway();
        gateway.connect_rule(MAIN, behavior, Some(12));
        if behavior == ConnectBehavior::AcceptWithoutHello {
            for n in 1..=12 {
                gateway.after(Trigger::Connected(n), ms(1), ScriptAction::Drop);
            }
        }
        let mut sim = SimDriver::new(config(), 6, gateway).unwrap();
        run_to_ready(&mut sim);
        let times: Vec<_> = sim.trace().connects().map(|(t, _)| t).collect();
        assert_eq!(times.len(), 13, "{behavior:?}");
        let gaps: Vec<_> = times
            .windows(2)
            .map(|w| w[1].saturating_duration_since(w[0]))
            .collect();
        // The first retry is immediate (attempt 0, as after any healthy connection); from
        // then on each failure doubles the wait, drawn from [d/2, d), capped at 60 s.
        for (attempt, gap) in gaps.iter().enumerate().skip(1) {
            let full = secs(1 << (attempt - 1).min(6)).min(secs(60));
            assert!(
                *gap >= full / 2 && *gap <= full + ms(1),
                "{behavior:?}: attempt {attempt} waited {gap:?}: {gaps:?}"
            );
        }
    }
}

#[test]
fn endless_failed_resumes_fall_back_to_identify() {
    // Every resume is answered with the replay but never RESUMED (the ready timeout ends
    // each), or dropped mid-replay: after max_failed_resumes (3) the machine identifies.
    for drop_mid_replay in [false, true] {
        let mut gateway = FakeGateway::new(FakeGatewayConfig {
            send_resumed: false,
            ..gateway_config()
        });
        gateway.at(at_ms(20_000), ScriptAction::Drop);
        if drop_mid_replay {
            for n in 1..=3 {
                gateway.after(Trigger::ResumeReceived(n), ms(150), ScriptAction::Drop);
            }
        }
        let mut sim = SimDriver::new(config(), 7, gateway).unwrap();
        run_to_ready(&mut sim);
        sim.run_until(at_ms(20_000));
        let ready = run_to_ready(&mut sim);
        assert_eq!(sim.gateway().received_op(6).count(), 3, "{drop_mid_replay}");
        assert_eq!(sim.trace().send_times(OpCode::Identify).len(), 2);
        assert!(ready < at_ms(20_000 + 5 * 60_000), "{ready}");
        let urls: Vec<_> = sim.trace().connects().map(|(_, u)| u).collect();
        assert_eq!(
            urls,
            [MAIN_URL, RESUME_URL, RESUME_URL, RESUME_URL, MAIN_URL]
        );
    }
}
