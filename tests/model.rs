//! Model-based property tests: random sequences of server frames (valid, malformed, out of
//! order, unknown, duplicate sequences), time steps (small and huge), transport losses,
//! server closes with any code, op 1/7/9, user commands, identify grants and shutdowns drive
//! the real machine by hand, and after EVERY step the machine is checked against the
//! reference model in `support/model.rs` and the driver contract.
//!
//! Each run also draws its configuration: stall timeouts (down to a millisecond), the
//! reconnect backoff (exponential or linear, with or without jitter, zero delays included),
//! the heartbeat policy (missed ACKs, liveness) and the session policy (stale cutoff,
//! circuit breaker). The model reads the same numbers.
//!
//! CI runs 128 cases; `PROPTEST_CASES=5000 cargo test --test model` runs more. A failure
//! shrinks to a short list of steps and prints the run: each step with what the machine did.

mod support;

use std::fmt;
use std::time::Duration;

use discord_gateway_proto::config::{HeartbeatPolicy, Limits, Liveness, SessionPolicy, Timeouts};
use discord_gateway_proto::protocol::commands::{Activity, Status, UpdatePresence};
use discord_gateway_proto::trace::Outcome;
use discord_gateway_proto::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use support::model::{Expect, MPhase, Model, Op1, Policy, Target};

const MAIN_URL: &str = "wss://gateway.sim/?v=10&encoding=json";
const RESUME_URL: &str = "wss://resume.sim/?v=10&encoding=json";
/// The most `poll_output` calls a drain may take.
const MAX_POLLS: usize = 1_000;
/// The most heap the machine may hold in these runs (all frames are small).
const MAX_HEAP: usize = 256 * 1024;

// ----- steps -----

/// A dispatch sequence number, relative to the session's current one.
#[derive(Clone, Copy)]
enum Seq {
    Next,
    Same,
    Ahead(u64),
    Behind(u64),
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seq::Next => write!(f, "seq+1"),
            Seq::Same => write!(f, "seq+0 (duplicate)"),
            Seq::Ahead(n) => write!(f, "seq+{n} (gap)"),
            Seq::Behind(n) => write!(f, "seq-{n} (old)"),
        }
    }
}

#[derive(Clone, Copy)]
enum Frame {
    Hello(u64),
    HelloWithoutInterval,
    Ready {
        seq: u64,
        resume_url: Option<&'static str>,
    },
    ReadyWithoutSessionId,
    Resumed(Seq),
    Dispatch(Seq),
    /// `d` first, with decoy `op`/`t`/`s` keys nested in it.
    DecoyDispatch(Seq),
    DispatchWithoutSeq,
    Ack,
    Op1,
    Op7,
    Op9(Option<bool>),
    UnknownOp(u64),
    Op2FromServer,
    Garbage(&'static str),
    NotUtf8,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Hello(ms) => write!(f, "hello({ms} ms)"),
            Frame::HelloWithoutInterval => write!(f, "hello(no interval)"),
            Frame::Ready { seq, resume_url } => match resume_url {
                Some(u) => write!(f, "READY(s={seq}, resume_url={u})"),
                None => write!(f, "READY(s={seq}, no resume_url)"),
            },
            Frame::ReadyWithoutSessionId => write!(f, "READY(no session_id)"),
            Frame::Resumed(s) => write!(f, "RESUMED({s:?})"),
            Frame::Dispatch(s) => write!(f, "dispatch({s:?})"),
            Frame::DecoyDispatch(s) => write!(f, "dispatch(d first, decoy keys, {s:?})"),
            Frame::DispatchWithoutSeq => write!(f, "dispatch(s=null)"),
            Frame::Ack => write!(f, "ACK"),
            Frame::Op1 => write!(f, "op1"),
            Frame::Op7 => write!(f, "op7"),
            Frame::Op9(Some(b)) => write!(f, "op9({b})"),
            Frame::Op9(None) => write!(f, "op9(d=\"yes\")"),
            Frame::UnknownOp(op) => write!(f, "op{op}(unknown)"),
            Frame::Op2FromServer => write!(f, "op2(from server)"),
            Frame::Garbage(g) => write!(f, "garbage({g:?})"),
            Frame::NotUtf8 => write!(f, "text(not UTF-8)"),
        }
    }
}

#[derive(Clone, Copy)]
enum Step {
    /// What a well-behaved server (or driver) does next, given the model's phase.
    Serve,
    /// The socket opens (`handle_connected`).
    Open,
    Frame(Frame),
    /// Time passes; the driver wakes at every deadline on the way.
    Advance(u64),
    /// The clock jumps (suspend): one `handle_timeout` far ahead.
    Jump(u64),
    TransportLoss,
    ServerClose(u16),
    Command {
        oversize: bool,
    },
    Grant,
    Shutdown {
        keep: bool,
    },
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Serve => write!(f, "serve"),
            Step::Open => write!(f, "open"),
            Step::Frame(frame) => write!(f, "{frame:?}"),
            Step::Advance(ms) => write!(f, "+{}", Timestamp::from_millis(*ms)),
            Step::Jump(s) => write!(f, "jump +{s}s"),
            Step::TransportLoss => write!(f, "transport lost"),
            Step::ServerClose(code) => write!(f, "server close {code}"),
            Step::Command { oversize: false } => write!(f, "send presence"),
            Step::Command { oversize: true } => write!(f, "send presence (5 KB)"),
            Step::Grant => write!(f, "grant identify"),
            Step::Shutdown { keep } => write!(f, "shutdown(keep={keep})"),
        }
    }
}

fn seq() -> impl Strategy<Value = Seq> {
    prop_oneof![
        6 => Just(Seq::Next),
        2 => Just(Seq::Same),
        1 => (2u64..1_000).prop_map(Seq::Ahead),
        1 => (1u64..5).prop_map(Seq::Behind),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        6 => prop_oneof![Just(41_250u64), Just(1_000), Just(5_000), Just(10), Just(10_000_000)]
            .prop_map(Frame::Hello),
        1 => Just(Frame::HelloWithoutInterval),
        4 => (1u64..4, prop_oneof![
                Just(Some("wss://resume.sim")),
                Just(Some("wss://resume.sim/?v=6&encoding=etf")),
                Just(None),
            ]).prop_map(|(seq, resume_url)| Frame::Ready { seq, resume_url }),
        1 => Just(Frame::ReadyWithoutSessionId),
        3 => seq().prop_map(Frame::Resumed),
        6 => seq().prop_map(Frame::Dispatch),
        2 => seq().prop_map(Frame::DecoyDispatch),
        1 => Just(Frame::DispatchWithoutSeq),
        5 => Just(Frame::Ack),
        3 => Just(Frame::Op1),
        1 => Just(Frame::Op7),
        3 => prop_oneof![2 => Just(Some(true)), 1 => Just(Some(false)), 1 => Just(None)].prop_map(Frame::Op9),
        1 => prop_oneof![Just(3u64), Just(12), Just(99), Just(u64::MAX)].prop_map(Frame::UnknownOp),
        1 => Just(Frame::Op2FromServer),
        1 => prop_oneof![
                Just("not json"),
                Just("{\"op\":"),
                Just("[]"),
                Just("{\"op\":\"0\"}"),
                Just("{}"),
                Just("{\"op\":0,\"op\":1}"),
                Just("{\"op\":10,\"d\":{\"heartbeat_interval\":1}} trailing"),
            ].prop_map(Frame::Garbage),
        1 => Just(Frame::NotUtf8),
    ]
}

fn close_code() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => 4000u16..=4014,
        1 => prop_oneof![Just(1000u16), Just(1001), Just(1006), Just(1011), Just(3000), Just(4999)],
        1 => any::<u16>(),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        30 => Just(Step::Serve),
        3 => Just(Step::Open),
        22 => frame().prop_map(Step::Frame),
        10 => prop_oneof![0u64..2_000, 0u64..70_000].prop_map(Step::Advance),
        1 => (600u64..3 * 86_400).prop_map(Step::Jump),
        4 => Just(Step::TransportLoss),
        3 => close_code().prop_map(Step::ServerClose),
        4 => proptest::bool::weighted(0.1).prop_map(|oversize| Step::Command { oversize }),
        3 => Just(Step::Grant),
        1 => any::<bool>().prop_map(|keep| Step::Shutdown { keep }),
    ]
}

/// One run's setup: the seed, the server's behaviour and the machine's configuration.
#[derive(Clone, Copy, Debug)]
struct Setup {
    seed: u64,
    auto_grant: bool,
    /// The server drops every connection that resumes before RESUMED (`serve` steps).
    resumes_fail: bool,
    timeouts: Timeouts,
    /// The attempt cap included.
    backoff: Backoff,
    heartbeat: HeartbeatPolicy,
    session: SessionPolicy,
}

/// A duration in whole milliseconds (so that a jittered delay, drawn from `[d/2, d)` at
/// microsecond grain, is zero only when `d` is).
fn millis(range: std::ops::RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    range.prop_map(Duration::from_millis)
}

/// A stall timeout: the default, or anything from 10 ms to a minute. (Shorter ones are
/// valid too, but with a zero backoff a connection then fails every few milliseconds and
/// one 70 s advance takes more wake-ups than a test should.)
fn timeout(default: Duration) -> impl Strategy<Value = Duration> {
    prop_oneof![2 => Just(default), 1 => millis(10..=100), 1 => millis(1_000..=60_000)]
}

/// A delay, zero included.
fn delay() -> impl Strategy<Value = Duration> {
    prop_oneof![Just(Duration::ZERO), millis(1..=100), millis(100..=5_000)]
}

fn timeouts() -> impl Strategy<Value = Timeouts> {
    let d = Timeouts::default();
    (timeout(d.connect), timeout(d.hello), timeout(d.ready)).prop_map(|(connect, hello, ready)| {
        Timeouts {
            connect,
            hello,
            ready,
        }
    })
}

fn backoff() -> impl Strategy<Value = Backoff> {
    let schedule = prop_oneof![
        2 => Just(Backoff::default().schedule),
        2 => (delay(), prop_oneof![Just(Duration::ZERO), millis(1..=120_000)], any::<bool>())
            .prop_map(|(initial, max, jitter)| BackoffSchedule::Exponential { initial, max, jitter }),
        1 => (delay(), delay(), prop_oneof![Just(Duration::ZERO), millis(1..=600_000)])
            .prop_map(|(initial, step, max)| BackoffSchedule::Linear { initial, step, max }),
    ];
    (
        schedule,
        prop_oneof![3 => Just(Duration::ZERO), 1 => delay()],
        prop_oneof![3 => Just(None), 1 => (1u32..10).prop_map(Some)],
    )
        .prop_map(|(schedule, first_delay, max_attempts)| Backoff {
            schedule,
            first_delay,
            max_attempts,
        })
}

fn heartbeat_policy() -> impl Strategy<Value = HeartbeatPolicy> {
    (
        prop_oneof![3 => Just(1u32), 1 => 2u32..=3],
        prop_oneof![Just(Liveness::AckOnly), Just(Liveness::AnyMessage)],
    )
        .prop_map(|(missed_acks_before_zombie, liveness)| HeartbeatPolicy {
            missed_acks_before_zombie,
            liveness,
        })
}

fn session_policy() -> impl Strategy<Value = SessionPolicy> {
    let d = SessionPolicy::default();
    (
        prop_oneof![2 => Just(d.stale_after), 1 => millis(1_000..=120_000)],
        prop_oneof![2 => Just(d.max_failed_resumes), 1 => 0u32..=4],
    )
        .prop_map(|(stale_after, max_failed_resumes)| SessionPolicy {
            stale_after,
            max_failed_resumes,
        })
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        (any::<u64>(), any::<bool>(), proptest::bool::weighted(0.25)),
        timeouts(),
        backoff(),
        heartbeat_policy(),
        session_policy(),
    )
        .prop_map(
            |((seed, auto_grant, resumes_fail), timeouts, backoff, heartbeat, session)| Setup {
                seed,
                auto_grant,
                resumes_fail,
                timeouts,
                backoff,
                heartbeat,
                session,
            },
        )
}

// ----- what the machine did -----

#[derive(Debug)]
enum Out {
    Connect(String),
    Send(OpCode, String),
    Close(u16),
    Hello,
    IdentifyRequested,
    Ready,
    Resumed,
    Disconnected(Disconnect),
    Fatal,
    Shutdown(bool),
    FirstBeat(Timestamp),
    /// Other events, kept for the printed run.
    #[allow(dead_code)]
    OtherEvent(String),
    Wait(Option<Timestamp>),
}

/// Drives one machine by hand and checks it against the model after every step.
struct Run {
    setup: Setup,
    m: GatewayMachine,
    model: Model,
    now: Timestamp,
    /// The run so far, one line per step, printed on failure.
    log: Vec<String>,
    /// Send times of each connection (index = connection number - 1).
    sends: Vec<Vec<Timestamp>>,
    /// The last (session id, sequence) seen.
    last_session: Option<(String, u64)>,
    ready_count: u32,
}

fn config(setup: &Setup) -> GatewayConfig {
    GatewayConfig::new(Token::new("model-token"), Intents::GUILDS)
        .with_gateway_url("wss://gateway.sim")
        .with_auto_grant(setup.auto_grant)
        .with_timeouts(setup.timeouts)
        .with_reconnect(setup.backoff)
        .with_heartbeat(setup.heartbeat)
        .with_session_policy(setup.session)
}

fn policy(c: &GatewayConfig) -> Policy {
    Policy {
        auto_grant: c.identify.auto_grant,
        connect_timeout: c.timeouts.connect,
        hello_timeout: c.timeouts.hello,
        ready_timeout: c.timeouts.ready,
        stale_after: c.session.stale_after,
        max_failed_resumes: c.session.max_failed_resumes,
        backoff: c.reconnect,
        invalid_session_delay: c.identify.invalid_session_delay,
        missed_acks_before_zombie: c.heartbeat.missed_acks_before_zombie,
        any_message_liveness: c.heartbeat.liveness == Liveness::AnyMessage,
    }
}

fn map_phase(p: Phase) -> MPhase {
    match p {
        Phase::Disconnected => MPhase::Disconnected,
        Phase::Connecting => MPhase::Connecting,
        Phase::AwaitingHello => MPhase::AwaitingHello,
        Phase::AwaitingIdentifyGrant => MPhase::AwaitingGrant,
        Phase::Identifying => MPhase::Identifying,
        Phase::Resuming => MPhase::Resuming,
        Phase::Connected => MPhase::Connected,
        Phase::Closed => MPhase::Closed,
        Phase::Fatal(_) => MPhase::Fatal,
        other => panic!("a phase the model does not know: {other:?}"),
    }
}

fn presence(oversize: bool) -> Command {
    Command::UpdatePresence(UpdatePresence {
        since: None,
        activities: if oversize {
            vec![Activity {
                name: "x".repeat(5_000),
                kind: 0,
                url: None,
                state: None,
            }]
        } else {
            vec![]
        },
        status: Status::Online,
        afk: false,
    })
}

/// What an input was, for the checks that depend on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Timeout,
    Op1,
    Other,
}

impl Run {
    fn new(setup: Setup) -> Self {
        let config = config(&setup);
        let policy = policy(&config);
        let mut m = GatewayMachine::with_options(
            config,
            StartOptions::default(),
            setup.seed,
            Timestamp::ZERO,
        )
        .unwrap();
        m.set_trace(true);
        let (model, expect) = Model::new(policy, Timestamp::ZERO);
        let mut run = Run {
            setup,
            m,
            model,
            now: Timestamp::ZERO,
            log: vec![format!("{setup:?}")],
            sends: Vec::new(),
            last_session: None,
            ready_count: 0,
        };
        run.finish("start", expect, false, Input::Other);
        run
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "{what}\n--- machine: {:?}\n--- model: phase {:?}, session {:?}\n--- run:\n{}",
            self.m,
            self.model.phase,
            self.model.session,
            self.log.join("\n")
        );
    }

    fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fail(what());
        }
    }

    /// Sends in the last 61 s on the current connection (the op-1 budget check).
    fn sent_recently(&self) -> usize {
        self.sends.last().map_or(0, |s| {
            s.iter()
                .filter(|t| self.now.saturating_duration_since(**t) < Duration::from_secs(61))
                .count()
        })
    }

    fn drain(&mut self) -> Vec<Out> {
        let mut outs = Vec::new();
        for _ in 0..MAX_POLLS {
            let out = match self.m.poll_output() {
                Output::Connect { url } => Out::Connect(url.to_string()),
                Output::Send(frame) => Out::Send(frame.opcode, frame.text.to_string()),
                Output::Close(frame) => Out::Close(frame.code),
                Output::Wait(deadline) => {
                    outs.push(Out::Wait(deadline));
                    return outs;
                }
                Output::Event(event) => match event {
                    Event::Hello { .. } => Out::Hello,
                    Event::IdentifyRequested => Out::IdentifyRequested,
                    Event::Ready(_) => Out::Ready,
                    Event::Resumed { .. } => Out::Resumed,
                    Event::Disconnected(d) => Out::Disconnected(d),
                    Event::Fatal(_) => Out::Fatal,
                    Event::Shutdown { session_kept } => Out::Shutdown(session_kept),
                    Event::Decision(d) => match d.outcome {
                        Outcome::FirstBeat { at } => Out::FirstBeat(at),
                        Outcome::Reconnect { resume: false, .. }
                        | Outcome::Connect { resume: false, .. } => {
                            // The trace never names a resume rule for an identify.
                            self.check(!d.rule.promises_resume(), || {
                                format!("the decision {d} names a resume rule")
                            });
                            continue;
                        }
                        _ => continue,
                    },
                    Event::Dispatch(d) => Out::OtherEvent(format!("dispatch s={}", d.sequence)),
                    other => Out::OtherEvent(format!("{other:?}")),
                },
                other => {
                    let what = format!("an output the model does not know: {other:?}");
                    self.fail(what)
                }
            };
            outs.push(out);
        }
        self.fail(format!("the drain did not end within {MAX_POLLS} polls"));
    }

    /// Drains the machine and checks the outputs against `expect`, then checks the state.
    fn finish(&mut self, label: &str, mut e: Expect, was_terminal: bool, input: Input) {
        let outs = self.drain();
        self.log.push(format!(
            "[{}] {label} -> {}",
            self.now,
            outs.iter()
                .map(|o| format!("{o:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if was_terminal {
            self.check(
                outs.len() == 1 && matches!(outs[0], Out::Wait(None)),
                || "output after a terminal state".into(),
            );
        }
        let mut connects = 0;
        let mut closes = 0;
        let mut identifies = 0;
        let mut resumes = 0;
        let mut beats = 0;
        let mut flags = (false, false, false, false, false, None);
        for out in &outs {
            match out {
                Out::Connect(url) => {
                    connects += 1;
                    self.check(closes == e.close.is_some() as u32, || {
                        "Connect before the Close of the old connection".into()
                    });
                    let want = match e.connect {
                        Some(Target::ResumeUrl) => RESUME_URL,
                        _ => MAIN_URL,
                    };
                    self.check(url == want, || format!("Connect to {url}, expected {want}"));
                    self.sends.push(Vec::new());
                }
                Out::Close(code) => {
                    closes += 1;
                    match e.close {
                        Some(true) => self.check(*code == 1000, || format!("close {code}")),
                        _ => self.check(!matches!(code, 1000 | 1001), || {
                            format!("the machine closed with {code}, which ends the session")
                        }),
                    }
                }
                Out::Send(op, text) => {
                    let now = self.now;
                    let window = self.sends.last_mut().expect("a send before any connect");
                    window.push(now);
                    let in_window = window
                        .iter()
                        .filter(|t| now.saturating_duration_since(**t) < Duration::from_secs(60))
                        .count();
                    self.check(in_window <= 120, || {
                        format!("{in_window} frames in the 60 s up to {now} on one connection")
                    });
                    let d = serde_json::from_str::<serde_json::Value>(text)
                        .ok()
                        .and_then(|v| v.get("d").cloned());
                    match op {
                        OpCode::Identify => identifies += 1,
                        OpCode::Resume => {
                            resumes += 1;
                            let seq = d.as_ref().and_then(|d| d["seq"].as_u64());
                            self.check(e.resume.is_some() && seq == e.resume, || {
                                format!("Resume with seq {seq:?}, expected {:?}", e.resume)
                            });
                            // Not only what the model predicts: never a stale session.
                            // Staleness is judged when the connection starts; Hello may
                            // come up to the connect and Hello timeouts later.
                            let p = self.model.policy;
                            let limit = p.stale_after + p.connect_timeout + p.hello_timeout;
                            let age = self
                                .model
                                .session
                                .as_ref()
                                .map(|s| now.saturating_duration_since(s.last_ack));
                            self.check(age.is_some_and(|a| a <= limit), || {
                                format!("Resume of a session whose last ACK is {age:?} old")
                            });
                        }
                        OpCode::Heartbeat => {
                            beats += 1;
                            let want = self.model.session.as_ref().map(|s| s.seq);
                            let got = d.and_then(|d| d.as_u64());
                            self.check(got == want, || {
                                format!("heartbeat d={got:?}, the session's sequence is {want:?}")
                            });
                        }
                        OpCode::PresenceUpdate => self
                            .check(self.model.phase == MPhase::Connected, || {
                                format!("a command sent while {:?}", self.model.phase)
                            }),
                        other => self.fail(format!("unexpected frame {other}")),
                    }
                }
                Out::Hello => flags.0 = true,
                Out::IdentifyRequested => flags.1 = true,
                Out::Ready => flags.2 = true,
                Out::Resumed => flags.3 = true,
                Out::Fatal => flags.4 = true,
                Out::Shutdown(kept) => flags.5 = Some(*kept),
                Out::FirstBeat(at) => {
                    self.check(e.hello, || "a first beat without Hello".into());
                    if let Err(why) = self.model.learn_first_beat(*at) {
                        self.fail(why);
                    }
                }
                Out::Disconnected(d) => {
                    let Some(r) = e.disconnected.take() else {
                        self.fail(format!("unexpected {d:?}"));
                    };
                    match self.model.learn_reconnect(d.reconnect_at, r) {
                        Ok(resume) => self.check(d.resume == resume, || {
                            format!("Disconnected says resume={}, expected {resume}", d.resume)
                        }),
                        Err(why) => self.fail(why),
                    }
                }
                Out::OtherEvent(_) => {}
                Out::Wait(deadline) => self.check(*deadline == self.m.poll_timeout(), || {
                    "Wait disagrees with poll_timeout".into()
                }),
            }
        }
        self.check(e.disconnected.is_none(), || "no Disconnected event".into());
        self.check(connects == e.connect.is_some() as u32, || {
            format!("{connects} Connect, expected {:?}", e.connect)
        });
        self.check(closes == e.close.is_some() as u32, || {
            format!("{closes} Close, expected {:?}", e.close)
        });
        self.check(identifies == e.identify as u32, || {
            format!("{identifies} Identify, expected {}", e.identify)
        });
        self.check(resumes == e.resume.is_some() as u32, || {
            format!("{resumes} Resume, expected {:?}", e.resume)
        });
        let op1 = match input {
            Input::Op1 => beats,
            _ => 0,
        };
        let scheduled = beats - op1;
        self.check(scheduled == e.scheduled_beat as u32, || {
            format!("{scheduled} scheduled beats, expected {}", e.scheduled_beat)
        });
        match (e.op1, op1) {
            (Op1::Must, 1) | (Op1::May, 0 | 1) | (Op1::MustNot, 0) => {}
            (want, got) => self.fail(format!("{got} op-1 answers, expected {want:?}")),
        }
        if op1 == 1 {
            self.model.op1_answered();
        }
        self.check(flags.0 == e.hello, || "Hello event".into());
        self.check(flags.1 == e.identify_requested, || {
            "IdentifyRequested event".into()
        });
        self.check(flags.2 == e.ready, || "Ready event".into());
        self.check(flags.3 == e.resumed, || "Resumed event".into());
        self.check(flags.4 == e.fatal, || "Fatal event".into());
        self.check(flags.5 == e.shutdown, || {
            format!("Shutdown event {:?}, expected {:?}", flags.5, e.shutdown)
        });
        if e.hello {
            self.check(self.model.beat_due.is_some(), || {
                "Hello without a first beat".into()
            });
        }
        if e.ready {
            self.ready_count += 1;
        }
        self.check_state(input);
    }

    /// Checks that hold after every step.
    fn check_state(&mut self, input: Input) {
        let phase = map_phase(self.m.phase());
        self.check(phase == self.model.phase, || {
            format!("phase {phase:?}, the model says {:?}", self.model.phase)
        });
        let session = self.m.session().map(|s| (s.id.clone(), s.sequence));
        let model_seq = self.model.session.as_ref().map(|s| s.seq);
        self.check(session.as_ref().map(|s| s.1) == model_seq, || {
            format!("session {session:?}, the model says sequence {model_seq:?}")
        });
        if let (Some((id, seq)), Some((last_id, last_seq))) = (&session, &self.last_session) {
            self.check(id != last_id || seq >= last_seq, || {
                format!("sequence went back from {last_seq} to {seq}")
            });
        }
        if session.is_some() {
            self.last_session = session;
        }
        let deadline = self.m.poll_timeout();
        if phase.terminal() {
            self.check(deadline.is_none(), || {
                "a deadline after a terminal state".into()
            });
        }
        if input == Input::Timeout {
            self.check(deadline.is_none_or(|d| d > self.now), || {
                format!(
                    "after handle_timeout({}) the deadline is {deadline:?}",
                    self.now
                )
            });
        }
        if let Some(want) = self.model.next_deadline() {
            self.check(deadline.is_some_and(|d| d <= want), || {
                format!("the machine's deadline {deadline:?} is after the model's {want}")
            });
        }
        let heap = self.m.heap_bytes();
        self.check(heap <= MAX_HEAP, || format!("heap {heap} bytes"));
    }

    fn text(&self, frame: Frame) -> Option<String> {
        let base = self.model.session.as_ref().map_or(0, |s| s.seq);
        let resolve = |s: Seq| match s {
            Seq::Next => base + 1,
            Seq::Same => base,
            Seq::Ahead(n) => base + n,
            Seq::Behind(n) => base.saturating_sub(n),
        };
        Some(match frame {
            Frame::Hello(ms) => {
                format!(r#"{{"t":null,"s":null,"op":10,"d":{{"heartbeat_interval":{ms}}}}}"#)
            }
            Frame::HelloWithoutInterval => r#"{"op":10,"d":{"_trace":[]}}"#.into(),
            Frame::Ready { seq, resume_url } => {
                let url =
                    resume_url.map_or(String::new(), |u| format!(r#","resume_gateway_url":"{u}""#));
                format!(
                    r#"{{"t":"READY","s":{seq},"op":0,"d":{{"v":10,"session_id":"session-{}"{url},"guilds":[]}}}}"#,
                    self.ready_count + 1
                )
            }
            Frame::ReadyWithoutSessionId => r#"{"t":"READY","s":1,"op":0,"d":{"v":10}}"#.into(),
            Frame::Resumed(s) => format!(r#"{{"t":"RESUMED","s":{},"op":0,"d":null}}"#, resolve(s)),
            Frame::Dispatch(s) => format!(
                r#"{{"t":"MESSAGE_CREATE","s":{},"op":0,"d":{{"content":"hi"}}}}"#,
                resolve(s)
            ),
            Frame::DecoyDispatch(s) => format!(
                r#"{{"d":{{"op":7,"t":"READY","s":999999,"d":{{"op":9,"x":"\"op\":1"}}}},"s":{},"t":"MESSAGE_CREATE","op":0}}"#,
                resolve(s)
            ),
            Frame::DispatchWithoutSeq => r#"{"t":"MESSAGE_CREATE","s":null,"op":0,"d":{}}"#.into(),
            Frame::Ack => r#"{"op":11,"d":null}"#.into(),
            Frame::Op1 => r#"{"op":1,"d":null}"#.into(),
            Frame::Op7 => r#"{"op":7,"d":null}"#.into(),
            Frame::Op9(Some(b)) => format!(r#"{{"op":9,"d":{b}}}"#),
            Frame::Op9(None) => r#"{"op":9,"d":"yes"}"#.into(),
            Frame::UnknownOp(op) => format!(r#"{{"op":{op},"d":null}}"#),
            Frame::Op2FromServer => r#"{"op":2,"d":{}}"#.into(),
            Frame::Garbage(g) => g.into(),
            Frame::NotUtf8 => return None,
        })
    }

    /// What a well-behaved peer does next.
    fn serve(&self) -> Option<Step> {
        Some(match self.model.phase {
            MPhase::Connecting => Step::Open,
            MPhase::AwaitingHello => Step::Frame(Frame::Hello(41_250)),
            MPhase::AwaitingGrant => Step::Grant,
            MPhase::Identifying => Step::Frame(Frame::Ready {
                seq: 1,
                resume_url: Some("wss://resume.sim"),
            }),
            MPhase::Resuming if self.setup.resumes_fail => Step::TransportLoss,
            MPhase::Resuming => Step::Frame(Frame::Resumed(Seq::Next)),
            MPhase::Connected if self.model.awaiting_ack => Step::Frame(Frame::Ack),
            MPhase::Connected => {
                let at = self.model.beat_due?;
                Step::Advance(ceil_ms(at.saturating_duration_since(self.now)))
            }
            MPhase::Disconnected => {
                let at = self.model.reconnect_at?;
                Step::Advance(ceil_ms(at.saturating_duration_since(self.now)))
            }
            MPhase::Closed | MPhase::Fatal => return None,
        })
    }

    fn wake(&mut self, at: Timestamp) {
        let was_terminal = self.model.phase.terminal();
        self.now = self.now.max(at);
        self.m.handle_timeout(self.now);
        let e = self.model.on_timeout(self.now);
        self.finish("timeout", e, was_terminal, Input::Timeout);
    }

    fn step(&mut self, step: Step) {
        let step = match step {
            Step::Serve => match self.serve() {
                Some(step) => step,
                None => return,
            },
            other => other,
        };
        let label = format!("{step:?}");
        let was_terminal = self.model.phase.terminal();
        let now = self.now;
        let (e, input) = match step {
            Step::Serve => unreachable!(),
            Step::Open => {
                self.m.handle_connected(now);
                (self.model.on_connected(), Input::Other)
            }
            Step::Frame(frame) => {
                let text = self.text(frame);
                let seq = text.as_deref().and_then(|t| {
                    serde_json::from_str::<serde_json::Value>(t)
                        .ok()
                        .and_then(|v| v["s"].as_u64())
                });
                match &text {
                    Some(t) => self.m.handle_message(now, Message::Text(t)),
                    None => self
                        .m
                        .handle_message(now, Message::TextBytes(&[b'{', 0xff, 0xfe, b'}'])),
                }
                let sent_recently = self.sent_recently();
                let model = &mut self.model;
                if text.is_some() {
                    model.on_message();
                }
                let e = match frame {
                    Frame::Hello(ms) => model.on_hello(Some(ms)),
                    Frame::HelloWithoutInterval => model.on_hello(None),
                    Frame::Ready { seq, resume_url } => {
                        model.on_ready(seq, true, resume_url.is_some())
                    }
                    Frame::ReadyWithoutSessionId => model.on_ready(1, false, false),
                    Frame::Resumed(_) => model.on_resumed(seq.unwrap()),
                    Frame::Dispatch(_) | Frame::DecoyDispatch(_) => model.on_dispatch(seq.unwrap()),
                    Frame::Ack => model.on_ack(),
                    Frame::Op1 => model.on_op1(sent_recently),
                    Frame::Op7 => model.on_reconnect_request(),
                    Frame::Op9(d) => model.on_invalid_session(d),
                    Frame::DispatchWithoutSeq
                    | Frame::UnknownOp(_)
                    | Frame::Op2FromServer
                    | Frame::Garbage(_)
                    | Frame::NotUtf8 => Expect::default(),
                };
                let input = if matches!(frame, Frame::Op1) {
                    Input::Op1
                } else {
                    Input::Other
                };
                (e, input)
            }
            Step::Advance(ms) => {
                let target = now.saturating_add(Duration::from_millis(ms));
                let mut wakes = 0;
                while let Some(deadline) = self.m.poll_timeout().filter(|d| *d <= target) {
                    wakes += 1;
                    self.check(wakes < 10_000, || "10000 wake-ups in one advance".into());
                    self.wake(deadline);
                }
                self.now = target;
                self.model.advance(target);
                return;
            }
            Step::Jump(secs) => {
                let target = now.saturating_add(Duration::from_secs(secs));
                self.log.push(format!("[{now}] {label}"));
                self.wake(target);
                return;
            }
            Step::TransportLoss => {
                self.m.handle_closed(now, None);
                (self.model.on_closed(None), Input::Other)
            }
            Step::ServerClose(code) => {
                self.m
                    .handle_closed(now, Some(CloseFrame { code, reason: "" }));
                (self.model.on_closed(Some(code)), Input::Other)
            }
            Step::Command { oversize } => {
                let queued = self.m.queued_commands();
                let result = self.m.send(now, presence(oversize));
                let ok = match result {
                    Err(CommandError::Stopped) => was_terminal,
                    _ if was_terminal => false,
                    Err(CommandError::PayloadTooLarge { .. }) => oversize,
                    _ if oversize => false,
                    Err(CommandError::QueueFull { capacity }) => {
                        capacity == Limits::default().command_queue && queued == capacity
                    }
                    Ok(()) => true,
                    Err(_) => false,
                };
                self.check(ok, || format!("send returned {result:?}"));
                (Expect::default(), Input::Other)
            }
            Step::Grant => {
                let result = self.m.grant_identify(now);
                let (e, granted) = self.model.on_grant();
                let ok = match result {
                    Ok(()) => granted,
                    Err(CommandError::Stopped) => was_terminal,
                    Err(CommandError::IdentifyNotRequested) => !granted && !was_terminal,
                    Err(_) => false,
                };
                self.check(ok, || format!("grant_identify returned {result:?}"));
                (e, Input::Other)
            }
            Step::Shutdown { keep } => {
                let result = self.m.shutdown(now, keep);
                let expected = if was_terminal {
                    Err(CommandError::Stopped)
                } else {
                    Ok(())
                };
                self.check(result == expected, || {
                    format!("shutdown returned {result:?}, not {expected:?}")
                });
                (self.model.on_shutdown(keep), Input::Other)
            }
        };
        self.finish(&label, e, was_terminal, input);
    }
}

/// Milliseconds, rounded up (so that advancing by them reaches the deadline).
fn ceil_ms(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000) as u64
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// The machine follows the model, and the contract holds, after every step.
    #[test]
    fn the_machine_follows_the_model(setup in setup(), steps in proptest::collection::vec(step(), 1..120)) {
        let mut run = Run::new(setup);
        for step in steps {
            run.step(step);
        }
        // Then a well-behaved server: the machine recovers, unless it stopped for good.
        for _ in 0..30 {
            run.step(Step::Serve);
        }
        let phase = run.model.phase;
        run.check(phase == MPhase::Connected || phase.terminal(), || {
            format!("no recovery with a well-behaved server: {phase:?}")
        });
    }
}

/// The same setup and steps give the same outputs (the log records every output).
#[test]
fn a_run_is_deterministic() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (setup(), proptest::collection::vec(step(), 1..120));
    for _ in 0..16 {
        let (setup, steps) = strategy.new_tree(&mut runner).unwrap().current();
        let logs: Vec<Vec<String>> = (0..2)
            .map(|_| {
                let mut run = Run::new(setup);
                for &step in &steps {
                    run.step(step);
                }
                run.log
            })
            .collect();
        assert_eq!(logs[0], logs[1]);
    }
}
