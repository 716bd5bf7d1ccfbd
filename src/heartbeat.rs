//! Heartbeating: the interval, the first beat's jitter, ACK tracking, the zombie verdict and
//! latency.

use core::time::Duration;

use crate::config::{HeartbeatPolicy, Liveness};
use crate::time::Timestamp;

/// How many latency samples the moving average spans.
const LATENCY_SAMPLES: usize = 5;

/// Heartbeat round-trip times: the last one and a short moving average.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Recent samples in microseconds (a ring; `count` of them are valid).
    samples: [u32; LATENCY_SAMPLES],
    count: u8,
    next: u8,
    last: u32,
}

impl Latency {
    /// The most recent round trip, if any beat was acknowledged yet.
    pub fn last(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(u64::from(self.last)))
    }

    /// The mean of the last few round trips (up to five).
    pub fn average(&self) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let valid = &self.samples[..usize::from(self.count)];
        let sum: u64 = valid.iter().map(|&s| u64::from(s)).sum();
        Some(Duration::from_micros(sum / u64::from(self.count)))
    }

    fn record(&mut self, rtt: Duration) {
        let micros = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX);
        self.last = micros;
        self.samples[usize::from(self.next)] = micros;
        self.next = (self.next + 1) % LATENCY_SAMPLES as u8;
        self.count = (self.count + 1).min(LATENCY_SAMPLES as u8);
    }
}

/// How many answers to the server's op-1 requests may go out back to back: a server that
/// asks now and then is always answered at once.
pub const OP1_ANSWER_BURST: u32 = 5;

/// How fast the op-1 answer budget refills: one answer per this much time. A server asking
/// faster than this for longer than [`OP1_ANSWER_BURST`] requests (a storm) has the extra
/// requests coalesced into the next scheduled beat.
pub const OP1_ANSWER_REFILL: Duration = Duration::from_secs(1);

/// The budget for answering op 1: a bucket of [`OP1_ANSWER_BURST`] answers that refills one
/// answer per [`OP1_ANSWER_REFILL`], kept as the one time at which it is full again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AnswerBudget {
    full_at: Timestamp,
}

impl AnswerBudget {
    /// Takes one answer from the budget at `now`, if one is left.
    pub(crate) fn try_take(&mut self, now: Timestamp) -> bool {
        let full_at = self.full_at.max(now);
        // One more answer fits while the bucket is at most `burst - 1` refills from full.
        let headroom = OP1_ANSWER_REFILL.saturating_mul(OP1_ANSWER_BURST - 1);
        if full_at.saturating_duration_since(now) > headroom {
            return false;
        }
        self.full_at = full_at.saturating_add(OP1_ANSWER_REFILL);
        true
    }
}

/// What to do when a beat is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BeatVerdict {
    /// Send a heartbeat.
    Beat,
    /// Too many beats went unanswered: the connection is a zombie.
    Zombie,
}

/// Heartbeat state of the current connection.
///
/// Two questions are kept apart: whether the last *scheduled* beat was acknowledged (the
/// zombie verdict, asked when the next one is due) and which beat an ACK times (latency).
/// An answer to op 1 is timed but not judged: it may go out just before a scheduled beat,
/// with no interval left for its ACK to arrive.
#[derive(Clone, Debug, Default)]
pub(crate) struct Heartbeat {
    interval: Option<Duration>,
    /// The last scheduled beat has had no ACK yet.
    awaiting_ack: bool,
    /// A beat (scheduled or an op-1 answer) sent at `last_sent` waits for the ACK that
    /// times its round trip.
    timing: bool,
    unanswered: u32,
    last_sent: Option<Timestamp>,
    /// When the last scheduled beat was sent (what a zombie verdict is about).
    last_scheduled: Option<Timestamp>,
    heard_since_beat: bool,
    /// When the last message arrived on this connection (proof of life under
    /// [`Liveness::AnyMessage`]).
    last_heard: Option<Timestamp>,
    /// What is left of the op-1 answer budget.
    answers: AnswerBudget,
    latency: Latency,
}

impl Heartbeat {
    /// The shortest and longest interval accepted from Hello; outside values are clamped so
    /// that a hostile Hello cannot make the machine flood or never beat.
    pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
    pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(600);

    /// A new connection: forget beats in flight (latency history stays).
    pub(crate) fn reset(&mut self) {
        let latency = self.latency;
        *self = Heartbeat {
            latency,
            ..Heartbeat::default()
        };
    }

    /// Hello set the interval; returns the clamped interval and the first beat's time:
    /// `now + interval * jitter`, `jitter` in `[0, 1)`.
    pub(crate) fn start(
        &mut self,
        interval: Duration,
        jitter: f64,
        now: Timestamp,
    ) -> (Duration, Timestamp) {
        let interval = interval.clamp(Self::MIN_INTERVAL, Self::MAX_INTERVAL);
        self.interval = Some(interval);
        (
            interval,
            now.saturating_add(interval.mul_f64(jitter.clamp(0.0, 1.0))),
        )
    }

    pub(crate) fn interval(&self) -> Option<Duration> {
        self.interval
    }

    pub(crate) fn latency(&self) -> Latency {
        self.latency
    }

    /// When the last scheduled beat was sent on this connection.
    pub(crate) fn last_scheduled(&self) -> Option<Timestamp> {
        self.last_scheduled
    }

    /// When the connection last proved alive by `policy`'s rule since it opened: an ACK
    /// under [`Liveness::AckOnly`] (the machine records those itself), any message under
    /// [`Liveness::AnyMessage`].
    pub(crate) fn last_heard(&self, policy: &HeartbeatPolicy) -> Option<Timestamp> {
        match policy.liveness {
            Liveness::AnyMessage => self.last_heard,
            Liveness::AckOnly => None,
        }
    }

    /// Whether any message arrived since the last scheduled beat.
    pub(crate) fn heard_since_beat(&self) -> bool {
        self.heard_since_beat
    }

    /// The server asked for a beat (op 1): whether the answer budget allows one now.
    pub(crate) fn may_answer(&mut self, now: Timestamp) -> bool {
        self.answers.try_take(now)
    }

    /// A scheduled beat is due: send it, or declare the connection dead.
    pub(crate) fn on_due(&mut self, policy: &HeartbeatPolicy) -> BeatVerdict {
        let answered = !self.awaiting_ack
            || (policy.liveness == Liveness::AnyMessage && self.heard_since_beat);
        if answered {
            self.unanswered = 0;
        } else {
            self.unanswered += 1;
            if self.unanswered >= policy.missed_acks_before_zombie {
                return BeatVerdict::Zombie;
            }
        }
        BeatVerdict::Beat
    }

    /// A scheduled beat was sent: the next due beat judges whether it was acknowledged.
    pub(crate) fn on_sent(&mut self, now: Timestamp) {
        self.awaiting_ack = true;
        self.heard_since_beat = false;
        self.last_scheduled = Some(now);
        self.timing = true;
        self.last_sent = Some(now);
    }

    /// An answer to op 1 was sent: its ACK is timed, but the zombie verdict still asks
    /// about the last scheduled beat (an answer sent just before the next scheduled beat
    /// has had no interval to be acknowledged in).
    pub(crate) fn on_answer_sent(&mut self, now: Timestamp) {
        self.timing = true;
        self.last_sent = Some(now);
    }

    /// Any message arrived at `now` (proof of life under [`Liveness::AnyMessage`]).
    #[inline(always)]
    pub(crate) fn on_message(&mut self, now: Timestamp) {
        self.heard_since_beat = true;
        self.last_heard = Some(now);
    }

    /// An ACK arrived; returns the round trip if a beat was awaiting it.
    pub(crate) fn on_ack(&mut self, now: Timestamp) -> Option<Duration> {
        self.unanswered = 0;
        self.awaiting_ack = false;
        if !core::mem::replace(&mut self.timing, false) {
            return None;
        }
        let rtt = now.saturating_duration_since(self.last_sent?);
        self.latency.record(rtt);
        Some(rtt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(missed: u32, liveness: Liveness) -> HeartbeatPolicy {
        HeartbeatPolicy {
            missed_acks_before_zombie: missed,
            liveness,
        }
    }

    #[test]
    fn one_missed_ack_is_a_zombie_by_default() {
        let mut hb = Heartbeat::default();
        let p = HeartbeatPolicy::default();
        assert_eq!(hb.on_due(&p), BeatVerdict::Beat);
        hb.on_sent(Timestamp::from_secs(1));
        assert_eq!(hb.on_due(&p), BeatVerdict::Zombie);
    }

    #[test]
    fn configurable_missed_acks_and_any_message_liveness() {
        let mut hb = Heartbeat::default();
        let p = policy(2, Liveness::AckOnly);
        hb.on_sent(Timestamp::ZERO);
        assert_eq!(hb.on_due(&p), BeatVerdict::Beat);
        hb.on_sent(Timestamp::from_secs(1));
        assert_eq!(hb.on_due(&p), BeatVerdict::Zombie);

        let mut hb = Heartbeat::default();
        let p = policy(1, Liveness::AnyMessage);
        hb.on_sent(Timestamp::ZERO);
        hb.on_message(Timestamp::from_secs(1));
        assert_eq!(hb.on_due(&p), BeatVerdict::Beat);
        assert_eq!(hb.last_heard(&p), Some(Timestamp::from_secs(1)));
        assert_eq!(hb.last_heard(&HeartbeatPolicy::default()), None);
    }

    #[test]
    fn an_op1_answer_is_timed_but_not_judged() {
        let mut hb = Heartbeat::default();
        let p = HeartbeatPolicy::default();
        hb.on_sent(Timestamp::ZERO);
        assert_eq!(
            hb.on_ack(Timestamp::from_millis(300)),
            Some(Duration::from_millis(300))
        );
        // op 1 just before the next scheduled beat; its ACK is still on the way.
        hb.on_answer_sent(Timestamp::from_millis(40_000));
        assert_eq!(hb.on_due(&p), BeatVerdict::Beat);
        hb.on_sent(Timestamp::from_millis(40_250));
        assert_eq!(hb.last_scheduled(), Some(Timestamp::from_millis(40_250)));
        // The answer's ACK comes: it proves life, and times the last beat sent.
        assert_eq!(
            hb.on_ack(Timestamp::from_millis(40_300)),
            Some(Duration::from_millis(50))
        );
        assert_eq!(hb.on_due(&p), BeatVerdict::Beat);
        // An unanswered scheduled beat is still a zombie, answers or not.
        hb.on_sent(Timestamp::from_millis(81_500));
        hb.on_answer_sent(Timestamp::from_millis(100_000));
        assert_eq!(hb.on_due(&p), BeatVerdict::Zombie);
    }

    #[test]
    fn the_op1_budget_allows_a_burst_then_refills() {
        let mut budget = AnswerBudget::default();
        let t = |ms| Timestamp::from_millis(ms);
        for _ in 0..OP1_ANSWER_BURST {
            assert!(budget.try_take(t(10_000)));
        }
        assert!(!budget.try_take(t(10_000)), "a storm is bounded");
        assert!(!budget.try_take(t(10_999)));
        assert!(budget.try_take(t(11_000)), "one refill a second");
        assert!(!budget.try_take(t(11_500)));
        // Quiet for a while: the whole burst is back, and no more.
        for _ in 0..OP1_ANSWER_BURST {
            assert!(budget.try_take(t(60_000)));
        }
        assert!(!budget.try_take(t(60_000)));
        // A server asking once a second is always answered.
        let mut budget = AnswerBudget::default();
        assert!((0..600).all(|i| budget.try_take(t(i * 1_000))));
    }

    #[test]
    fn latency_last_and_average() {
        let mut hb = Heartbeat::default();
        for (sent, acked) in [(0, 100), (1000, 1300), (2000, 2200)] {
            hb.on_sent(Timestamp::from_millis(sent));
            hb.on_ack(Timestamp::from_millis(acked));
        }
        assert_eq!(hb.latency().last(), Some(Duration::from_millis(200)));
        assert_eq!(hb.latency().average(), Some(Duration::from_millis(200)));
        assert_eq!(
            hb.on_ack(Timestamp::from_millis(3000)),
            None,
            "spurious ACK has no latency"
        );
        let (interval, first) = hb.start(Duration::from_millis(10), 0.5, Timestamp::ZERO);
        assert_eq!(interval, Duration::from_secs(1));
        assert_eq!(first, Timestamp::from_millis(500));
    }
}
