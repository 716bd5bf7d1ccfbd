//! The shard's clock: monotonic within the process, counted from the Unix epoch so that a
//! saved [`Session`](discord_gateway_proto::Session)'s `last_ack` means the same thing in
//! the next process.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use discord_gateway_proto::Timestamp;

/// Maps `Instant`s to machine [`Timestamp`]s: microseconds since the Unix epoch, as read
/// once when the clock starts, plus the monotonic time elapsed since.
///
/// Within a process time never goes backwards (a wall-clock change does not move it);
/// across processes a saved session's age is as right as the two wall clocks agree,
/// plenty for the 15-minute staleness cutoff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
    origin_time: Timestamp,
}

impl Clock {
    /// A clock reading the wall clock now.
    #[allow(clippy::disallowed_methods)] // the adapter owns the clock
    pub(crate) fn start() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Clock {
            origin: Instant::now(),
            origin_time: Timestamp::ZERO.saturating_add(since_epoch),
        }
    }

    /// The current time.
    #[allow(clippy::disallowed_methods)] // the adapter owns the clock
    pub(crate) fn now(&self) -> Timestamp {
        self.timestamp(Instant::now())
    }

    /// The timestamp of `instant`.
    pub(crate) fn timestamp(&self, instant: Instant) -> Timestamp {
        self.origin_time
            .saturating_add(instant.saturating_duration_since(self.origin))
    }

    /// The instant at which `timestamp` falls (the origin for earlier timestamps).
    pub(crate) fn instant(&self, timestamp: Timestamp) -> Instant {
        self.origin + timestamp.saturating_duration_since(self.origin_time)
    }

    /// How long from now until `timestamp` (zero if it passed).
    pub(crate) fn until(&self, timestamp: Timestamp) -> Duration {
        timestamp.saturating_duration_since(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_instants_round_trip() {
        let clock = Clock::start();
        let now = clock.now();
        // Counted from the epoch: well past 2020.
        assert!(now > Timestamp::from_secs(1_577_836_800), "{now}");
        let later = now.saturating_add(Duration::from_secs(3));
        let instant = clock.instant(later);
        assert_eq!(clock.timestamp(instant), later);
        assert!(clock.until(later) <= Duration::from_secs(3));
        assert_eq!(clock.instant(Timestamp::ZERO), clock.origin);
    }
}
