//! Session state: what a resume needs, as plain serializable data.

use alloc::string::String;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// A gateway session: everything needed to resume it, on this machine or on a new one
/// after a process restart.
///
/// `last_ack` is in the time base of the driver that produced it. A driver that persists a
/// session across restarts either keeps a time origin that survives restarts (e.g. Unix
/// time) or saves the ACK's age in wall-clock terms and rebases it with
/// [`Session::with_ack_age`] when restoring; the clock of the new process can start at
/// zero, as `last_ack` may be before the origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// READY's `session_id`.
    pub id: String,
    /// The last dispatch sequence number received.
    pub sequence: u64,
    /// READY's `resume_gateway_url`, where resumes go.
    pub resume_url: Option<String>,
    /// When the connection last proved alive (READY, RESUMED or a heartbeat ACK).
    pub last_ack: Timestamp,
}

impl Session {
    /// How long ago the last ACK was, as of `now`.
    pub fn ack_age(&self, now: Timestamp) -> Duration {
        now.saturating_duration_since(self.last_ack)
    }

    /// The same session with `last_ack` set to `age` before `now` (for restoring a saved
    /// session into a driver with a different time origin). `age` may be longer than the
    /// time since the origin: `last_ack` is then before it, and the session is exactly `age`
    /// old at `now` (so the stale cutoff judges it right).
    pub fn with_ack_age(mut self, age: Duration, now: Timestamp) -> Self {
        self.last_ack = now.saturating_sub(age);
        self
    }

    /// Whether the session is too old to resume under a cutoff of `stale_after`.
    pub fn is_stale(&self, now: Timestamp, stale_after: Duration) -> bool {
        self.ack_age(now) > stale_after
    }

    /// Records a dispatch sequence number; the sequence never goes backwards.
    pub(crate) fn observe_sequence(&mut self, sequence: u64) {
        self.sequence = self.sequence.max(sequence);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staleness_and_sequence() {
        let mut s = Session {
            id: "abc".into(),
            sequence: 5,
            resume_url: None,
            last_ack: Timestamp::from_secs(10),
        };
        let cutoff = Duration::from_secs(900);
        assert!(!s.is_stale(Timestamp::from_secs(910), cutoff));
        assert!(s.is_stale(Timestamp::from_secs(911), cutoff));
        s.observe_sequence(3);
        assert_eq!(s.sequence, 5);
        s.observe_sequence(9);
        assert_eq!(s.sequence, 9);
        let s = s.with_ack_age(Duration::from_secs(60), Timestamp::from_secs(1000));
        assert_eq!(s.last_ack, Timestamp::from_secs(940));
    }

    /// A session older than the process: restored into a clock that starts at zero, it is
    /// as old as it is, not as old as the process.
    #[test]
    fn a_restored_session_keeps_an_age_longer_than_the_clock() {
        let s = Session {
            id: "abc".into(),
            sequence: 5,
            resume_url: None,
            last_ack: Timestamp::from_secs(10),
        };
        let restored = s.with_ack_age(Duration::from_millis(119_700), Timestamp::ZERO);
        assert_eq!(
            restored.ack_age(Timestamp::ZERO),
            Duration::from_millis(119_700)
        );
        let later = Timestamp::from_secs(800);
        assert_eq!(restored.ack_age(later), Duration::from_millis(919_700));
        assert!(restored.is_stale(later, Duration::from_secs(900)));
        assert!(!restored.is_stale(Timestamp::from_secs(780), Duration::from_secs(900)));
    }
}
