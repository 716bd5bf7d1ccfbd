//! A reference model of the gateway protocol, written from PROTOCOL.md and the documented
//! policies (not from the machine's code): the phase, the session (sequence, last ACK,
//! whether it has a resume URL), whether Hello arrived on this connection, the heartbeat
//! schedule, and the failure counters.
//!
//! Every transition returns an [`Expect`]: what the machine must output for that input.
//! Random choices the model cannot know (heartbeat jitter, backoff jitter, the op-9 wait) are
//! learned from the machine's outputs and checked against the allowed range with
//! [`Model::learn_first_beat`] and [`Model::learn_reconnect`].
//!
//! The policy (timeouts, backoff, heartbeat and session policy) is whatever configuration the
//! test generated: the model reads the same numbers the machine does.
#![allow(dead_code)]

use std::time::Duration;

use discord_gateway_proto::{Backoff, BackoffSchedule, Timestamp};

/// The policy numbers the model follows (the machine's config, read once).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub auto_grant: bool,
    pub connect_timeout: Duration,
    pub hello_timeout: Duration,
    pub ready_timeout: Duration,
    pub stale_after: Duration,
    pub max_failed_resumes: u32,
    /// The reconnect policy: attempt 0 (after a healthy connection) waits `first_delay`;
    /// attempt n >= 1 waits per the schedule (exponential: `d = initial * 2^(n-1)` capped at
    /// `max`, in `[d/2, d)` with jitter; linear: `initial + step * (n-1)` capped at `max`).
    pub backoff: Backoff,
    /// op 9 `false`: wait in `[min, max)` before identifying again (or the backoff, if longer).
    pub invalid_session_delay: (Duration, Duration),
    /// Beats in a row without an ACK before the zombie verdict.
    pub missed_acks_before_zombie: u32,
    /// Any message after a beat counts as its ACK (`Liveness::AnyMessage`).
    pub any_message_liveness: bool,
}

/// op-1 answers: a burst of this many, refilled one per [`OP1_REFILL`].
pub const OP1_BURST: u32 = 5;
pub const OP1_REFILL: Duration = Duration::from_secs(1);
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MPhase {
    Disconnected,
    Connecting,
    AwaitingHello,
    AwaitingGrant,
    Identifying,
    Resuming,
    Connected,
    Closed,
    Fatal,
}

impl MPhase {
    pub fn socket_open(self) -> bool {
        matches!(
            self,
            MPhase::AwaitingHello
                | MPhase::AwaitingGrant
                | MPhase::Identifying
                | MPhase::Resuming
                | MPhase::Connected
        )
    }

    pub fn after_hello(self) -> bool {
        self.socket_open() && self != MPhase::AwaitingHello
    }

    pub fn terminal(self) -> bool {
        matches!(self, MPhase::Closed | MPhase::Fatal)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MSession {
    pub seq: u64,
    /// The last proof of life the liveness policy accepts (READY, RESUMED, an ACK; under
    /// `Liveness::AnyMessage`, any message): the stale cutoff counts from here.
    pub last_ack: Timestamp,
    pub has_resume_url: bool,
}

/// Where a connection must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Main,
    ResumeUrl,
}

/// An op-1 answer: required, allowed (the budget is nearly used), or forbidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Op1 {
    #[default]
    MustNot,
    May,
    Must,
}

/// The reconnect the machine must announce (`Event::Disconnected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reconnect {
    /// The delay's allowed range: `[min, max)`, or `[min, max]` when `max_inclusive`
    /// (`min == max` inclusive: exactly that; zero: at once).
    pub min: Duration,
    pub max: Duration,
    pub max_inclusive: bool,
}

impl Reconnect {
    fn exactly(d: Duration) -> Self {
        Reconnect {
            min: d,
            max: d,
            max_inclusive: true,
        }
    }

    /// A draw from `[min, max)`, or `min` when that range is empty (`Prng::duration_between`).
    fn drawn(min: Duration, max: Duration) -> Self {
        if max <= min {
            Self::exactly(min)
        } else {
            Reconnect {
                min,
                max,
                max_inclusive: false,
            }
        }
    }

    /// The range of the larger of two independent draws.
    fn max_of(self, other: Reconnect) -> Self {
        let (sup, inclusive) = match self.max.cmp(&other.max) {
            std::cmp::Ordering::Greater => (self.max, self.max_inclusive),
            std::cmp::Ordering::Less => (other.max, other.max_inclusive),
            std::cmp::Ordering::Equal => (self.max, self.max_inclusive || other.max_inclusive),
        };
        Reconnect {
            min: self.min.max(other.min),
            max: sup,
            max_inclusive: inclusive,
        }
    }

    /// The machine connects in the same call: the delay can only be zero.
    fn at_once(self) -> bool {
        self.max.is_zero()
    }

    fn allows(self, delay: Duration) -> bool {
        delay >= self.min && (delay < self.max || (self.max_inclusive && delay == self.max))
    }
}

/// What the machine must output for one input.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// A `Close` with a code that keeps the session (`Some(false)`), or 1000 (`Some(true)`).
    pub close: Option<bool>,
    pub connect: Option<Target>,
    pub identify: bool,
    /// Resume with this sequence.
    pub resume: Option<u64>,
    pub identify_requested: bool,
    pub scheduled_beat: bool,
    pub op1: Op1,
    pub ready: bool,
    pub resumed: bool,
    pub disconnected: Option<Reconnect>,
    pub fatal: bool,
    /// `Event::Shutdown { session_kept }`.
    pub shutdown: Option<bool>,
    /// `Event::Hello`: the first beat is learned from the decision trace.
    pub hello: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Keep,
    Drop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Backoff,
    InvalidSession,
}

/// What ended a connection, where the rules tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// op 7: the server asked.
    Op7,
    /// The server closed with 4002.
    Close4002,
    Other,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub policy: Policy,
    pub now: Timestamp,
    pub phase: MPhase,
    pub session: Option<MSession>,
    pub to_resume_url: bool,
    /// The next resume goes to the main URL (the last attempt, on the resume URL, ended
    /// before Hello).
    pub resume_via_main: bool,
    pub attempts: u32,
    pub failed_resumes: u32,
    /// Identifies in a row the server closed with 4002.
    pub undecodable_identifies: u32,
    pub connect_deadline: Option<Timestamp>,
    pub hello_deadline: Option<Timestamp>,
    pub ready_deadline: Option<Timestamp>,
    pub reconnect_at: Option<Timestamp>,
    pub interval: Option<Duration>,
    pub beat_due: Option<Timestamp>,
    pub awaiting_ack: bool,
    /// The op-1 answers sent on this connection (the budget is a bucket over them).
    pub op1_answers: Vec<Timestamp>,
    /// Scheduled beats in a row that found the previous one unanswered.
    pub unanswered: u32,
    /// A message arrived since the last beat was sent.
    pub heard_since_beat: bool,
}

impl Model {
    /// A new machine: it connects at once.
    pub fn new(policy: Policy, now: Timestamp) -> (Self, Expect) {
        let mut m = Model {
            policy,
            now,
            phase: MPhase::Disconnected,
            session: None,
            to_resume_url: false,
            resume_via_main: false,
            attempts: 0,
            failed_resumes: 0,
            undecodable_identifies: 0,
            connect_deadline: None,
            hello_deadline: None,
            ready_deadline: None,
            reconnect_at: None,
            interval: None,
            beat_due: None,
            awaiting_ack: false,
            op1_answers: Vec::new(),
            unanswered: 0,
            heard_since_beat: false,
        };
        let mut e = Expect::default();
        m.connect(&mut e);
        (m, e)
    }

    /// The earliest time the machine must act by itself.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        [
            self.connect_deadline,
            self.hello_deadline,
            self.ready_deadline,
            self.reconnect_at,
            self.beat_due,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn is_stale(&self, at: Timestamp) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| at.saturating_duration_since(s.last_ack) > self.policy.stale_after)
    }

    fn clear_connection(&mut self) {
        self.connect_deadline = None;
        self.hello_deadline = None;
        self.ready_deadline = None;
        self.reconnect_at = None;
        self.interval = None;
        self.beat_due = None;
        self.awaiting_ack = false;
        self.op1_answers.clear();
        self.unanswered = 0;
        self.heard_since_beat = false;
    }

    /// Opens a connection: a stale session is dropped first; resumes go to the resume URL,
    /// unless the last attempt there ended before Hello (then to the main URL).
    fn connect(&mut self, e: &mut Expect) {
        if self.is_stale(self.now) {
            self.session = None;
        }
        self.to_resume_url =
            !self.resume_via_main && self.session.as_ref().is_some_and(|s| s.has_resume_url);
        self.clear_connection();
        self.phase = MPhase::Connecting;
        self.connect_deadline = Some(self.now.saturating_add(self.policy.connect_timeout));
        e.connect = Some(if self.to_resume_url {
            Target::ResumeUrl
        } else {
            Target::Main
        });
    }

    fn backoff(&self, attempt: u32) -> Reconnect {
        let b = &self.policy.backoff;
        if attempt == 0 {
            return Reconnect::exactly(b.first_delay);
        }
        let n = attempt - 1;
        match b.schedule {
            BackoffSchedule::Exponential {
                initial,
                max,
                jitter,
            } => {
                let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
                let full = initial.checked_mul(factor).unwrap_or(max).min(max);
                if jitter {
                    Reconnect::drawn(full / 2, full)
                } else {
                    Reconnect::exactly(full)
                }
            }
            BackoffSchedule::Linear { initial, step, max } => Reconnect::exactly(
                step.checked_mul(n)
                    .and_then(|s| s.checked_add(initial))
                    .unwrap_or(max)
                    .min(max),
            ),
            other => panic!("a backoff schedule the model does not know: {other:?}"),
        }
    }

    /// The connection ends. `machine_closes`: the machine closes the socket itself (so it
    /// must output `Close`), as opposed to the server having closed it.
    fn lose(&mut self, fate: Fate, wait: Wait, machine_closes: bool, why: Why, e: &mut Expect) {
        let was = self.phase;
        let server_asked = why == Why::Op7;
        if was == MPhase::Identifying && why != Why::Close4002 {
            self.undecodable_identifies = 0;
        }
        let mut drop = fate == Fate::Drop;
        // The breaker counts resumes the server received and did not complete (op 7 aside).
        if was == MPhase::Resuming && !server_asked {
            self.failed_resumes += 1;
            if self.failed_resumes >= self.policy.max_failed_resumes && self.session.is_some() {
                drop = true; // circuit breaker
            }
        }
        // An attempt that ends before Hello (op 7 aside) keeps the session; the next one
        // goes to the other URL.
        let before_hello = matches!(was, MPhase::Connecting | MPhase::AwaitingHello);
        self.resume_via_main = before_hello && !server_asked && self.to_resume_url;
        if drop {
            self.session = None;
            self.failed_resumes = 0;
        }
        if machine_closes && (was == MPhase::Connecting || was.socket_open()) {
            e.close = Some(false);
        }
        self.clear_connection();
        if self
            .policy
            .backoff
            .max_attempts
            .is_some_and(|max| self.attempts >= max)
        {
            self.phase = MPhase::Fatal;
            e.fatal = true;
            return;
        }
        let range = match wait {
            Wait::Backoff => self.backoff(self.attempts),
            Wait::InvalidSession => {
                // The op-9 wait, but never shorter than this attempt's backoff.
                let (min, max) = self.policy.invalid_session_delay;
                Reconnect::drawn(min, max).max_of(self.backoff(self.attempts))
            }
        };
        self.attempts = self.attempts.saturating_add(1);
        e.disconnected = Some(range);
        self.phase = MPhase::Disconnected;
        if range.at_once() {
            self.connect(e);
        }
        // Otherwise `learn_reconnect` sets `reconnect_at` from the machine's announcement.
    }

    /// The machine announced its reconnect time: check it against the policy and keep it.
    /// Returns the expected `resume` flag of the announcement.
    pub fn learn_reconnect(&mut self, at: Timestamp, r: Reconnect) -> Result<bool, String> {
        let delay = at.saturating_duration_since(self.now);
        if !(r.allows(delay) && at >= self.now) || (delay.is_zero() && !r.at_once()) {
            // (A zero delay is only expected when the range allows nothing else: the
            // machine then connects in the same call.)
            return Err(format!("reconnect at {at} (in {delay:?}) outside {r:?}"));
        }
        if self.phase == MPhase::Disconnected {
            self.reconnect_at = Some(at);
        }
        Ok(self.session.is_some() && !self.is_stale(at))
    }

    /// The machine chose its first beat: it must fall in `[hello, hello + interval)`.
    pub fn learn_first_beat(&mut self, at: Timestamp) -> Result<(), String> {
        let interval = self.interval.ok_or("first beat without an interval")?;
        if at < self.now || at >= self.now.saturating_add(interval) {
            return Err(format!(
                "first beat at {at} outside [{}, +{interval:?})",
                self.now
            ));
        }
        self.beat_due = Some(at);
        Ok(())
    }

    fn live(&mut self) {
        self.phase = MPhase::Connected;
        self.attempts = 0;
        self.failed_resumes = 0;
        self.undecodable_identifies = 0;
        self.resume_via_main = false;
        self.ready_deadline = None;
        if let Some(s) = &mut self.session {
            s.last_ack = self.now;
        }
    }

    fn observe(&mut self, seq: u64) {
        if let Some(s) = &mut self.session {
            s.seq = s.seq.max(seq);
        }
    }

    fn send_identify(&mut self, e: &mut Expect) {
        e.identify = true;
        self.phase = MPhase::Identifying;
        self.ready_deadline = Some(self.now.saturating_add(self.policy.ready_timeout));
    }

    // ----- inputs -----

    pub fn advance(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
    }

    pub fn on_connected(&mut self) -> Expect {
        if self.phase == MPhase::Connecting {
            self.phase = MPhase::AwaitingHello;
            self.connect_deadline = None;
            self.hello_deadline = Some(self.now.saturating_add(self.policy.hello_timeout));
        }
        Expect::default()
    }

    /// The socket closed: `None` = transport lost (or the attempt failed).
    pub fn on_closed(&mut self, code: Option<u16>) -> Expect {
        let mut e = Expect::default();
        if !(self.phase == MPhase::Connecting || self.phase.socket_open()) {
            return e;
        }
        if self.phase == MPhase::Connecting && code.is_some() {
            // A late close frame of the socket closed before: nothing changes.
            return e;
        }
        if self.phase == MPhase::Identifying && code == Some(4002) {
            // The server cannot read the Identify: twice in a row is fatal.
            self.undecodable_identifies += 1;
            if self.undecodable_identifies >= 2 {
                self.phase = MPhase::Fatal;
                self.clear_connection();
                e.fatal = true;
                return e;
            }
        }
        let why = if code == Some(4002) {
            Why::Close4002
        } else {
            Why::Other
        };
        let fate = match code {
            None => Fate::Keep,
            Some(4004 | 4010..=4014) => {
                self.phase = MPhase::Fatal;
                self.clear_connection();
                e.fatal = true;
                return e;
            }
            Some(4003 | 4007 | 4009) => Fate::Drop,
            Some(_) => Fate::Keep,
        };
        self.lose(fate, Wait::Backoff, false, why, &mut e);
        e
    }

    pub fn on_hello(&mut self, interval_ms: Option<u64>) -> Expect {
        let mut e = Expect::default();
        if self.phase != MPhase::AwaitingHello {
            return e;
        }
        let Some(ms) = interval_ms.filter(|&ms| ms > 0) else {
            self.lose(Fate::Keep, Wait::Backoff, true, Why::Other, &mut e);
            return e;
        };
        self.hello_deadline = None;
        self.interval = Some(Duration::from_millis(ms).clamp(MIN_INTERVAL, MAX_INTERVAL));
        e.hello = true;
        if let Some(s) = &self.session {
            e.resume = Some(s.seq);
            self.phase = MPhase::Resuming;
            self.ready_deadline = Some(self.now.saturating_add(self.policy.ready_timeout));
        } else if self.policy.auto_grant {
            self.send_identify(&mut e);
        } else {
            e.identify_requested = true;
            self.phase = MPhase::AwaitingGrant;
        }
        e
    }

    /// READY; `valid`: it has a session id.
    pub fn on_ready(&mut self, seq: u64, valid: bool, resume_url: bool) -> Expect {
        let mut e = Expect::default();
        match self.phase {
            MPhase::Identifying if valid => {
                self.session = Some(MSession {
                    seq,
                    last_ack: self.now,
                    has_resume_url: resume_url,
                });
                self.live();
                e.ready = true;
            }
            MPhase::Identifying => self.lose(Fate::Drop, Wait::Backoff, true, Why::Other, &mut e),
            MPhase::Resuming => self.replayed(seq),
            MPhase::Connected => self.observe(seq),
            _ => {}
        }
        e
    }

    /// A dispatch replayed before RESUMED: progress, so the READY/RESUMED (silence) timeout
    /// counts again from now.
    fn replayed(&mut self, seq: u64) {
        self.observe(seq);
        self.ready_deadline = Some(self.now.saturating_add(self.policy.ready_timeout));
    }

    pub fn on_resumed(&mut self, seq: u64) -> Expect {
        let mut e = Expect::default();
        match self.phase {
            MPhase::Resuming => {
                self.observe(seq);
                self.live();
                e.resumed = true;
            }
            MPhase::Connected => self.observe(seq),
            _ => {}
        }
        e
    }

    pub fn on_dispatch(&mut self, seq: u64) -> Expect {
        match self.phase {
            MPhase::Resuming => self.replayed(seq),
            MPhase::Connected => self.observe(seq),
            _ => {}
        }
        Expect::default()
    }

    /// A text message arrived (before it is acted on): proof of life under
    /// `Liveness::AnyMessage`, for the zombie verdict and for the stale cutoff alike.
    pub fn on_message(&mut self) {
        if self.phase.socket_open() {
            self.heard_since_beat = true;
            if self.policy.any_message_liveness {
                let now = self.now;
                if let Some(s) = &mut self.session {
                    s.last_ack = now;
                }
            }
        }
    }

    pub fn on_ack(&mut self) -> Expect {
        if self.phase.after_hello() {
            self.awaiting_ack = false;
            self.unanswered = 0;
            let now = self.now;
            if let Some(s) = &mut self.session {
                s.last_ack = now;
            }
        }
        Expect::default()
    }

    /// op 1. `sent_recently`: frames sent on this connection in the last 61 s.
    pub fn on_op1(&mut self, sent_recently: usize) -> Expect {
        let mut e = Expect::default();
        if !self.phase.after_hello() {
            return e;
        }
        e.op1 = if !self.op1_budget_left() {
            Op1::MustNot
        } else if sent_recently + 3 < 120 {
            Op1::Must
        } else {
            Op1::May
        };
        e
    }

    /// Whether the bucket (OP1_BURST answers, one more per OP1_REFILL) has an answer left:
    /// replayed from the answers sent, the bucket starting full.
    fn op1_budget_left(&self) -> bool {
        let burst = f64::from(OP1_BURST);
        let refill = |tokens: f64, from: Option<Timestamp>, to: Timestamp| match from {
            Some(from) => (tokens
                + to.saturating_duration_since(from).as_secs_f64() / OP1_REFILL.as_secs_f64())
            .min(burst),
            None => tokens,
        };
        let mut tokens = burst;
        let mut last = None;
        for &at in &self.op1_answers {
            tokens = refill(tokens, last, at) - 1.0;
            last = Some(at);
        }
        refill(tokens, last, self.now) >= 1.0 - 1e-9
    }

    /// The machine answered an op 1 (learned: `May` leaves it to the machine). The answer
    /// is timed by its ACK but is not what the next zombie verdict judges: only scheduled
    /// beats are (an answer may go out just before the next scheduled beat).
    pub fn op1_answered(&mut self) {
        self.op1_answers.push(self.now);
    }

    pub fn on_reconnect_request(&mut self) -> Expect {
        let mut e = Expect::default();
        if self.phase.socket_open() {
            self.lose(Fate::Keep, Wait::Backoff, true, Why::Op7, &mut e);
        }
        e
    }

    /// op 9 with `d` = `Some(bool)`, or `None` when `d` is not a boolean (not resumable).
    pub fn on_invalid_session(&mut self, resumable: Option<bool>) -> Expect {
        let mut e = Expect::default();
        if !self.phase.after_hello() {
            return e;
        }
        if resumable == Some(true) {
            self.lose(Fate::Keep, Wait::Backoff, true, Why::Other, &mut e);
        } else {
            self.lose(Fate::Drop, Wait::InvalidSession, true, Why::Other, &mut e);
        }
        e
    }

    pub fn on_grant(&mut self) -> (Expect, bool) {
        let mut e = Expect::default();
        if self.phase == MPhase::AwaitingGrant {
            self.send_identify(&mut e);
            return (e, true);
        }
        (e, false)
    }

    pub fn on_shutdown(&mut self, keep: bool) -> Expect {
        let mut e = Expect::default();
        if self.phase.terminal() {
            return e;
        }
        if self.phase == MPhase::Connecting || self.phase.socket_open() {
            e.close = Some(!keep);
        }
        if !keep {
            self.session = None;
        }
        self.clear_connection();
        self.phase = MPhase::Closed;
        e.shutdown = Some(self.session.is_some());
        e
    }

    /// `handle_timeout(now)`: each expired timer fires once. The stall timeouts are looked
    /// at before the heartbeat (a connection that stalled ends without a last beat).
    pub fn on_timeout(&mut self, now: Timestamp) -> Expect {
        self.advance(now);
        let mut e = Expect::default();
        let due = |d: Option<Timestamp>| d.is_some_and(|d| d <= now);
        let stalled = match self.phase {
            MPhase::Connecting => due(self.connect_deadline),
            MPhase::AwaitingHello => due(self.hello_deadline),
            MPhase::Identifying | MPhase::Resuming => due(self.ready_deadline),
            _ => false,
        };
        if stalled {
            self.lose(Fate::Keep, Wait::Backoff, true, Why::Other, &mut e);
            return e;
        }
        if self.phase.after_hello() && due(self.beat_due) {
            let answered =
                !self.awaiting_ack || (self.policy.any_message_liveness && self.heard_since_beat);
            if answered {
                self.unanswered = 0;
            } else {
                self.unanswered += 1;
                if self.unanswered >= self.policy.missed_acks_before_zombie {
                    // Too many beats unanswered: zombie. Close and reconnect to resume.
                    self.lose(Fate::Keep, Wait::Backoff, true, Why::Other, &mut e);
                    return e;
                }
            }
            let interval = self.interval.expect("interval after hello");
            let deadline = self.beat_due.expect("due");
            let mut next = deadline.saturating_add(interval);
            if next <= now {
                next = now.saturating_add(interval);
            }
            self.beat_due = Some(next);
            self.awaiting_ack = true;
            self.heard_since_beat = false;
            e.scheduled_beat = true;
        }
        if self.phase == MPhase::Disconnected && due(self.reconnect_at) {
            self.connect(&mut e);
        }
        e
    }
}
