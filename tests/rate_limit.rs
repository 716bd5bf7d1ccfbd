//! The machine never sends more than 120 frames in any 60 s window of a connection, and the
//! rate limiter never delays a scheduled heartbeat: command bursts queue, op-1 storms are
//! coalesced, reconnects start a fresh window.

use std::collections::VecDeque;
use std::time::Duration;

use discord_gateway_proto::protocol::commands::{Status, UpdatePresence};
use discord_gateway_proto::*;
use proptest::prelude::*;

const HELLO: &str = r#"{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}"#;
const READY: &str = r#"{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"s","resume_gateway_url":"ws://127.0.0.2:1"}}"#;
const RESUMED: &str = r#"{"t":"RESUMED","s":2,"op":0,"d":{}}"#;
const ACK: &str = r#"{"op":11}"#;
const OP1: &str = r#"{"op":1,"d":null}"#;

/// A scripted server that answers everything at once, and a log of what the machine sent.
struct Harness {
    m: GatewayMachine,
    now: Timestamp,
    /// Every frame sent: (connection number, time, opcode, from a timer?).
    sent: Vec<(u32, Timestamp, OpCode, bool)>,
    connection: u32,
    in_timer: bool,
    inbox: VecDeque<String>,
}

impl Harness {
    fn new(seed: u64) -> Self {
        let config = GatewayConfig::new(Token::new("t"), Intents::GUILDS)
            .with_gateway_url("ws://127.0.0.1:1")
            .with_auto_grant(true)
            .with_limits(config::Limits {
                command_queue: 10_000,
                ..Default::default()
            });
        let m =
            GatewayMachine::with_options(config, StartOptions::default(), seed, Timestamp::ZERO)
                .unwrap();
        let mut h = Harness {
            m,
            now: Timestamp::ZERO,
            sent: vec![],
            connection: 0,
            in_timer: false,
            inbox: VecDeque::new(),
        };
        h.drain();
        h
    }

    fn presence() -> Command {
        Command::UpdatePresence(UpdatePresence {
            since: None,
            activities: vec![],
            status: Status::Online,
            afk: false,
        })
    }

    /// Drains outputs, answering as Discord would: Hello on connect, READY/RESUMED, ACKs.
    fn drain(&mut self) {
        loop {
            let mut polls = 0;
            loop {
                polls += 1;
                assert!(polls < 10_000, "drain did not end");
                match self.m.poll_output() {
                    Output::Connect { .. } => {
                        self.connection += 1;
                        self.inbox.push_back(String::from("<connected>"));
                        self.inbox.push_back(HELLO.into());
                    }
                    Output::Send(frame) => {
                        self.sent
                            .push((self.connection, self.now, frame.opcode, self.in_timer));
                        match frame.opcode {
                            OpCode::Identify => self.inbox.push_back(READY.into()),
                            OpCode::Resume => self.inbox.push_back(RESUMED.into()),
                            OpCode::Heartbeat => self.inbox.push_back(ACK.into()),
                            _ => {}
                        }
                    }
                    Output::Wait(deadline) => {
                        if let Some(d) = deadline {
                            assert!(d >= self.now, "deadline in the past");
                        }
                        break;
                    }
                    _ => {}
                }
            }
            let Some(next) = self.inbox.pop_front() else {
                return;
            };
            self.in_timer = false;
            if next == "<connected>" {
                self.m.handle_connected(self.now);
            } else {
                self.m.handle_message(self.now, Message::Text(&next));
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now.saturating_add(by);
        while let Some(deadline) = self.m.poll_timeout().filter(|d| *d <= target) {
            self.now = self.now.max(deadline);
            self.in_timer = true;
            self.m.handle_timeout(self.now);
            self.drain();
            self.in_timer = false;
        }
        self.now = target;
    }

    fn burst(&mut self, n: usize) {
        for _ in 0..n {
            self.m.send(self.now, Self::presence()).unwrap();
            self.drain();
        }
    }

    fn op1_storm(&mut self, n: usize) {
        for _ in 0..n {
            self.m.handle_message(self.now, Message::Text(OP1));
            self.drain();
            self.advance(Duration::from_millis(50));
        }
    }

    fn server_close(&mut self) {
        self.m.handle_closed(
            self.now,
            Some(CloseFrame {
                code: 4000,
                reason: "",
            }),
        );
        self.drain();
    }

    /// No connection's 60 s window holds more than 120 frames.
    fn check_windows(&self) {
        for (i, (conn, t, _, _)) in self.sent.iter().enumerate() {
            let in_window = self.sent[i..]
                .iter()
                .take_while(|(c, u, _, _)| {
                    c == conn && u.saturating_duration_since(*t) < Duration::from_secs(60)
                })
                .count();
            assert!(
                in_window <= 120,
                "{in_window} frames in the 60 s from {t} on connection {conn}"
            );
        }
    }

    /// Scheduled beats (sent from a timer) on one connection are exactly one interval apart.
    fn check_beats_on_time(&self) {
        let beats: Vec<_> = self
            .sent
            .iter()
            .filter(|(_, _, op, timer)| *op == OpCode::Heartbeat && *timer)
            .collect();
        for pair in beats.windows(2) {
            let ((c1, t1, _, _), (c2, t2, _, _)) = (pair[0], pair[1]);
            if c1 == c2 {
                assert_eq!(
                    t2.saturating_duration_since(*t1),
                    Duration::from_millis(41_250),
                    "beat late at {t2}"
                );
            }
        }
    }
}

#[test]
fn a_burst_of_500_commands_leaves_at_112_per_window_and_the_beats_stay_on_time() {
    let mut h = Harness::new(1);
    h.advance(Duration::from_millis(10));
    h.burst(500);
    // 120 - 7 reserved for beats, op-1 answers and handshakes - 1 already used by Identify.
    assert_eq!(h.m.queued_commands(), 500 - 112);
    assert_eq!(h.m.available_commands(), 0);
    assert!(h.m.next_command_slot().unwrap() > h.now);
    h.advance(Duration::from_secs(5 * 60));
    assert_eq!(h.m.queued_commands(), 0, "all commands leave eventually");
    let commands = h
        .sent
        .iter()
        .filter(|s| s.2 == OpCode::PresenceUpdate)
        .count();
    assert_eq!(commands, 500);
    h.check_windows();
    h.check_beats_on_time();
}

#[test]
fn an_op1_storm_is_coalesced_and_does_not_starve_scheduled_beats() {
    let mut h = Harness::new(2);
    h.advance(Duration::from_millis(10));
    h.op1_storm(3000); // 150 s of op 1 every 50 ms
    let answers = h
        .sent
        .iter()
        .filter(|s| s.2 == OpCode::Heartbeat && !s.3)
        .count();
    assert!(
        answers <= 160,
        "{answers} op-1 answers in 150 s: at most one per second"
    );
    assert!(
        answers >= 100,
        "{answers}: op-1 requests must still be answered"
    );
    h.check_windows();
    h.check_beats_on_time();
    assert_eq!(h.m.phase(), Phase::Connected);
}

#[test]
fn a_reconnect_starts_a_fresh_window_and_held_commands_survive_it() {
    let mut h = Harness::new(3);
    h.advance(Duration::from_millis(10));
    h.burst(200);
    let held = h.m.queued_commands();
    assert!(held > 0);
    h.server_close();
    assert_eq!(h.m.phase(), Phase::Connected, "resumed at once");
    let after: usize = h
        .sent
        .iter()
        .filter(|s| s.0 == h.connection && s.2 == OpCode::PresenceUpdate)
        .count();
    // Resume used one slot of the fresh window; 112 commands fit beside it.
    assert_eq!(after, held.min(112), "the new connection's window is fresh");
    h.check_windows();
}

#[test]
fn rate_limited_dispatch_becomes_a_typed_event() {
    let mut h = Harness::new(4);
    h.advance(Duration::from_millis(10));
    h.m.handle_message(
        h.now,
        Message::Text(r#"{"t":"RATE_LIMITED","s":3,"op":0,"d":{"opcode":8,"retry_after":12.5,"meta":{"guild_id":"1","nonce":"n"}}}"#),
    );
    let mut found = None;
    loop {
        match h.m.poll_output() {
            Output::Event(Event::RateLimited(r)) => found = Some(r),
            Output::Wait(_) => break,
            _ => {}
        }
    }
    let r = found.expect("RateLimited event");
    assert_eq!((r.opcode, r.retry_after), (8, 12.5));
    assert!(r.meta.contains("\"nonce\""));
}

#[test]
fn an_oversized_command_is_refused_before_anything_is_sent() {
    let mut h = Harness::new(5);
    h.advance(Duration::from_millis(10));
    let before = h.sent.len();
    let huge = Command::UpdatePresence(UpdatePresence {
        since: None,
        activities: vec![protocol::commands::Activity {
            name: "x".repeat(5000),
            kind: 0,
            url: None,
            state: None,
        }],
        status: Status::Online,
        afk: false,
    });
    match h.m.send(h.now, huge) {
        Err(CommandError::PayloadTooLarge {
            size, limit: 4096, ..
        }) => assert!(size > 4096),
        other => panic!("{other:?}"),
    }
    h.drain();
    assert_eq!(h.sent.len(), before);
}

#[derive(Debug, Clone)]
enum Step {
    Burst(usize),
    Storm(usize),
    Advance(u64),
    Close,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..150).prop_map(Step::Burst),
        (0usize..100).prop_map(Step::Storm),
        (0u64..120_000).prop_map(Step::Advance),
        Just(Step::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn no_window_over_120_and_beats_never_delayed(seed in any::<u64>(), steps in proptest::collection::vec(step(), 1..12)) {
        let mut h = Harness::new(seed);
        h.advance(Duration::from_millis(10));
        for step in steps {
            match step {
                Step::Burst(n) => h.burst(n),
                Step::Storm(n) => h.op1_storm(n),
                Step::Advance(ms) => h.advance(Duration::from_millis(ms)),
                Step::Close => h.server_close(),
            }
        }
        h.advance(Duration::from_secs(120));
        h.check_windows();
        h.check_beats_on_time();
    }
}
