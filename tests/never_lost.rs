//! Field fixes (issue 14): a session or an event is never lost where it need not be, and op 1
//! is answered at once. One named test per item; each input sequence is the one that showed
//! the problem.
#![cfg(feature = "sim")]

mod common;

use std::time::Duration;

use common::*;
use discord_gateway_proto::config::{HeartbeatPolicy, Liveness};
use discord_gateway_proto::heartbeat::{OP1_ANSWER_BURST, OP1_ANSWER_REFILL};
use discord_gateway_proto::protocol::envelope::EnvelopeError;
use discord_gateway_proto::sim::{FakeGatewayConfig, ScriptAction, SimDriver, Trigger};
use discord_gateway_proto::{
    DisconnectReason, Event, GatewayConfig, GatewayMachine, Message, OpCode, Output, Phase,
    ProtocolError, Session, StartOptions, Timestamp,
};

const HELLO: &str = r#"{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}"#;
const ACK: &str = r#"{"op":11,"d":null}"#;
const OP1: &str = r#"{"op":1,"d":null}"#;

/// What one drain gave, copied out.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Connect(String),
    Send(OpCode, String),
    Close(u16),
    /// A dispatch: name, sequence, raw `d`.
    Dispatch(String, u64, String),
    Event(String),
}

/// A machine driven by hand, so the test controls every frame and every instant.
struct Hand {
    m: GatewayMachine,
    now: Timestamp,
}

impl Hand {
    fn new(config: GatewayConfig, session: Option<Session>) -> Self {
        let options = StartOptions {
            session,
            ..StartOptions::default()
        };
        let m = GatewayMachine::with_options(config, options, 1, Timestamp::ZERO).unwrap();
        let mut h = Hand {
            m,
            now: Timestamp::ZERO,
        };
        h.drain();
        h
    }

    /// Connected, READY (s = 1) received, and the first scheduled beat sent and ACKed: the
    /// next scheduled beat is one whole interval away.
    fn live() -> Self {
        let mut h = Hand::new(config(), None);
        h.m.handle_connected(h.now);
        h.drain();
        h.text(HELLO);
        h.text(
            r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://resume.sim"}}"#,
        );
        assert_eq!(h.m.phase(), Phase::Connected);
        let first = h.m.poll_timeout().unwrap();
        let outs = h.advance_to(first);
        assert_eq!(sends(&outs), [OpCode::Heartbeat]);
        h.text(ACK);
        h
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut outs = Vec::new();
        for _ in 0..1_000 {
            outs.push(match self.m.poll_output() {
                Output::Connect { url } => Out::Connect(url.into()),
                Output::Send(f) => Out::Send(f.opcode, f.text.into()),
                Output::Close(f) => Out::Close(f.code),
                Output::Event(Event::Dispatch(d)) => {
                    Out::Dispatch(d.name.into(), d.sequence, d.data.into())
                }
                Output::Event(e) => Out::Event(format!("{e:?}")),
                Output::Wait(_) => return outs,
                other => Out::Event(format!("{other:?}")),
            });
        }
        panic!("unbounded drain");
    }

    fn text(&mut self, text: &str) -> Vec<Out> {
        self.m.handle_message(self.now, Message::Text(text));
        self.drain()
    }

    /// Moves time to `target`, waking at every deadline on the way.
    fn advance_to(&mut self, target: Timestamp) -> Vec<Out> {
        let mut outs = Vec::new();
        while let Some(d) = self.m.poll_timeout().filter(|d| *d <= target) {
            self.now = self.now.max(d);
            self.m.handle_timeout(self.now);
            outs.extend(self.drain());
        }
        self.now = self.now.max(target);
        outs
    }

    fn advance(&mut self, by: Duration) -> Vec<Out> {
        self.advance_to(self.now.saturating_add(by))
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

fn events(outs: &[Out]) -> Vec<&str> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Event(e) => Some(e.as_str()),
            _ => None,
        })
        .collect()
}

// ----- item 2: op 1 is answered at once -----

#[test]
fn op1_soon_after_the_previous_answer_is_answered_in_the_same_call() {
    // A server that asks now and then, at the spacings that showed the problem (the old
    // one-per-second coalescing held the 0.3 s and 0.999 s requests for the next beat).
    for gap in [300, 999, 1_000, 5_000] {
        let mut h = Hand::live();
        assert_eq!(sends(&h.text(OP1)), [OpCode::Heartbeat]);
        h.text(ACK);
        h.advance(Duration::from_millis(gap));
        let outs = h.text(OP1);
        assert_eq!(
            sends(&outs),
            [OpCode::Heartbeat],
            "op 1 {gap} ms after an answer: {outs:?}"
        );
        // The answer carries the session's sequence, like any beat.
        assert!(matches!(&outs[..], [Out::Send(_, text)] if text == r#"{"op":1,"d":1}"#));
    }
    // And a few in a row, at the spacings above, all at once.
    let mut h = Hand::live();
    for gap in [0, 300, 999, 300, 5_000, 300] {
        h.advance(Duration::from_millis(gap));
        assert_eq!(sends(&h.text(OP1)), [OpCode::Heartbeat], "gap {gap} ms");
        h.text(ACK);
    }
}

#[test]
fn an_op1_storm_is_bounded_by_the_answer_budget() {
    let mut h = Hand::live();
    let start = h.now;
    let mut answers = 0u32;
    // op 1 every 10 ms for 20 s, every answer ACKed.
    for _ in 0..2_000 {
        let outs = h.text(OP1);
        let beats = sends(&outs).len() as u32;
        answers += beats;
        if beats > 0 {
            h.text(ACK);
        }
        h.advance(Duration::from_millis(10));
    }
    let elapsed = h.now.saturating_duration_since(start);
    let most = OP1_ANSWER_BURST + (elapsed.as_micros() / OP1_ANSWER_REFILL.as_micros()) as u32;
    assert!(
        answers <= most,
        "{answers} answers in {elapsed:?}, at most {most}"
    );
    assert!(answers >= most - 1, "{answers} answers: the budget is used");
    assert!(h.m.sent_in_window() < 120);
    assert_eq!(h.m.phase(), Phase::Connected);
}

// ----- item 5: no false zombie after an op-1 answer -----

#[test]
fn an_op1_answer_just_before_a_scheduled_beat_is_no_false_zombie() {
    // Every scheduled beat ACKed (RTT 300 ms); op 1 comes 250 ms before the next
    // scheduled beat, so that beat is due before the answer's ACK can arrive.
    let mut sim = SimDriver::new(
        config(),
        5,
        discord_gateway_proto::sim::FakeGateway::new(FakeGatewayConfig {
            ack_delay: ms(300),
            ..gateway_config()
        }),
    )
    .unwrap();
    run_to_ready(&mut sim);
    let second = run_to_beat(&mut sim, 2);
    let third = second.saturating_add(INTERVAL);
    sim.gateway_mut().at(
        third.saturating_sub(ms(250)),
        ScriptAction::RequestHeartbeat,
    );
    sim.run_until(third.saturating_add(INTERVAL * 3));
    assert_eq!(disconnect_reasons(&sim), [], "{}", sim.trace());
    assert_eq!(sim.trace().connects().count(), 1);
    let beats = beats(&sim);
    assert!(beats.contains(&third.saturating_sub(ms(250))), "{beats:?}");
    assert!(beats.contains(&third));
    assert_clean(&sim);
}

#[test]
fn an_unanswered_scheduled_beat_is_still_a_zombie_with_op1_answers_around_it() {
    // The real rule is intact: the server stops ACKing, but keeps asking for beats.
    let mut h = Hand::live();
    let next = h.m.poll_timeout().unwrap();
    h.advance_to(next); // a scheduled beat, never ACKed
    h.advance(Duration::from_secs(10));
    assert_eq!(sends(&h.text(OP1)), [OpCode::Heartbeat]);
    let verdict = h.advance(INTERVAL);
    assert!(verdict.contains(&Out::Close(4000)), "{verdict:?}");
    assert!(
        events(&verdict).iter().any(|e| e.contains("Zombie")),
        "{verdict:?}"
    );
}

// ----- item 7: AnyMessage liveness and the stale cutoff agree -----

#[test]
fn any_message_liveness_keeps_the_session_fresh_for_the_stale_cutoff() {
    let run = |liveness| {
        let config = config().with_heartbeat(HeartbeatPolicy {
            missed_acks_before_zombie: 1,
            liveness,
        });
        let mut sim = SimDriver::new(config, 21, gateway()).unwrap();
        // No ACK after the first beat for 20 minutes, a dispatch every 5 s; then the
        // connection drops.
        sim.gateway_mut()
            .stop_acking_after(1, None)
            .dispatch_stream(
                Trigger::ReadySent(1),
                ms(5_000),
                ms(5_000),
                (0..250).map(|i| ("MESSAGE_CREATE", format!(r#"{{"n":{i}}}"#))),
            )
            .at(at(secs(20 * 60 + 30)), ScriptAction::Drop);
        sim.run_until(at(secs(20 * 60 + 31)));
        sim
    };
    let sim = run(Liveness::AnyMessage);
    let d = disconnects(&sim);
    assert_eq!(d.len(), 1, "{}", sim.trace());
    assert_eq!(d[0].1.reason, DisconnectReason::TransportLost);
    assert!(d[0].1.resume, "the session is judged stale: {:?}", d[0]);
    assert_eq!(sim.gateway().received_op(6).count(), 1, "Resume sent");
    assert_eq!(
        sim.gateway().received_op(2).count(),
        1,
        "no second Identify"
    );
    // The saved session says so too: it proved alive within the last few seconds.
    let session = sim.machine().session().unwrap();
    assert!(session.ack_age(at(secs(20 * 60 + 30))) <= INTERVAL);

    // Under the default policy the same connection is a zombie long before (unchanged).
    let sim = run(Liveness::AckOnly);
    assert_eq!(
        disconnect_reasons(&sim).first(),
        Some(&DisconnectReason::Zombie)
    );
}

// ----- item 3: op 9 without `d` -----

#[test]
fn op9_without_d_is_not_resumable_and_no_protocol_error() {
    for op9 in [r#"{"op":9,"s":5}"#, r#"{"op":9,"d":null}"#, r#"{"op":9}"#] {
        let mut h = Hand::live();
        let outs = h.text(op9);
        let events = events(&outs);
        assert!(
            events.contains(&"InvalidSession { resumable: false }"),
            "{op9}: {outs:?}"
        );
        assert!(
            !events.iter().any(|e| e.contains("ProtocolError")),
            "{op9}: {outs:?}"
        );
        assert!(h.m.session().is_none(), "{op9}: the session is dropped");
        assert!(outs.contains(&Out::Close(4000)), "{op9}: {outs:?}");
    }
    // Anything else that is not a boolean is still reported (and not resumable).
    let mut h = Hand::live();
    let outs = h.text(r#"{"op":9,"d":"yes"}"#);
    assert!(events(&outs)
        .iter()
        .any(|e| e.contains("MalformedPayload(InvalidSession)")));
}

// ----- item 6: an unreadable dispatch is not dropped for good -----

#[test]
fn a_dispatch_with_a_bad_escape_in_d_is_delivered_and_reported() {
    let mut h = Hand::live();
    h.text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"a":"ok"}}"#);
    let outs = h.text(r#"{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"a":"\q"}}"#);
    // The problem, naming the sequence, then the dispatch with `d` as it came.
    let error = format!(
        "{:?}",
        Event::ProtocolError(ProtocolError::DamagedDispatch {
            sequence: 3,
            error: EnvelopeError::Malformed {
                offset: 46,
                what: "invalid escape"
            },
        })
    );
    assert_eq!(
        outs,
        [
            Out::Event(error),
            Out::Dispatch("MESSAGE_CREATE".into(), 3, r#"{"a":"\q"}"#.into()),
        ]
    );
    assert_eq!(h.m.session().unwrap().sequence, 3);
    // The connection goes on; the next dispatch is the next in order.
    let outs = h.text(r#"{"t":"MESSAGE_CREATE","s":4,"op":0,"d":{}}"#);
    assert_eq!(
        outs,
        [Out::Dispatch("MESSAGE_CREATE".into(), 4, "{}".into())]
    );
    assert_eq!(h.m.phase(), Phase::Connected);
}

#[test]
fn a_dispatch_that_cannot_be_delimited_is_resumed_not_skipped() {
    let mut h = Hand::live();
    h.text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{}}"#);
    // Cut short inside `d`: `s` is readable, `d` is not.
    let outs = h.text(r#"{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"a":"x"#);
    assert!(
        events(&outs)
            .iter()
            .any(|e| e.contains("LostDispatch") && e.contains("sequence: 3")),
        "{outs:?}"
    );
    assert!(!outs.iter().any(|o| matches!(o, Out::Dispatch(..))));
    // The session stays at 2, the connection is closed (keeping it) and resumed at once.
    assert_eq!(h.m.session().unwrap().sequence, 2);
    assert!(outs.contains(&Out::Close(4000)), "{outs:?}");
    assert!(
        outs.contains(&Out::Connect("wss://resume.sim/?v=10&encoding=json".into())),
        "{outs:?}"
    );
    h.m.handle_connected(h.now);
    h.drain();
    let outs = h.text(HELLO);
    let resume = outs.iter().find_map(|o| match o {
        Out::Send(OpCode::Resume, text) => Some(text.clone()),
        _ => None,
    });
    assert!(
        resume.unwrap().contains(r#""seq":2"#),
        "the replay starts at 3"
    );
    // A damaged dispatch that was already delivered (an old number) changes nothing.
    let mut h = Hand::live();
    h.text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{}}"#);
    let outs = h.text(r#"{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"a":"x"#);
    assert!(!outs.contains(&Out::Close(4000)), "{outs:?}");
}

#[test]
fn garbage_that_names_no_sequence_is_still_reported_and_dropped() {
    let mut h = Hand::live();
    for garbage in [
        "not json",
        r#"{"op":0,"t":"X","d":{"a":"\q"}}"#,
        r#"{"op":11,"s":2,"d":"\q"}"#,
    ] {
        let outs = h.text(garbage);
        assert_eq!(outs.len(), 1, "{garbage}: {outs:?}");
        assert!(
            events(&outs)[0].contains("Envelope("),
            "{garbage}: {outs:?}"
        );
    }
    assert_eq!(h.m.phase(), Phase::Connected);
    assert_eq!(h.m.session().unwrap().sequence, 1);
}

// ----- item 8: RESUMED with a null sequence -----

#[test]
fn resumed_with_a_null_sequence_is_accepted_and_keeps_the_sequence() {
    let session = Session {
        id: "abc".into(),
        sequence: 42,
        resume_url: Some("wss://resume.sim".into()),
        last_alive: Timestamp::ZERO,
    };
    let mut h = Hand::new(config(), Some(session));
    h.m.handle_connected(h.now);
    h.drain();
    assert_eq!(sends(&h.text(HELLO)), [OpCode::Resume]);
    h.text(r#"{"t":"MESSAGE_CREATE","s":43,"op":0,"d":{}}"#);
    let outs = h.text(r#"{"t":"RESUMED","s":null,"op":0,"d":{}}"#);
    assert_eq!(h.m.phase(), Phase::Connected, "{outs:?}");
    assert!(
        events(&outs).contains(&"Resumed { replayed: 1 }"),
        "{outs:?}"
    );
    assert!(
        !events(&outs).iter().any(|e| e.contains("Error")),
        "{outs:?}"
    );
    assert!(outs.contains(&Out::Dispatch("RESUMED".into(), 43, "{}".into())));
    assert_eq!(h.m.session().unwrap().sequence, 43);
    // Nothing counts it as a failed resume: the READY timeout never fires.
    let later = h.advance(Duration::from_secs(60));
    assert!(!events(&later).iter().any(|e| e.contains("Disconnected")));
    // The count goes on from 43.
    let outs = h.text(r#"{"t":"MESSAGE_CREATE","s":44,"op":0,"d":{}}"#);
    assert_eq!(
        outs,
        [Out::Dispatch("MESSAGE_CREATE".into(), 44, "{}".into())]
    );
}

// ----- item 10c: sequence gaps and duplicates are reported -----

fn gap(expected: u64, received: u64) -> Out {
    Out::Event(format!("{:?}", Event::SequenceGap { expected, received }))
}

fn duplicate(expected: u64, received: u64) -> Out {
    Out::Event(format!(
        "{:?}",
        Event::SequenceDuplicate { expected, received }
    ))
}

fn dispatch(s: u64) -> Out {
    Out::Dispatch("MESSAGE_CREATE".into(), s, "{}".into())
}

fn message(s: u64) -> String {
    format!(r#"{{"t":"MESSAGE_CREATE","s":{s},"op":0,"d":{{}}}}"#)
}

#[test]
fn sequence_gaps_and_duplicates_are_reported_beside_the_dispatch() {
    let mut h = Hand::live(); // READY was 1: the count starts there
    let mut seen = Vec::new();
    for s in [2, 3, 7, 8, 8, 5, 6, 7, 9, 4, 10] {
        seen.extend(h.text(&message(s)));
    }
    assert_eq!(
        seen,
        [
            dispatch(2),
            dispatch(3),
            gap(4, 7),
            dispatch(7),
            dispatch(8),
            duplicate(9, 8),
            dispatch(8),
            // 5, 6, 7: one run of repeats, reported once.
            duplicate(9, 5),
            dispatch(5),
            dispatch(6),
            dispatch(7),
            dispatch(9),
            // Not the run that ended: reported again.
            duplicate(10, 4),
            dispatch(4),
            dispatch(10),
        ]
    );
    assert_eq!(h.m.session().unwrap().sequence, 10);
}

#[test]
fn the_sequence_count_runs_through_a_replay_and_a_null_resumed() {
    let session = Session {
        id: "abc".into(),
        sequence: 42,
        resume_url: Some("wss://resume.sim".into()),
        last_alive: Timestamp::ZERO,
    };
    let mut h = Hand::new(config(), Some(session));
    h.m.handle_connected(h.now);
    h.drain();
    h.text(HELLO);
    let mut seen = Vec::new();
    for text in [
        message(43),
        message(45),
        r#"{"t":"RESUMED","s":null,"op":0,"d":{}}"#.into(),
        message(46),
        message(46),
    ] {
        seen.extend(
            h.text(&text)
                .into_iter()
                .filter(|o| !matches!(o, Out::Event(e) if e.starts_with("Resumed"))),
        );
    }
    assert_eq!(
        seen,
        [
            dispatch(43),
            gap(44, 45),
            dispatch(45),
            Out::Dispatch("RESUMED".into(), 45, "{}".into()),
            dispatch(46),
            duplicate(47, 46),
            dispatch(46),
        ]
    );
    // RESUMED with its own number counts like any dispatch.
    let mut h = Hand::live();
    let outs = h.text(r#"{"op":7,"d":null}"#);
    assert!(outs.iter().any(|o| matches!(o, Out::Connect(_))));
    h.m.handle_connected(h.now);
    h.drain();
    h.text(HELLO);
    let outs = h.text(r#"{"t":"RESUMED","s":3,"op":0,"d":{}}"#);
    assert!(outs.contains(&gap(2, 3)), "{outs:?}");
}
