//! Time as the driver tells it: a crate-owned monotonic [`Timestamp`] and the machine's
//! table of named timers.
//!
//! The crate never reads a clock. Every input carries a `now` chosen by the driver, counted
//! from any origin it likes (process start, the Unix epoch, zero in a test).

use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Serialize};

/// A point in time, in microseconds since an origin the driver picks; signed, so that a
/// time before the origin (a restored session's last ACK) can be expressed.
///
/// Timestamps only need to be monotonic within one driver; the machine clamps a `now` that
/// goes backwards to the latest one it has seen. Build one from a plain number with
/// [`Timestamp::from_micros`], [`Timestamp::from_millis`] or [`Timestamp::from_secs`], or,
/// with the `std` feature, from a `std::time::Instant` through [`InstantOrigin`].
///
/// The inputs' `now` are at or after the origin (the machine takes an earlier one as the
/// origin itself); times before it exist for the past, such as a saved
/// [`Session`](crate::Session) older than the process, restored with
/// [`Session::with_ack_age`](crate::Session::with_ack_age) whatever the driver's clock says.
///
/// Serialized as the signed number of microseconds (recordings and sessions saved when it
/// was unsigned read the same).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The origin: zero microseconds.
    pub const ZERO: Timestamp = Timestamp(0);
    /// The latest representable time (292,000 years after the origin); arithmetic saturates
    /// here instead of overflowing.
    pub const MAX: Timestamp = Timestamp(i64::MAX);
    /// The earliest representable time (292,000 years before the origin); arithmetic
    /// saturates here.
    pub const MIN: Timestamp = Timestamp(i64::MIN);

    /// A timestamp `micros` microseconds after the origin (saturating at [`Timestamp::MAX`]).
    pub const fn from_micros(micros: u64) -> Self {
        if micros > i64::MAX as u64 {
            Timestamp::MAX
        } else {
            Timestamp(micros as i64)
        }
    }

    /// A timestamp `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp::from_micros(millis.saturating_mul(1_000))
    }

    /// A timestamp `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp::from_micros(secs.saturating_mul(1_000_000))
    }

    /// A timestamp `micros` microseconds from the origin, negative before it.
    pub const fn from_signed_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the origin (zero for a time before it).
    pub const fn as_micros(self) -> u64 {
        if self.0 < 0 {
            0
        } else {
            self.0 as u64
        }
    }

    /// Microseconds from the origin, negative before it.
    pub const fn as_signed_micros(self) -> i64 {
        self.0
    }

    /// Whole milliseconds since the origin (zero for a time before it).
    pub const fn as_millis(self) -> u64 {
        self.as_micros() / 1_000
    }

    /// The time elapsed since the origin, as a [`Duration`] (zero for a time before it).
    pub const fn since_origin(self) -> Duration {
        Duration::from_micros(self.as_micros())
    }

    /// `self + duration`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_add(micros(duration)))
    }

    /// `self - duration`, saturating at [`Timestamp::MIN`]: before the origin if `duration`
    /// is longer than the time since it.
    pub fn saturating_sub(self, duration: Duration) -> Self {
        Timestamp(self.0.saturating_sub(micros(duration)))
    }

    /// How long after `earlier` this timestamp is; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        let micros = i128::from(self.0) - i128::from(earlier.0);
        Duration::from_micros(u64::try_from(micros.max(0)).unwrap_or(u64::MAX))
    }
}

/// `duration` in microseconds, saturating.
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Timestamp {
    /// Seconds from the origin with millisecond precision, e.g. `41.250s` (`-119.700s`
    /// before it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.unsigned_abs() / 1_000;
        let sign = if self.0 <= -1_000 { "-" } else { "" };
        write!(f, "{sign}{}.{:03}s", millis / 1_000, millis % 1_000)
    }
}

/// Maps `std::time::Instant` values to [`Timestamp`]s, relative to a fixed origin instant.
///
/// Create one per driver from the instant the driver starts, and call
/// [`InstantOrigin::timestamp`] with the current instant before each machine call. The crate
/// itself never reads the clock.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy)]
pub struct InstantOrigin {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl InstantOrigin {
    /// An origin at `origin`; timestamps count from it.
    pub fn new(origin: std::time::Instant) -> Self {
        InstantOrigin { origin }
    }

    /// The timestamp of `instant` (before the origin for instants before it).
    pub fn timestamp(&self, instant: std::time::Instant) -> Timestamp {
        match instant.checked_duration_since(self.origin) {
            Some(after) => Timestamp::ZERO.saturating_add(after),
            None => Timestamp::ZERO.saturating_sub(self.origin.duration_since(instant)),
        }
    }

    /// The instant at which `timestamp` falls, for sleeping until a deadline (the origin for
    /// a timestamp before it).
    pub fn instant(&self, timestamp: Timestamp) -> std::time::Instant {
        self.origin + timestamp.since_origin()
    }
}

/// The named timers of one machine.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) enum Timer {
    /// The socket must open before this.
    Connect,
    /// Hello must arrive before this.
    Hello,
    /// READY or RESUMED must arrive before this.
    Ready,
    /// The next heartbeat is due.
    Heartbeat,
    /// Reconnect (after backoff or the invalid-session wait).
    Reconnect,
    /// The command queue may send again (rate limiter slot frees).
    CommandQueue,
}

impl Timer {
    pub(crate) const ALL: [Timer; 6] = [
        Timer::Connect,
        Timer::Hello,
        Timer::Ready,
        Timer::Heartbeat,
        Timer::Reconnect,
        Timer::CommandQueue,
    ];
}

/// One table of named timers; the earliest armed deadline wins.
///
/// A round of firing ([`begin_round`](Self::begin_round), then
/// [`pop_expired`](Self::pop_expired) until `None`, then [`end_round`](Self::end_round))
/// fires only the timers that were armed before it began: a timer armed while the round
/// runs (by what an expired timer did) never fires in the same round, however early its
/// deadline, and one due already is moved just past the round's `now`. So one
/// `handle_timeout(t)` can never loop on timers it keeps re-arming, and leaves its next
/// deadline later than `t` (unless `t` is [`Timestamp::MAX`], past which time cannot move).
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Timestamp>; 6],
    /// Whether a round of firing is running.
    in_round: bool,
    /// Bit `timer as usize` is set when that timer was armed since the round began.
    armed_in_round: u8,
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Timestamp) {
        self.deadlines[timer as usize] = Some(at);
        if self.in_round {
            self.armed_in_round |= 1 << timer as usize;
        }
    }

    /// Starts a round of firing: the timers armed now are the only ones it may fire.
    pub(crate) fn begin_round(&mut self) {
        self.in_round = true;
        self.armed_in_round = 0;
    }

    /// Ends a round of firing at `now`: a timer armed during the round with a deadline at or
    /// before `now` is moved to just after it, so the next deadline is later than `now`.
    pub(crate) fn end_round(&mut self, now: Timestamp) {
        let after = now.saturating_add(Duration::from_micros(1));
        for timer in Timer::ALL {
            let slot = &mut self.deadlines[timer as usize];
            if self.armed_in_round & (1 << timer as usize) != 0 && slot.is_some_and(|at| at <= now)
            {
                *slot = Some(after);
            }
        }
        self.in_round = false;
        self.armed_in_round = 0;
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; 6];
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Timestamp> {
        self.deadlines[timer as usize]
    }

    /// The earliest armed deadline.
    #[inline]
    pub(crate) fn next(&self) -> Option<Timestamp> {
        // An unarmed timer counts as later than any deadline (even `Timestamp::MAX`): a
        // minimum with no branch per timer.
        const UNARMED: i128 = 1 << 64;
        let earliest = self
            .deadlines
            .iter()
            .map(|deadline| deadline.map_or(UNARMED, |at| i128::from(at.0)))
            .fold(UNARMED, i128::min);
        i64::try_from(earliest).ok().map(Timestamp)
    }

    /// Disarms and returns the first timer (in [`Timer::ALL`] order) whose deadline is at or
    /// before `now` and that was armed before the round began. Each expired timer fires
    /// once, however far `now` jumped.
    pub(crate) fn pop_expired(&mut self, now: Timestamp) -> Option<(Timer, Timestamp)> {
        let armed_in_round = self.armed_in_round;
        Timer::ALL
            .into_iter()
            .filter(|&timer| armed_in_round & (1 << timer as usize) == 0)
            .find_map(|timer| match self.deadlines[timer as usize] {
                Some(at) if at <= now => {
                    self.stop(timer);
                    Some((timer, at))
                }
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn timestamp_arithmetic_saturates() {
        assert_eq!(
            Timestamp::MAX.saturating_add(Duration::from_secs(1)),
            Timestamp::MAX
        );
        assert_eq!(Timestamp::MIN.saturating_sub(Duration::MAX), Timestamp::MIN);
        assert_eq!(Timestamp::from_micros(u64::MAX), Timestamp::MAX);
        assert_eq!(Timestamp::from_secs(u64::MAX), Timestamp::MAX);
        assert_eq!(
            Timestamp::from_secs(1).saturating_duration_since(Timestamp::from_secs(3)),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::MAX.saturating_duration_since(Timestamp::MIN),
            Duration::from_micros(u64::MAX)
        );
        assert_eq!(Timestamp::from_millis(41_250).to_string(), "41.250s");
    }

    /// A saved session's last ACK may be older than the driver's clock: it is a time before
    /// the origin, and durations across the origin are exact.
    #[test]
    fn a_time_before_the_origin_is_expressed() {
        let before = Timestamp::ZERO.saturating_sub(Duration::from_millis(119_700));
        assert!(before < Timestamp::ZERO);
        assert_eq!(before.as_signed_micros(), -119_700_000);
        assert_eq!(before, Timestamp::from_signed_micros(-119_700_000));
        assert_eq!(
            Timestamp::from_secs(5).saturating_duration_since(before),
            Duration::from_millis(124_700)
        );
        assert_eq!(before.to_string(), "-119.700s");
        assert_eq!(Timestamp::from_signed_micros(-999).to_string(), "0.000s");
        // The unsigned views stop at the origin.
        assert_eq!(before.as_micros(), 0);
        assert_eq!(before.since_origin(), Duration::ZERO);
    }

    /// Recordings and sessions saved while `Timestamp` was unsigned read the same, and a
    /// time before the origin round-trips.
    #[test]
    fn timestamps_serialize_as_plain_numbers() {
        let t: Timestamp = serde_json::from_str("41250000").unwrap();
        assert_eq!(t, Timestamp::from_millis(41_250));
        assert_eq!(serde_json::to_string(&t).unwrap(), "41250000");
        let before = Timestamp::from_signed_micros(-5);
        let text = serde_json::to_string(&before).unwrap();
        assert_eq!(text, "-5");
        assert_eq!(serde_json::from_str::<Timestamp>(&text).unwrap(), before);
    }

    #[cfg(feature = "std")]
    #[test]
    #[allow(clippy::disallowed_methods)] // a test of the mapping needs real instants
    fn instants_before_the_origin_map_before_it() {
        let start = std::time::Instant::now();
        let origin = InstantOrigin::new(start + Duration::from_secs(10));
        assert_eq!(
            origin.timestamp(start),
            Timestamp::ZERO.saturating_sub(Duration::from_secs(10))
        );
        assert_eq!(
            origin.timestamp(start + Duration::from_secs(12)),
            Timestamp::from_secs(2)
        );
        assert_eq!(
            origin.instant(Timestamp::from_secs(2)),
            start + Duration::from_secs(12)
        );
    }

    #[test]
    fn timers_fire_once_in_fixed_order() {
        let mut t = Timers::default();
        t.set(Timer::Heartbeat, Timestamp::from_secs(5));
        t.set(Timer::Hello, Timestamp::from_secs(3));
        assert_eq!(t.next(), Some(Timestamp::from_secs(3)));
        let now = Timestamp::from_secs(100);
        assert_eq!(
            t.pop_expired(now),
            Some((Timer::Hello, Timestamp::from_secs(3)))
        );
        assert_eq!(
            t.pop_expired(now),
            Some((Timer::Heartbeat, Timestamp::from_secs(5)))
        );
        assert_eq!(t.pop_expired(now), None);
        assert_eq!(t.next(), None);
    }

    #[test]
    fn a_timer_armed_during_a_round_never_fires_in_it() {
        let mut t = Timers::default();
        let now = Timestamp::from_secs(10);
        t.set(Timer::Connect, now);
        t.begin_round();
        assert_eq!(t.pop_expired(now), Some((Timer::Connect, now)));
        // What the expired timer did: re-arm itself and another timer, both due already.
        t.set(Timer::Connect, now);
        t.set(Timer::Reconnect, Timestamp::ZERO);
        assert_eq!(t.pop_expired(now), None);
        t.end_round(now);
        let after = now.saturating_add(Duration::from_micros(1));
        assert_eq!(t.get(Timer::Connect), Some(after));
        assert_eq!(t.get(Timer::Reconnect), Some(after));
        assert_eq!(t.next(), Some(after));
        // The next round fires them.
        t.begin_round();
        assert_eq!(t.pop_expired(after), Some((Timer::Connect, after)));
        assert_eq!(t.pop_expired(after), Some((Timer::Reconnect, after)));
        t.end_round(after);
        // A timer armed in a round for later than `now` keeps its deadline.
        t.begin_round();
        t.set(Timer::Hello, Timestamp::from_secs(99));
        t.end_round(after);
        assert_eq!(t.get(Timer::Hello), Some(Timestamp::from_secs(99)));
    }

    #[test]
    fn the_earliest_deadline_counts_every_armed_timer_and_only_those() {
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        // A deadline at the end of time is still a deadline.
        t.set(Timer::CommandQueue, Timestamp::MAX);
        assert_eq!(t.next(), Some(Timestamp::MAX));
        for (i, timer) in Timer::ALL.into_iter().enumerate() {
            t.set(timer, Timestamp::from_secs(60 - i as u64));
        }
        assert_eq!(t.next(), Some(Timestamp::from_secs(55)));
        t.stop(Timer::CommandQueue);
        assert_eq!(t.next(), Some(Timestamp::from_secs(56)));
        t.set(Timer::Connect, Timestamp::ZERO);
        assert_eq!(t.next(), Some(Timestamp::ZERO));
        t.stop_all();
        assert_eq!(t.next(), None);
    }
}
