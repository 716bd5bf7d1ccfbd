//! Reconnect policy: how long to wait before the next connection attempt.

use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::Prng;

/// The shape of the delay curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BackoffSchedule {
    /// Attempt 1 waits `initial`, each later one twice as long up to `max`; with `jitter`,
    /// each delay is drawn uniformly from its upper half (`[d/2, d)`), so that many shards
    /// cut off at once do not reconnect in lockstep.
    Exponential {
        /// The delay of the first retry.
        initial: Duration,
        /// The longest delay.
        max: Duration,
        /// Randomise each delay within `[d/2, d)`.
        jitter: bool,
    },
    /// `initial + step * (attempt - 1)`, capped at `max`: the 2022 Go seed used 4 s + 2 s a try.
    Linear {
        /// The delay of the first retry.
        initial: Duration,
        /// Added per further attempt.
        step: Duration,
        /// The longest delay.
        max: Duration,
    },
}

/// When and how often the machine reconnects after losing a connection.
///
/// The first reconnect after a connection that reached READY/RESUMED is immediate (attempt 0
/// has no delay unless `first_delay` is set); each further attempt without reaching
/// READY/RESUMED counts up and waits per the schedule. With `max_attempts`, the machine
/// gives up after that many failed attempts in a row (a terminal
/// [`FatalReason::ReconnectAttemptsExhausted`](crate::FatalReason::ReconnectAttemptsExhausted)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// The delay curve for attempts 1, 2, ….
    pub schedule: BackoffSchedule,
    /// The delay before attempt 0 (the first reconnect after a healthy connection).
    pub first_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// Exponential from 1 s to 60 s with jitter, unlimited attempts, immediate first retry.
    fn default() -> Self {
        Backoff {
            schedule: BackoffSchedule::Exponential {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                jitter: true,
            },
            first_delay: Duration::ZERO,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The 2022 Go seed's schedule: 4 s, then 2 s more per attempt (capped at 10 minutes),
    /// no jitter, unlimited.
    pub fn seed_linear() -> Self {
        Backoff {
            schedule: BackoffSchedule::Linear {
                initial: Duration::from_secs(4),
                step: Duration::from_secs(2),
                max: Duration::from_secs(600),
            },
            first_delay: Duration::from_secs(4),
            max_attempts: None,
        }
    }

    /// Caps the number of failed attempts in a row.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Whether attempt number `attempt` (0-based) is still allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt < max)
    }

    /// The delay before attempt number `attempt` (0 = the first reconnect after a healthy
    /// connection).
    pub(crate) fn delay(&self, attempt: u32, rng: &mut Prng) -> Duration {
        if attempt == 0 {
            return self.first_delay;
        }
        let n = attempt - 1;
        match self.schedule {
            BackoffSchedule::Exponential {
                initial,
                max,
                jitter,
            } => {
                let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
                let full = initial.checked_mul(factor).unwrap_or(max).min(max);
                if jitter {
                    rng.duration_between(full / 2, full)
                } else {
                    full
                }
            }
            BackoffSchedule::Linear { initial, step, max } => step
                .checked_mul(n)
                .and_then(|s| s.checked_add(initial))
                .unwrap_or(max)
                .min(max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_linear_matches_the_go_original() {
        let b = Backoff::seed_linear();
        let mut rng = Prng::new(1);
        let secs: alloc::vec::Vec<u64> = (0..5).map(|a| b.delay(a, &mut rng).as_secs()).collect();
        assert_eq!(secs, [4, 4, 6, 8, 10]);
    }

    #[test]
    fn exponential_doubles_with_jitter_and_caps() {
        let b = Backoff::default();
        let mut rng = Prng::new(1);
        assert_eq!(b.delay(0, &mut rng), Duration::ZERO);
        for attempt in 1..40 {
            let full =
                Duration::from_secs(1u64 << (attempt - 1).min(20)).min(Duration::from_secs(60));
            let d = b.delay(attempt, &mut rng);
            assert!(d >= full / 2 && d < full, "attempt {attempt}: {d:?}");
        }
        assert!(b.allows(1_000_000));
        assert!(!b.with_max_attempts(3).allows(3));
    }
}
