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

/// What to do when a beat is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BeatVerdict {
    /// Send a heartbeat.
    Beat,
    /// Too many beats went unanswered: the connection is a zombie.
    Zombie,
}

/// Heartbeat state of the current connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct Heartbeat {
    interval: Option<Duration>,
    awaiting_ack: bool,
    unanswered: u32,
    last_sent: Option<Timestamp>,
    heard_since_beat: bool,
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

    /// When the last beat was sent on this connection.
    pub(crate) fn last_sent(&self) -> Option<Timestamp> {
        self.last_sent
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

    /// A beat (scheduled or asked for by op 1) was sent.
    pub(crate) fn on_sent(&mut self, now: Timestamp) {
        self.awaiting_ack = true;
        self.heard_since_beat = false;
        self.last_sent = Some(now);
    }

    /// Any message arrived (proof of life under [`Liveness::AnyMessage`]).
    pub(crate) fn on_message(&mut self) {
        self.heard_since_beat = true;
    }

    /// An ACK arrived; returns the round trip if a beat was awaiting it.
    pub(crate) fn on_ack(&mut self, now: Timestamp) -> Option<Duration> {
        self.unanswered = 0;
        if !core::mem::replace(&mut self.awaiting_ack, false) {
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
        hb.on_message();
        assert_eq!(hb.on_due(&p), BeatVerdict::Beat);
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
