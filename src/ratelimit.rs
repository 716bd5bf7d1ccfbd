//! The gateway's send limit: at most 120 messages in any 60 s window per connection, with
//! slots reserved so heartbeats are never delayed by commands.
//!
//! # Model
//!
//! Discord counts *every* message a client sends (heartbeats, Identify, Resume, commands) and
//! closes the connection with 4008 when a connection sends more than 120 in 60 s. The
//! [`RateLimiter`] guarantees, for every real `s`, that at most [`MAX_SENDS`] acquired sends
//! fall in `[s, s + 60 s)`. It does so conservatively with whole-second buckets:
//!
//! - a send at time `t` is recorded in bucket `k = floor(t / 1 s)`;
//! - it counts against later sends while `floor(now / 1 s) <= k + 60`, i.e. until `k + 61 s`.
//!
//! A send at `t` (bucket `K`) is checked against buckets `K-60 ..= K`, which cover
//! `[K-60 s, K+1 s)` and so contain the whole window `(t - 60 s, t]`: the check never
//! undercounts. The price is that a send may be held up to one extra second (the limiter
//! behaves like a 61 s window in the worst case): at most 1/61 of the throughput. Sixty-one
//! one-byte counters are the whole window state: the limiter is 72 bytes, so an idle
//! machine keeps well inside its memory budget (an exact ring of 120 send times would cost
//! 480-960 bytes).
//!
//! # Priority sends and the reserve
//!
//! Two kinds of sends:
//!
//! - **priority** ([`RateLimiter::try_acquire_heartbeat`]): heartbeats, answers to the
//!   server's op 1, Identify and Resume. They may use any slot up to the hard cap of 120.
//! - **commands** ([`RateLimiter::try_acquire_command`]): everything the application asks
//!   for. They may only use `120 - reserve` slots, counting *all* sends in the window.
//!
//! The reserve, recomputed by [`RateLimiter::set_heartbeat_interval`] for interval `I`, is
//!
//! ```text
//! reserve = floor(61 s / I) + 1     scheduled beats that fit in a 61 s bucket span
//!         + 1                       a late beat followed by an on-time one
//!         + HANDSHAKE_RESERVE (2)   Identify or Resume (and one re-identify)
//!         + OP1_RESERVE (2)         answers to the server's op 1
//! ```
//!
//! (7 for Discord's usual 41.25 s interval, leaving 113 for commands), capped at 120.
//! *Guarantee:* as long as priority sends in any 61 s span stay within the reserve, a
//! priority send is never refused. Proof sketch: take a priority send at `t` and the last
//! command `c` before it in `t`'s bucket window. When `c` was acquired, every send of that
//! window up to `c` was counted and totalled at most `120 - reserve`; every later send is a
//! priority send, and there are at most `reserve` of them (including this one).
//!
//! Before the first [`RateLimiter::set_heartbeat_interval`] (or after a
//! [`RateLimiter::reset`]) the interval is unknown and the whole budget is reserved:
//! commands wait for Hello, which is also when the gateway first accepts them.
//!
//! Time is clamped: a `now` earlier than the latest one seen counts as the latest.

use core::time::Duration;

use crate::time::Timestamp;

/// The most messages a connection may send in any 60 s window.
pub const MAX_SENDS: u32 = 120;

/// The window Discord counts sends over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Reserve for Identify/Resume (and one re-identify after an op 9 on the same connection).
pub const HANDSHAKE_RESERVE: u32 = 2;

/// Reserve for answers to the server's op 1 (an immediate beat, on top of the schedule).
pub const OP1_RESERVE: u32 = 2;

/// Number of one-second buckets: a send in second `k` counts until second `k + 61`.
const BUCKETS: usize = 61;
const BUCKET_MICROS: u64 = 1_000_000;
/// The span a bucket window covers, used to size the heartbeat reserve.
const SPAN_MICROS: u64 = BUCKETS as u64 * BUCKET_MICROS;

/// The per-connection send limiter (see the module docs for the model and guarantee).
///
/// Sans-IO: every method takes the driver's `now`; nothing reads a clock. Getters take
/// `&self` and have no side effects; only the `try_acquire_*` methods record sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimiter {
    /// The second (since the timestamp origin) of the newest bucket.
    head: u64,
    /// Sends per second, indexed by `second % BUCKETS`.
    counts: [u8; BUCKETS],
    /// Sum of `counts`.
    total: u8,
    /// Slots commands may not use.
    reserve: u8,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// A limiter for a new connection, with an unknown heartbeat interval (commands wait
    /// for [`RateLimiter::set_heartbeat_interval`]).
    pub const fn new() -> Self {
        RateLimiter {
            head: 0,
            counts: [0; BUCKETS],
            total: 0,
            reserve: MAX_SENDS as u8,
        }
    }

    /// Starts over for a new connection at `now`: the window is empty and the heartbeat
    /// interval unknown again (the new connection's Hello sets it).
    pub fn reset(&mut self, now: Timestamp) {
        *self = RateLimiter::new();
        self.head = second(now);
    }

    /// Sets the heartbeat interval from Hello and recomputes the reserve (module docs).
    /// A zero interval reserves everything.
    pub fn set_heartbeat_interval(&mut self, interval: Duration) {
        let interval = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
        let reserve = match SPAN_MICROS.checked_div(interval) {
            Some(beats) => beats + 2 + u64::from(HANDSHAKE_RESERVE + OP1_RESERVE),
            None => u64::from(MAX_SENDS),
        };
        self.reserve = reserve.min(u64::from(MAX_SENDS)) as u8;
    }

    /// Slots per window kept for priority sends.
    pub fn reserve(&self) -> u32 {
        u32::from(self.reserve)
    }

    /// Records a priority send (heartbeat, op-1 answer, Identify, Resume) if it keeps the
    /// window within [`MAX_SENDS`]. `false` only when even the hard cap would be crossed;
    /// the caller then holds the message (an op-1 answer can be coalesced with the next
    /// beat).
    pub fn try_acquire_heartbeat(&mut self, now: Timestamp) -> bool {
        self.advance(now);
        if u32::from(self.total) < MAX_SENDS {
            self.record();
            true
        } else {
            false
        }
    }

    /// Records a command send if the window, counting every kind of send, leaves it a slot
    /// outside the reserve.
    pub fn try_acquire_command(&mut self, now: Timestamp) -> bool {
        self.advance(now);
        if u32::from(self.total) + 1 + self.reserve() <= MAX_SENDS {
            self.record();
            true
        } else {
            false
        }
    }

    /// Sends of every kind counted against the window at `now`.
    pub fn sent_in_window(&self, now: Timestamp) -> u32 {
        self.live_at(now)
    }

    /// How many commands could be sent at `now`, back to back.
    pub fn available_commands(&self, now: Timestamp) -> u32 {
        MAX_SENDS
            .saturating_sub(self.reserve())
            .saturating_sub(self.live_at(now))
    }

    /// When a command may be sent: `now` if one may be sent at once, else the instant the
    /// oldest counted sends expire enough to free a command slot (assuming nothing else is
    /// sent meanwhile). `None` if the reserve takes every slot (interval unknown or absurdly
    /// short), so no command can be sent until the interval changes.
    pub fn next_command_slot(&self, now: Timestamp) -> Option<Timestamp> {
        let capacity = MAX_SENDS.checked_sub(self.reserve()).filter(|c| *c > 0)?;
        let live = self.live_at(now);
        if live < capacity {
            return Some(now);
        }
        // `live - capacity + 1` sends must expire; walk the buckets oldest first.
        let mut must_expire = live - capacity + 1;
        let now_sec = second(now).max(self.head);
        let oldest = now_sec.saturating_sub(BUCKETS as u64 - 1);
        for s in oldest..=self.head {
            let count = u32::from(self.counts[slot(s)]);
            if count >= must_expire {
                let at = Timestamp::from_micros((s + BUCKETS as u64).saturating_mul(BUCKET_MICROS));
                return Some(at.max(now));
            }
            must_expire -= count;
        }
        // Unreachable when `total` matches `counts`; be safe rather than loop.
        Some(now)
    }

    /// Sends counted against the window at `now` (without recording anything).
    fn live_at(&self, now: Timestamp) -> u32 {
        let now_sec = second(now);
        if now_sec <= self.head {
            return u32::from(self.total);
        }
        if now_sec - self.head >= BUCKETS as u64 {
            return 0;
        }
        // Buckets head-60 ..= head are stored; those up to now_sec-61 have expired.
        let first_live = now_sec.saturating_sub(BUCKETS as u64 - 1);
        (first_live..=self.head)
            .map(|s| u32::from(self.counts[slot(s)]))
            .sum()
    }

    /// Moves the window to `now`, dropping expired buckets.
    fn advance(&mut self, now: Timestamp) {
        let now_sec = second(now);
        if now_sec <= self.head {
            return;
        }
        if now_sec - self.head >= BUCKETS as u64 {
            self.counts = [0; BUCKETS];
            self.total = 0;
        } else {
            for s in self.head + 1..=now_sec {
                let i = slot(s);
                self.total -= self.counts[i];
                self.counts[i] = 0;
            }
        }
        self.head = now_sec;
    }

    fn record(&mut self) {
        self.counts[slot(self.head)] += 1;
        self.total += 1;
        debug_assert!(u32::from(self.total) <= MAX_SENDS);
        debug_assert_eq!(
            self.counts.iter().map(|c| u32::from(*c)).sum::<u32>(),
            u32::from(self.total)
        );
    }
}

fn second(t: Timestamp) -> u64 {
    t.as_micros() / BUCKET_MICROS
}

fn slot(second: u64) -> usize {
    (second % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    const DISCORD_INTERVAL: Duration = Duration::from_millis(41_250);

    fn ms(ms: u64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    /// The exact invariant, by brute force: no half-open 60 s window holds more than 120
    /// sends. (A window with too many sends has a last send `t`; all of them are then in
    /// `(t - 60 s, t]`, so checking the window ending at each send suffices.)
    fn assert_window_invariant(sends: &[Timestamp]) {
        let mut sorted = sends.to_vec();
        sorted.sort();
        let window = WINDOW.as_micros() as u64;
        let mut first = 0;
        for (i, t) in sorted.iter().enumerate() {
            while sorted[first].as_micros() + window <= t.as_micros() {
                first += 1;
            }
            let in_window = i - first + 1;
            assert!(
                in_window <= MAX_SENDS as usize,
                "{in_window} sends in the 60 s window ending at {t}"
            );
        }
    }

    #[test]
    fn state_is_small() {
        assert!(core::mem::size_of::<RateLimiter>() <= 72);
    }

    #[test]
    fn reserve_for_discord_interval() {
        let mut rl = RateLimiter::new();
        assert_eq!(rl.reserve(), 120);
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        // floor(61 / 41.25) + 1 = 2 beats, + 1 late beat, + 2 handshakes, + 2 op-1 answers.
        assert_eq!(rl.reserve(), 7);
        rl.set_heartbeat_interval(Duration::from_millis(100));
        assert_eq!(rl.reserve(), 120);
        rl.set_heartbeat_interval(Duration::ZERO);
        assert_eq!(rl.reserve(), 120);
    }

    #[test]
    fn commands_wait_for_the_interval() {
        let mut rl = RateLimiter::new();
        rl.reset(ms(0));
        assert!(!rl.try_acquire_command(ms(0)));
        assert_eq!(rl.next_command_slot(ms(0)), None);
        assert_eq!(rl.available_commands(ms(0)), 0);
        // Priority sends (Identify before Hello never happens, but the cap still applies).
        assert!(rl.try_acquire_heartbeat(ms(0)));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        assert_eq!(rl.available_commands(ms(0)), 112);
        assert!(rl.try_acquire_command(ms(0)));
    }

    #[test]
    fn burst_fills_command_capacity_then_frees_61_s_later() {
        let mut rl = RateLimiter::new();
        rl.reset(ms(1_500));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        assert!(rl.try_acquire_heartbeat(ms(1_500))); // Identify
        let mut sent = 0;
        while rl.try_acquire_command(ms(1_600)) {
            sent += 1;
        }
        assert_eq!(sent, 112);
        assert_eq!(rl.available_commands(ms(1_600)), 0);
        // Everything was sent in second 1; it counts until second 62.
        assert_eq!(rl.next_command_slot(ms(30_000)), Some(ms(62_000)));
        assert!(!rl.try_acquire_command(ms(61_999)));
        // Priority sends still have their reserve, and then the hard cap stops them.
        for _ in 0..7 {
            assert!(rl.try_acquire_heartbeat(ms(61_999)));
        }
        assert!(!rl.try_acquire_heartbeat(ms(61_999)));
        assert_eq!(rl.next_command_slot(ms(61_999)), Some(ms(62_000)));
        assert_eq!(rl.available_commands(ms(62_000)), 113 - 7);
        assert!(rl.try_acquire_command(ms(62_000)));
    }

    #[test]
    fn window_slides_bucket_by_bucket() {
        let mut rl = RateLimiter::new();
        rl.reset(ms(0));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        for _ in 0..60 {
            assert!(rl.try_acquire_command(ms(0)));
        }
        for _ in 0..53 {
            assert!(rl.try_acquire_command(ms(30_000)));
        }
        assert!(!rl.try_acquire_command(ms(60_999)));
        // The second-0 bucket expires at 61 s, freeing 60; the second-30 ones stay.
        assert_eq!(rl.next_command_slot(ms(60_999)), Some(ms(61_000)));
        assert_eq!(rl.available_commands(ms(61_000)), 60);
        assert_eq!(rl.next_command_slot(ms(61_000)), Some(ms(61_000)));
        for _ in 0..60 {
            assert!(rl.try_acquire_command(ms(61_000)));
        }
        assert!(!rl.try_acquire_command(ms(61_000)));
        assert_eq!(rl.next_command_slot(ms(61_000)), Some(ms(91_000)));
    }

    #[test]
    fn a_long_pause_clears_everything_and_time_is_clamped() {
        let mut rl = RateLimiter::new();
        rl.reset(ms(0));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        while rl.try_acquire_command(ms(10_000)) {}
        // A `now` that goes backwards counts as the latest one.
        assert!(!rl.try_acquire_command(ms(5_000)));
        assert_eq!(rl.available_commands(ms(3_600_000)), 113);
        assert!(rl.try_acquire_command(ms(3_600_000)));
        assert_eq!(rl.available_commands(ms(3_600_000)), 112);
    }

    #[test]
    fn reset_starts_a_fresh_window() {
        let mut rl = RateLimiter::new();
        rl.reset(ms(0));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        while rl.try_acquire_command(ms(0)) {}
        rl.reset(ms(2_000));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        assert_eq!(rl.available_commands(ms(2_000)), 113);
    }

    #[test]
    fn saturating_commands_never_delay_beats_for_an_hour() {
        let mut rl = RateLimiter::new();
        rl.reset(ms(0));
        rl.set_heartbeat_interval(DISCORD_INTERVAL);
        let mut sends = Vec::new();
        assert!(rl.try_acquire_heartbeat(ms(10)));
        sends.push(ms(10));
        let mut next_beat = 17_000; // jittered first beat
        let mut t = 0;
        while t < 3_600_000 {
            if t >= next_beat {
                assert!(rl.try_acquire_heartbeat(ms(t)), "beat refused at {t} ms");
                sends.push(ms(t));
                next_beat += 41_250;
            }
            while rl.try_acquire_command(ms(t)) {
                sends.push(ms(t));
            }
            t += 250;
        }
        assert_window_invariant(&sends);
        // The budget is used: over an hour, close to 113 commands per 61 s.
        assert!(sends.len() > 60 * 110, "only {} sends", sends.len());
    }

    #[derive(Clone, Debug)]
    struct Scenario {
        interval_ms: u64,
        first_beat_fraction: f64,
        /// How late each beat goes out, as a fraction of the interval (cycled).
        lateness: Vec<f64>,
        /// (time in ms, burst size) command bursts.
        bursts: Vec<(u64, u32)>,
        /// Gaps between the server's op-1 requests, at least 31 s apart (at most 2 per
        /// 61 s span, as the reserve assumes).
        op1_gaps_ms: Vec<u64>,
        /// A second Identify on the same connection (after an op 9), in ms.
        reidentify_ms: Option<u64>,
        /// Also try a big burst every 500 ms, keeping the command budget saturated.
        greedy: bool,
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        (
            prop_oneof![Just(41_250u64), 5_000u64..=60_000, 1_000u64..5_000],
            0.0f64..1.0,
            proptest::collection::vec(0.0f64..0.999, 1..8),
            proptest::collection::vec((0u64..600_000, 1u32..200), 0..60),
            proptest::collection::vec(31_000u64..200_000, 0..10),
            proptest::option::of(0u64..600_000),
            any::<bool>(),
        )
            .prop_map(
                |(
                    interval_ms,
                    first_beat_fraction,
                    lateness,
                    bursts,
                    op1_gaps_ms,
                    reidentify_ms,
                    greedy,
                )| Scenario {
                    interval_ms,
                    first_beat_fraction,
                    lateness,
                    bursts,
                    op1_gaps_ms,
                    reidentify_ms,
                    greedy,
                },
            )
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Kind {
        Identify,
        Beat,
        Op1Answer,
        Commands(u32),
    }

    /// Runs a scenario; returns all acquired send times and how many priority sends were
    /// refused.
    fn run(s: &Scenario) -> (Vec<Timestamp>, u32) {
        let end_us = 600_000_000u64;
        let interval_us = s.interval_ms * 1_000;
        let mut events: Vec<(u64, Kind)> = Vec::new();
        events.push((0, Kind::Identify));
        let mut scheduled = (s.first_beat_fraction * interval_us as f64) as u64;
        let mut n = 0;
        while scheduled < end_us {
            let late = (s.lateness[n % s.lateness.len()] * interval_us as f64) as u64;
            events.push((scheduled + late, Kind::Beat));
            scheduled += interval_us;
            n += 1;
        }
        let mut t = 0;
        for gap in &s.op1_gaps_ms {
            t += gap * 1_000;
            events.push((t, Kind::Op1Answer));
        }
        for (at, burst) in &s.bursts {
            events.push((at * 1_000, Kind::Commands(*burst)));
        }
        if let Some(at) = s.reidentify_ms {
            events.push((at * 1_000, Kind::Identify));
        }
        if s.greedy {
            events.extend(
                (0..end_us)
                    .step_by(500_000)
                    .map(|t| (t, Kind::Commands(200))),
            );
        }
        events.sort();

        let mut rl = RateLimiter::new();
        rl.reset(Timestamp::ZERO);
        rl.set_heartbeat_interval(Duration::from_millis(s.interval_ms));
        let mut sends = Vec::new();
        let mut refused_priority = 0;
        for (at, kind) in events {
            let now = Timestamp::from_micros(at);
            match kind {
                Kind::Identify | Kind::Beat | Kind::Op1Answer => {
                    if rl.try_acquire_heartbeat(now) {
                        sends.push(now);
                    } else {
                        refused_priority += 1;
                    }
                }
                Kind::Commands(burst) => {
                    for _ in 0..burst {
                        let before = rl.available_commands(now);
                        if rl.try_acquire_command(now) {
                            assert!(before > 0);
                            sends.push(now);
                        } else {
                            assert_eq!(before, 0);
                            let slot = rl.next_command_slot(now).unwrap();
                            assert!(slot > now);
                            // The slot it promises is real.
                            let mut probe = rl.clone();
                            assert!(probe.try_acquire_command(slot));
                            break;
                        }
                    }
                }
            }
        }
        (sends, refused_priority)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn never_over_120_per_window_and_beats_never_refused(s in scenario()) {
            let (sends, refused_priority) = run(&s);
            assert_window_invariant(&sends);
            prop_assert_eq!(refused_priority, 0);
        }

        #[test]
        fn op1_spam_cannot_break_the_cap(
            mut spam in proptest::collection::vec(0u64..120_000_000, 0..400),
            bursts in proptest::collection::vec((0u64..120_000, 1u32..150), 0..20),
        ) {
            spam.sort();
            let mut rl = RateLimiter::new();
            rl.reset(Timestamp::ZERO);
            rl.set_heartbeat_interval(DISCORD_INTERVAL);
            let mut events: Vec<(u64, u32)> = spam.iter().map(|t| (*t, 0)).collect();
            events.extend(bursts.iter().map(|(t, b)| (t * 1_000, *b)));
            events.sort();
            let mut sends = Vec::new();
            for (at, burst) in events {
                let now = Timestamp::from_micros(at);
                if burst == 0 {
                    if rl.try_acquire_heartbeat(now) { sends.push(now); }
                } else {
                    for _ in 0..burst {
                        if rl.try_acquire_command(now) { sends.push(now); } else { break; }
                    }
                }
            }
            assert_window_invariant(&sends);
        }
    }
}
